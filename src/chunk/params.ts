/**
 * FastCDC parameters. The values here define chunk boundaries, and so object names: changing
 * DEFAULT_CDC changes every CID a new `add` produces. Mirrored in spec/chunking.md.
 */
import { UsageError } from '../errors.js'

/** Chunk sizes in bytes. A chunk is never longer than `max`; only the last chunk of a segment may be shorter than `min`. */
export interface CdcParams {
  /** No cut is considered before a chunk is `min` bytes long. */
  readonly min: number
  /** Target size, a power of two: sets the masks and the normalization point. */
  readonly avg: number
  /** A chunk that reaches `max` bytes is cut there. */
  readonly max: number
}

/**
 * Chosen by measurement (bench/chunk-sizes.ts; table and reasoning in spec/chunking.md):
 * 256 KiB target, 64 KiB min, 1 MiB max (~300 KiB mean chunk on random data).
 */
export const DEFAULT_CDC: CdcParams = Object.freeze({ min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024 })

/**
 * Chunk size inside segments a format marks as fixed (tensor data, whose bytes never shift): such a
 * segment longer than DEFAULT_CDC.max is cut every FIXED_CHUNK bytes from its first byte. Chosen by
 * measurement (bench/chunk-sizes.ts, spec/chunking.md section 4).
 */
export const FIXED_CHUNK = 256 * 1024

/** Normalization level: MaskS has log2(avg)+NC bits, MaskL has log2(avg)-NC bits. */
export const NORMALIZATION = 2

export const MIN_CHUNK_FLOOR = 64
export const MAX_AVG_BITS = 32 - NORMALIZATION
export const MAX_CHUNK_CEIL = 2 ** 30

/** Return `p` unchanged if usable; throw UsageError saying what is wrong otherwise. */
export function validateParams(p: CdcParams): CdcParams {
  const { min, avg, max } = p
  const bad = (why: string): never => {
    throw new UsageError(`bad chunking parameters min=${min} avg=${avg} max=${max}: ${why}`,
      'E_CDC_PARAMS', { min, avg, max })
  }
  for (const v of [min, avg, max]) if (!Number.isSafeInteger(v)) bad('sizes must be integers')
  if (min < MIN_CHUNK_FLOOR) bad(`min must be at least ${MIN_CHUNK_FLOOR}`)
  if (!(min <= avg && avg <= max)) bad('need min <= avg <= max')
  if (max > MAX_CHUNK_CEIL) bad(`max must be at most ${MAX_CHUNK_CEIL}`)
  if ((avg & (avg - 1)) !== 0 || avgBits(avg) > MAX_AVG_BITS) bad(`avg must be a power of two no larger than 2^${MAX_AVG_BITS}`)
  return p
}

/** log2(avg) for a power of two. */
export function avgBits(avg: number): number {
  return 31 - Math.clz32(avg)
}
