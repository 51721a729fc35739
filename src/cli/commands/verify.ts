import { CID } from 'multiformats/cid'
import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { checkSeal, type Manifest } from '../../manifest/manifest.js'
import { decodeNode } from '../../manifest/node.js'
import { CorruptObjectError, FormatError, NotFoundError } from '../../errors.js'
import { HashPool } from '../../cas/hash-pool.js'
import { RAW, digestMatches } from '../../cas/cid.js'
import type { LocalStore } from '../../cas/local.js'

export interface Problem { model: string; path: string | null; object: string | null; problem: string }

/**
 * Check models: the seal against the manifest's content, every node (strict dag-cbor, sizes), and
 * every chunk re-hashed (in worker threads); each object once however many models share it.
 */
export async function verifyModels(manifests: Manifest[], store: LocalStore, onProblem?: (p: Problem) => void): Promise<Problem[]> {
  const problems: Problem[] = []
  const report = (p: Problem): void => { problems.push(p); onProblem?.(p) }
  const verdict = new Map<string, Promise<string | null>>() // object -> problem or null
  const pool = new HashPool()
  const inflight: Array<Promise<void>> = []
  const checkChunk = (cid: CID): Promise<string | null> => {
    const key = cid.toString()
    let v = verdict.get(key)
    if (!v) {
      v = (async () => {
        let bytes: Uint8Array
        try { bytes = await store.readUnverified(cid) } catch (err) {
          if (err instanceof NotFoundError) return 'missing'
          if (err instanceof CorruptObjectError) return 'corrupt'
          throw err
        }
        return digestMatches(cid, await pool.hash(bytes)) ? null : 'corrupt'
      })()
      verdict.set(key, v)
    }
    return v
  }
  try {
    for (const m of manifests) {
      const model = `${m.name}@v${m.version}`
      const seal = checkSeal(m)
      if (!seal.ok) report({ model, path: null, object: m.seal, problem: `seal mismatch: the manifest's content gives ${seal.expected}` })
      for (const f of m.files) {
        // walk the file's tree; chunks are checked concurrently, a bounded number at a time
        const walk = async (cid: CID): Promise<number> => {
          if (cid.code === RAW) {
            const p = checkChunk(cid).then((problem) => { if (problem) report({ model, path: f.path, object: cid.toString(), problem }) })
            inflight.push(p)
            if (inflight.length > 16) await inflight.shift()
            return -1
          }
          let node
          try { node = decodeNode(await store.get(cid), cid) } catch (err) {
            const problem = err instanceof NotFoundError ? 'missing' : err instanceof CorruptObjectError ? 'corrupt' : err instanceof FormatError ? `malformed node: ${err.message}` : null
            if (!problem) throw err
            report({ model, path: f.path, object: cid.toString(), problem })
            return NaN
          }
          for (const [child] of node.links) await walk(child)
          return node.size
        }
        const root = CID.parse(f.root)
        const size = await walk(root)
        if (root.code !== RAW && !Number.isNaN(size) && size !== f.size) {
          report({ model, path: f.path, object: f.root, problem: `size mismatch: the chunk tree holds ${size} bytes, the manifest says ${f.size}` })
        }
      }
    }
    await Promise.all(inflight)
  } finally {
    await pool.close()
  }
  return problems
}

export const command: Command = {
  summary: 're-hash objects of models (default: all); --signatures checks promotions',
  help: `usage: git zoo verify [<model>...] [--signatures] [--json]

Re-hash every object of the named models (default: every model in the working tree): each
manifest against its seal, each node and chunk against its CID, each file's chunk tree against its
size. Every problem names the model, the file and the object. Exits 1 if there is any.

flags:
  --signatures   also check every commit that touched a sealed model: a promotion signed by an
                 allowed signer as of its parent commit (see spec/seal.md)
  --json         print { ok, problems: [{ model, path, object, problem }] }

examples:
  git zoo verify
  git zoo verify resnet18/cifar10@v2 --json
`,
  flags: { signatures: { type: 'bool' }, json: { type: 'bool' } },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io.env)
    const manifests = args.positional.length ? await Promise.all(args.positional.map((r) => repo.resolve(r))) : await repo.allManifests()
    const store = await repo.openStore()
    const json = bool(args, 'json')
    let problems: Problem[]
    try {
      problems = await verifyModels(manifests, store, json ? undefined : (p) => {
        io.err(`${p.model}${p.path ? ` ${p.path}` : ''}${p.object ? ` ${p.object}` : ''}: ${p.problem}\n`)
      })
    } finally { await store.close() }
    if (bool(args, 'signatures')) {
      const { verifySignatures } = await import('../../promote/signatures.js')
      const sig = await verifySignatures(repo)
      for (const p of sig) {
        problems.push(p)
        if (!json) io.err(`${p.model}${p.object ? ` ${p.object}` : ''}: ${p.problem}\n`)
      }
    }
    if (json) printJson(io, { ok: problems.length === 0, problems })
    else if (problems.length) io.err(`git zoo verify: ${problems.length} problem${problems.length === 1 ? '' : 's'}; \`git zoo fetch\` restores missing or damaged objects from a zoo remote\n`)
    return problems.length ? 1 : 0
  },
}
