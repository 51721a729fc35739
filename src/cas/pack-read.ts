/**
 * Reading many objects of the local store at disk speed, for `get` and `verify`: objects that lie
 * next to each other in a pack (add writes a file's chunks in order) are read with one pread into a
 * slab of shared memory (src/cas/hash-pool.ts), the worker threads hash every object of the slab in
 * place, and the caller gets the slab with each object's range and digest. Memory is the ring
 * whatever the number of objects; no object is copied to reach a worker.
 */
import type { CID } from 'multiformats/cid'
import type { Entry, LocalStore } from './local.js'
import type { SlabRing } from './hash-pool.js'

/** Largest gap between two objects of one pack still read in one go (record headers are ~44 bytes). */
const MAX_GAP = 64 * 1024

export interface ReadItem { cid: CID; entry: Entry }

export interface SlabBatch {
  /** The slab and its bytes; valid until the promise returned by the callback settles. */
  slab: number
  buf: Uint8Array
  /** Index into the caller's items, offset in `buf`, length. */
  items: Array<{ index: number; off: number; len: number }>
  /** 32 bytes of sha256 per item, in order. */
  digests: Uint8Array
}

/**
 * Read `items` (objects with their pack locations) in order, in runs of neighbours, into the ring's
 * slabs; hash each object in the workers; hand each slab to `onBatch` in order. The slab is reused
 * once the promise `onBatch` returns settles, so the next batches are read and hashed meanwhile.
 * Objects must each fit in a slab. An object that cannot be read (its pack is gone) goes to
 * `onItemError` when given (and is left out of its batch); otherwise that error, like the first other
 * one (a worker, `onBatch`, the signal), stops the reads and is thrown once every batch in flight
 * has settled.
 */
export async function readBatches(store: LocalStore, ring: SlabRing, items: readonly ReadItem[],
                                  onBatch: (b: SlabBatch) => Promise<void>, signal?: AbortSignal,
                                  onItemError?: (index: number, err: unknown) => void): Promise<void> {
  const size = ring.slabs[0]!.length
  const inflight: Array<Promise<void>> = []
  let prevDone: Promise<void> = Promise.resolve() // batches are handed over in order
  let failed = null as { err: unknown } | null
  try {
    for (let i = 0; i < items.length;) {
      signal?.throwIfAborted()
      if (failed) throw failed.err
      // a run: same pack, ascending, small gaps, fits in a slab
      const first = items[i]!.entry
      let j = i + 1
      let end = first.offset + first.length
      while (j < items.length) {
        const e = items[j]!.entry
        if (e.pack !== first.pack || e.offset < end || e.offset - end > MAX_GAP || e.offset + e.length - first.offset > size) break
        end = e.offset + e.length
        j++
      }
      if (inflight.length >= ring.slabs.length - 1) await inflight.shift()
      const slab = await ring.acquire()
      const buf = ring.slabs[slab]!
      const from = i
      i = j
      // hand-over order is fixed here, in batch order, whatever order the hashing finishes in
      const before = prevDone
      let handedOver!: () => void
      prevDone = new Promise<void>((resolve) => { handedOver = resolve })
      const work = (async (): Promise<void> => {
        try {
          const batch: SlabBatch['items'] = []
          for (let k = from; k < j; k++) {
            const e = items[k]!.entry
            batch.push({ index: k, off: e.offset - first.offset, len: e.length })
          }
          try {
            await store.readPackRange(first.pack, first.offset, buf.subarray(0, end - first.offset), batch.map((b) => ({ cid: items[b.index]!.cid, off: b.off, len: b.len })))
          } catch (err) {
            // the pack is gone or unreadable: object by object, with the store's own errors
            // (gc may have moved them: readUnverified looks again) for the caller to classify
            if (signal?.aborted) throw err
            for (let k = batch.length - 1; k >= 0; k--) {
              const it = batch[k]!
              try {
                const bytes = await store.readUnverified(items[it.index]!.cid)
                if (bytes.length !== it.len) throw err
                buf.set(bytes, it.off)
              } catch (e) {
                if (!onItemError) throw e
                onItemError(it.index, e)
                batch.splice(k, 1)
              }
            }
          }
          const digests = await ring.hashRanges(slab, batch.map((b) => b.off), batch.map((b) => b.len))
          await before
          if (failed) return
          const done = onBatch({ slab, buf, items: batch, digests })
          handedOver()
          await done
        } finally {
          handedOver()
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
    throw err
  }
}
