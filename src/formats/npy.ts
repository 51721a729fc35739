/**
 * NumPy .npy v1/v2/v3: magic, version, header length, a Python dict literal
 * {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded with spaces and ending in '\n', then
 * the raw array. We parse that literal with a tiny grammar (never eval) and check that the data
 * is exactly prod(shape) * itemsize bytes. Object arrays (descr 'O') are refused: they hold pickles.
 * Errors: FormatError E_NPY.
 */
import { FormatError } from '../errors.js'
import { decodeUtf8, view } from './reader.js'

/** A structured dtype field: [name, descr] or [name, descr, shape]. */
export type NpyDescr = string | NpyField[]
export interface NpyField { name: string; descr: NpyDescr; shape: number[] }

export interface NpyHeader {
  major: number
  minor: number
  descr: NpyDescr
  fortranOrder: boolean
  shape: number[]
  itemSize: number
  /** Absolute offset of the array bytes. */
  dataOffset: number
  dataLength: number
}

const CODE = 'E_NPY'
/** Implementation limit on the header literal (numpy itself refuses > 10000 by default). */
export const NPY_MAX_HEADER = 1 << 20

function fail(message: string, data: Record<string, unknown> = {}): never {
  throw new FormatError(`npy: ${message}`, CODE, data)
}

/** Bytes needed to parse the header: magic + length field + the header literal. */
export function npyHeaderLength(head: Uint8Array): number {
  if (head.length < 10) fail('file too short for an .npy preamble')
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]
  if (!magic.every((b, i) => head[i] === b)) fail('bad magic')
  const major = head[6]!
  if (major === 1) return 10 + view(head).getUint16(8, true)
  if (major !== 2 && major !== 3) fail(`unknown .npy version ${major}.${head[7]}`)
  if (head.length < 12) fail('file too short for an .npy v2 preamble')
  const len = view(head).getUint32(8, true)
  if (len > NPY_MAX_HEADER) fail(`header of ${len} bytes is over the ${NPY_MAX_HEADER}-byte limit`)
  return 12 + len
}

export function parseNpyHeader(head: Uint8Array, fileSize: number): NpyHeader {
  const total = npyHeaderLength(head)
  if (total > fileSize) fail(`header of ${total} bytes runs past the end of the ${fileSize}-byte file`)
  if (head.length < total) fail(`the caller passed ${head.length} bytes but the header needs ${total}`, { needBytes: total })
  const major = head[6]!
  const bytes = head.subarray(major === 1 ? 10 : 12, total)
  const text = major === 3 ? decodeUtf8(bytes) : Buffer.from(bytes).toString('latin1')
  if (text === undefined) fail('v3 header is not valid UTF-8')
  if (!text.endsWith('\n')) fail('header does not end with a newline')
  let literal: PyValue
  try {
    literal = new PyLiteral(text).parseAll()
  } catch (err) {
    if (err instanceof SyntaxError) fail(`header is not a plain dict literal: ${err.message}`)
    throw err
  }
  if (!(literal instanceof Map)) fail('header is not a dict')
  const keys = [...literal.keys()].sort().join(',')
  if (keys !== 'descr,fortran_order,shape') fail(`header keys are {${keys}}, expected descr, fortran_order, shape`)
  const fortran = literal.get('fortran_order')
  if (typeof fortran !== 'boolean') fail('fortran_order is not True or False')
  const shape = intTuple(literal.get('shape'), 'shape')
  const descr = toDescr(literal.get('descr')!, 0)
  const itemSize = descrSize(descr)
  let numel = 1n
  for (const d of shape) numel *= BigInt(d)
  const dataLength = numel * BigInt(itemSize)
  if (dataLength !== BigInt(fileSize - total)) {
    fail(`shape (${shape.join(', ')}) of itemsize ${itemSize} is ${dataLength} bytes but the file holds ${fileSize - total} after the header`)
  }
  return { major, minor: head[7]!, descr, fortranOrder: fortran, shape, itemSize, dataOffset: total, dataLength: Number(dataLength) }
}

/** [header bytes, array bytes], dropping an empty array part. */
export function npySegments(header: NpyHeader, fileSize: number): number[] {
  if (header.dataOffset + header.dataLength !== fileSize) fail('layout does not match the file size')
  return header.dataLength > 0 ? [header.dataOffset, header.dataLength] : [header.dataOffset]
}

function intTuple(v: PyValue | undefined, what: string): number[] {
  if (!(v instanceof PyTuple)) fail(`${what} is not a tuple`)
  return v.items.map((x) => {
    if (typeof x !== 'bigint' || x < 0n || x > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} has an entry that is not a non-negative integer`)
    return Number(x)
  })
}

function toDescr(v: PyValue, depth: number): NpyDescr {
  if (depth > 8) fail('structured dtype nests too deep')
  if (typeof v === 'string') return v
  if (!Array.isArray(v)) fail('descr is neither a string nor a list of fields')
  return v.map((f): NpyField => {
    if (!(f instanceof PyTuple) || f.items.length < 2 || f.items.length > 3) fail('a descr field is not (name, dtype[, shape])')
    const [n, d, s] = f.items
    let name: string
    if (typeof n === 'string') name = n
    else if (n instanceof PyTuple && n.items.length === 2 && typeof n.items[1] === 'string') name = n.items[1] // (title, name)
    else return fail('a descr field name is not a string')
    return { name, descr: toDescr(d!, depth + 1), shape: s === undefined ? [] : intTuple(s, `field ${name} shape`) }
  })
}

const SIMPLE = /^([<>|=]?)([biufcmMSaUV])(\d*)(\[[A-Za-z0-9]+\])?$/

/** Item size in bytes of a descr; object dtypes are refused. */
export function descrSize(d: NpyDescr): number {
  if (Array.isArray(d)) {
    let total = 0n
    for (const f of d) {
      let n = BigInt(descrSize(f.descr))
      for (const s of f.shape) n *= BigInt(s)
      total += n
    }
    if (total > BigInt(Number.MAX_SAFE_INTEGER)) fail('structured dtype is too large')
    return Number(total)
  }
  if (/^[<>|=]?O\d*$/.test(d)) fail(`descr ${JSON.stringify(d)} is an object dtype: its data is a pickle`)
  const m = SIMPLE.exec(d)
  if (!m) fail(`unsupported descr ${JSON.stringify(d)}`)
  const [, , kind, digits, unit] = m
  const n = digits === '' ? undefined : Number(digits)
  if (unit !== undefined && kind !== 'm' && kind !== 'M') fail(`unsupported descr ${JSON.stringify(d)}`)
  switch (kind) {
    case 'b': case 'i': case 'u': case 'f': case 'c':
      if (n === undefined || ![1, 2, 4, 8, 16, 32].includes(n)) fail(`unsupported descr ${JSON.stringify(d)}`)
      return n
    case 'm': case 'M':
      if (n !== 8) fail(`unsupported descr ${JSON.stringify(d)}`)
      return 8
    case 'S': case 'a': case 'V':
      if (n === undefined) fail(`descr ${JSON.stringify(d)} has no size`)
      return n
    case 'U':
      if (n === undefined) fail(`descr ${JSON.stringify(d)} has no size`)
      return 4 * n
    default: return fail(`unsupported descr ${JSON.stringify(d)}`)
  }
}

// ---- a tiny parser for the Python literals numpy writes ----

type PyValue = string | bigint | boolean | null | PyValue[] | PyTuple | Map<string, PyValue>
class PyTuple { constructor(readonly items: PyValue[]) {} }

class PyLiteral {
  private pos = 0
  private depth = 0
  constructor(private readonly s: string) {}

  parseAll(): PyValue {
    const v = this.value()
    this.ws()
    if (this.pos !== this.s.length) throw new SyntaxError(`trailing characters at ${this.pos}`)
    return v
  }

  private ws(): void { while (this.pos < this.s.length && ' \t\n\r'.includes(this.s[this.pos]!)) this.pos++ }

  private value(): PyValue {
    if (++this.depth > 32) throw new SyntaxError('nesting too deep')
    try {
      this.ws()
      const c = this.s[this.pos]
      if (c === '{') return this.dict()
      if (c === '(') return new PyTuple(this.seq(')'))
      if (c === '[') return this.seq(']')
      if (c === "'" || c === '"') return this.str()
      const word = /^(True|False|None|-?\d+L?)/.exec(this.s.slice(this.pos, this.pos + 32))
      if (!word) throw new SyntaxError(`unexpected character at ${this.pos}`)
      this.pos += word[0].length
      if (word[0] === 'True') return true
      if (word[0] === 'False') return false
      if (word[0] === 'None') return null
      return BigInt(word[0].replace(/L$/, ''))
    } finally {
      this.depth--
    }
  }

  private str(): string {
    const q = this.s[this.pos]!
    const end = this.s.indexOf(q, this.pos + 1)
    if (end < 0) throw new SyntaxError('unterminated string')
    const body = this.s.slice(this.pos + 1, end)
    if (body.includes('\\') || body.includes('\n')) throw new SyntaxError('escapes in strings are not supported')
    this.pos = end + 1
    return body
  }

  private seq(close: string): PyValue[] {
    this.pos++
    const items: PyValue[] = []
    for (;;) {
      this.ws()
      if (this.s[this.pos] === close) { this.pos++; return items }
      items.push(this.value())
      this.ws()
      if (this.s[this.pos] === ',') { this.pos++; continue }
      if (this.s[this.pos] === close) { this.pos++; return items }
      throw new SyntaxError(`expected "," or "${close}" at ${this.pos}`)
    }
  }

  private dict(): Map<string, PyValue> {
    this.pos++
    const map = new Map<string, PyValue>()
    for (;;) {
      this.ws()
      if (this.s[this.pos] === '}') { this.pos++; return map }
      const c = this.s[this.pos]
      if (c !== "'" && c !== '"') throw new SyntaxError(`expected a string key at ${this.pos}`)
      const key = this.str()
      if (map.has(key)) throw new SyntaxError(`duplicate key ${key}`)
      this.ws()
      if (this.s[this.pos] !== ':') throw new SyntaxError(`expected ":" at ${this.pos}`)
      this.pos++
      map.set(key, this.value())
      this.ws()
      if (this.s[this.pos] === ',') { this.pos++; continue }
      if (this.s[this.pos] === '}') { this.pos++; return map }
      throw new SyntaxError(`expected "," or "}" at ${this.pos}`)
    }
  }
}
