/**
 * ONNX inspection without onnxruntime: walks the ModelProto with the protobuf reader and returns
 * the opset imports, the graph's inputs and outputs (names, element types, shapes), and every
 * initializer's name, type, dims and where its bytes are (an inline `raw_data` extent in the file,
 * or an external-data location). Tensor payloads and nodes are skipped, never read. Used at add
 * time (signature + chunk segments), by `diff` (initializers as tensors) and before loading a
 * model into onnxruntime (external data must stay inside the model folder). spec/eval.md.
 */
import { FormatError } from '../errors.js'
import type { ReadAt } from '../formats/reader.js'
import { fixedFlags } from '../formats/segments.js'
import { ProtoFile, fieldsOf, int64, protoFail, protoString, repeatedVarints, WIRE, type Field } from './protobuf-read.js'

/** TensorProto.DataType -> the element type name onnxruntime-node uses, and bits per element. */
export const ONNX_TYPES: Record<number, { name: string; bits: number; safetensors?: string }> = {
  1: { name: 'float32', bits: 32, safetensors: 'F32' }, 2: { name: 'uint8', bits: 8, safetensors: 'U8' },
  3: { name: 'int8', bits: 8, safetensors: 'I8' }, 4: { name: 'uint16', bits: 16, safetensors: 'U16' },
  5: { name: 'int16', bits: 16, safetensors: 'I16' }, 6: { name: 'int32', bits: 32, safetensors: 'I32' },
  7: { name: 'int64', bits: 64, safetensors: 'I64' }, 8: { name: 'string', bits: 0 },
  9: { name: 'bool', bits: 8, safetensors: 'BOOL' }, 10: { name: 'float16', bits: 16, safetensors: 'F16' },
  11: { name: 'float64', bits: 64, safetensors: 'F64' }, 12: { name: 'uint32', bits: 32, safetensors: 'U32' },
  13: { name: 'uint64', bits: 64, safetensors: 'U64' }, 14: { name: 'complex64', bits: 64, safetensors: 'C64' },
  15: { name: 'complex128', bits: 128 }, 16: { name: 'bfloat16', bits: 16, safetensors: 'BF16' },
  17: { name: 'float8e4m3fn', bits: 8, safetensors: 'F8_E4M3' }, 18: { name: 'float8e4m3fnuz', bits: 8, safetensors: 'F8_E4M3FNUZ' },
  19: { name: 'float8e5m2', bits: 8, safetensors: 'F8_E5M2' }, 20: { name: 'float8e5m2fnuz', bits: 8, safetensors: 'F8_E5M2FNUZ' },
  21: { name: 'uint4', bits: 4 }, 22: { name: 'int4', bits: 4 }, 23: { name: 'float4e2m1', bits: 4, safetensors: 'F4' },
}

export function onnxTypeName(t: number): string { return ONNX_TYPES[t]?.name ?? `type${t}` }

/** A graph input or output. `shape` is absent when the rank is unknown; a dim is a size, a symbol, or null. */
export interface OnnxValue { name: string; type: string; shape?: Array<number | string | null> }

export interface OnnxInitializer {
  name: string
  /** TensorProto.DataType */
  dataType: number
  dims: number[]
  numel: number
  /** The `raw_data` payload's extent in the file, when the tensor is stored inline as raw bytes. */
  raw?: { start: number; end: number }
  /** External data (data_location = EXTERNAL): the file named relative to the model's folder. */
  external?: { location: string; offset: number; length?: number }
  /** Set when the values are in typed fields (float_data, int64_data, ...) rather than raw bytes. */
  typed?: boolean
}

export interface OnnxLayout {
  irVersion: number
  opsets: Array<{ domain: string; version: number }>
  producer?: string
  graphName?: string
  inputs: OnnxValue[]
  outputs: OnnxValue[]
  initializers: OnnxInitializer[]
  nodes: number
}

/** What add records per ONNX file (sealed in the file's manifest entry as `onnx`). */
export interface OnnxSignature {
  ir_version: number
  /** The default-domain ("ai.onnx") opset version; 0 when the model imports none. */
  opset: number
  /** Other domains' opsets, when there are any. */
  opsets?: Record<string, number>
  inputs: OnnxValue[]
  outputs: OnnxValue[]
  /** Elements in every top-level graph initializer (the usual "parameter count"). */
  parameters: number
  initializers: number
  /** Files named by external-data initializers, relative to the ONNX file's folder. */
  external_data?: string[]
}

const F = {
  model: { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 },
  opset: { domain: 1, version: 2 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12 },
  tensor: { dims: 1, dataType: 2, floatData: 4, int32Data: 5, stringData: 6, int64Data: 7, name: 8, rawData: 9, doubleData: 10, uint64Data: 11, externalData: 13, dataLocation: 14 },
  entry: { key: 1, value: 2 },
  valueInfo: { name: 1, type: 2 },
  type: { tensorType: 1, sequenceType: 4, mapType: 5, sparseTensorType: 8, optionalType: 9 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
} as const

/** Small messages (value infos, opset ids, initializer headers) are read whole up to this size. */
const SMALL = 1 << 20
const MAX_INITIALIZERS = 10_000_000

function expectWire(f: Field, wire: number, what: string): void {
  if (f.wire !== wire) protoFail(`${what} (field ${f.field}) has wire type ${f.wire}, expected ${wire}`)
}

/** Reads the layout of an ONNX file. Throws FormatError (E_PROTOBUF / E_ONNX) on malformed input. */
export async function readOnnxLayout(read: ReadAt, size: number): Promise<OnnxLayout> {
  const file = new ProtoFile(read, size)
  const out: OnnxLayout = { irVersion: 0, opsets: [], inputs: [], outputs: [], initializers: [], nodes: 0 }
  let sawGraph = false
  for await (const f of file.fields(0, size)) {
    switch (f.field) {
      case F.model.irVersion: expectWire(f, WIRE.VARINT, 'ir_version'); out.irVersion = int64(f.value, 'ir_version'); break
      case F.model.producerName: expectWire(f, WIRE.LEN, 'producer_name'); out.producer = protoString(await file.bytes(f.start, f.end, SMALL), 'producer_name'); break
      case F.model.opsetImport: {
        expectWire(f, WIRE.LEN, 'opset_import')
        let domain = ''
        let version = 0
        const bytes = await file.bytes(f.start, f.end, SMALL)
        for (const g of fieldsOf(bytes)) {
          if (g.field === F.opset.domain && g.wire === WIRE.LEN) domain = protoString(sub(bytes, g), 'opset domain')
          else if (g.field === F.opset.version && g.wire === WIRE.VARINT) version = int64(g.value, 'opset version')
        }
        out.opsets.push({ domain: domain === 'ai.onnx' ? '' : domain, version })
        break
      }
      case F.model.graph:
        expectWire(f, WIRE.LEN, 'graph')
        if (sawGraph) protoFail('ModelProto has two graphs')
        sawGraph = true
        await readGraph(file, f.start, f.end, out)
        break
      default: break // other ModelProto fields (doc strings, metadata, functions) are not needed
    }
  }
  if (!sawGraph) throw new FormatError('onnx: the model has no graph', 'E_ONNX')
  if (out.irVersion < 1) throw new FormatError('onnx: the model has no ir_version', 'E_ONNX')
  return out
}

function sub(bytes: Uint8Array, g: Field): Uint8Array { return bytes.subarray(g.start, g.end) }

async function readGraph(file: ProtoFile, start: number, end: number, out: OnnxLayout): Promise<void> {
  for await (const f of file.fields(start, end)) {
    switch (f.field) {
      case F.graph.node: out.nodes++; break
      case F.graph.name: expectWire(f, WIRE.LEN, 'graph name'); out.graphName = protoString(await file.bytes(f.start, f.end, SMALL), 'graph name'); break
      case F.graph.initializer:
        expectWire(f, WIRE.LEN, 'initializer')
        if (out.initializers.length >= MAX_INITIALIZERS) protoFail(`more than ${MAX_INITIALIZERS} initializers`)
        out.initializers.push(await readTensor(file, f.start, f.end))
        break
      case F.graph.input: expectWire(f, WIRE.LEN, 'input'); out.inputs.push(readValueInfo(await file.bytes(f.start, f.end, SMALL))); break
      case F.graph.output: expectWire(f, WIRE.LEN, 'output'); out.outputs.push(readValueInfo(await file.bytes(f.start, f.end, SMALL))); break
      default: break
    }
  }
  // before IR version 4 initializers were also listed as inputs; they are not the model's inputs
  const inits = new Set(out.initializers.map((t) => t.name))
  out.inputs = out.inputs.filter((v) => !inits.has(v.name))
}

async function readTensor(file: ProtoFile, start: number, end: number): Promise<OnnxInitializer> {
  const t: OnnxInitializer = { name: '', dataType: 0, dims: [], numel: 1 }
  let external = false
  const entries: Record<string, string> = {}
  for await (const f of file.fields(start, end)) {
    switch (f.field) {
      case F.tensor.dims:
        for (const d of repeatedVarints(f, f.wire === WIRE.LEN ? await file.bytes(f.start, f.end, SMALL) : undefined)) {
          const n = int64(d, 'dim')
          if (n < 0) protoFail(`initializer dim ${n} is negative`)
          t.dims.push(n)
        }
        break
      case F.tensor.dataType: expectWire(f, WIRE.VARINT, 'data_type'); t.dataType = int64(f.value, 'data_type'); break
      case F.tensor.name: expectWire(f, WIRE.LEN, 'tensor name'); t.name = protoString(await file.bytes(f.start, f.end, SMALL), 'tensor name'); break
      case F.tensor.rawData: expectWire(f, WIRE.LEN, 'raw_data'); t.raw = { start: f.start, end: f.end }; break
      case F.tensor.floatData: case F.tensor.int32Data: case F.tensor.stringData: case F.tensor.int64Data:
      case F.tensor.doubleData: case F.tensor.uint64Data:
        t.typed = true
        break
      case F.tensor.externalData: {
        expectWire(f, WIRE.LEN, 'external_data')
        const bytes = await file.bytes(f.start, f.end, SMALL)
        let key = ''
        let value = ''
        for (const g of fieldsOf(bytes)) {
          if (g.field === F.entry.key && g.wire === WIRE.LEN) key = protoString(sub(bytes, g), 'external_data key')
          else if (g.field === F.entry.value && g.wire === WIRE.LEN) value = protoString(sub(bytes, g), 'external_data value')
        }
        entries[key] = value
        break
      }
      case F.tensor.dataLocation: expectWire(f, WIRE.VARINT, 'data_location'); external = f.value === 1n; break
      default: break
    }
  }
  let numel = 1n
  for (const d of t.dims) numel *= BigInt(d)
  if (numel > BigInt(Number.MAX_SAFE_INTEGER)) protoFail(`initializer ${JSON.stringify(t.name)} has too many elements`)
  t.numel = Number(numel)
  if (external) {
    if (entries.location === undefined) protoFail(`initializer ${JSON.stringify(t.name)} is external but names no location`)
    const num = (k: string): number | undefined => {
      const v = entries[k]
      if (v === undefined) return undefined
      if (!/^\d{1,15}$/.test(v)) protoFail(`initializer ${JSON.stringify(t.name)} external ${k} ${JSON.stringify(v)} is not a number`)
      return Number(v)
    }
    const length = num('length')
    t.external = { location: entries.location, offset: num('offset') ?? 0, ...(length !== undefined ? { length } : {}) }
    delete t.raw
  }
  return t
}

function readValueInfo(bytes: Uint8Array): OnnxValue {
  let name = ''
  let type: { type: string; shape?: Array<number | string | null> } = { type: 'unknown' }
  for (const f of fieldsOf(bytes)) {
    if (f.field === F.valueInfo.name && f.wire === WIRE.LEN) name = protoString(sub(bytes, f), 'value name')
    else if (f.field === F.valueInfo.type && f.wire === WIRE.LEN) type = readType(sub(bytes, f), 0)
  }
  return { name, type: type.type, ...(type.shape ? { shape: type.shape } : {}) }
}

/** A TypeProto as `float32` (with shape) for tensors, `sequence(float32)`, `map(int64,float32)`, ... */
function readType(bytes: Uint8Array, depth: number): { type: string; shape?: Array<number | string | null> } {
  if (depth > 8) protoFail('type nests too deeply')
  for (const f of fieldsOf(bytes)) {
    if (f.wire !== WIRE.LEN) continue
    const b = sub(bytes, f)
    switch (f.field) {
      case F.type.tensorType: case F.type.sparseTensorType: {
        let elem = 0
        let shape: Array<number | string | null> | undefined
        for (const g of fieldsOf(b)) {
          if (g.field === F.tensorType.elemType && g.wire === WIRE.VARINT) elem = int64(g.value, 'elem_type')
          else if (g.field === F.tensorType.shape && g.wire === WIRE.LEN) shape = readShape(sub(b, g))
        }
        const name = onnxTypeName(elem)
        return { type: f.field === F.type.sparseTensorType ? `sparse(${name})` : name, ...(shape ? { shape } : {}) }
      }
      case F.type.sequenceType: case F.type.optionalType: {
        let inner = 'unknown'
        for (const g of fieldsOf(b)) if (g.field === 1 && g.wire === WIRE.LEN) inner = readType(sub(b, g), depth + 1).type
        return { type: `${f.field === F.type.sequenceType ? 'sequence' : 'optional'}(${inner})` }
      }
      case F.type.mapType: {
        let key = 0
        let value = 'unknown'
        for (const g of fieldsOf(b)) {
          if (g.field === 1 && g.wire === WIRE.VARINT) key = int64(g.value, 'map key type')
          else if (g.field === 2 && g.wire === WIRE.LEN) value = readType(sub(b, g), depth + 1).type
        }
        return { type: `map(${onnxTypeName(key)},${value})` }
      }
      default: break
    }
  }
  return { type: 'unknown' }
}

function readShape(bytes: Uint8Array): Array<number | string | null> {
  const dims: Array<number | string | null> = []
  for (const f of fieldsOf(bytes)) {
    if (f.field !== F.shape.dim || f.wire !== WIRE.LEN) continue
    let d: number | string | null = null
    const b = sub(bytes, f)
    for (const g of fieldsOf(b)) {
      if (g.field === F.dim.value && g.wire === WIRE.VARINT) d = int64(g.value, 'dim_value')
      else if (g.field === F.dim.param && g.wire === WIRE.LEN) d = protoString(sub(b, g), 'dim_param')
    }
    dims.push(d)
  }
  return dims
}

/** The sealed summary of a layout. */
export function onnxSignature(layout: OnnxLayout): OnnxSignature {
  const others: Record<string, number> = {}
  let opset = 0
  for (const o of layout.opsets) {
    if (o.domain === '') opset = o.version
    else others[o.domain] = o.version
  }
  const external = [...new Set(layout.initializers.filter((t) => t.external).map((t) => t.external!.location))].sort()
  return {
    ir_version: layout.irVersion,
    opset,
    ...(Object.keys(others).length ? { opsets: others } : {}),
    inputs: layout.inputs,
    outputs: layout.outputs,
    parameters: layout.initializers.reduce((a, t) => a + t.numel, 0),
    initializers: layout.initializers.length,
    ...(external.length ? { external_data: external } : {}),
  }
}

/** raw_data payloads smaller than this stay inside the surrounding segment (no tiny objects). */
export const ONNX_SEGMENT_MIN = 1024

/**
 * Chunk segments of an ONNX file: a boundary at the start and at the end of every inline
 * `raw_data` payload of at least ONNX_SEGMENT_MIN bytes, so each such tensor's bytes are chunked on
 * their own (and dedup against the same tensor anywhere else); everything between (protobuf
 * framing, names, nodes, small tensors) forms the segments in between. Sum = `size`, each > 0.
 */
export function onnxSegments(layout: OnnxLayout, size: number): number[] {
  const cuts: number[] = [0]
  let last = 0
  for (const t of layout.initializers) {
    if (!t.raw || t.raw.end - t.raw.start < ONNX_SEGMENT_MIN) continue
    if (t.raw.start < last || t.raw.end > size) throw new FormatError('onnx: raw_data extents are not in file order', 'E_ONNX')
    if (t.raw.start > last) cuts.push(t.raw.start)
    cuts.push(t.raw.end)
    last = t.raw.end
  }
  if (last < size) cuts.push(size)
  const segments: number[] = []
  for (let i = 1; i < cuts.length; i++) segments.push(cuts[i]! - cuts[i - 1]!)
  return segments.filter((n) => n > 0)
}

/** Layout, signature and segments in one call; never throws for bad content (`warning` instead). */
export async function describeOnnx(read: ReadAt, size: number): Promise<{ signature?: OnnxSignature; segments: number[] | null; fixed?: boolean[]; warning?: string }> {
  try {
    const layout = await readOnnxLayout(read, size)
    const segments = onnxSegments(layout, size)
    return { signature: onnxSignature(layout), segments, fixed: fixedFlags(segments, layout.initializers.flatMap((t) => t.raw ? [t.raw.start] : [])) }
  } catch (err) {
    if (err instanceof FormatError) return { segments: null, warning: `onnx: ${err.message}` }
    throw err
  }
}

/** Bytes per element of an ONNX data type, or undefined for strings and sub-byte types. */
export function onnxItemSize(dataType: number): number | undefined {
  const t = ONNX_TYPES[dataType]
  return t && t.bits >= 8 ? t.bits / 8 : undefined
}
