/**
 * The chunk rules of spec/chunking.md as cut positions over windows of a file, for data paths that
 * read into their own buffers and want offsets rather than copies (the add pipeline reads slabs of
 * shared memory and hashes ranges of them in worker threads). Cuts are identical to Chunker's
 * (src/chunk/chunker.ts) for the same bytes, segments, flags and parameters; tests hold both to the
 * golden vectors.
 */
import { FormatError } from '../errors.js'
import { findCut } from './fastcdc.js'
import { checkFixedSize } from './chunker.js'
import { DEFAULT_CDC, FIXED_CHUNK, validateParams, type CdcParams } from './params.js'

export class ChunkPlanner {
  readonly #p: CdcParams
  readonly #fixedSize: number
  /** Regions [start, end) with how they are cut, zero-length segments left out. */
  readonly #regions: Array<{ start: number; end: number; how: 'whole' | 'fixed' | 'cdc' }> = []
  #r = 0
  /** File offset of the first byte not yet in a chunk. */
  next = 0

  /**
   * `size` is the file's length; `segments` (or null: one region) must sum to it, else FormatError
   * E_SEGMENTS (the caller then plans again with null, as for Chunker).
   */
  constructor(readonly size: number, segments: readonly number[] | null, fixed: readonly boolean[] | null = null,
              params: CdcParams = DEFAULT_CDC, fixedSize = FIXED_CHUNK) {
    this.#p = validateParams(params)
    checkFixedSize(fixedSize)
    this.#fixedSize = fixedSize
    if (segments === null) {
      if (size > 0) this.#regions.push({ start: 0, end: size, how: 'cdc' }) // FastCDC's rule keeps a short file whole
      return
    }
    if (fixed && fixed.length !== segments.length) throw new FormatError('fixed-size flags need one flag per segment', 'E_SEGMENTS', {})
    let at = 0
    for (const [i, len] of segments.entries()) {
      if (!Number.isSafeInteger(len) || len < 0) {
        throw new FormatError(`segment ${i} has length ${len}; lengths must be non-negative integers`, 'E_SEGMENTS', { index: i, length: len })
      }
      if (len === 0) continue
      const how = len <= this.#p.max ? 'whole' : fixed?.[i] === true ? 'fixed' : 'cdc'
      this.#regions.push({ start: at, end: at + len, how })
      at += len
    }
    if (at !== size) {
      throw new FormatError(`source is ${at < size ? 'longer' : 'shorter'} than its segments (segments sum to ${at} bytes, the file has ${size})`,
        'E_SEGMENTS', { segmentsTotal: at })
    }
  }

  /** Whether every byte is in a chunk. */
  get done(): boolean { return this.next >= this.size }

  /**
   * Whether the next chunk is cut without reading bytes: `next` lies in a `whole` region (a segment
   * of at most the CDC maximum, one chunk) or a `fixed` one (fixed-size chunks from the segment's
   * first byte).
   */
  get planned(): boolean {
    const reg = this.#regions[this.#r]
    return reg !== undefined && reg.how !== 'cdc'
  }

  /**
   * The first byte at or after `next` from which chunks are cut without reading bytes (see
   * `planned`), or the file's size when none is left. A window that ends there is cut up to its
   * end: a CDC region's last chunk ends at the region's end.
   */
  plannedFrom(): number {
    for (let r = this.#r; r < this.#regions.length; r++) {
      const reg = this.#regions[r]!
      if (reg.how !== 'cdc') return Math.max(reg.start, this.next)
    }
    return this.size
  }

  /**
   * Cut, without bytes, the chunks ahead while they are `planned`: each chunk costs `gap` plus its
   * length against `room`, and cutting stops before the first chunk that does not fit (so a caller
   * can lay the chunks out with `gap` bytes before each). Pushes each chunk's absolute end onto
   * `ends` and moves `next` past them; the cuts are the ones cut() makes for the same bytes.
   */
  cutPlanned(room: number, gap: number, ends: number[]): void {
    let used = 0
    while (this.#r < this.#regions.length) {
      const reg = this.#regions[this.#r]!
      if (reg.how === 'cdc') return
      const end = reg.how === 'whole' ? reg.end : Math.min(reg.end, this.next + this.#fixedSize)
      const cost = gap + end - this.next
      if (used + cost > room) return
      used += cost
      ends.push(end)
      this.next = end
      if (end === reg.end) this.#r++
    }
  }

  /**
   * Cut what can be cut in `win`, which holds the file's bytes [winStart, winStart + win.length) and
   * must start at or before `next`. Pushes the absolute end offset of each chunk whose end no later
   * byte can change onto `ends`; `next` moves to the first byte of the first chunk not yet cut. A
   * window holding at least DEFAULT max bytes past `next` (or the rest of the file) always cuts one.
   */
  cut(win: Uint8Array, winStart: number, ends: number[]): void {
    const winEnd = winStart + win.length
    if (this.next < winStart) throw new RangeError(`window starts at ${winStart}, after the next uncut byte ${this.next}`)
    while (this.next < winEnd && this.#r < this.#regions.length) {
      const reg = this.#regions[this.#r]!
      let end: number
      if (reg.how === 'whole') end = reg.end
      else if (reg.how === 'fixed') end = Math.min(reg.end, this.next + this.#fixedSize)
      else {
        const stop = Math.min(reg.end, winEnd)
        if (stop < reg.end && stop - this.next < this.#p.max) return // the cut may lie past the window
        end = findCut(win, this.next - winStart, stop - winStart, this.#p) + winStart
      }
      if (end > winEnd) return
      ends.push(end)
      this.next = end
      if (end === reg.end) this.#r++
    }
  }
}
