/**
 * Checking models against the store: seals, nodes and every chunk re-hashed.
 */
import { CID } from 'multiformats/cid'
import { checkSeal, type Manifest } from '../manifest/manifest.js'
import { decodeNode } from '../manifest/node.js'
import { CorruptObjectError, FormatError, NotFoundError } from '../errors.js'
import { HashPool } from '../cas/hash-pool.js'
import { RAW, digestMatches } from '../cas/cid.js'
import type { LocalStore } from '../cas/local.js'
import type { Repo } from '../repo.js'
import { MANIFEST_FILE, MODELS_DIR } from '../manifest/manifest.js'

/** How a failed local read classifies an object: absent, or bytes that do not match its CID; null for any other error. */
export function storeProblem(err: unknown): 'missing' | 'corrupt' | null {
  return err instanceof NotFoundError ? 'missing' : err instanceof CorruptObjectError ? 'corrupt' : null
}

export interface Problem { model: string; path: string | null; object: string | null; problem: string }

/** `name@vN` from a manifest path `models/<name>/v<N>/manifest.json`. */
function modelOfPath(path: string): string {
  const inner = path.slice(MODELS_DIR.length + 1, -(MANIFEST_FILE.length + 1))
  const cut = inner.lastIndexOf('/')
  return `${inner.slice(0, cut)}@${inner.slice(cut + 1)}`
}

/**
 * The manifests to verify: those `refs` name, or every manifest in the work tree. A manifest that
 * cannot be parsed is a problem of its model (`object` null), reported beside the others, so one
 * broken file does not stop the check of the rest. A name that is not in the zoo still throws.
 */
export async function manifestsToVerify(repo: Repo, refs: string[]): Promise<{ manifests: Manifest[]; problems: Problem[] }> {
  const manifests: Manifest[] = []
  const problems: Problem[] = []
  const attempt = async (read: () => Promise<Manifest>, fallbackPath: string | null): Promise<void> => {
    try { manifests.push(await read()) } catch (err) {
      if (!(err instanceof FormatError)) throw err
      const where = typeof err.data.where === 'string' ? err.data.where : fallbackPath
      problems.push({ model: where ? modelOfPath(where) : String(fallbackPath), path: where, object: null, problem: `unreadable manifest: ${err.message}` })
    }
  }
  if (refs.length) for (const ref of refs) await attempt(() => repo.resolve(ref), null)
  else for (const path of await repo.manifestPaths()) await attempt(() => repo.readManifestAt(path), path)
  return { manifests, problems }
}

export interface VerifyOptions {
  /** Called as each problem is found. */
  onProblem?: (p: Problem) => void
  /**
   * A lazy clone: an absent object is not damage but not yet fetched; it goes to `notFetched`
   * (once per object; below an absent node nothing more is known) instead of `problems`.
   */
  lazy?: boolean
}

export interface VerifyResult {
  problems: Problem[]
  /** Absent objects of a lazy clone, each once (with the first model and file that needs it). */
  notFetched: Problem[]
}

/**
 * Check models: the seal against the manifest's content, every node (strict dag-cbor, sizes), and
 * every chunk re-hashed (in worker threads); each object once however many models share it.
 */
export async function verifyModels(manifests: Manifest[], store: LocalStore, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const problems: Problem[] = []
  const notFetched = new Map<string, Problem>()
  const report = (p: Problem): void => {
    if (opts.lazy && p.problem === 'missing' && p.object !== null) {
      if (!notFetched.has(p.object)) notFetched.set(p.object, { ...p, problem: 'not fetched' })
      return
    }
    problems.push(p)
    opts.onProblem?.(p)
  }
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
          const problem = storeProblem(err)
          if (!problem) throw err
          return problem
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
            const problem = storeProblem(err) ?? (err instanceof FormatError ? `malformed node: ${err.message}` : null)
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
  return { problems, notFetched: [...notFetched.values()] }
}
