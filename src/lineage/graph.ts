/**
 * The lineage DAG around one model version: its ancestors (walked through the parent links of the
 * manifests themselves) and its descendants (found through the catalog's child index, then each
 * confirmed from its own manifest). Every link is checked against seals: the parent seal a child
 * records must equal the parent manifest's seal, and each manifest must match its own seal.
 * A cycle (possible only through a hand-edited manifest) is refused with the cycle named.
 */
import type { Manifest } from '../manifest/manifest.js'
import { CheckError } from '../errors.js'

export interface LineageNode { name: string; version: number; seal: string; missing?: boolean; sealOk?: boolean }
export interface LineageEdge { from: string; to: string; relation: string }
export interface LineageProblem { model: string; problem: string }

export interface LineageGraph {
  focus: string
  nodes: Map<string, LineageNode>
  edges: LineageEdge[]
  problems: LineageProblem[]
  ancestors: Set<string>
  descendants: Set<string>
}

export interface ManifestSource {
  /** The manifest of name@vN, or undefined when the zoo does not hold it. */
  read(name: string, version: number): Promise<Manifest | undefined>
  /** Candidate children of name@vN (they are confirmed from their manifests). */
  children(name: string, version: number): Promise<Array<{ name: string; version: number }>>
  /** Whether a manifest matches its seal. */
  sealOk(m: Manifest): boolean
}

export const keyOf = (m: { name: string; version: number }): string => `${m.name}@v${m.version}`

export async function buildLineage(focus: Manifest, src: ManifestSource, o: { ancestors?: boolean; descendants?: boolean } = {}): Promise<LineageGraph> {
  const g: LineageGraph = { focus: keyOf(focus), nodes: new Map(), edges: [], problems: [], ancestors: new Set(), descendants: new Set() }
  const seen = new Map<string, Manifest | undefined>()
  const edgeKeys = new Set<string>()
  const addNode = (m: Manifest): void => {
    const k = keyOf(m)
    if (g.nodes.has(k)) return
    const sealOk = src.sealOk(m)
    g.nodes.set(k, { name: m.name, version: m.version, seal: m.seal, sealOk })
    if (!sealOk) g.problems.push({ model: k, problem: 'its manifest does not match its seal (changed after sealing)' })
  }
  const addEdge = (from: string, to: string, relation: string): void => {
    const e = `${from}\n${to}\n${relation}`
    if (edgeKeys.has(e)) return
    edgeKeys.add(e)
    g.edges.push({ from, to, relation })
  }
  const load = async (name: string, version: number): Promise<Manifest | undefined> => {
    const k = `${name}@v${version}`
    if (!seen.has(k)) seen.set(k, await src.read(name, version))
    return seen.get(k)
  }
  seen.set(g.focus, focus)
  addNode(focus)

  if (o.ancestors !== false) {
    const stack: string[] = []
    const up = async (m: Manifest): Promise<void> => {
      const k = keyOf(m)
      stack.push(k)
      for (const p of m.parents) {
        const pk = `${p.name}@v${p.version}`
        if (stack.includes(pk)) throw cycleError([...stack.slice(stack.indexOf(pk)), pk].reverse())
        const pm = await load(p.name, p.version)
        addEdge(pk, k, p.relation)
        if (!pm) {
          if (!g.nodes.has(pk)) g.nodes.set(pk, { name: p.name, version: p.version, seal: p.seal, missing: true })
          g.problems.push({ model: k, problem: `its parent ${pk} is not in this zoo` })
          continue
        }
        if (pm.seal !== p.seal) g.problems.push({ model: k, problem: `it records parent ${pk} with seal ${p.seal}, but that manifest's seal is ${pm.seal}` })
        const fresh = !g.ancestors.has(pk)
        g.ancestors.add(pk)
        addNode(pm)
        if (fresh) await up(pm)
      }
      stack.pop()
    }
    await up(focus)
  }

  if (o.descendants !== false) {
    const stack: string[] = []
    const down = async (m: Manifest): Promise<void> => {
      const k = keyOf(m)
      stack.push(k)
      for (const c of await src.children(m.name, m.version)) {
        const cm = await load(c.name, c.version)
        if (!cm) continue
        const links = cm.parents.filter((p) => p.name === m.name && p.version === m.version)
        if (links.length === 0) continue // the catalog was stale: the manifest no longer says so
        const ck = keyOf(cm)
        if (stack.includes(ck)) throw cycleError([...stack.slice(stack.indexOf(ck)), ck])
        for (const l of links) {
          addEdge(k, ck, l.relation)
          if (l.seal !== m.seal) g.problems.push({ model: ck, problem: `it records parent ${k} with seal ${l.seal}, but that manifest's seal is ${m.seal}` })
        }
        if (g.ancestors.has(ck) || ck === g.focus) throw cycleError([g.focus, ck])
        const fresh = !g.descendants.has(ck)
        g.descendants.add(ck)
        addNode(cm)
        if (fresh) await down(cm)
      }
      stack.pop()
    }
    await down(focus)
  }
  return g
}

function cycleError(path: string[]): CheckError {
  const where = path.slice(0, -1).map((k) => { const at = k.lastIndexOf('@v'); return `models/${k.slice(0, at)}/v${k.slice(at + 2)}/manifest.json` })
  return new CheckError(`lineage cycle: ${path.join(' -> ')}; a model cannot descend from itself, so one of these manifests was edited by hand (${[...new Set(where)].join(', ')}); restore it with \`git checkout -- <file>\``, 'E_LINEAGE_CYCLE', { cycle: path })
}
