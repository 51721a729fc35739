/**
 * GGUF (llama.cpp) v2/v3: header, metadata key/values (skipped, never kept), tensor infos and the
 * aligned data section. Every count and length is checked against the bytes really left in the
 * file before it is used, and implementation caps bound memory. Errors: FormatError E_GGUF.
 */
import { FormatError } from '../errors.js'
import type { TensorInfo } from './safetensors.js'
import { Cursor, describeBig, safeNumber, type ReadAt } from './reader.js'

export interface GgufTensor {
  name: string
  /** ne[0], ne[1], ... as stored (innermost first). */
  dims: number[]
  type: number
  typeName: string
  /** Offset relative to the data section, as stored. */
  offset: number
  /** Absolute extent in the file, end exclusive. */
  start: number
  end: number
}

export interface GgufLayout {
  version: number
  littleEndian: boolean
  kvCount: number
  alignment: number
  /** Absolute offset of the data section (aligned). */
  dataStart: number
  /** In the order the file lists them. */
  tensors: GgufTensor[]
}

const CODE = 'E_GGUF'
/** Implementation limits (spec/formats.md). */
export const GGUF_MAX_TENSORS = 1 << 18
export const GGUF_MAX_KV = 1 << 16
export const GGUF_MAX_NAME = 1024
export const GGUF_MAX_KEY = 1 << 16
export const GGUF_MAX_DIMS = 4
/** Elements of one string or nested array value (tokenizer vocabularies are ~10^5). */
export const GGUF_MAX_ARRAY_ITEMS = 1 << 24
const MAX_ARRAY_NESTING = 4

/** ggml type id -> [name, block size (elements), type size (bytes per block)]: gguf-py GGML_QUANT_SIZES. */
export const GGML_TYPES: ReadonlyMap<number, readonly [string, number, number]> = new Map([
  [0, ['F32', 1, 4]], [1, ['F16', 1, 2]], [2, ['Q4_0', 32, 18]], [3, ['Q4_1', 32, 20]],
  [6, ['Q5_0', 32, 22]], [7, ['Q5_1', 32, 24]], [8, ['Q8_0', 32, 34]], [9, ['Q8_1', 32, 36]],
  [10, ['Q2_K', 256, 84]], [11, ['Q3_K', 256, 110]], [12, ['Q4_K', 256, 144]], [13, ['Q5_K', 256, 176]],
  [14, ['Q6_K', 256, 210]], [15, ['Q8_K', 256, 292]], [16, ['IQ2_XXS', 256, 66]], [17, ['IQ2_XS', 256, 74]],
  [18, ['IQ3_XXS', 256, 98]], [19, ['IQ1_S', 256, 50]], [20, ['IQ4_NL', 32, 18]], [21, ['IQ3_S', 256, 110]],
  [22, ['IQ2_S', 256, 82]], [23, ['IQ4_XS', 256, 136]], [24, ['I8', 1, 1]], [25, ['I16', 1, 2]],
  [26, ['I32', 1, 4]], [27, ['I64', 1, 8]], [28, ['F64', 1, 8]], [29, ['IQ1_M', 256, 56]],
  [30, ['BF16', 1, 2]], [34, ['TQ1_0', 256, 54]], [35, ['TQ2_0', 256, 66]], [39, ['MXFP4', 32, 17]],
  [40, ['NVFP4', 64, 36]], [41, ['Q1_0', 128, 18]],
] as const)

/** Metadata value types -> fixed byte size (string = 8, array = 9 are variable). */
const FIXED_SIZE = new Map([[0, 1], [1, 1], [2, 2], [3, 2], [4, 4], [5, 4], [6, 4], [7, 1], [10, 8], [11, 8], [12, 8]])
const TYPE_STRING = 8
const TYPE_ARRAY = 9
const TYPE_UINT32 = 4

function fail(message: string, data: Record<string, unknown> = {}): never {
  throw new FormatError(`gguf: ${message}`, CODE, data)
}

export async function readGgufLayout(read: ReadAt, size: number): Promise<GgufLayout> {
  if (size < 24) fail(`file is ${size} bytes, too short for a GGUF header`)
  const probe = new Cursor(read, size, true, CODE, 'gguf')
  const magic = await probe.bytes(4, 'magic')
  if (String.fromCharCode(...magic) !== 'GGUF') fail('bad magic')
  const raw = await probe.bytes(4, 'version')
  const le = raw[0]! !== 0 || raw[3]! === 0 // a big-endian file has its version in the last byte
  const version = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, le)
  if (version === 1) fail('GGUF v1 (32-bit counts) is not supported')
  if (version !== 2 && version !== 3) fail(`unknown GGUF version ${version}`)
  const c = new Cursor(read, size, le, CODE, 'gguf')
  c.pos = 8
  const tensorCount = await c.u64('tensor count')
  const kvCount = await c.u64('metadata count')
  // Each tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes,
  // each key/value at least 8 (key length) + 4 (type) + 1.
  if (tensorCount > BigInt(GGUF_MAX_TENSORS)) fail(`tensor count ${describeBig(tensorCount)} is over the ${GGUF_MAX_TENSORS} limit`, { tensorCount: tensorCount.toString() })
  if (kvCount > BigInt(GGUF_MAX_KV)) fail(`metadata count ${describeBig(kvCount)} is over the ${GGUF_MAX_KV} limit`, { kvCount: kvCount.toString() })
  if (tensorCount * 24n + kvCount * 13n > BigInt(c.remaining)) fail(`${tensorCount} tensors and ${kvCount} metadata entries cannot fit in ${size} bytes`)

  let alignment = 32
  let sawAlignment = false
  for (let i = 0; i < Number(kvCount); i++) {
    const key = await string(c, GGUF_MAX_KEY, `metadata key ${i}`)
    const type = await c.u32(`type of ${key}`)
    if (key === 'general.alignment') {
      if (sawAlignment) fail('general.alignment appears twice')
      sawAlignment = true
      if (type !== TYPE_UINT32) fail(`general.alignment has type ${type}, not uint32`)
      alignment = await c.u32('general.alignment')
      if (alignment === 0 || (alignment & (alignment - 1)) !== 0) fail(`general.alignment ${alignment} is not a power of two`)
      continue
    }
    await skipValue(c, type, key, 0)
  }

  const tensors: GgufTensor[] = []
  const names = new Set<string>()
  for (let i = 0; i < Number(tensorCount); i++) {
    const name = await string(c, GGUF_MAX_NAME, `tensor ${i} name`)
    if (names.has(name)) fail(`duplicate tensor name ${JSON.stringify(name)}`)
    names.add(name)
    const nDims = await c.u32(`tensor ${name} n_dims`)
    if (nDims > GGUF_MAX_DIMS) fail(`tensor ${JSON.stringify(name)} has ${nDims} dimensions (max ${GGUF_MAX_DIMS})`)
    const dims: number[] = []
    for (let d = 0; d < nDims; d++) dims.push(safeNumber(await c.u64(`tensor ${name} dim`), `tensor ${JSON.stringify(name)} dimension ${d}`, CODE))
    const type = await c.u32(`tensor ${name} type`)
    const offset = safeNumber(await c.u64(`tensor ${name} offset`), `tensor ${JSON.stringify(name)} offset`, CODE)
    tensors.push({ name, dims, type, typeName: '', offset, start: 0, end: 0 })
  }
  const dataStart = tensors.length === 0 ? Math.min(alignUp(c.pos, alignment), size) : alignUp(c.pos, alignment)
  if (dataStart > size) fail(`data section would start at ${dataStart}, past the end of the ${size}-byte file`)
  for (const t of tensors) {
    const info = GGML_TYPES.get(t.type)
    const q = JSON.stringify(t.name)
    if (!info) fail(`tensor ${q} has unknown ggml type ${t.type}`, { tensor: t.name, type: t.type })
    const [typeName, block, typeSize] = info
    t.typeName = typeName
    if (t.offset % alignment !== 0) fail(`tensor ${q} offset ${t.offset} is not a multiple of the alignment ${alignment}`)
    const ne0 = BigInt(t.dims[0] ?? 1)
    if (ne0 % BigInt(block) !== 0n) fail(`tensor ${q} first dimension ${ne0} is not a multiple of the ${typeName} block size ${block}`)
    let bytes = (ne0 / BigInt(block)) * BigInt(typeSize)
    for (const d of t.dims.slice(1)) bytes *= BigInt(d)
    const start = BigInt(dataStart) + BigInt(t.offset)
    if (start + bytes > BigInt(size)) fail(`tensor ${q} [${start}, +${describeBig(bytes)}) runs past the end of the ${size}-byte file`, { tensor: t.name })
    t.start = Number(start)
    t.end = Number(start + bytes)
  }
  const byStart = [...tensors].sort((a, b) => a.start - b.start || a.end - b.end)
  for (let i = 1; i < byStart.length; i++) {
    if (byStart[i]!.start < byStart[i - 1]!.end) fail(`tensors ${JSON.stringify(byStart[i - 1]!.name)} and ${JSON.stringify(byStart[i]!.name)} overlap`)
  }
  return { version, littleEndian: le, kvCount: Number(kvCount), alignment, dataStart, tensors }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a
}

const utf8 = new TextDecoder('utf-8')

async function string(c: Cursor, max: number, what: string): Promise<string> {
  const len = await c.u64(`${what} length`)
  if (len > BigInt(max)) fail(`${what} is ${describeBig(len)} bytes long (limit ${max})`)
  return utf8.decode(await c.bytes(Number(len), what))
}

async function skipValue(c: Cursor, type: number, key: string, depth: number): Promise<void> {
  const fixed = FIXED_SIZE.get(type)
  if (fixed !== undefined) return c.skip(fixed, `value of ${key}`)
  if (type === TYPE_STRING) return c.skip(await c.u64(`string length in ${key}`), `string in ${key}`)
  if (type !== TYPE_ARRAY) fail(`metadata ${JSON.stringify(key)} has unknown value type ${type}`)
  if (depth >= MAX_ARRAY_NESTING) fail(`metadata ${JSON.stringify(key)} nests arrays more than ${MAX_ARRAY_NESTING} deep`)
  const elemType = await c.u32(`array type in ${key}`)
  const count = await c.u64(`array length in ${key}`)
  const elemFixed = FIXED_SIZE.get(elemType)
  if (elemFixed !== undefined) return c.skip(count * BigInt(elemFixed), `array ${key}`)
  // A string element takes at least 8 bytes, an array element at least 12: bound the loop first.
  const minEach = elemType === TYPE_STRING ? 8n : elemType === TYPE_ARRAY ? 12n : 0n
  if (minEach === 0n) fail(`metadata ${JSON.stringify(key)} is an array of unknown type ${elemType}`)
  if (count > BigInt(GGUF_MAX_ARRAY_ITEMS)) fail(`array ${JSON.stringify(key)} claims ${describeBig(count)} elements (limit ${GGUF_MAX_ARRAY_ITEMS})`)
  if (count * minEach > BigInt(c.remaining)) fail(`array ${JSON.stringify(key)} claims ${describeBig(count)} elements, more than the file can hold`)
  for (let i = 0n; i < count; i++) await skipValue(c, elemType, key, depth + 1)
}

/**
 * Segment lengths (each > 0, summing to `fileSize`): a boundary where each tensor's bytes begin;
 * alignment padding after a tensor stays with it, and the header with the first tensor's padding.
 */
export function ggufSegments(layout: GgufLayout, fileSize: number): number[] {
  const cuts = new Set<number>([0, fileSize])
  for (const t of layout.tensors) if (t.end > t.start) cuts.add(t.start)
  const sorted = [...cuts].sort((a, b) => a - b)
  const segments: number[] = []
  for (let i = 1; i < sorted.length; i++) segments.push(sorted[i]! - sorted[i - 1]!)
  return segments
}

/** GGUF tensors as generic TensorInfo (dtype = ggml type name, shape = dims as stored). */
export function ggufTensorInfos(layout: GgufLayout): TensorInfo[] {
  return [...layout.tensors].sort((a, b) => a.start - b.start)
    .map((t) => ({ name: t.name, dtype: t.typeName, shape: t.dims, start: t.start, end: t.end }))
}
