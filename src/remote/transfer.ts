/**
 * transfer: copy the objects `to` lacks from one Store to another, several at once.
 *
 * - Only missing objects move: each CID is checked with `to.has` first (and `to.put` is idempotent,
 *   so a race with another writer costs one upload, never a wrong object).
 * - Every object is verified twice before it becomes visible: `from.get` verifies against the CID,
 *   and `to.put` verifies again (so a faulty source or a bug in one store cannot slip bad bytes in).
 * - Bounded memory: at most `concurrency` objects (each <= MAX_OBJECT_SIZE) are held at once.
 * - Resumable by construction: after an interruption, the objects already copied are skipped. On a
 *   failure, work in flight finishes and `to.flush()` runs, so what was copied stays durable.
 * - Errors name the remote location and the CID; the first one is thrown after in-flight work settles.
 */
import type { CID } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { CorruptObjectError, ZooError, errorMessage } from '../errors.js'

export interface TransferProgress {
  /** Objects copied so far and their bytes. */
  objects: number
  bytes: number
  /** Objects the destination already had; bytes of those whose size is known. */
  skippedObjects: number
  skippedBytes: number
  /** Distinct CIDs taken from the input so far. */
  seen: number
}

export interface TransferOptions {
  /** Objects in flight at once (default 8, at most 256). */
  concurrency?: number
  /** Called after each object is copied or skipped. */
  onProgress?: (p: TransferProgress) => void
  /** Stop taking new objects; in-flight ones finish, `to` is flushed, then the signal's reason is thrown. */
  signal?: AbortSignal
  /** `transfer-object` after each object copied (crash and pause tests, spec/reliability.md). */
  crashPoint?: (name: string) => void | Promise<void>
  /** Sizes the caller knows (from manifests), to count skipped bytes. Called once per distinct CID. */
  sizeOf?: (cid: CID) => number | undefined
}

export interface TransferResult {
  objects: number
  bytes: number
  skippedObjects: number
  skippedBytes: number
}

export const DEFAULT_CONCURRENCY = 8

/** A failed transfer; `data` holds the cid, both locations and the counts reached before the failure. */
export class TransferError extends ZooError {}

export async function transfer(from: Store, to: Store, cids: Iterable<CID> | AsyncIterable<CID>,
  opts: TransferOptions = {}): Promise<TransferResult> {
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new ZooError(`transfer concurrency must be a whole number from 1 to 256, not ${concurrency}`, 'E_BAD_CONCURRENCY')
  }
  const progress: TransferProgress = { objects: 0, bytes: 0, skippedObjects: 0, skippedBytes: 0, seen: 0 }
  const seen = new Set<string>()
  const iterator: Iterator<CID> | AsyncIterator<CID> = Symbol.asyncIterator in cids
    ? (cids as AsyncIterable<CID>)[Symbol.asyncIterator]()
    : (cids as Iterable<CID>)[Symbol.iterator]()
  let failure: unknown
  let exhausted = false
  let queue: Promise<unknown> = Promise.resolve()

  // Calls to the source are serialised: not every async iterator tolerates concurrent next().
  const next = (): Promise<CID | undefined> => {
    const step = queue.then(async () => {
      if (failure !== undefined || exhausted) return undefined
      if (opts.signal?.aborted) { failure ??= opts.signal.reason ?? new Error('aborted'); return undefined }
      const r = await iterator.next()
      if (r.done) { exhausted = true; return undefined }
      return r.value
    })
    queue = step.catch(() => {})
    return step
  }

  const copy = async (cid: CID): Promise<void> => {
    const key = cid.toString()
    const known = opts.sizeOf?.(cid)
    let bytes: Uint8Array
    try {
      if (await to.has(cid)) {
        progress.skippedObjects++
        progress.skippedBytes += known ?? 0
        return
      }
    } catch (err) { throw name(err, key, to, `checking object ${key} in ${to.location}`) }
    try {
      bytes = await from.get(cid)
    } catch (err) { throw name(err, key, from, `reading object ${key} from ${from.location}`) }
    let fresh: boolean
    try {
      fresh = await to.put(cid, bytes)
    } catch (err) {
      if (err instanceof CorruptObjectError) {
        // from.get returned bytes that do not match: the source store is at fault, not the destination.
        throw new CorruptObjectError(`object ${key} read from ${from.location} does not match its CID (refused before storing in ${to.location})`,
          { cid: key, remote: from.location }, { cause: err })
      }
      throw name(err, key, to, `storing object ${key} in ${to.location}`)
    }
    if (fresh) {
      progress.objects++
      progress.bytes += bytes.length
    } else {
      progress.skippedObjects++
      progress.skippedBytes += bytes.length
    }
  }

  const worker = async (): Promise<void> => {
    for (;;) {
      let cid: CID | undefined
      try {
        cid = await next()
      } catch (err) {
        // A ZooError from the source (say a damaged node met while walking a DAG) already names itself.
        failure ??= err instanceof ZooError ? err
          : new TransferError(`listing the objects to copy to ${to.location} failed: ${errorMessage(err)}`,
            'E_TRANSFER', { from: from.location, to: to.location }, { cause: err })
        return
      }
      if (cid === undefined) return
      const key = cid.toString()
      if (seen.has(key)) continue
      seen.add(key)
      progress.seen++
      try {
        await copy(cid)
        await opts.crashPoint?.('transfer-object')
      } catch (err) {
        failure ??= err
        return
      }
      opts.onProgress?.({ ...progress })
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker))
  if (!exhausted) await Promise.resolve(iterator.return?.()).catch(() => {})
  try {
    await to.flush()
  } catch (err) {
    failure ??= new TransferError(`making copied objects durable in ${to.location} failed: ${errorMessage(err)}`,
      err instanceof ZooError ? err.code : 'E_TRANSFER', { to: to.location }, { cause: err })
  }
  if (failure !== undefined) {
    if (failure instanceof ZooError) Object.assign(failure.data, { transferred: { ...progress } })
    throw failure
  }
  return { objects: progress.objects, bytes: progress.bytes, skippedObjects: progress.skippedObjects, skippedBytes: progress.skippedBytes }
}

/** Keep errors that already name the object and the store; wrap the rest so they do. */
function name(err: unknown, key: string, store: Store, doing: string): unknown {
  if (err instanceof ZooError && err.message.includes(key) && err.message.includes(store.location)) return err
  return new TransferError(`${doing} failed: ${errorMessage(err)}`, err instanceof ZooError ? err.code : 'E_TRANSFER',
    { cid: key, remote: store.location }, { cause: err })
}
