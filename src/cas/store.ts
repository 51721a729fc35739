/**
 * The Store contract. Every implementation (memory, local packs, path, http, s3) runs the one
 * conformance suite in test/store-conformance.ts.
 *
 * - Objects are named by their CID (src/cas/cid.ts) and are immutable: a name never holds other bytes.
 * - Objects are at most MAX_OBJECT_SIZE bytes, so they are passed whole, never streamed.
 */
import type { CID } from './cid.js'

/** The largest object any store accepts or returns; a remote answering more is refused. */
export const MAX_OBJECT_SIZE = 16 * 1024 * 1024

export interface Store {
  /** Where this store lives, for messages (a path or a URL with no credentials). */
  readonly location: string

  /**
   * Store `bytes` under `cid`. Checks the bytes against the CID first and throws CorruptObjectError
   * on a mismatch, writing nothing. Idempotent: putting an object that is present writes nothing and
   * returns false; returns true when the bytes were newly written. Never leaves a partial object
   * visible under its final name. A put is durable and visible to other processes after `flush()`.
   */
  put(cid: CID, bytes: Uint8Array): Promise<boolean>

  /**
   * The object's bytes, already verified against `cid`. Throws NotFoundError when absent and
   * CorruptObjectError when the stored bytes do not match (nothing wrong is ever returned).
   */
  get(cid: CID): Promise<Uint8Array>

  /** Whether the object is present. Does not verify its bytes (use get for that). */
  has(cid: CID): Promise<boolean>

  /** Every object in the store, in no particular order; each at most once. */
  list(): AsyncIterable<CID>

  /** Make every earlier put durable (fsync) and visible to other readers. Idempotent. */
  flush(): Promise<void>

  /** Flush and release resources. The store is not used after close. */
  close(): Promise<void>
}

/** A store that can forget objects (used by gc and by tests of damage). */
export interface DeletableStore extends Store {
  /** Remove the object; absent objects are ignored. */
  delete(cid: CID): Promise<void>
}
