/**
 * The one place CIDs are made and checked. Every object is named by a CIDv1 whose multihash is
 * sha2-256 and whose codec is `raw` (chunk bytes) or `dag-cbor` (nodes, manifests).
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { CorruptObjectError, FormatError } from '../errors.js'

export { CID }
export const RAW = 0x55
export const DAG_CBOR = 0x71
export const SHA2_256 = 0x12

export function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** A CID from a precomputed sha2-256 digest. */
export function cidFromDigest(codec: number, digest: Uint8Array): CID {
  return CID.createV1(codec, Digest.create(SHA2_256, digest))
}

export function cidOf(codec: number, bytes: Uint8Array): CID {
  return cidFromDigest(codec, sha256(bytes))
}

/** Parse a CID string and accept only the forms this store writes (v1, sha2-256, raw or dag-cbor). */
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
  if (cid.multihash.code !== SHA2_256 || cid.multihash.digest.length !== 32) {
    throw new FormatError(`CID ${cid} does not use a sha2-256 multihash; only sha2-256 is trusted`, 'E_BAD_CID', { cid: String(cid) })
  }
  if (cid.code !== RAW && cid.code !== DAG_CBOR) {
    throw new FormatError(`CID ${cid} has codec 0x${cid.code.toString(16)}; only raw and dag-cbor are stored`, 'E_BAD_CID', { cid: String(cid) })
  }
}

/** Whether a sha2-256 digest computed elsewhere (a worker) is the one `cid` names. */
export function digestMatches(cid: CID, digest: Uint8Array): boolean {
  const want = cid.multihash.digest
  return digest.length === want.length && digest.every((b, i) => b === want[i])
}

/** Throw CorruptObjectError unless `bytes` hash to `cid`. */
export function verifyBytes(cid: CID, bytes: Uint8Array, where = 'store'): void {
  checkCidForm(cid)
  if (!digestMatches(cid, sha256(bytes))) {
    throw new CorruptObjectError(`object ${cid} from ${where} does not match its CID (${bytes.length} bytes read)`,
      { cid: String(cid), where })
  }
}
