/**
 * A minimal, dependency-free protobuf writer for ONNX models (onnx.proto, IR version 8).
 *
 * Only the fields git-zoo needs to build small inference graphs are written: ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto (raw_data), ValueInfoProto and TypeProto.Tensor with a
 * shape whose dimensions are numbers or symbolic names. Field numbers are those of onnx.proto and
 * are listed in one place below. Output is deterministic and laid out as protobuf's own serializer
 * lays out onnx.proto (a proto2 file): fields in field-number order, repeated fields in the given
 * order, repeated scalars unpacked (one tag per element).
 */

/** TensorProto.DataType values (onnx.proto). */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16 } as const

/** AttributeProto.AttributeType values (onnx.proto). */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const

/** Field numbers, from onnx.proto. */
const F = {
  model: { irVersion: 1, producerName: 2, producerVersion: 3, domain: 4, modelVersion: 5, docString: 6, graph: 7, opsetImport: 8, metadataProps: 14 },
  opset: { domain: 1, version: 2 },
  entry: { key: 1, value: 2 },
  graph: { node: 1, name: 2, initializer: 5, docString: 10, input: 11, output: 12, valueInfo: 13 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5, docString: 6, domain: 7 },
  attr: { name: 1, f: 2, i: 3, s: 4, t: 5, g: 6, floats: 7, ints: 8, strings: 9, type: 20 },
  tensor: { dims: 1, dataType: 2, name: 8, rawData: 9, docString: 12, externalData: 13, dataLocation: 14 },
  valueInfo: { name: 1, type: 2, docString: 3 },
  type: { tensorType: 1 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
} as const

const textEncoder = new TextEncoder()

/** Appends protobuf fields; `finish()` returns the concatenated message bytes. */
export class ProtoWriter {
  private readonly parts: Uint8Array[] = []
  private size = 0

  private push(bytes: Uint8Array): this { this.parts.push(bytes); this.size += bytes.length; return this }

  private rawVarint(v: bigint): this {
    let x = BigInt.asUintN(64, v) // negative int64 -> ten-byte two's complement, as protobuf does
    const out: number[] = []
    while (x >= 0x80n) { out.push(Number(x & 0x7fn) | 0x80); x >>= 7n }
    out.push(Number(x))
    return this.push(Uint8Array.from(out))
  }

  private tag(field: number, wire: 0 | 1 | 2 | 5): this { return this.rawVarint(BigInt((field << 3) | wire)) }

  /** int32/int64/uint64/enum/bool field (wire type 0). */
  varint(field: number, v: number | bigint): this { return this.tag(field, 0).rawVarint(BigInt(v)) }
  /** float field (wire type 5, little-endian IEEE 754). */
  float(field: number, v: number): this {
    const b = new Uint8Array(4)
    new DataView(b.buffer).setFloat32(0, v, true)
    return this.tag(field, 5).push(b)
  }
  /** bytes or embedded message field (wire type 2). */
  bytes(field: number, b: Uint8Array): this { return this.tag(field, 2).rawVarint(BigInt(b.length)).push(b) }
  string(field: number, s: string): this { return this.bytes(field, textEncoder.encode(s)) }
  /** Repeated int64, unpacked as proto2 writes it. */
  repeatedVarints(field: number, values: readonly (number | bigint)[]): this {
    for (const v of values) this.varint(field, v)
    return this
  }
  /** Repeated float, unpacked as proto2 writes it. */
  repeatedFloats(field: number, values: readonly number[]): this {
    for (const v of values) this.float(field, v)
    return this
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size)
    let off = 0
    for (const p of this.parts) { out.set(p, off); off += p.length }
    return out
  }
}

/** An initializer or constant. `raw` is row-major little-endian; a Float32Array is taken as FLOAT. */
export interface TensorSpec {
  name: string
  dims: readonly number[]
  dataType?: number
  /** The values as raw_data; ignored when `external` is set. */
  data: Float32Array | Uint8Array
  docString?: string
  /** Values kept in another file (data_location EXTERNAL): where, relative to the model's folder. */
  external?: { location: string; offset: number; length: number }
}

/** One attribute; exactly one value key is set, and it decides the AttributeProto type. */
export type AttributeSpec =
  | { name: string; i: number | bigint } | { name: string; f: number } | { name: string; s: string }
  | { name: string; ints: readonly (number | bigint)[] } | { name: string; floats: readonly number[] }
  | { name: string; strings: readonly string[] } | { name: string; t: TensorSpec }
  | { name: string; g: GraphSpec }

export interface NodeSpec {
  opType: string
  inputs: readonly string[]
  outputs: readonly string[]
  name?: string
  domain?: string
  attributes?: readonly AttributeSpec[]
  docString?: string
}

/** A graph input/output: element type (DataType) and shape, where a string is a symbolic dimension. */
export interface ValueInfoSpec { name: string; elemType: number; shape: readonly (number | string)[]; docString?: string }

export interface GraphSpec {
  name: string
  nodes: readonly NodeSpec[]
  initializers: readonly TensorSpec[]
  inputs: readonly ValueInfoSpec[]
  outputs: readonly ValueInfoSpec[]
  valueInfo?: readonly ValueInfoSpec[]
  docString?: string
}

export interface ModelSpec {
  irVersion: number
  /** A default-domain opset version, or explicit imports. */
  opset: number | readonly { domain: string; version: number }[]
  graph: GraphSpec
  producerName?: string
  producerVersion?: string
  domain?: string
  modelVersion?: number
  docString?: string
  /** ModelProto.metadata_props, written in key order. */
  metadata?: Record<string, string>
}

function tensorBytes(t: TensorSpec): Uint8Array {
  if (!(t.data instanceof Float32Array)) return t.data
  const out = new Uint8Array(t.data.length * 4)
  const view = new DataView(out.buffer)
  t.data.forEach((v, i) => view.setFloat32(4 * i, v, true))
  return out
}

export function encodeTensor(t: TensorSpec): Uint8Array {
  const w = new ProtoWriter()
    .repeatedVarints(F.tensor.dims, t.dims)
    .varint(F.tensor.dataType, t.dataType ?? DataType.FLOAT)
    .string(F.tensor.name, t.name)
  if (t.external) {
    for (const [key, value] of [['location', t.external.location], ['offset', String(t.external.offset)], ['length', String(t.external.length)]] as const) {
      w.bytes(F.tensor.externalData, new ProtoWriter().string(F.entry.key, key).string(F.entry.value, value).finish())
    }
    w.varint(F.tensor.dataLocation, 1)
  } else w.bytes(F.tensor.rawData, tensorBytes(t))
  if (t.docString) w.string(F.tensor.docString, t.docString)
  return w.finish()
}

export function encodeAttribute(a: AttributeSpec): Uint8Array {
  const w = new ProtoWriter().string(F.attr.name, a.name)
  if ('f' in a) w.float(F.attr.f, a.f).varint(F.attr.type, AttrType.FLOAT)
  else if ('i' in a) w.varint(F.attr.i, a.i).varint(F.attr.type, AttrType.INT)
  else if ('s' in a) w.string(F.attr.s, a.s).varint(F.attr.type, AttrType.STRING)
  else if ('t' in a) w.bytes(F.attr.t, encodeTensor(a.t)).varint(F.attr.type, AttrType.TENSOR)
  else if ('g' in a) w.bytes(F.attr.g, encodeGraph(a.g)).varint(F.attr.type, AttrType.GRAPH)
  else if ('floats' in a) w.repeatedFloats(F.attr.floats, a.floats).varint(F.attr.type, AttrType.FLOATS)
  else if ('ints' in a) w.repeatedVarints(F.attr.ints, a.ints).varint(F.attr.type, AttrType.INTS)
  else { for (const s of a.strings) w.string(F.attr.strings, s); w.varint(F.attr.type, AttrType.STRINGS) }
  return w.finish()
}

export function encodeNode(n: NodeSpec): Uint8Array {
  const w = new ProtoWriter()
  for (const i of n.inputs) w.string(F.node.input, i)
  for (const o of n.outputs) w.string(F.node.output, o)
  if (n.name) w.string(F.node.name, n.name)
  w.string(F.node.opType, n.opType)
  for (const a of n.attributes ?? []) w.bytes(F.node.attribute, encodeAttribute(a))
  if (n.docString) w.string(F.node.docString, n.docString)
  if (n.domain) w.string(F.node.domain, n.domain)
  return w.finish()
}

export function encodeValueInfo(v: ValueInfoSpec): Uint8Array {
  const shape = new ProtoWriter()
  for (const d of v.shape) {
    const dim = typeof d === 'string' ? new ProtoWriter().string(F.dim.param, d) : new ProtoWriter().varint(F.dim.value, d)
    shape.bytes(F.shape.dim, dim.finish())
  }
  const tensorType = new ProtoWriter().varint(F.tensorType.elemType, v.elemType).bytes(F.tensorType.shape, shape.finish())
  const type = new ProtoWriter().bytes(F.type.tensorType, tensorType.finish())
  const w = new ProtoWriter().string(F.valueInfo.name, v.name).bytes(F.valueInfo.type, type.finish())
  if (v.docString) w.string(F.valueInfo.docString, v.docString)
  return w.finish()
}

export function encodeGraph(g: GraphSpec): Uint8Array {
  const w = new ProtoWriter()
  for (const n of g.nodes) w.bytes(F.graph.node, encodeNode(n))
  w.string(F.graph.name, g.name)
  for (const t of g.initializers) w.bytes(F.graph.initializer, encodeTensor(t))
  if (g.docString) w.string(F.graph.docString, g.docString)
  for (const v of g.inputs) w.bytes(F.graph.input, encodeValueInfo(v))
  for (const v of g.outputs) w.bytes(F.graph.output, encodeValueInfo(v))
  for (const v of g.valueInfo ?? []) w.bytes(F.graph.valueInfo, encodeValueInfo(v))
  return w.finish()
}

/** A complete ONNX file (serialized ModelProto). */
export function encodeModel(m: ModelSpec): Uint8Array {
  const w = new ProtoWriter().varint(F.model.irVersion, m.irVersion)
  if (m.producerName) w.string(F.model.producerName, m.producerName)
  if (m.producerVersion) w.string(F.model.producerVersion, m.producerVersion)
  if (m.domain) w.string(F.model.domain, m.domain)
  if (m.modelVersion !== undefined) w.varint(F.model.modelVersion, m.modelVersion)
  if (m.docString) w.string(F.model.docString, m.docString)
  w.bytes(F.model.graph, encodeGraph(m.graph))
  const opsets = typeof m.opset === 'number' ? [{ domain: '', version: m.opset }] : m.opset
  for (const o of opsets) {
    const op = new ProtoWriter()
    if (o.domain) op.string(F.opset.domain, o.domain)
    w.bytes(F.model.opsetImport, op.varint(F.opset.version, o.version).finish())
  }
  for (const key of Object.keys(m.metadata ?? {}).sort()) {
    w.bytes(F.model.metadataProps, new ProtoWriter().string(F.entry.key, key).string(F.entry.value, m.metadata![key]!).finish())
  }
  return w.finish()
}

/** Defaults of the models git-zoo writes: IR version 8 with default-domain opset 17. */
export const ONNX_IR_VERSION = 8
export const ONNX_OPSET = 17

export interface MlpOnnxMeta {
  /** Hidden-layer activation; 'gelu' is written as the exact x * 0.5 * (1 + Erf(x / sqrt 2)). */
  activation: 'relu' | 'tanh' | 'sigmoid' | 'gelu'
  inputName?: string
  outputName?: string
  graphName?: string
  producerName?: string
  producerVersion?: string
  docString?: string
  metadata?: Record<string, string>
}

/**
 * An ONNX model computing the logits of an MLP: input float32 [N, in] -> Gemm (transB = 1) per layer,
 * the activation between layers, output float32 [N, classes]. `weights` holds `layers.<i>.weight`
 * [out, in] and `layers.<i>.bias` [out] for i = 0, 1, ... (the order of the list does not matter);
 * the initializers keep those names, so a tensor in the ONNX file and in safetensors share a name.
 */
export function encodeMlpOnnx(weights: readonly { name: string; shape: readonly number[]; data: Float32Array }[], meta: MlpOnnxMeta): Uint8Array {
  const byName = new Map(weights.map((t) => [t.name, t]))
  const layers: { w: TensorSpec; b: TensorSpec }[] = []
  for (let i = 0; byName.has(`layers.${i}.weight`); i++) {
    const w = byName.get(`layers.${i}.weight`)!, b = byName.get(`layers.${i}.bias`)
    if (!b || w.shape.length !== 2 || b.shape.length !== 1 || b.shape[0] !== w.shape[0]) {
      throw new TypeError(`encodeMlpOnnx: layer ${i} needs layers.${i}.weight [out, in] and layers.${i}.bias [out]`)
    }
    layers.push({ w: { name: w.name, dims: w.shape, data: w.data }, b: { name: b.name, dims: b.shape, data: b.data } })
  }
  if (layers.length === 0 || layers.length * 2 !== weights.length) throw new TypeError('encodeMlpOnnx: weights must be exactly layers.<i>.weight/bias for i = 0..L-1')
  const input = meta.inputName ?? 'x', output = meta.outputName ?? 'logits'
  const nodes: NodeSpec[] = []
  const initializers: TensorSpec[] = layers.flatMap((l) => [l.w, l.b])
  if (meta.activation === 'gelu') {
    initializers.push({ name: 'gelu.sqrt2', dims: [], data: Float32Array.of(Math.SQRT2) },
      { name: 'gelu.one', dims: [], data: Float32Array.of(1) }, { name: 'gelu.half', dims: [], data: Float32Array.of(0.5) })
  }
  let h = input
  layers.forEach((l, i) => {
    const z = i === layers.length - 1 ? output : `layers.${i}.z`
    nodes.push({ opType: 'Gemm', name: `layers.${i}`, inputs: [h, l.w.name, l.b.name], outputs: [z], attributes: [{ name: 'transB', i: 1 }] })
    if (i === layers.length - 1) return
    h = `layers.${i}.a`
    if (meta.activation !== 'gelu') {
      const op = { relu: 'Relu', tanh: 'Tanh', sigmoid: 'Sigmoid' }[meta.activation]
      nodes.push({ opType: op, name: `layers.${i}.act`, inputs: [z], outputs: [h] })
      return
    }
    const p = `layers.${i}.gelu`
    nodes.push(
      { opType: 'Div', name: `${p}.div`, inputs: [z, 'gelu.sqrt2'], outputs: [`${p}.div`] },
      { opType: 'Erf', name: `${p}.erf`, inputs: [`${p}.div`], outputs: [`${p}.erf`] },
      { opType: 'Add', name: `${p}.add`, inputs: [`${p}.erf`, 'gelu.one'], outputs: [`${p}.add`] },
      { opType: 'Mul', name: `${p}.mul`, inputs: [z, `${p}.add`], outputs: [`${p}.mul`] },
      { opType: 'Mul', name: `${p}.half`, inputs: [`${p}.mul`, 'gelu.half'], outputs: [h] },
    )
  })
  const inFeatures = layers[0]!.w.dims[1]!, classes = layers[layers.length - 1]!.w.dims[0]!
  return encodeModel({
    irVersion: ONNX_IR_VERSION,
    opset: ONNX_OPSET,
    producerName: meta.producerName ?? 'git-zoo',
    producerVersion: meta.producerVersion,
    docString: meta.docString,
    metadata: meta.metadata,
    graph: {
      name: meta.graphName ?? 'mlp',
      nodes,
      initializers,
      inputs: [{ name: input, elemType: DataType.FLOAT, shape: ['N', inFeatures] }],
      outputs: [{ name: output, elemType: DataType.FLOAT, shape: ['N', classes] }],
    },
  })
}
