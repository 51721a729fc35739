/**
 * safetensors: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data
 * section. We read the header only, and validate it at least as strictly as the reference reader
 * (huggingface/safetensors): every hostile input below is a FormatError with code E_SAFETENSORS.
 */
import { FormatError } from '../errors.js'
import { JsonNumber, JsonSyntaxError, parseStrictJson, type JsonObject, type JsonValue } from './json-strict.js'
import { decodeUtf8, describeBig, view } from './reader.js'
import { SAFETENSORS_MAX_HEADER } from './sniff.js'

export interface TensorInfo {
  name: string
  /** Format-specific dtype name: safetensors "F32", numpy "<f4", GGUF "Q4_K", ... */
  dtype: string
  shape: number[]
  /** Absolute file offsets, end exclusive. */
  start: number
  end: number
}

export interface SafetensorsLayout {
  /** N, the JSON header's length in bytes (padding included). */
  headerLength: number
  /** 8 + N: where tensor data begins. */
  dataStart: number
  /** Sorted by offset. */
  tensors: TensorInfo[]
  metadata: Record<string, string> | null
}

const CODE = 'E_SAFETENSORS'

/**
 * The safetensors dtypes, in the reference `Dtype` enum order (the writer sorts tensors by this
 * order, descending) with their size in bits.
 */
export const SAFETENSORS_DTYPES: ReadonlyArray<readonly [string, number]> = [
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8],
  ['F8_E5M2', 8], ['F8_E4M3', 8], ['F8_E8M0', 8], ['F8_E4M3FNUZ', 8], ['F8_E5M2FNUZ', 8],
  ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32],
  ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
]
const DTYPE_BITS = new Map(SAFETENSORS_DTYPES.map(([name, bits]) => [name, bits]))
const DTYPE_RANK = new Map(SAFETENSORS_DTYPES.map(([name], i) => [name, i]))

function fail(message: string, data: Record<string, unknown> = {}, cause?: unknown): never {
  throw new FormatError(`safetensors: ${message}`, CODE, data, cause === undefined ? undefined : { cause })
}

/** N from the first 8 bytes, checked against the reference 100,000,000-byte cap. */
export function safetensorsHeaderLength(head8: Uint8Array): number {
  if (head8.length < 8) fail(`file is ${head8.length} bytes, shorter than the 8-byte header length`)
  const n = view(head8).getBigUint64(0, true)
  if (n === 0n) fail('header length is 0')
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) {
    fail(`header length ${describeBig(n)} exceeds the ${SAFETENSORS_MAX_HEADER}-byte cap`, { headerLength: n.toString() })
  }
  return Number(n)
}

/**
 * Parses and validates the header. `head` must hold at least the first 8 + N bytes (see
 * `safetensorsHeaderLength`); `fileSize` is the whole file's length.
 */
export function parseSafetensorsHeader(head: Uint8Array, fileSize: number): SafetensorsLayout {
  const n = safetensorsHeaderLength(head)
  if (n + 8 > fileSize) fail(`header length ${n} runs past the end of the ${fileSize}-byte file (truncated?)`, { headerLength: n, fileSize })
  if (head.length < n + 8) fail(`the caller passed ${head.length} bytes but the header needs ${n + 8}`, { needBytes: n + 8 })
  const text = decodeUtf8(head.subarray(8, 8 + n))
  if (text === undefined) fail('header is not valid UTF-8')
  let json: JsonValue
  try {
    json = parseStrictJson(text)
  } catch (err) {
    if (err instanceof JsonSyntaxError) fail(`header is not valid JSON: ${err.message}`, {}, err)
    throw err
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json) || json instanceof JsonNumber) {
    fail('header is not a JSON object')
  }
  const dataStart = 8 + n
  const dataLength = fileSize - dataStart
  let metadata: Record<string, string> | null = null
  const tensors: (TensorInfo & { begin: number })[] = []
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry)
      continue
    }
    tensors.push(parseTensor(name, entry, dataStart, dataLength))
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let expected = 0
  for (const t of tensors) {
    const begin = t.begin
    if (begin < expected) fail(`tensor ${JSON.stringify(t.name)} overlaps the previous tensor (begins at ${begin}, previous ends at ${expected})`, { tensor: t.name })
    if (begin > expected) fail(`gap of ${begin - expected} bytes before tensor ${JSON.stringify(t.name)} (begins at ${begin}, expected ${expected})`, { tensor: t.name })
    expected = t.end - dataStart
  }
  if (expected !== dataLength) {
    if (expected < dataLength) fail(`${dataLength - expected} bytes of trailing data after the last tensor`, { trailing: dataLength - expected })
    fail(`tensors end at data offset ${expected} but the data section has only ${dataLength} bytes (truncated?)`)
  }
  return {
    headerLength: n,
    dataStart,
    tensors: tensors.map(({ name, dtype, shape, start, end }) => ({ name, dtype, shape, start, end })),
    metadata,
  }
}

function isObject(v: JsonValue): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JsonNumber)
}

function parseMetadata(entry: JsonValue): Record<string, string> | null {
  if (entry === null) return null // the reference reader reads `null` as "no metadata"
  if (!isObject(entry)) fail('__metadata__ is not an object of strings')
  const out: [string, string][] = []
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') fail(`__metadata__ value for ${JSON.stringify(k)} is not a string`)
    out.push([k, v])
  }
  return Object.fromEntries(out) // defines own properties, so a "__proto__" key stays a key
}

function nonNegativeInt(v: JsonValue, what: string): number {
  if (!(v instanceof JsonNumber) || !/^(0|[1-9][0-9]*)$/.test(v.raw)) {
    fail(`${what} is ${v instanceof JsonNumber ? v.raw : JSON.stringify(v)}, not a non-negative integer`)
  }
  const n = Number(v.raw)
  if (!Number.isSafeInteger(n)) fail(`${what} is ${v.raw}, too large`)
  return n
}

function parseTensor(name: string, entry: JsonValue, dataStart: number, dataLength: number): TensorInfo & { begin: number } {
  const q = JSON.stringify(name)
  if (!isObject(entry)) fail(`tensor ${q} is not an object`)
  for (const key of Object.keys(entry)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') fail(`tensor ${q} has an unexpected field ${JSON.stringify(key)}`)
  }
  const { dtype, shape, data_offsets: offsets } = entry
  if (typeof dtype !== 'string') fail(`tensor ${q} has no dtype string`)
  const bits = DTYPE_BITS.get(dtype)
  if (bits === undefined) fail(`tensor ${q} has unknown dtype ${JSON.stringify(dtype)}`, { tensor: name, dtype })
  if (!Array.isArray(shape)) fail(`tensor ${q} has no shape array`)
  const dims = shape.map((d, i) => nonNegativeInt(d, `tensor ${q} shape[${i}]`))
  if (!Array.isArray(offsets) || offsets.length !== 2) fail(`tensor ${q} data_offsets is not [begin, end]`)
  const begin = nonNegativeInt(offsets[0]!, `tensor ${q} data_offsets[0]`)
  const end = nonNegativeInt(offsets[1]!, `tensor ${q} data_offsets[1]`)
  if (end < begin) fail(`tensor ${q} data_offsets [${begin}, ${end}] end before they begin`)
  if (end > dataLength) fail(`tensor ${q} data_offsets end ${end} is past the ${dataLength}-byte data section`, { tensor: name })
  let numel = 1n
  for (const d of dims) numel *= BigInt(d)
  const nbits = numel * BigInt(bits)
  if (nbits % 8n !== 0n) fail(`tensor ${q}: ${numel} elements of ${dtype} are not a whole number of bytes`)
  const nbytes = nbits / 8n
  if (nbytes !== BigInt(end - begin)) {
    fail(`tensor ${q}: shape [${dims.join(',')}] of ${dtype} is ${describeBig(nbytes)} bytes but data_offsets span ${end - begin}`, { tensor: name })
  }
  return { name, dtype, shape: dims, start: dataStart + begin, end: dataStart + end, begin }
}

/**
 * Byte lengths of the regions a chunker must not cross: [8 + N, tensor bytes in file order...].
 * Zero-length tensors add no segment, so every entry is > 0; the sum is `fileSize`.
 */
export function safetensorsSegments(layout: SafetensorsLayout, fileSize: number): number[] {
  const segments = [layout.dataStart]
  for (const t of layout.tensors) if (t.end > t.start) segments.push(t.end - t.start)
  const sum = segments.reduce((a, b) => a + b, 0)
  if (sum !== fileSize) fail(`segments sum to ${sum}, not the file size ${fileSize}`)
  return segments
}

export interface SafetensorsInput {
  name: string
  dtype: string
  shape: number[]
  data: Uint8Array
}

/** False for strings with lone surrogates (they have no UTF-8 encoding). */
function wellFormed(s: string): boolean {
  return !/\p{Cs}/u.test(s)
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/**
 * Writes a safetensors file the way the reference library does: tensors sorted by dtype (reference
 * enum order, descending) then by name (bytewise), compact JSON with `__metadata__` first, the
 * header padded with spaces to a multiple of 8. Byte-identical to the reference when metadata has
 * at most one key; the reference writes a multi-key `__metadata__` in hash-map order, we sort keys.
 */
export function encodeSafetensors(tensors: SafetensorsInput[], metadata?: Record<string, string>): Uint8Array {
  const seen = new Set<string>()
  for (const t of tensors) {
    if (t.name === '__metadata__') throw new TypeError('a tensor cannot be named __metadata__')
    if (!wellFormed(t.name)) throw new TypeError(`tensor name ${JSON.stringify(t.name)} is not valid Unicode`)
    if (seen.has(t.name)) throw new TypeError(`duplicate tensor name ${JSON.stringify(t.name)}`)
    seen.add(t.name)
    const bits = DTYPE_BITS.get(t.dtype)
    if (bits === undefined) throw new TypeError(`unknown safetensors dtype ${JSON.stringify(t.dtype)}`)
    let numel = 1n
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new TypeError(`tensor ${t.name}: bad dimension ${d}`)
      numel *= BigInt(d)
    }
    const nbits = numel * BigInt(bits)
    if (nbits % 8n !== 0n || nbits / 8n !== BigInt(t.data.length)) {
      throw new TypeError(`tensor ${t.name}: ${t.data.length} data bytes do not match shape [${t.shape.join(',')}] of ${t.dtype}`)
    }
  }
  const sorted = [...tensors].sort((a, b) => (DTYPE_RANK.get(b.dtype)! - DTYPE_RANK.get(a.dtype)!) || compareUtf8(a.name, b.name))
  const parts: string[] = []
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareUtf8)
    for (const k of keys) {
      if (typeof metadata[k] !== 'string') throw new TypeError(`metadata value for ${k} is not a string`)
      if (!wellFormed(k) || !wellFormed(metadata[k]!)) throw new TypeError(`metadata entry ${JSON.stringify(k)} is not valid Unicode`)
    }
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`)
  }
  let offset = 0
  for (const t of sorted) {
    const end = offset + t.data.length
    parts.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`)
    offset = end
  }
  let header = Buffer.from(`{${parts.join(',')}}`, 'utf8')
  const pad = (8 - (header.length % 8)) % 8
  if (pad > 0) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)])
  const out = new Uint8Array(8 + header.length + offset)
  view(out).setBigUint64(0, BigInt(header.length), true)
  out.set(header, 8)
  let at = 8 + header.length
  for (const t of sorted) {
    out.set(t.data, at)
    at += t.data.length
  }
  return out
}
