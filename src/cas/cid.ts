/**
 * The one place CIDs are made and checked. Every object is named by a CIDv1 of one of three forms:
 * `raw` + sha2-256 (chunk bytes of zoos whose config says `"chunk_hash": "sha2-256"`, and of every
 * zoo made before that key), `raw` + blake3 (chunk bytes of zoos whose config says
 * `"chunk_hash": "blake3"`) and `dag-cbor` + sha2-256 (nodes, manifests, every other object).
 * Every digest is 32 bytes. Any other form is refused.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { CorruptObjectError, FormatError } from '../errors.js'
import { blake3 } from './blake3.js'

export { CID }
export const RAW = 0x55
export const DAG_CBOR = 0x71
export const SHA2_256 = 0x12
/** The multihash code of BLAKE3 (256-bit digests): raw chunks only. */
export const BLAKE3 = 0x1e

/** How a zoo names its raw chunks (`.zoo/config.json` "chunk_hash"). */
export type ChunkHash = 'sha2-256' | 'blake3'
export const CHUNK_HASHES: readonly ChunkHash[] = ['blake3', 'sha2-256']

/** The multihash code of a chunk hash. */
export function chunkHashCode(h: ChunkHash): number {
  return h === 'blake3' ? BLAKE3 : SHA2_256
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** The digest of `bytes` with the multihash `code` (SHA2_256 or BLAKE3). */
export function digestWith(code: number, bytes: Uint8Array): Uint8Array {
  if (code === BLAKE3) return blake3(bytes)
  if (code === SHA2_256) return sha256(bytes)
  throw new Error(`no hash function for multihash 0x${code.toString(16)}`)
}

/** A CID from a precomputed 32-byte digest of the multihash `hash` (sha2-256 unless given). */
export function cidFromDigest(codec: number, digest: Uint8Array, hash = SHA2_256): CID {
  return CID.createV1(codec, Digest.create(hash, digest))
}

/** The CID of `bytes` (sha2-256 unless `hash` says otherwise: BLAKE3 for raw chunks only). */
export function cidOf(codec: number, bytes: Uint8Array, hash = SHA2_256): CID {
  return cidFromDigest(codec, digestWith(hash, bytes), hash)
}

/** The CID of a chunk's bytes in a zoo whose chunks are named by `h`. */
export function chunkCid(h: ChunkHash, bytes: Uint8Array): CID {
  return cidOf(RAW, bytes, chunkHashCode(h))
}

/** Parse a CID string and accept only the forms this store writes (see the top of this file). */
export function parseCid(text: string): CID {
  let cid: CID
  try {
    cid = CID.parse(text)
  } catch (err) {
    throw new FormatError(`not a CID: ${JSON.stringify(text)}`, 'E_BAD_CID', { cid: text }, { cause: err })
  }
  checkCidForm(cid)
  return cid
}

export function checkCidForm(cid: CID): void {
  if (cid.version !== 1) throw new FormatError(`CID ${cid} is not CIDv1`, 'E_BAD_CID', { cid: String(cid) })
  if (cid.code !== RAW && cid.code !== DAG_CBOR) {
    throw new FormatError(`CID ${cid} has codec 0x${cid.code.toString(16)}; only raw and dag-cbor are stored`, 'E_BAD_CID', { cid: String(cid) })
  }
  const mh = cid.multihash
  const ok = mh.digest.length === 32 && (mh.code === SHA2_256 || (mh.code === BLAKE3 && cid.code === RAW))
  if (!ok) {
    throw new FormatError(`CID ${cid} does not use a trusted multihash; only sha2-256 (any object) and blake3 (raw chunks) with 32-byte digests are`, 'E_BAD_CID', { cid: String(cid) })
  }
}

/** Whether a digest computed elsewhere (a worker, with the CID's own hash) is the one `cid` names. */
export function digestMatches(cid: CID, digest: Uint8Array): boolean {
  const want = cid.multihash.digest
  if (digest.length !== want.length) return false
  for (let i = 0; i < want.length; i++) if (digest[i] !== want[i]) return false
  return true
}

/** Whether `bytes` hash (with the CID's own hash function) to `cid`; the CID's form must be checked first. */
export function bytesMatch(cid: CID, bytes: Uint8Array): boolean {
  return digestMatches(cid, digestWith(cid.multihash.code, bytes))
}

/** Throw CorruptObjectError unless `bytes` hash to `cid`. */
export function verifyBytes(cid: CID, bytes: Uint8Array, where = 'store'): void {
  checkCidForm(cid)
  if (!bytesMatch(cid, bytes)) {
    throw new CorruptObjectError(`object ${cid} from ${where} does not match its CID (${bytes.length} bytes read)`,
      { cid: String(cid), where })
  }
}
