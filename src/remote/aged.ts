/**
 * What remote retention (./retention.ts) needs of a remote beyond the Store contract: each
 * object's age, deleting objects, and small lock files beside the objects. Path and S3 remotes
 * provide it; a static HTTP remote is read-only and does not.
 *
 * Lock files live under `<root>/locks/<name>` (never under `objects/`, so they are never mistaken
 * for objects and any reader ignores them).
 */
import type { CID } from '../cas/cid.js'
import type { Store } from '../cas/store.js'

export const LOCKS_DIR = 'locks'

export interface AgedEntry {
  /** The object, or undefined for a stale temporary file of an interrupted upload. */
  cid?: CID
  /** The name to pass to deleteEntries. */
  key: string
  /** When it was written (ms since the epoch): file mtime, S3 LastModified. */
  modified: number
  size: number
}

export interface RetentionStore extends Store {
  /** Every object (and leftover temporary file) under objects/, with its age and size. */
  listAged(): AsyncIterable<AgedEntry>
  /** Remove entries by key; absent ones are ignored. Throws naming the first one that failed. */
  deleteEntries(keys: string[]): Promise<void>
  /** Create `locks/<name>` holding `body` (a new unique name: never replaces). */
  putLock(name: string, body: string): Promise<void>
  /** Every lock file whose name starts with `prefix`, with its body ('' when unreadable). */
  listLocks(prefix: string): Promise<Array<{ name: string; body: string }>>
  removeLock(name: string): Promise<void>
}

export function isRetentionStore(store: Store): store is RetentionStore {
  const s = store as Partial<RetentionStore>
  return typeof s.listAged === 'function' && typeof s.deleteEntries === 'function' && typeof s.putLock === 'function'
}
