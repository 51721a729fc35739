/**
 * Checking models against the store: seals, nodes and every chunk re-hashed.
 */
import { CID } from 'multiformats/cid'
import { checkSeal, type Manifest } from '../manifest/manifest.js'
import { readFileNode } from './file-node.js'
import { expandManifest } from '../manifest/checkpoints.js'
import { CorruptObjectError, FormatError, NotFoundError } from '../errors.js'
import { HashPool, chunkThreads, WORKER_THRESHOLD, READ_SLABS, type SlabRing } from '../cas/hash-pool.js'
import { BLAKE3, RAW, bytesMatch, digestMatches } from '../cas/cid.js'
import type { LocalStore } from '../cas/local.js'
import { readBatches, type ReadItem } from '../cas/pack-read.js'
import { MAX_OBJECT_SIZE } from '../cas/store.js'
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
  /** Chunks checked per window (default CHECK_WINDOW); tests use small windows. */
  window?: number
  /**
   * Aborted (Ctrl-C, SIGTERM, a served request's client gone): the check stops at its next node,
   * chunk or slab and throws the signal's reason, its pool closed.
   */
  signal?: AbortSignal
  /** Crash and pause points (src/cli/crash.ts): `verify-window` fires before each window of chunks is read. */
  crashPoint?: (name: string) => void | Promise<void>
}

export interface VerifyResult {
  problems: Problem[]
  /** Absent objects of a lazy clone, each once (with the first model and file that needs it). */
  notFetched: Problem[]
}

/**
 * Check models: the seal against the manifest's content, every node (strict dag-cbor, sizes), and
 * every chunk re-hashed (in worker threads, read from the packs in runs: src/cas/pack-read.ts);
 * each object once however many models share it.
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
  // models of less than WORKER_THRESHOLD bytes are hashed on this thread, each chunk read on its own:
  // a worker thread and 64 MiB of slabs cost more than hashing a few MiB (a 1 KiB verify: ~40% of
  // its CPU); larger ones are read into slabs (and hashed as below)
  let total = 0
  for (const m of manifests) total += m.checkpoints ? Infinity : m.files.reduce((a, f) => a + f.size, 0)
  // the pool is made when the walk hands over its first window of chunks, which tells their hash: BLAKE3
  // chunks (native) are hashed by this thread alone (0.13 CPU s per GiB, faster than the packs are
  // read; a worker thread costs more to boot than it would take off), sha2-256 ones by this thread and
  // one worker fewer than there are cores (no whole-file hash, so no further thread): chunkThreads. A
  // zoo whose models switched hash hashes the other kind with the threads the first window chose.
  let pool: HashPool | null = null
  let ringReady: Promise<SlabRing> | null = null
  const ring = (first: Chunk[]): Promise<SlabRing> | null => {
    if (total < WORKER_THRESHOLD) return null
    if (!ringReady) {
      pool = new HashPool(chunkThreads(first.every((c) => c.cid.multihash.code === BLAKE3) ? 'blake3' : 'sha2-256', { callerHashes: true }))
      ringReady = pool.slabs(READ_SLABS, MAX_OBJECT_SIZE, { stream: false, inline: true })
      ringReady.catch(() => {}) // awaited by checkChunks
    }
    return ringReady
  }
  try {
    await verifyWith(manifests, store, ring, report, opts.window ?? CHECK_WINDOW, opts)
    return { problems, notFetched: [...notFetched.values()] }
  } finally {
    await (pool as HashPool | null)?.close()
  }
}

/** A chunk to check, each once however many files share it: `problem` is set once it is found bad. */
interface Chunk { cid: CID; refs: Array<{ model: string; path: string }>; problem?: string }

/** Chunks located and re-hashed per window: one leaf node's links. */
const CHECK_WINDOW = 1024

/**
 * Walk the trees (nodes checked) and re-hash every chunk once, reporting each problem. The chunks
 * are checked in windows as the walk finds them (up to two windows at a time), so reading and
 * hashing start after the first leaf node instead of after the whole walk.
 */
async function verifyWith(manifests: Manifest[], store: LocalStore, ring: (first: Chunk[]) => Promise<SlabRing> | null,
                          report: (p: Problem) => void, windowSize: number, opts: VerifyOptions): Promise<void> {
  const { signal } = opts
  const chunks = new Map<string, Chunk>()
  let window: Chunk[] = []
  const checking: Array<Promise<void>> = []
  const flush = async (): Promise<void> => {
    if (window.length === 0) return
    const batch = window
    window = []
    await opts.crashPoint?.('verify-window')
    signal?.throwIfAborted()
    const p = checkChunks(batch, store, ring(batch), report, signal)
    p.catch(() => {}) // awaited below
    checking.push(p)
    if (checking.length >= 2) await checking.shift()
  }
  let walkFailed: { err: unknown } | null = null
  try {
    for (const m of manifests) {
      const model = `${m.name}@v${m.version}`
      const seal = checkSeal(m)
      if (!seal.ok) report({ model, path: null, object: m.seal, problem: `seal mismatch: the manifest's content gives ${seal.expected}` })
      // a trajectory's checkpoint node(s): read (each block against its CID), decoded strictly and
      // checked against the manifest's summary; a bad node is a problem, its files cannot be listed
      let full = m
      if (m.checkpoints) {
        try { full = await expandManifest(m, store) } catch (err) {
          const problem = storeProblem(err) ?? (err instanceof FormatError ? `malformed checkpoint node: ${err.message}` : null)
          if (!problem) throw err
          const object = (err as { data?: { cid?: unknown } }).data?.cid
          report({ model, path: null, object: typeof object === 'string' ? object : m.checkpoints.node, problem })
        }
      }
      for (const f of full.files) {
        const walk = async (cid: CID): Promise<number> => {
          signal?.throwIfAborted()
          if (cid.code === RAW) {
            const k = Buffer.from(cid.multihash.bytes).toString('latin1') // cheaper than base32; the hash's code is part of it
            let c = chunks.get(k)
            if (!c) {
              chunks.set(k, c = { cid, refs: [] })
              window.push(c)
              if (window.length >= windowSize) await flush()
            }
            c.refs.push({ model, path: f.path })
            // found bad before this file named it (checked with an earlier window)
            if (c.problem) report({ model, path: f.path, object: cid.toString(), problem: c.problem })
            return -1
          }
          let node
          try { node = await readFileNode(store, cid) } catch (err) {
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
    await flush()
  } catch (err) { walkFailed = { err } }
  // every window settles before the pool is closed; then the first failure is thrown
  const settled = await Promise.allSettled(checking)
  if (walkFailed) throw walkFailed.err
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
}

/**
 * Re-hash `batch` (each chunk read from the packs in pack order: in runs by both cores with a ring,
 * one by one on this thread without), reporting each bad chunk for every file that names it.
 */
async function checkChunks(batch: Chunk[], store: LocalStore, ringReady: Promise<SlabRing> | null, report: (p: Problem) => void,
                           signal: AbortSignal | undefined): Promise<void> {
  const bad = (c: Chunk, problem: string): void => {
    c.problem = problem
    for (const r of c.refs) report({ model: r.model, path: r.path, object: c.cid.toString(), problem })
  }
  const located: Array<ReadItem & { c: Chunk }> = []
  for (const c of batch) {
    signal?.throwIfAborted()
    const entry = store.entryOf(c.cid) ?? await store.locate(c.cid)
    if (entry) { located.push({ cid: c.cid, entry, c }); continue }
    // not in an index this handle has loaded (gc moved it meanwhile): read where the store finds it, and hash it here
    let bytes: Uint8Array
    try { bytes = await store.readUnverified(c.cid) } catch (err) {
      const problem = storeProblem(err)
      if (!problem) throw err
      bad(c, problem)
      continue
    }
    if (!bytesMatch(c.cid, bytes)) bad(c, 'corrupt')
  }
  located.sort((x, y) => (x.entry.pack < y.entry.pack ? -1 : x.entry.pack > y.entry.pack ? 1 : x.entry.offset - y.entry.offset))
  if (located.length > 0 && !ringReady) {
    // small models: each chunk read and hashed here, in pack order
    for (const l of located) {
      signal?.throwIfAborted()
      let bytes: Uint8Array
      try { bytes = await store.readUnverified(l.cid) } catch (err) {
        const problem = storeProblem(err)
        if (!problem) throw err
        bad(l.c, problem)
        continue
      }
      if (!bytesMatch(l.cid, bytes)) bad(l.c, 'corrupt')
    }
  } else if (located.length > 0) {
    const ring = await ringReady!
    await readBatches(store, ring, located, async (b) => {
      signal?.throwIfAborted() // a slab read: stop before the next
      for (const [k, it] of b.items.entries()) {
        if (!digestMatches(located[it.index]!.cid, b.digests.subarray(32 * k, 32 * k + 32))) bad(located[it.index]!.c, 'corrupt')
      }
    }, {
      ...(signal ? { signal } : {}),
      onItemError: (index, err) => {
        const problem = storeProblem(err)
        if (!problem) throw err
        bad(located[index]!.c, problem)
      },
    })
  }
}
