/**
 * FastCDC with normalized chunking (Xia et al., USENIX ATC 2016; IEEE TPDS 2020), written from the
 * description in spec/chunking.md, which is the definition; this file is one implementation of it.
 *
 * Gear hash, 32 bits: h_0 = 0, h_k = (2*h_{k-1} + GEAR[byte k-1]) mod 2^32 over the bytes of the
 * chunk so far. A chunk of length k ends at the first k with
 *   min <= k < avg  and  h_k & MASK_S == 0,   or
 *   avg <= k < max  and  h_k & MASK_L == 0,   or  k == max,
 * or when the data (the segment) ends. The masks are the top bits of the hash word.
 * h_k depends only on the last 32 bytes, so hashing starts 32 bytes before `min`.
 */
import { createHash } from 'node:crypto'
import { avgBits, NORMALIZATION, type CdcParams } from './params.js'

/** GEAR[i] = first 4 bytes, big-endian, of SHA-256("git-zoo/gear/v1" || byte i). Stored as int32. */
export const GEAR: Int32Array = makeGear()

function makeGear(): Int32Array {
  const gear = new Int32Array(256)
  const prefix = Buffer.from('git-zoo/gear/v1', 'ascii')
  for (let i = 0; i < 256; i++) {
    gear[i] = createHash('sha256').update(prefix).update(Uint8Array.of(i)).digest().readInt32BE(0)
  }
  return gear
}

/** The top `bits` bits of a 32-bit word, as an int32. */
function topMask(bits: number): number {
  return bits >= 32 ? -1 : ~(-1 >>> bits)
}

/** MASK_S (log2(avg)+2 bits, used before avg) and MASK_L (log2(avg)-2 bits, used from avg on). */
export function masks(p: CdcParams): { maskS: number; maskL: number } {
  const bits = avgBits(p.avg)
  return { maskS: topMask(bits + NORMALIZATION), maskL: topMask(bits - NORMALIZATION) }
}

/** Scanner state carried between buffers: bytes already in the open chunk and the hash after them. */
export interface ScanState {
  len: number
  h: number
}

/**
 * Continue the open chunk (state `st`, whose earlier bytes lie before buf[from]) over buf[from..end).
 * Returns the absolute index in `buf` just past the cut if the chunk ends inside that range (the
 * state is then stale: reset it for the next chunk), or -1 after updating `st` to cover all of it.
 * `params` must have passed validateParams; `maskS`/`maskL` come from masks(params).
 */
export function scan(buf: Uint8Array, from: number, end: number, st: ScanState,
                     p: CdcParams, maskS: number, maskL: number): number {
  const base = from - st.len // virtual index of the chunk's first byte
  let h = st.h
  let x = from
  const warm = base + p.min - 32
  if (x < warm) {
    if (end <= warm) { st.len = end - base; st.h = 0; return -1 }
    x = warm
    h = 0
  }
  // Byte x makes the chunk k = x - base + 1 bytes long.
  const stopA = Math.min(end, base + p.min - 1) // k < min: hash only
  for (; x < stopA; x++) h = ((h << 1) + GEAR[buf[x]!]!) | 0
  const stopB = Math.min(end, base + p.avg - 1) // min <= k < avg: MASK_S
  if (x < stopB) {
    const cut = gearRun(buf, x, stopB, h, maskS)
    if (cut >= 0) return cut
    x = stopB
    h = runH
  }
  const stopC = Math.min(end, base + p.max - 1) // avg <= k < max: MASK_L
  if (x < stopC) {
    const cut = gearRun(buf, x, stopC, h, maskL)
    if (cut >= 0) return cut
    x = stopC
    h = runH
  }
  if (x < end) return x + 1 // k == max
  st.len = end - base
  st.h = h
  return -1
}

/** The hash after the last gearRun that found no cut (a second return value, kept out of the object heap). */
let runH = 0

/**
 * The hot loop, one for both masks so V8 optimizes it once: hash buf[x..stop) onto `h` and return
 * the index just past the first byte after which h & mask == 0, or -1 (hash left in runH).
 */
function gearRun(buf: Uint8Array, x: number, stop: number, h: number, mask: number): number {
  const G = GEAR
  for (; x < stop; x++) {
    h = ((h << 1) + G[buf[x]!]!) | 0
    if ((h & mask) === 0) return x + 1
  }
  runH = h
  return -1
}

/**
 * Where the chunk that starts at buf[start] ends: an absolute index in (start, start + max].
 * buf[start..end) must hold every remaining byte of the segment, or at least `max` bytes of it;
 * when no cut point is found before `end` the chunk runs to `end`. Pure; `p` must be valid.
 */
export function findCut(buf: Uint8Array, start: number, end: number, p: CdcParams): number {
  if (end - start <= p.min) return end
  const { maskS, maskL } = masks(p)
  const cut = scan(buf, start, end, { len: 0, h: 0 }, p, maskS, maskL)
  return cut < 0 ? end : cut
}

/** Every cut of `buf` as absolute end offsets (the last equals buf.length; empty input gives []). */
export function cutsOf(buf: Uint8Array, p: CdcParams): number[] {
  const out: number[] = []
  for (let at = 0; at < buf.length;) out.push(at = findCut(buf, at, buf.length, p))
  return out
}
