/**
 * Verifying objects against their CIDs, optionally off the main thread: a remote store may be given
 * a `Digester` (e.g. `(b) => pool.hash(b)` over src/cas/hash-pool.ts) so that transfers hash on every
 * core. Small objects are hashed inline, where a worker round trip costs more than it saves.
 */
import type { CID } from '../cas/cid.js'
import { checkCidForm, digestMatches, verifyBytes } from '../cas/cid.js'

/**
 * The digest of `bytes` with the multihash `mh` (a CID's own hash: SHA2_256 or BLAKE3, src/cas/cid.ts).
 * The bytes must not change until the promise settles.
 */
export type Digester = (bytes: Uint8Array, mh: number) => Promise<Uint8Array>

const INLINE_BELOW = 64 * 1024

/** Throw CorruptObjectError (the one verifyBytes throws) unless `bytes` hash to `cid`. */
export async function verifyObject(cid: CID, bytes: Uint8Array, where: string, digest?: Digester): Promise<void> {
  if (!digest || bytes.length < INLINE_BELOW) { verifyBytes(cid, bytes, where); return }
  checkCidForm(cid)
  if (digestMatches(cid, await digest(bytes, cid.multihash.code))) return
  verifyBytes(cid, bytes, where) // throws the canonical error
  throw new Error(`the digest of ${cid} differs between a worker and the main thread`)
}
