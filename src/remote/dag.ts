/**
 * syncFiles: copy the chunk DAGs of files (roots from manifests) from one Store to another, keeping
 * invariant 2 on the destination: a node is stored only after every object it links to.
 *
 * 1. Walk each root: a root or child node the destination already has is skipped with its whole
 *    subtree (invariant 2 says its descendants are there too); otherwise its node is read from the
 *    source (verified, strictly decoded) and its chunks stream into `transfer` (N at once).
 * 2. When every chunk is in, the nodes are copied lowest level first, so each node lands after its
 *    children. An interruption leaves chunks without their nodes, which a rerun skips (resume).
 *
 * Memory: the walk holds one path of nodes plus the CIDs of the nodes to copy (one per 1024 chunks),
 * and `transfer` holds at most `concurrency` objects.
 */
import type { CID } from '../cas/cid.js'
import { RAW, parseCid } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { decodeNode } from '../manifest/node.js'
import { transfer, type TransferProgress, type TransferResult } from './transfer.js'

export interface FileRoot { root: string; size: number }

export interface SyncOptions {
  concurrency?: number
  signal?: AbortSignal
  crashPoint?: (name: string) => void | Promise<void>
  /** Called as objects are copied or skipped. */
  onProgress?: (p: TransferProgress) => void
  /**
   * Objects that link to the files' DAGs (checkpoint nodes, src/manifest/checkpoints.ts): copied
   * after every file's DAG is in, so they land after what they link to (invariant 2).
   */
  last?: Iterable<string>
}

/**
 * A destination that makes objects visible in put order (`ordered`, the packed remotes) keeps
 * invariant 2 without a flush between the chunks and each level of nodes: each level's transfer
 * goes through a view whose flush waits for nothing, and the one real flush comes at the end (or
 * on failure). Each flush of a packed remote would otherwise seal a pack per level.
 */
function deferFlush(to: Store): Store {
  return {
    get location() { return to.location },
    put: (c, b) => to.put(c, b), get: (c) => to.get(c), has: (c) => to.has(c), list: () => to.list(),
    flush: async () => {}, close: () => to.close(),
  }
}

export async function syncFiles(from: Store, dest: Store, files: Iterable<FileRoot>, opts: SyncOptions = {}): Promise<TransferResult> {
  if ((dest as { ordered?: boolean }).ordered === true) {
    let result: TransferResult
    try {
      result = await copyFiles(from, deferFlush(dest), files, opts)
    } catch (err) {
      await dest.flush().catch(() => {}) // what was copied stays durable; the first error is the one to tell
      throw err
    }
    await dest.flush()
    return result
  }
  return copyFiles(from, dest, files, opts)
}

async function copyFiles(from: Store, to: Store, files: Iterable<FileRoot>, opts: SyncOptions): Promise<TransferResult> {
  const done: TransferResult = { objects: 0, bytes: 0, skippedObjects: 0, skippedBytes: 0 }
  /** Subtrees skipped by the walk (the destination had their root). */
  const skipped = { objects: 0, bytes: 0 }
  const emit = (p?: TransferProgress): void => {
    opts.onProgress?.({
      objects: done.objects + (p?.objects ?? 0), bytes: done.bytes + (p?.bytes ?? 0),
      skippedObjects: done.skippedObjects + (p?.skippedObjects ?? 0) + skipped.objects,
      skippedBytes: done.skippedBytes + (p?.skippedBytes ?? 0) + skipped.bytes,
      seen: 0,
    })
  }
  /** Node CIDs to copy once their chunks are in, by height (0 = leaf nodes). */
  const levels: string[][] = []
  const heights = new Map<string, number>()
  /** Sizes of chunks handed to transfer and not yet accounted for. */
  const sizes = new Map<string, number>()

  async function* chunks(): AsyncGenerator<CID> {
    const roots = new Map<string, number>()
    for (const f of files) roots.set(f.root, f.size)
    for (const [text, size] of roots) {
      if (heights.has(text)) continue
      const root = parseCid(text)
      if (await to.has(root)) { skipped.objects++; skipped.bytes += size; continue }
      if (root.code === RAW) { sizes.set(text, size); yield root; continue }
      yield * walk(root)
    }
  }

  /** Yields the chunks under `node` that need copying; returns the node's height. */
  async function* walk(node: CID): AsyncGenerator<CID, number> {
    const decoded = decodeNode(await from.get(node), node)
    let height = 0
    if (decoded.leaf) {
      for (const [chunk, size] of decoded.links) { sizes.set(chunk.toString(), size); yield chunk }
    } else {
      for (const [child, size] of decoded.links) {
        const known = heights.get(child.toString())
        if (known !== undefined) { height = Math.max(height, known + 1); continue }
        if (await to.has(child)) { skipped.objects++; skipped.bytes += size; continue }
        height = Math.max(height, 1 + (yield * walk(child)))
      }
    }
    heights.set(node.toString(), height)
    ;(levels[height] ??= []).push(node.toString())
    return height
  }

  const sizeOf = (cid: CID): number | undefined => {
    const key = cid.toString()
    const s = sizes.get(key)
    sizes.delete(key)
    return s
  }
  const add = (r: TransferResult): void => {
    done.objects += r.objects; done.bytes += r.bytes
    done.skippedObjects += r.skippedObjects; done.skippedBytes += r.skippedBytes
  }
  const base = { concurrency: opts.concurrency, signal: opts.signal, crashPoint: opts.crashPoint }
  add(await transfer(from, to, chunks(), { ...base, sizeOf, onProgress: emit }))
  sizes.clear()
  heights.clear()
  for (const level of levels) {
    if (level?.length) add(await transfer(from, to, level.map(parseCid), { ...base, onProgress: emit }))
  }
  const last = [...new Set(opts.last ?? [])]
  if (last.length) add(await transfer(from, to, last.map(parseCid), { ...base, onProgress: emit }))
  done.skippedObjects += skipped.objects
  done.skippedBytes += skipped.bytes
  return done
}
