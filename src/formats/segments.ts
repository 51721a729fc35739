/** Helpers for the chunk segments format parsers hand to the chunker (spec/chunking.md section 2). */

/**
 * Flags for `segments` (see FileDescription.fixed): a segment is fixed, cut into fixed-size chunks
 * from its first byte, when it starts where tensor data starts (`tensorStarts`, file offsets).
 */
export function fixedFlags(segments: readonly number[], tensorStarts: readonly number[]): boolean[] {
  const starts = new Set(tensorStarts)
  let at = 0
  return segments.map((len) => { const f = starts.has(at); at += len; return f })
}
