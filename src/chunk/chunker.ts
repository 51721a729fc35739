/**
 * The streaming chunker the add pipeline calls: bytes in, content-defined chunks out, with chunk
 * boundaries that follow format segments (tensors) when the format is known. Rules in spec/chunking.md.
 */
import { FormatError } from '../errors.js'
import { masks, scan, type ScanState } from './fastcdc.js'
import { DEFAULT_CDC, validateParams, type CdcParams } from './params.js'

/** Views kept for the open chunk before the small ones are merged (bounds bookkeeping for tiny source pieces). */
const MERGE_AFTER = 256

/**
 * Cut `source` into consecutive chunks whose concatenation is exactly its bytes.
 *
 * `segments` (from a format parser: header, then one per tensor, ...) are byte lengths that must sum
 * to the source's length. No chunk crosses a segment boundary; a segment of at most `params.max`
 * bytes is one chunk; a longer one is FastCDC-chunked with the state restarted at its first byte;
 * zero-length segments yield nothing. `segments === null` chunks the whole source with FastCDC.
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
                                   params: CdcParams = DEFAULT_CDC): AsyncGenerator<Uint8Array> {
  const p = validateParams(params)
  const { maskS, maskL } = masks(p)
  if (segments) checkSegments(segments)

  // Open chunk: views into source buffers (pieces), `st.len` bytes in all, and the gear state.
  let pieces: Uint8Array[] = []
  let sinceMerge = 0
  const st: ScanState = { len: 0, h: 0 }
  let seg = -1                                  // index into segments
  let segLeft = segments ? 0 : Infinity         // bytes of the current segment not yet consumed
  let wholeSeg = false                          // current segment is <= max: one chunk, no scanning
  let total = 0

  const keep = (view: Uint8Array): void => {    // the caller accounts for st.len
    pieces.push(view)
    if (++sinceMerge >= MERGE_AFTER) {
      const tail = pieces.splice(pieces.length - sinceMerge)
      pieces.push(concat(tail, byteLength(tail)))
      sinceMerge = 0
    }
  }
  const close = (): Uint8Array => {
    const chunk = pieces.length === 1 ? pieces[0]! : concat(pieces, st.len)
    pieces = []
    sinceMerge = 0
    st.len = 0
    st.h = 0
    return chunk
  }

  for await (const buf of source) {
    let at = 0
    const n = buf.length
    total += n
    while (at < n) {
      if (segLeft === 0) {                      // segments only: open the next non-empty one
        do seg++; while (seg < segments!.length && segments![seg] === 0)
        if (seg >= segments!.length) throw mismatch(segments!, `longer than its ${segments!.length} segments`)
        segLeft = segments![seg]!
        wholeSeg = segLeft <= p.max
      }
      const stop = segLeft < n - at ? at + segLeft : n
      if (wholeSeg) {
        keep(buf.subarray(at, stop))
        st.len += stop - at
        segLeft -= stop - at
        at = stop
        if (segLeft === 0) yield close()
        continue
      }
      const cut = scan(buf, at, stop, st, p, maskS, maskL)
      if (cut >= 0) {
        pieces.push(buf.subarray(at, cut))
        st.len += cut - at
        segLeft -= cut - at
        at = cut
        yield close()
      } else {
        keep(buf.subarray(at, stop))            // scan has counted these bytes into st.len
        segLeft -= stop - at
        at = stop
        if (segLeft === 0 && st.len > 0) yield close()
      }
    }
  }

  if (segments) {
    let left = segLeft
    for (let i = seg + 1; i < segments.length; i++) left += segments[i]!
    if (left > 0) throw mismatch(segments, `shorter than its segments: ended at byte ${total}, ${left} bytes missing`)
  } else if (st.len > 0) {
    yield close()
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
