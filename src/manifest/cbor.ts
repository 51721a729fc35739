/**
 * Canonical dag-cbor, strictly. The JS decoder accepts some non-canonical input (unsorted map keys,
 * float16, indefinite lengths); a block is accepted only when re-encoding it gives the same bytes.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { FormatError } from '../errors.js'

/** Blocks larger than this are refused before decoding (a node or manifest is far smaller). */
export const MAX_BLOCK = 4 * 1024 * 1024

export function encodeCanonical(value: unknown): Uint8Array {
  try {
    return dagCbor.encode(value)
  } catch (err) {
    throw new FormatError(`cannot encode as dag-cbor: ${(err as Error).message}`, 'E_CBOR_ENCODE', {}, { cause: err })
  }
}

export function decodeStrict<T = unknown>(bytes: Uint8Array, what = 'block'): T {
  if (bytes.length > MAX_BLOCK) throw new FormatError(`${what} is ${bytes.length} bytes, over the ${MAX_BLOCK}-byte limit`, 'E_CBOR_SIZE')
  let value: T
  try {
    value = dagCbor.decode(bytes) as T
  } catch (err) {
    throw new FormatError(`${what} is not valid dag-cbor: ${(err as Error).message}`, 'E_CBOR_DECODE', {}, { cause: err })
  }
  const again = encodeCanonical(value)
  if (again.length !== bytes.length || !again.every((b, i) => b === bytes[i])) {
    throw new FormatError(`${what} is not canonical dag-cbor (re-encoding differs: key order, float width or length form)`, 'E_CBOR_NONCANONICAL')
  }
  return value
}
