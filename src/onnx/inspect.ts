/**
 * ONNX inspection without onnxruntime: walks the ModelProto with the protobuf reader and returns
 * the opset imports, the graph's inputs and outputs (names, element types, shapes), and every
 * initializer's name, type, dims and where its bytes are (an inline `raw_data` extent in the file,
 * or an external-data location). Tensor payloads and nodes are skipped, never read. Used at add
 * time (signature + chunk segments), by `diff` (initializers as tensors) and before loading a
 * model into onnxruntime (external data must stay inside the model folder). spec/eval.md.
 */
import { dirname, resolve } from 'node:path'
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
  /**
   * Every inline `raw_data` extent in the file, in file order: the top-level initializers' and those
   * nested in nodes: Constant (and any other) tensor attributes, and the initializers and nodes of
   * subgraphs (If/Loop/Scan bodies), at any depth. Chunk segments follow these.
   */
  rawExtents: Array<{ start: number; end: number }>
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
  node: { attribute: 5 },
  attr: { t: 5, g: 6, tensors: 10, graphs: 11 },
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
  const out: OnnxLayout = { irVersion: 0, opsets: [], inputs: [], outputs: [], initializers: [], nodes: 0, rawExtents: [] }
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
  out.rawExtents.sort((a, b) => a.start - b.start)
  return out
}

function sub(bytes: Uint8Array, g: Field): Uint8Array { return bytes.subarray(g.start, g.end) }

async function readGraph(file: ProtoFile, start: number, end: number, out: OnnxLayout): Promise<void> {
  for await (const f of file.fields(start, end)) {
    switch (f.field) {
      case F.graph.node:
        expectWire(f, WIRE.LEN, 'node')
        out.nodes++
        await readNodeTensors(file, f.start, f.end, out, 1)
        break
      case F.graph.name: expectWire(f, WIRE.LEN, 'graph name'); out.graphName = protoString(await file.bytes(f.start, f.end, SMALL), 'graph name'); break
      case F.graph.initializer:
        expectWire(f, WIRE.LEN, 'initializer')
        if (out.initializers.length >= MAX_INITIALIZERS) protoFail(`more than ${MAX_INITIALIZERS} initializers`)
        out.initializers.push(await readTensor(file, f.start, f.end))
        if (out.initializers.at(-1)!.raw) out.rawExtents.push(out.initializers.at(-1)!.raw!)
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

/** Subgraphs nest at most this deep (a Loop in an If in a Scan ... is 3). */
const MAX_GRAPH_DEPTH = 32
const MAX_NESTED = 10_000_000

/**
 * The raw_data extents inside a NodeProto: tensor attributes (`t`, `tensors`) and subgraphs (`g`,
 * `graphs`), whose initializers and nodes are read the same way, recursively.
 */
async function readNodeTensors(file: ProtoFile, start: number, end: number, out: OnnxLayout, depth: number): Promise<void> {
  for await (const f of file.fields(start, end)) {
    if (f.field !== F.node.attribute || f.wire !== WIRE.LEN) continue
    for await (const a of file.fields(f.start, f.end)) {
      if (a.wire !== WIRE.LEN) continue
      if (a.field === F.attr.t || a.field === F.attr.tensors) await nestedTensor(file, a.start, a.end, out)
      else if (a.field === F.attr.g || a.field === F.attr.graphs) await readSubgraph(file, a.start, a.end, out, depth + 1)
    }
  }
}

async function nestedTensor(file: ProtoFile, start: number, end: number, out: OnnxLayout): Promise<void> {
  if (out.rawExtents.length >= MAX_NESTED) protoFail(`more than ${MAX_NESTED} tensors`)
  const t = await readTensor(file, start, end)
  if (t.raw) out.rawExtents.push(t.raw)
}

async function readSubgraph(file: ProtoFile, start: number, end: number, out: OnnxLayout, depth: number): Promise<void> {
  if (depth > MAX_GRAPH_DEPTH) protoFail(`subgraphs nest more than ${MAX_GRAPH_DEPTH} deep`)
  for await (const f of file.fields(start, end)) {
    if (f.wire !== WIRE.LEN) continue
    if (f.field === F.graph.node) await readNodeTensors(file, f.start, f.end, out, depth)
    else if (f.field === F.graph.initializer) await nestedTensor(file, f.start, f.end, out)
  }
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
 * `raw_data` payload of at least ONNX_SEGMENT_MIN bytes (top-level initializers, Constant and other
 * tensor attributes, subgraph initializers: layout.rawExtents), so each such tensor's bytes are chunked on
 * their own (and dedup against the same tensor anywhere else); everything between (protobuf
 * framing, names, nodes, small tensors) forms the segments in between. Sum = `size`, each > 0.
 */
export function onnxSegments(layout: OnnxLayout, size: number): number[] {
  return extentSegments(layout.rawExtents, size)
}

/**
 * Segments (each > 0, summing to `size`) with a boundary at the start and end of every extent of at
 * least ONNX_SEGMENT_MIN bytes; `extents` in file order, not overlapping.
 */
export function extentSegments(extents: ReadonlyArray<{ start: number; end: number }>, size: number): number[] {
  const cuts: number[] = [0]
  let last = 0
  for (const t of extents) {
    if (t.end - t.start < ONNX_SEGMENT_MIN) continue
    if (t.start < last || t.end > size) throw new FormatError('onnx: raw_data extents are not in file order', 'E_ONNX')
    if (t.start > last) cuts.push(t.start)
    cuts.push(t.end)
    last = t.end
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
    return { signature: onnxSignature(layout), segments, fixed: fixedFlags(segments, layout.rawExtents.map((t) => t.start)) }
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

/** At most this many `.onnx` files of a folder are read when looking for a data file's tensors. */
const EXTERNAL_SCAN_MAX = 64

/**
 * Chunk segments for an ONNX external-data file (weights kept beside a model, e.g. `model.onnx.data`):
 * the `.onnx` files in the data file's folder and the folder above it are read (layout only) and
 * every initializer whose external location resolves to `dataPath` gives its [offset, offset +
 * length) extent, so each tensor is chunked on its own, with fixed-size chunks, and dedups like an
 * inline one. `openRead(path)` gives a reader and the size of a model file. Null when no model
 * names the file or the extents do not fit it (overlapping, past its end): FastCDC then.
 */
export async function externalDataSegments(dataPath: string, size: number, listOnnx: (dir: string) => Promise<string[]>,
                                           openRead: (path: string) => Promise<{ read: ReadAt; size: number; close: () => Promise<void> }>):
                                           Promise<{ segments: number[]; fixed: boolean[] } | null> {
  const dirs = [...new Set([dirname(dataPath), dirname(dirname(dataPath))])]
  const extents = new Map<number, { start: number; end: number }>()
  let scanned = 0
  for (const dir of dirs) {
    for (const model of await listOnnx(dir)) {
      if (++scanned > EXTERNAL_SCAN_MAX) break
      let layout: OnnxLayout
      const f = await openRead(model)
      try { layout = await readOnnxLayout(f.read, f.size) } catch (err) {
        if (err instanceof FormatError) continue // not a model we can read: it names nothing
        throw err
      } finally { await f.close() }
      for (const t of layout.initializers) {
        if (!t.external || resolve(dirname(model), t.external.location) !== dataPath) continue
        const item = onnxItemSize(t.dataType)
        const length = t.external.length ?? (item !== undefined ? t.numel * item : undefined)
        if (length === undefined || length <= 0) continue
        extents.set(t.external.offset, { start: t.external.offset, end: t.external.offset + length })
      }
    }
  }
  if (extents.size === 0) return null
  const sorted = [...extents.values()].sort((a, b) => a.start - b.start)
  try {
    const segments = extentSegments(sorted, size)
    return { segments, fixed: fixedFlags(segments, sorted.map((e) => e.start)) }
  } catch (err) {
    if (err instanceof FormatError) return null
    throw err
  }
}
