/**
 * A minimal protobuf wire-format reader: tags, varints, fixed32/64 and length-delimited extents.
 * It knows nothing of any schema. Two forms:
 *   - `fieldsOf(bytes)`: synchronous, over a small message already in memory;
 *   - `ProtoFile.fields(start, end)`: asynchronous, over a file read through `ReadAt` with a
 *     bounded window, so a 2 GiB model is walked without reading its tensor payloads.
 * Every length is checked against the enclosing message before anything is read or allocated;
 * malformed input is a FormatError with code E_PROTOBUF. Groups (wire types 3, 4) are refused:
 * no ONNX writer emits them.
 */
import { FormatError } from '../errors.js'
import { readExact, type ReadAt } from '../formats/reader.js'

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const

export interface Field {
  field: number
  wire: number
  /** The varint, fixed64 or fixed32 value; for LEN fields the payload length. */
  value: bigint
  /** For LEN fields: the payload extent [start, end), absolute (file offsets or indexes into `bytes`). */
  start: number
  end: number
}

const CODE = 'E_PROTOBUF'

export function protoFail(message: string, data: Record<string, unknown> = {}): never {
  throw new FormatError(`protobuf: ${message}`, CODE, data)
}

/** Decode a varint at `pos` of `buf`; returns [value, next position]. */
export function varintAt(buf: Uint8Array, pos: number, end: number): [bigint, number] {
  let lo = 0
  let i = 0
  // fast path: up to 4 bytes fit in 28 bits
  for (; i < 4; i++) {
    if (pos + i >= end) protoFail(`varint runs past the end of its message at ${pos}`)
    const b = buf[pos + i]!
    lo |= (b & 0x7f) << (7 * i)
    if ((b & 0x80) === 0) return [BigInt(lo >>> 0), pos + i + 1]
  }
  let value = BigInt(lo >>> 0)
  for (; i < 10; i++) {
    if (pos + i >= end) protoFail(`varint runs past the end of its message at ${pos}`)
    const b = buf[pos + i]!
    value |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, value), pos + i + 1]
  }
  return protoFail(`varint longer than 10 bytes at ${pos}`)
}

/** An int64 field value as a JS number (two's complement), or a FormatError when it is not safe. */
export function int64(v: bigint, what: string): number {
  const s = BigInt.asIntN(64, v)
  if (s > BigInt(Number.MAX_SAFE_INTEGER) || s < BigInt(Number.MIN_SAFE_INTEGER)) protoFail(`${what} ${s} is out of range`)
  return Number(s)
}

/** Reads one field header and its value from an in-memory buffer. */
function readField(buf: Uint8Array, pos: number, end: number, base: number): [Field, number] {
  const [tag, p] = varintAt(buf, pos, end)
  const field = Number(tag >> 3n)
  const wire = Number(tag & 7n)
  if (field === 0 || tag > 0xffffffffn) protoFail(`bad field tag ${tag} at ${base + pos}`)
  switch (wire) {
    case WIRE.VARINT: {
      const [v, q] = varintAt(buf, p, end)
      return [{ field, wire, value: v, start: base + p, end: base + q }, q]
    }
    case WIRE.I64: {
      if (p + 8 > end) protoFail(`fixed64 field ${field} runs past its message at ${base + p}`)
      const v = new DataView(buf.buffer, buf.byteOffset + p, 8).getBigUint64(0, true)
      return [{ field, wire, value: v, start: base + p, end: base + p + 8 }, p + 8]
    }
    case WIRE.I32: {
      if (p + 4 > end) protoFail(`fixed32 field ${field} runs past its message at ${base + p}`)
      const v = new DataView(buf.buffer, buf.byteOffset + p, 4).getUint32(0, true)
      return [{ field, wire, value: BigInt(v), start: base + p, end: base + p + 4 }, p + 4]
    }
    case WIRE.LEN: {
      const [len, q] = varintAt(buf, p, end)
      if (len > BigInt(end - q)) protoFail(`field ${field} of ${len} bytes at ${base + q} runs past its message (ends at ${base + end})`)
      const n = Number(len)
      return [{ field, wire, value: len, start: base + q, end: base + q + n }, q + n]
    }
    default:
      return protoFail(`field ${field} has wire type ${wire} (groups and unknown wire types are not read) at ${base + pos}`)
  }
}

/** Every field of the message in `bytes` (offsets are indexes into `bytes`). */
export function* fieldsOf(bytes: Uint8Array): Generator<Field> {
  let pos = 0
  while (pos < bytes.length) {
    const [f, next] = readField(bytes, pos, bytes.length, 0)
    yield f
    pos = next
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function protoString(bytes: Uint8Array, what: string): string {
  try { return utf8.decode(bytes) } catch { return protoFail(`${what} is not valid UTF-8`) }
}

/** Values of a repeated varint field: one element, or a packed run when the wire type is LEN. */
export function repeatedVarints(f: Field, bytes: Uint8Array | undefined): bigint[] {
  if (f.wire === WIRE.VARINT) return [f.value]
  if (f.wire !== WIRE.LEN || !bytes) protoFail(`field ${f.field} is neither a varint nor a packed run`)
  const out: bigint[] = []
  let pos = 0
  while (pos < bytes.length) {
    const [v, q] = varintAt(bytes, pos, bytes.length)
    out.push(v)
    pos = q
  }
  return out
}

/**
 * A protobuf file walked through `read(offset, length)`. Field headers are read through a window
 * (64 KiB by default); payloads are only read when `bytes()` asks for them.
 */
export class ProtoFile {
  private buf: Uint8Array = new Uint8Array(0)
  private bufStart = 0

  constructor(private readonly read: ReadAt, readonly size: number, private readonly window = 64 * 1024) {}

  /** Bytes [start, end) of the file; refuses more than `cap` bytes. */
  async bytes(start: number, end: number, cap = 64 * 1024 * 1024): Promise<Uint8Array> {
    if (start < 0 || end > this.size || end < start) protoFail(`extent [${start}, ${end}) is outside the ${this.size}-byte file`)
    if (end - start > cap) protoFail(`a ${end - start}-byte message is over the ${cap}-byte limit for reading whole`)
    if (start >= this.bufStart && end <= this.bufStart + this.buf.length) {
      return this.buf.subarray(start - this.bufStart, end - this.bufStart)
    }
    return readExact(this.read, start, end - start)
  }

  /** Fields of the message occupying [start, end) of the file. */
  async *fields(start: number, end: number): AsyncGenerator<Field> {
    if (start < 0 || end > this.size || end < start) protoFail(`message extent [${start}, ${end}) is outside the ${this.size}-byte file`)
    let pos = start
    while (pos < end) {
      // a field header is at most 10 (tag) + 10 (varint or length) bytes; fixed64 needs 8
      const want = Math.min(end - pos, 20)
      if (pos < this.bufStart || pos + want > this.bufStart + this.buf.length) {
        this.bufStart = pos
        this.buf = await readExact(this.read, pos, Math.min(end - pos, Math.max(this.window, want)))
      }
      const local = pos - this.bufStart
      const limit = Math.min(this.buf.length, end - this.bufStart)
      // readField checks LEN payloads against `limit`; a payload beyond the window is fine as long as
      // it stays inside the message, so give it the message end, translated into window coordinates
      const [f, next] = readFieldHeader(this.buf, local, limit, end - this.bufStart, this.bufStart)
      pos = this.bufStart + next // before yielding: the consumer may move the window
      yield f
    }
  }
}

/**
 * Like readField, but a LEN payload may extend beyond the window (up to `msgEnd`, in window
 * coordinates): only the header has to be inside the window.
 */
function readFieldHeader(buf: Uint8Array, pos: number, winEnd: number, msgEnd: number, base: number): [Field, number] {
  const [tag, p] = varintAt(buf, pos, winEnd)
  const field = Number(tag >> 3n)
  const wire = Number(tag & 7n)
  if (wire === WIRE.LEN) {
    if (field === 0 || tag > 0xffffffffn) protoFail(`bad field tag ${tag} at ${base + pos}`)
    const [len, q] = varintAt(buf, p, winEnd)
    if (len > BigInt(msgEnd - q)) protoFail(`field ${field} of ${len} bytes at ${base + q} runs past its message (ends at ${base + msgEnd})`)
    const n = Number(len)
    return [{ field, wire, value: len, start: base + q, end: base + q + n }, q + n]
  }
  return readField(buf, pos, winEnd, base)
}
