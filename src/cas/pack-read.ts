/**
 * Reading many objects of the local store at disk speed, for `get` and `verify`: the objects are laid
 * side by side in a slab of shared memory (src/cas/hash-pool.ts), those that lie next to each other
 * in a pack (add writes a file's chunks in order) taken with one vectored read (the record headers
 * between them go to a scratch buffer), the worker threads hash every object of the slab in place,
 * and the caller gets the slab with each object's range and digest (each with its CID's hash:
 * sha2-256 or BLAKE3). Memory is the ring whatever the
 * number of objects; no object is copied to reach a worker, nor (get) to be written.
 */
import type { CID } from 'multiformats/cid'
import type { Entry, LocalStore, PackObject } from './local.js'
import type { RangeHashes, SlabRing } from './hash-pool.js'
import { SHA2_256 } from './cid.js'

/** Largest gap between two objects of one pack still read in one go (record headers are ~44 bytes). */
const MAX_GAP = 64 * 1024
/** Objects per vectored read: each takes up to two of the 1,024 buffers a readv accepts. */
const MAX_RUN = 500

export interface ReadItem { cid: CID; entry: Entry }

export interface SlabBatch {
  /** The slab and its bytes; valid until the promise returned by the callback settles. */
  slab: number
  buf: Uint8Array
  /**
   * Each object: its item and its index among the caller's items (counted from 0 in the order they
   * came), offset in `buf`, length; the objects lie side by side in `buf`.
   */
  items: Array<{ index: number; item: ReadItem; off: number; len: number }>
  /** Where the first object starts in `buf`, and the bytes of all of them (`buf[head, head + bytes)`). */
  head: number
  bytes: number
  /** 32 bytes of digest per item (with the hash its CID names), in order. */
  digests: Uint8Array
}

export interface ReadOptions {
  signal?: AbortSignal
  /**
   * An object that cannot be read (its pack is gone) goes here and is left out of its batch; without
   * it, that error stops the reads like any other. Not with `file` (a file's bytes have no holes).
   */
  onItemError?: (index: number, err: unknown) => void
  /**
   * The items are the consecutive bytes of one file from `offset` (get): each slab's first object is
   * put at its file offset modulo `align`, so the slab is laid out as the file's blocks are and can
   * be written with O_DIRECT as it is (AppendWriter.appendAligned). The slabs must be page-aligned
   * and an object must fit in a slab with `align` bytes to spare.
   */
  file?: { offset: number; align: number }
  /**
   * Called in order with each slab as soon as its bytes are read, before its objects are hashed (get
   * feeds the whole-file sha256 here, so that sequential hash never waits for the chunk hashes). The
   * slab is not reused before the promise settles.
   */
  onRead?: (b: Omit<SlabBatch, 'digests'>) => Promise<void>
}

/**
 * Read `items` (objects with their pack locations) in order into the ring's slabs, as many side by
 * side per slab as fit; hash each object in the workers; hand each slab to `onBatch` in order. The
 * slab is reused once the promises `onBatch` (and `onRead`) return settle, so the next batches are
 * read and hashed meanwhile. Objects must each fit in a slab. The first error (a read without
 * `onItemError`, a worker, a callback, the signal) stops the reads and is thrown once every batch in
 * flight has settled.
 */
export async function readBatches(store: LocalStore, ring: SlabRing, items: Iterable<ReadItem> | AsyncIterable<ReadItem>,
                                  onBatch: (b: SlabBatch) => Promise<void>, opts: ReadOptions = {}): Promise<void> {
  const { signal, onItemError, file, onRead } = opts
  if (file && onItemError) throw new Error('readBatches: onItemError leaves holes, and a file laid out for writing has none')
  const size = ring.slabs[0]!.length
  const inflight: Array<Promise<void>> = []
  let prevRead: Promise<void> = Promise.resolve() // onRead is called in batch order
  let prevDone: Promise<void> = Promise.resolve() // batches are handed over in order
  let failed = null as { err: unknown } | null
  let pos = file?.offset ?? 0
  // the items are taken one at a time (get lists a file's chunks as its tree is walked), with one
  // looked at ahead to know whether it fits in the slab being planned
  const source = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<ReadItem>)[Symbol.iterator]()
  let ahead: ReadItem | null = null
  let count = 0
  const peek = async (): Promise<ReadItem | null> => {
    if (ahead) return ahead
    const r = await source.next()
    return (ahead = r.done ? null : r.value)
  }
  try {
    while (await peek()) {
      signal?.throwIfAborted()
      if (failed) throw failed.err
      // the slab's objects: as many as fit side by side after `head`
      const head = file ? pos % file.align : 0
      let fill = head
      const batch: SlabBatch['items'] = []
      for (let next = await peek(); next && (batch.length === 0 || fill + next.entry.length <= size); next = await peek()) {
        const len = next.entry.length
        if (fill + len > size) throw new Error(`readBatches: an object of ${len} bytes does not fit in a slab of ${size} with ${head} before it`)
        batch.push({ index: count++, item: next, off: fill, len })
        fill += len
        ahead = null
      }
      pos += fill - head
      if (inflight.length >= ring.slabs.length - 1) await inflight.shift()
      const slab = await ring.acquire()
      const buf = ring.slabs[slab]!
      const beforeRead = prevRead
      let readHandedOver!: () => void
      prevRead = new Promise<void>((resolve) => { readHandedOver = resolve })
      const beforeDone = prevDone
      let handedOver!: () => void
      prevDone = new Promise<void>((resolve) => { handedOver = resolve })
      const work = (async (): Promise<void> => {
        let fed: Promise<void> = Promise.resolve()
        try {
          await readSlab(store, batch, buf, signal, onItemError)
          await beforeRead
          if (failed) return
          const bytes = batch.reduce((a, b) => a + b.len, 0)
          if (onRead) {
            fed = onRead({ slab, buf, items: batch, head, bytes })
            // a failed onRead stops the next batches like any other error (nobody else awaits it)
            fed.catch((err) => { failed ??= { err } })
          }
          readHandedOver()
          // each object with its CID's hash (a zoo that switched its chunk hash has both kinds)
          const digests = await ring.hashRanges(slab, batch.map((b) => b.off), batch.map((b) => b.len), rangeHashes(batch))
          await beforeDone
          if (failed) return
          const done = onBatch({ slab, buf, items: batch, head, bytes, digests })
          // recorded before the next batch is handed over: a callback that rejects at once (get's CID
          // check) must keep the next one from being called (it would write at the wrong place)
          done.catch((err) => { failed ??= { err } })
          handedOver()
          await done
        } catch (err) {
          failed ??= { err } // before the finally hands the turn to the next batch
          throw err
        } finally {
          readHandedOver()
          handedOver()
          await fed.catch(() => {}) // recorded in `failed` above; the slab is not reused before it settles
          ring.release(slab)
        }
      })()
      work.catch((err) => { failed ??= { err } })
      inflight.push(work.catch(() => {}))
    }
    await Promise.all(inflight)
    if (failed) throw failed.err
  } catch (err) {
    await Promise.all(inflight)
    await source.return?.()
    throw err
  }
}

/** The multihash codes of a batch's objects: one number when they all share one (the common case). */
function rangeHashes(batch: SlabBatch['items']): RangeHashes {
  const first = batch[0]?.item.cid.multihash.code ?? SHA2_256
  if (batch.every((b) => b.item.cid.multihash.code === first)) return first
  return batch.map((b) => b.item.cid.multihash.code)
}

/**
 * Read a slab's objects into `buf` at their places: one vectored read per run of neighbours in a
 * pack, the runs side by side. A run that cannot be read (its pack is gone or unreadable) is read
 * object by object with the store's own errors (gc may have moved them: readUnverified looks again),
 * for `onItemError` to classify (the object is then taken out of `batch`).
 */
async function readSlab(store: LocalStore, batch: SlabBatch['items'], buf: Uint8Array,
                        signal: AbortSignal | undefined, onItemError: ReadOptions['onItemError']): Promise<void> {
  const runs: Array<Array<SlabBatch['items'][number]>> = []
  for (const b of batch) {
    const run = runs[runs.length - 1]
    const last = run?.[run.length - 1]
    const e = b.item.entry
    const prev = last ? last.item.entry : null
    if (run && prev && e.pack === prev.pack && e.offset >= prev.offset + prev.length &&
        e.offset - (prev.offset + prev.length) <= MAX_GAP && run.length < MAX_RUN) run.push(b)
    else runs.push([b])
  }
  const failedItems = new Set<SlabBatch['items'][number]>()
  // every run settles before the slab can be given back (a read still landing in it would damage the next user's bytes)
  const reads = await Promise.allSettled(runs.map(async (run) => {
    const pack = run[0]!.item.entry.pack
    const objects: PackObject[] = run.map((b) => ({ cid: b.item.cid, offset: b.item.entry.offset, len: b.len, at: b.off }))
    try {
      await store.readPackObjects(pack, objects, buf)
    } catch (err) {
      if (signal?.aborted) throw err
      for (const b of run) {
        try {
          const bytes = await store.readUnverified(b.item.cid)
          if (bytes.length !== b.len) throw err
          buf.set(bytes, b.off)
        } catch (e) {
          if (!onItemError) throw e
          onItemError(b.index, e)
          failedItems.add(b)
        }
      }
    }
  }))
  for (const r of reads) if (r.status === 'rejected') throw r.reason
  if (failedItems.size) for (let k = batch.length - 1; k >= 0; k--) if (failedItems.has(batch[k]!)) batch.splice(k, 1)
}
