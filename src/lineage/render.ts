/** Lineage graphs as a text tree, JSON (CLI.md shape), Graphviz dot and Mermaid. */
import type { LineageGraph } from './graph.js'

export type LineageFormat = 'text' | 'json' | 'dot' | 'mermaid'

function short(seal: string): string { return seal.length > 16 ? `${seal.slice(0, 8)}…${seal.slice(-6)}` : seal }

function sortedNodes(g: LineageGraph): string[] {
  const rank = (k: string): number => (g.ancestors.has(k) ? 0 : k === g.focus ? 1 : 2)
  return [...g.nodes.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
}

/** Current stage names by `name@vN` (src/git/stages.ts stagesByVersion); shown beside the nodes. */
export type StageLabels = ReadonlyMap<string, string[]>

function stageText(stages: StageLabels | undefined, k: string): string {
  const s = stages?.get(k)
  return s?.length ? `  [${s.join(', ')}]` : ''
}

export function renderJson(g: LineageGraph, stages?: StageLabels): object {
  return {
    focus: g.focus,
    nodes: sortedNodes(g).map((k) => { const n = g.nodes.get(k)!; return { name: n.name, version: n.version, seal: n.seal, ...(stages?.get(k)?.length ? { stages: stages.get(k) } : {}), ...(n.missing ? { missing: true } : {}) } }),
    edges: g.edges,
    problems: g.problems,
  }
}

export function renderText(g: LineageGraph, stages?: StageLabels): string {
  const out: string[] = []
  const label = (k: string): string => {
    const n = g.nodes.get(k)!
    return `${k}${k === g.focus ? ' *' : ''}  ${n.missing ? '(not in this zoo)' : short(n.seal)}${stageText(stages, k)}${n.sealOk === false ? '  SEAL MISMATCH' : ''}`
  }
  const parentsOf = (k: string): Array<{ key: string; relation: string }> => g.edges.filter((e) => e.to === k).map((e) => ({ key: e.from, relation: e.relation }))
  const childrenOf = (k: string): Array<{ key: string; relation: string }> => g.edges.filter((e) => e.from === k && (g.descendants.has(e.to) || e.to === g.focus)).map((e) => ({ key: e.to, relation: e.relation }))
  const tree = (k: string, next: (k: string) => Array<{ key: string; relation: string }>, word: (rel: string) => string, seen: Set<string>, prefix: string): void => {
    const kids = next(k)
    kids.forEach((c, i) => {
      const last = i === kids.length - 1
      const again = seen.has(c.key)
      const others = next === childrenOf ? parentsOf(c.key).filter((p) => p.key !== k).map((p) => p.key) : []
      out.push(`${prefix}${last ? '└─ ' : '├─ '}${word(c.relation)} ${again ? `${c.key} (shown above)` : label(c.key)}${others.length && !again ? `  (also from ${others.join(', ')})` : ''}`)
      if (!again) { seen.add(c.key); tree(c.key, next, word, seen, prefix + (last ? '   ' : '│  ')) }
    })
  }
  if (g.ancestors.size) {
    out.push(`ancestors of ${g.focus}`, label(g.focus))
    tree(g.focus, parentsOf, (r) => `${r} of`, new Set(), '')
    out.push('')
  }
  out.push(g.descendants.size ? `descendants of ${g.focus}` : `${g.focus} has no descendants in this zoo`)
  if (g.descendants.size) { out.push(label(g.focus)); tree(g.focus, childrenOf, (r) => `${r} ->`, new Set(), '') }
  for (const p of g.problems) out.push(`problem: ${p.model}: ${p.problem}`)
  return out.join('\n') + '\n'
}

function quote(s: string): string { return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"` }

export function renderDot(g: LineageGraph, stages?: StageLabels): string {
  const out = ['digraph lineage {', '  rankdir=TB;', '  node [shape=box, fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];']
  for (const k of sortedNodes(g)) {
    const n = g.nodes.get(k)!
    const attrs = [`label=${quote(`${k}\n${n.missing ? 'not in this zoo' : short(n.seal)}${stages?.get(k)?.length ? `\n[${stages.get(k)!.join(', ')}]` : ''}`)}`]
    if (k === g.focus) attrs.push('style=bold')
    if (n.missing) attrs.push('style=dashed')
    if (n.sealOk === false) attrs.push('color=red')
    out.push(`  ${quote(k)} [${attrs.join(', ')}];`)
  }
  for (const e of g.edges) out.push(`  ${quote(e.from)} -> ${quote(e.to)} [label=${quote(e.relation)}];`)
  out.push('}')
  return out.join('\n') + '\n'
}

export function renderMermaid(g: LineageGraph, stages?: StageLabels): string {
  const ids = new Map(sortedNodes(g).map((k, i) => [k, `n${i}`]))
  const out = ['graph TD']
  for (const [k, id] of ids) out.push(`  ${id}["${(k + stageText(stages, k)).replace(/"/g, '#quot;')}"]`)
  for (const e of g.edges) out.push(`  ${ids.get(e.from)} -->|${e.relation}| ${ids.get(e.to)}`)
  out.push('  classDef focus stroke-width:3px', `  class ${ids.get(g.focus)} focus`)
  return out.join('\n') + '\n'
}
