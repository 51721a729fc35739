/**
 * A stand-in safetensors writer for the demo, with the signature of `encodeSafetensors` in
 * src/formats/safetensors.ts (switch the import to that module once it lands, then delete this).
 *
 * Layout: u64 LE header length, a JSON header `{"__metadata__": {...}, "<name>": {"dtype", "shape",
 * "data_offsets": [begin, end]}, ...}` padded with spaces to a multiple of 8 bytes, then the tensor
 * bytes back to back in the order given. Same input, same bytes.
 */
export interface SafetensorsTensor { name: string; dtype: string; shape: number[]; data: Uint8Array }

export function encodeSafetensors(tensors: SafetensorsTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {}
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata
  let offset = 0
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] }
    offset += t.data.length
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const head = new Uint8Array(json.length + (8 - (json.length % 8)) % 8).fill(0x20)
  head.set(json)
  const out = new Uint8Array(8 + head.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true)
  out.set(head, 8)
  let at = 8 + head.length
  for (const t of tensors) { out.set(t.data, at); at += t.data.length }
  return out
}
