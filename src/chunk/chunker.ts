/**
 * The streaming chunker the add pipeline calls: bytes in, content-defined chunks out, with chunk
 * boundaries that follow format segments (tensors) when the format is known. Rules in spec/chunking.md.
 */
import { FormatError } from '../errors.js'
import { masks, scan, type ScanState } from './fastcdc.js'
import { DEFAULT_CDC, FIXED_CHUNK, MAX_CHUNK_CEIL, MIN_CHUNK_FLOOR, validateParams, type CdcParams } from './params.js'

/** Views kept for the open chunk before the small ones are merged (bounds bookkeeping for tiny source pieces). */
const MERGE_AFTER = 256

/**
 * Cut `source` into consecutive chunks whose concatenation is exactly its bytes.
 *
 * `segments` (from a format parser: header, then one per tensor, ...) are byte lengths that must sum
 * to the source's length. No chunk crosses a segment boundary; a segment of at most `params.max`
 * bytes is one chunk; a longer one is FastCDC-chunked with the state restarted at its first byte;
 * zero-length segments yield nothing. `segments === null` chunks the whole source with FastCDC.
 * `fixed[i]` marks segment i as bytes that never shift (tensor data): when it is longer than
 * `params.max` it is cut into `fixedSize`-byte chunks counted from its first byte (the last one
 * shorter) instead of by FastCDC. Absent flags mean FastCDC.
 * An empty source yields nothing; no chunk is ever empty.
 *
 * Throws FormatError (code E_SEGMENTS) when the source is longer or shorter than the segments say,
 * or a length is not a non-negative integer; chunks already yielded are then void, and the caller
 * is expected to start again with `segments = null`.
 *
 * Memory: O(params.max) plus the source's own buffers; nothing is ever buffered beyond one open chunk.
 * Ownership: this generator never writes into memory it has yielded. A chunk is either a fresh
 * copy (when it spans source buffers) or a view into one source buffer, so it stays valid after
 * the next iteration as long as the source does not reuse its buffers (Node streams do not).
 */
export async function* chunkStream(source: AsyncIterable<Uint8Array>, segments: readonly number[] | null,
                                   params: CdcParams = DEFAULT_CDC, fixed: readonly boolean[] | null = null,
                                   fixedSize = FIXED_CHUNK): AsyncGenerator<Uint8Array> {
  const chunker = new Chunker(segments, params, fixed, fixedSize)
  for await (const buf of source) yield* chunker.push(buf)
  yield* chunker.end()
}

/**
 * The synchronous core of chunkStream (same rules, errors and ownership), for callers that already
 * hold their bytes (worker threads, tests). Feed buffers in order with push(), then call end() once.
 * The byte loop lives here and in fastcdc.scan, outside any generator: V8 optimizes it far better there.
 */
export class Chunker {
  readonly #p: CdcParams
  readonly #maskS: number
  readonly #maskL: number
  readonly #segments: readonly number[] | null
  #pieces: Uint8Array[] = []          // the open chunk: views into pushed buffers
  #sinceMerge = 0
  readonly #st: ScanState = { len: 0, h: 0 } // bytes in the open chunk, gear state
  #seg = -1                           // index into segments
  #segLeft: number                    // bytes of the current segment not yet consumed
  #wholeSeg = false                   // current segment is <= max: one chunk, no scanning
  #fixedSeg = false                   // current segment is cut every #fixedSize bytes
  readonly #fixed: readonly boolean[] | null
  readonly #fixedSize: number
  #total = 0

  constructor(segments: readonly number[] | null, params: CdcParams = DEFAULT_CDC,
              fixed: readonly boolean[] | null = null, fixedSize = FIXED_CHUNK) {
    this.#p = validateParams(params)
    ;({ maskS: this.#maskS, maskL: this.#maskL } = masks(this.#p))
    if (segments) checkSegments(segments)
    if (fixed && (!segments || fixed.length !== segments.length)) {
      throw new FormatError('fixed-size flags need one flag per segment', 'E_SEGMENTS', {})
    }
    checkFixedSize(fixedSize)
    this.#segments = segments
    this.#fixed = fixed
    this.#fixedSize = fixedSize
    this.#segLeft = segments ? 0 : Infinity
  }

  /** The chunks that `buf` completes, in order (often none). */
  push(buf: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    const st = this.#st
    const n = buf.length
    let at = 0
    this.#total += n
    while (at < n) {
      if (this.#segLeft === 0) this.#nextSegment()
      const stop = this.#segLeft < n - at ? at + this.#segLeft : n
      if (this.#wholeSeg) {
        this.#keep(buf.subarray(at, stop))
        st.len += stop - at
      } else if (this.#fixedSeg) {
        const end = Math.min(stop, at + this.#fixedSize - st.len)
        this.#keep(buf.subarray(at, end))
        st.len += end - at
        this.#segLeft -= end - at
        at = end
        if (st.len === this.#fixedSize || this.#segLeft === 0) out.push(this.#close())
        continue
      } else {
        const cut = scan(buf, at, stop, st, this.#p, this.#maskS, this.#maskL)
        if (cut >= 0) {
          this.#pieces.push(buf.subarray(at, cut))
          st.len += cut - at
          this.#segLeft -= cut - at
          at = cut
          out.push(this.#close())
          continue
        }
        this.#keep(buf.subarray(at, stop)) // scan has counted these bytes into st.len
      }
      this.#segLeft -= stop - at
      at = stop
      if (this.#segLeft === 0 && st.len > 0) out.push(this.#close())
    }
    return out
  }

  /** The last chunk, if any; throws FormatError when the segments promised more bytes. */
  end(): Uint8Array[] {
    const segments = this.#segments
    if (segments) {
      let left = this.#segLeft
      for (let i = this.#seg + 1; i < segments.length; i++) left += segments[i]!
      if (left > 0) throw mismatch(segments, `shorter than its segments: ended at byte ${this.#total}, ${left} bytes missing`)
    }
    return this.#st.len > 0 ? [this.#close()] : []
  }

  #nextSegment(): void {
    const segments = this.#segments!
    do this.#seg++; while (this.#seg < segments.length && segments[this.#seg] === 0)
    if (this.#seg >= segments.length) throw mismatch(segments, `longer than its ${segments.length} segments`)
    this.#segLeft = segments[this.#seg]!
    this.#wholeSeg = this.#segLeft <= this.#p.max
    this.#fixedSeg = !this.#wholeSeg && this.#fixed?.[this.#seg] === true
  }

  /** Hold a view for the open chunk; runs of tiny views are merged so bookkeeping stays O(max). */
  #keep(view: Uint8Array): void {
    this.#pieces.push(view)
    if (++this.#sinceMerge >= MERGE_AFTER) {
      const tail = this.#pieces.splice(this.#pieces.length - this.#sinceMerge)
      this.#pieces.push(concat(tail, byteLength(tail)))
      this.#sinceMerge = 0
    }
  }

  #close(): Uint8Array {
    const pieces = this.#pieces
    const chunk = pieces.length === 1 ? pieces[0]! : concat(pieces, this.#st.len)
    this.#pieces = []
    this.#sinceMerge = 0
    this.#st.len = 0
    this.#st.h = 0
    return chunk
  }
}

function checkSegments(segments: readonly number[]): void {
  for (const [i, len] of segments.entries()) {
    if (!Number.isSafeInteger(len) || len < 0) {
      throw new FormatError(`segment ${i} has length ${len}; lengths must be non-negative integers`,
        'E_SEGMENTS', { index: i, length: len })
    }
  }
}

export function checkFixedSize(n: number): void {
  if (!Number.isSafeInteger(n) || n < MIN_CHUNK_FLOOR || n > MAX_CHUNK_CEIL) {
    throw new FormatError(`fixed chunk size ${n} must be an integer from ${MIN_CHUNK_FLOOR} to ${MAX_CHUNK_CEIL}`, 'E_SEGMENTS', { fixedSize: n })
  }
}

function mismatch(segments: readonly number[], what: string): FormatError {
  const sum = segments.reduce((a, b) => a + b, 0)
  return new FormatError(`source is ${what} (segments sum to ${sum} bytes)`, 'E_SEGMENTS', { segmentsTotal: sum })
}

function byteLength(views: readonly Uint8Array[]): number {
  let n = 0
  for (const v of views) n += v.length
  return n
}

function concat(views: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length)
  let at = 0
  for (const v of views) { out.set(v, at); at += v.length }
  return out
}
