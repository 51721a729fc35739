/**
 * BLAKE3 (256-bit digests), the chunk hash of zoos whose `.zoo/config.json` says
 * `"chunk_hash": "blake3"`. One API for the calling thread and for worker threads, so every
 * digest of a raw chunk comes from the same implementation.
 *
 * This module is the JS implementation (`@noble/hashes`, audited, pure JS); it is correct
 * everywhere and slow (~55 MB/s).
 */
import { createRequire } from 'node:module'
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3'

export const BLAKE3_LEN = 32

/** The 32-byte BLAKE3 digest of `bytes`. */
export function blake3(bytes: Uint8Array): Uint8Array {
  return nobleBlake3(bytes)
}

/**
 * Digests of the ranges `[offs[i], offs[i] + lens[i])` of `src`, written side by side into `out`
 * from `outOff` (32 bytes each).
 */
export function blake3Ranges(src: Uint8Array, offs: ArrayLike<number>, lens: ArrayLike<number>, out: Uint8Array, outOff = 0): void {
  for (let i = 0; i < offs.length; i++) out.set(nobleBlake3(src.subarray(offs[i]!, offs[i]! + lens[i]!)), outOff + 32 * i)
}

/** Which implementation this process uses. */
export function blake3Backend(): 'native' | 'js' {
  return 'js'
}

/**
 * CommonJS source for a worker thread evaluated from a string: it defines
 * `blake3Ranges(src, offs, lens, out)` with the same implementation as this thread's.
 */
export function blake3WorkerPrelude(): string {
  const path = createRequire(import.meta.url).resolve('@noble/hashes/blake3')
  return `
const { blake3: __nobleBlake3 } = require(${JSON.stringify(path)})
function blake3Ranges(src, offs, lens, out) {
  for (let i = 0; i < offs.length; i++) out.set(__nobleBlake3(src.subarray(offs[i], offs[i] + lens[i])), 32 * i)
}
`
}
