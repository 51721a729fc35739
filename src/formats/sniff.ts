/**
 * Format sniffing by content only (never by file name). `head` is the first up to 64 KiB of the
 * file and `size` its full length. The rules are written down in spec/formats.md.
 */
import { decodeUtf8, view } from './reader.js'

export type FormatName = 'safetensors' | 'onnx' | 'pytorch-zip' | 'zip' | 'pickle' | 'gguf' | 'hdf5' | 'npy' | 'npz' | 'unknown'

/** How many leading bytes callers should pass as `head`. */
export const SNIFF_BYTES = 64 * 1024
/** The reference safetensors reader's header cap (bytes of JSON after the 8-byte length). */
export const SAFETENSORS_MAX_HEADER = 100_000_000
/** Pickles smaller than this are not called weights by `isWeightsFile` (configs, small metadata). */
export const PICKLE_WEIGHTS_MIN_SIZE = 1024

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY

function startsWith(head: Uint8Array, magic: number[], at = 0): boolean {
  if (head.length < at + magic.length) return false
  for (let i = 0; i < magic.length; i++) if (head[at + i] !== magic[i]) return false
  return true
}

export function sniff(head: Uint8Array, size: number): FormatName {
  if (size === 0 || head.length === 0) return 'unknown'
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return sniffZip(head)
  if (startsWith(head, [0x50, 0x4b, 0x05, 0x06])) return 'zip' // an empty archive
  if (startsWith(head, [0x47, 0x47, 0x55, 0x46])) return 'gguf'
  if (isHdf5(head)) return 'hdf5'
  if (startsWith(head, NPY_MAGIC) && head.length >= 8 && head[6]! >= 1 && head[6]! <= 3) return 'npy'
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return 'pickle'
  if (isSafetensors(head, size)) return 'safetensors'
  if (isOnnx(head, size)) return 'onnx'
  return 'unknown'
}

/** True for files that hold model weights in a known format, whatever their name. */
export function isWeightsFile(head: Uint8Array, size: number): boolean {
  switch (sniff(head, size)) {
    case 'safetensors': case 'pytorch-zip': case 'onnx': case 'gguf': case 'hdf5': case 'npy': case 'npz':
      return true
    case 'pickle':
      return size >= PICKLE_WEIGHTS_MIN_SIZE
    default:
      return false
  }
}

/** HDF5 puts its signature at 0 or, after a user block, at 512, 1024, 2048, ... */
function isHdf5(head: Uint8Array): boolean {
  if (startsWith(head, HDF5_MAGIC)) return true
  for (let at = 512; at + 8 <= head.length; at *= 2) if (startsWith(head, HDF5_MAGIC, at)) return true
  return false
}

function isSafetensors(head: Uint8Array, size: number): boolean {
  if (head.length < 10 || size < 10) return false
  const n = view(head).getBigUint64(0, true)
  if (n < 2n || n > BigInt(SAFETENSORS_MAX_HEADER) || n + 8n > BigInt(size)) return false
  const end = Math.min(head.length, 8 + Number(n))
  for (let i = 8; i < end; i++) {
    const c = head[i]!
    if (c === 0x7b) return true // '{'
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false
  }
  return false
}

/** Local file header names that fit in `head`, walking entry by entry while sizes are known. */
export function zipNamesInHead(head: Uint8Array): string[] {
  const names: string[] = []
  const dv = view(head)
  let pos = 0
  while (pos + 30 <= head.length && dv.getUint32(pos, true) === 0x04034b50 && names.length < 1000) {
    const flags = dv.getUint16(pos + 6, true)
    let compressed: number = dv.getUint32(pos + 18, true)
    const nameLen = dv.getUint16(pos + 26, true)
    const extraLen = dv.getUint16(pos + 28, true)
    if (pos + 30 + nameLen > head.length) break
    names.push(new TextDecoder().decode(head.subarray(pos + 30, pos + 30 + nameLen)))
    if (compressed === 0xffffffff) {
      const z = zip64LocalCompressedSize(head, pos + 30 + nameLen, extraLen)
      if (z === undefined) break
      compressed = z
    }
    if ((flags & 0x08) !== 0 && compressed === 0) break // sizes follow the data: cannot walk on
    pos += 30 + nameLen + extraLen + compressed
  }
  return names
}

function zip64LocalCompressedSize(head: Uint8Array, at: number, extraLen: number): number | undefined {
  if (at + extraLen > head.length) return undefined
  const dv = view(head)
  for (let p = at; p + 4 <= at + extraLen;) {
    const id = dv.getUint16(p, true)
    const len = dv.getUint16(p + 2, true)
    if (id === 0x0001 && len >= 16 && p + 4 + len <= at + extraLen) {
      const v = dv.getBigUint64(p + 12, true)
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v)
    }
    p += 4 + len
  }
  return undefined
}

const TORCH_NAME = /(^|\/)(data\.pkl|\.data\/version)$/

function sniffZip(head: Uint8Array): FormatName {
  const names = zipNamesInHead(head)
  if (names.some((n) => TORCH_NAME.test(n))) return 'pytorch-zip'
  if (names.length > 0 && names.every((n) => n.endsWith('.npy'))) return 'npz'
  return 'zip'
}

/**
 * ONNX files are protobuf `ModelProto` messages and have no magic. We accept a file only when its
 * first bytes parse as ModelProto fields, in the ascending field order every protobuf serializer
 * writes: field 1 `ir_version` (varint 1..64) first, then only ModelProto fields with the right wire
 * types, each length inside the file, text fields valid UTF-8, and a `graph` (field 7) reached.
 */
const ONNX_FIELDS = new Map<number, { wire: number; repeated?: boolean; text?: boolean }>([
  [1, { wire: 0 }], [2, { wire: 2, text: true }], [3, { wire: 2, text: true }], [4, { wire: 2, text: true }],
  [5, { wire: 0 }], [6, { wire: 2, text: true }], [7, { wire: 2 }], [8, { wire: 2, repeated: true }],
  [14, { wire: 2, repeated: true }], [20, { wire: 2, repeated: true }], [25, { wire: 2, repeated: true }],
  [26, { wire: 2, repeated: true }],
])

function readVarint(head: Uint8Array, pos: number): [bigint, number] | undefined {
  let value = 0n
  for (let i = 0; i < 10; i++) {
    if (pos + i >= head.length) return undefined
    const b = head[pos + i]!
    value |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) return [value, pos + i + 1]
  }
  return undefined
}

function isOnnx(head: Uint8Array, size: number): boolean {
  if (head[0] !== 0x08) return false
  const ir = readVarint(head, 1)
  if (!ir || ir[0] < 1n || ir[0] > 64n) return false
  let pos = ir[1]
  let last = 1
  let sawGraph = false
  while (pos < head.length) {
    const tag = readVarint(head, pos)
    if (!tag || tag[0] > 0xffffn) return false
    const field = Number(tag[0] >> 3n)
    const wire = Number(tag[0] & 7n)
    const spec = ONNX_FIELDS.get(field)
    if (!spec || spec.wire !== wire) return false
    if (field < last || (field === last && !spec.repeated)) return false
    pos = tag[1]
    if (wire === 0) {
      const v = readVarint(head, pos)
      if (!v) return sawGraph
      pos = v[1]
    } else {
      const len = readVarint(head, pos)
      if (!len) return sawGraph
      const end = BigInt(len[1]) + len[0]
      if (end > BigInt(size)) return false
      if (spec.text && end <= BigInt(head.length) && decodeUtf8(head.subarray(len[1], Number(end))) === undefined) return false
      if (field === 7) {
        if (len[0] === 0n) return false
        sawGraph = true
      }
      pos = Number(end)
    }
    last = field
  }
  return sawGraph && pos <= size
}
