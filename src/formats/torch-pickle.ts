/**
 * A restricted reader of the `data.pkl` that `torch.save` writes (spec/formats.md, "PyTorch
 * checkpoints"). It is a pickle VM for the opcodes torch's pickler emits (protocol 2, plus the
 * protocol 3-4 framing ops), and like torch's own `weights_only` unpickler it resolves globals only
 * from an allow-list: `collections.OrderedDict`, the tensor rebuild functions of `torch._utils`,
 * `torch.Size`, `_codecs.encode`, and storage classes and dtypes as plain references. Any other
 * global refuses the file the moment it is named (E_TORCH_REFUSED); nothing is ever imported or
 * executed: the allowed callables are interpreted here, building plain values.
 *
 * The result is a tree of plain values in which every tensor is a `TorchTensor`: a storage (dtype,
 * key of the zip entry `<prefix>/data/<key>`, element count), an element offset, a shape and a
 * stride. `torchTensorsOf` flattens the tree into named tensors.
 */
import { CheckError, FormatError } from '../errors.js'

export class PyTuple { constructor(readonly items: PyValue[]) {} }
export class PyList { constructor(readonly items: PyValue[]) {} }
export type PyKey = string | number | bigint | boolean | null
export class PyDict {
  readonly map = new Map<PyKey, PyValue>()
  /** Attributes set by BUILD (a state_dict's `_metadata`). */
  attrs: PyDict | undefined
  constructor(readonly ordered: boolean) {}
}
export class PyBytes { constructor(readonly bytes: Uint8Array) {} }
export class PyGlobal { constructor(readonly name: string) {} }

export interface TorchStorage {
  kind: 'storage'
  /** safetensors dtype name of the storage class (torch.FloatStorage -> F32). */
  dtype: string
  /** The storage's zip entry is `<prefix>/data/<key>`. */
  key: string
  location: string
  /** Elements (bytes for an untyped storage). */
  numel: number
}

export class TorchTensor {
  constructor(readonly storage: TorchStorage, readonly dtype: string, readonly offset: number,
              readonly shape: number[], readonly stride: number[], readonly parameter: boolean) {}
  get numel(): number { return this.shape.reduce((a, b) => a * b, 1) }
  /** Row-major contiguous (dimensions of size 1 may have any stride). */
  get contiguous(): boolean {
    let expect = 1
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] === 0) return true
      if (this.shape[i] !== 1 && this.stride[i] !== expect) return false
      expect *= this.shape[i]!
    }
    return true
  }
}

export type PyValue = null | boolean | number | bigint | string | PyTuple | PyList | PyDict | PyBytes | PyGlobal | TorchStorage | TorchTensor

/** Storage classes -> safetensors dtype names (and back, for the writer). */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, string>> = {
  DoubleStorage: 'F64', FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
  ComplexFloatStorage: 'C64', ComplexDoubleStorage: 'C128', UntypedStorage: 'U8',
}
/** torch dtype objects (for _rebuild_tensor_v3) -> safetensors dtype names. */
export const TORCH_DTYPES: Readonly<Record<string, string>> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16',
  int8: 'I8', uint8: 'U8', bool: 'BOOL', uint16: 'U16', uint32: 'U32', uint64: 'U64', complex64: 'C64', complex128: 'C128',
}
export const TORCH_ITEM_SIZE: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8, C64: 8, C128: 16,
}

/** Globals the reader resolves (everything else refuses the file). */
export const TORCH_ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.Size',
  '_codecs.encode',
  ...Object.keys(TORCH_STORAGE_DTYPES).map((s) => `torch.${s}`),
  ...Object.keys(TORCH_DTYPES).map((d) => `torch.${d}`),
])

/** Containers a walk of the loaded object may visit (shared containers are visited once per path). */
export const WALK_BUDGET = 1 << 20

/** data.pkl larger than this is refused (a state dict of 100,000 tensors is a few MiB). */
export const TORCH_PICKLE_MAX = 64 * 1024 * 1024

const MARK = Symbol('mark')
type Slot = PyValue | typeof MARK

function malformed(message: string): never {
  throw new FormatError(`torch data.pkl: ${message}`, 'E_TORCH_PICKLE')
}
function refused(message: string, data: Record<string, unknown> = {}): never {
  throw new CheckError(`torch data.pkl: ${message}; the file is refused (nothing was run). Only state dicts and checkpoints of tensors, dicts, lists and numbers are read: save with torch.save(model.state_dict(), path)`, 'E_TORCH_REFUSED', data)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function describe(v: PyValue | undefined): string {
  if (v === null) return 'None'
  if (v === undefined) return 'nothing'
  if (typeof v !== 'object') return typeof v
  if (v instanceof PyGlobal) return v.name
  if (v instanceof TorchTensor) return 'a tensor'
  if ('kind' in v) return 'a storage'
  return v.constructor.name.replace(/^Py/, '').toLowerCase()
}

function int(v: PyValue, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v)
  return malformed(`${what} is ${describe(v)}, not an integer`)
}
function ints(v: PyValue, what: string): number[] {
  if (!(v instanceof PyTuple) && !(v instanceof PyList)) return malformed(`${what} is ${describe(v)}, not a tuple`)
  return v.items.map((x, i) => int(x, `${what}[${i}]`))
}
function emptyHooks(v: PyValue | undefined): void {
  if (v === undefined || v === null) return
  if (v instanceof PyDict && v.map.size === 0) return
  refused('a tensor carries backward hooks')
}

/** The tensor a rebuild function describes, checked against its storage. */
function rebuild(fn: string, args: PyValue[]): TorchTensor {
  const [storage, offset, size, stride] = args
  const parameter = fn.startsWith('torch._utils._rebuild_parameter')
  if (parameter) {
    const data = args[0]
    if (!(data instanceof TorchTensor)) return malformed(`${fn} takes a tensor, got ${describe(data)}`)
    emptyHooks(args[2])
    return new TorchTensor(data.storage, data.dtype, data.offset, data.shape, data.stride, true)
  }
  if (!storage || typeof storage !== 'object' || !('kind' in storage) || storage.kind !== 'storage') return malformed(`${fn} takes a storage, got ${describe(storage)}`)
  if (args.length < 4) malformed(`${fn} takes at least 4 arguments, got ${args.length}`)
  if (fn === 'torch._utils._rebuild_tensor_v2') emptyHooks(args[5])
  let dtype = storage.dtype
  if (fn === 'torch._utils._rebuild_tensor_v3') {
    emptyHooks(args[5])
    const d = args[6]
    if (!(d instanceof PyGlobal) || !TORCH_DTYPES[d.name.slice('torch.'.length)]) return malformed(`${fn}: dtype is ${describe(d)}`)
    dtype = TORCH_DTYPES[d.name.slice('torch.'.length)]!
  }
  const shape = ints(size!, 'tensor size'), strides = ints(stride!, 'tensor stride')
  const off = int(offset!, 'storage offset')
  if (shape.length !== strides.length) malformed(`size [${shape}] and stride [${strides}] differ in rank`)
  if (off < 0 || shape.some((d) => d < 0) || strides.some((s) => s < 0)) malformed(`negative offset, size or stride in a tensor of storage ${storage.key}`)
  const t = new TorchTensor(storage, dtype, off, shape, strides, false)
  // every element the strides reach must lie inside the storage
  if (t.numel > 0) {
    let last = off
    for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * strides[i]!
    const bytes = storage.numel * TORCH_ITEM_SIZE[storage.dtype]!
    if ((last + 1) * TORCH_ITEM_SIZE[dtype]! > bytes) malformed(`a tensor of storage ${storage.key} reaches element ${last}, past the storage's ${bytes} bytes`)
  }
  return t
}

/**
 * Runs data.pkl in the restricted VM and returns the object it holds. Throws E_TORCH_REFUSED for a
 * global or opcode outside what torch.save of tensors, dicts, lists and numbers emits, and
 * E_TORCH_PICKLE for a malformed stream.
 */
export function readTorchPickle(bytes: Uint8Array): PyValue {
  if (bytes.length > TORCH_PICKLE_MAX) malformed(`${bytes.length} bytes is over the ${TORCH_PICKLE_MAX}-byte limit`)
  const stack: Slot[] = []
  const memo = new Map<number, PyValue>()
  const storages = new Map<string, TorchStorage>()
  const n = bytes.length
  let pos = 0
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const need = (k: number): void => { if (pos + k > n) malformed(`truncated: needs ${k} bytes at offset ${pos}`) }
  const take = (k: number): Uint8Array => { need(k); const b = bytes.subarray(pos, pos + k); pos += k; return b }
  const u8 = (): number => { need(1); return bytes[pos++]! }
  const u16 = (): number => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v }
  const i32 = (): number => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v }
  const u32 = (): number => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v }
  const u64 = (): number => {
    need(8)
    const v = dv.getBigUint64(pos, true); pos += 8
    if (v > BigInt(n)) malformed(`length ${v} at offset ${pos - 8} is longer than the stream`)
    return Number(v)
  }
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos)
    if (nl < 0) malformed(`unterminated text argument at offset ${pos}`)
    const s = Buffer.from(bytes.subarray(pos, nl)).toString('latin1')
    pos = nl + 1
    return s
  }
  const text = (b: Uint8Array): string => { try { return utf8.decode(b) } catch { return malformed(`invalid UTF-8 at offset ${pos}`) } }
  const pop = (): PyValue => {
    const v = stack.pop()
    if (v === undefined) malformed(`stack underflow at offset ${pos - 1}`)
    if (v === MARK) malformed(`unexpected MARK at offset ${pos - 1}`)
    return v as PyValue
  }
  const top = (): PyValue => {
    const v = stack[stack.length - 1]
    if (v === undefined || v === MARK) malformed(`stack underflow at offset ${pos - 1}`)
    return v as PyValue
  }
  const popMark = (): PyValue[] => {
    for (let i = stack.length - 1; i >= 0; i--) if (stack[i] === MARK) return stack.splice(i).slice(1) as PyValue[]
    return malformed(`no MARK at offset ${pos - 1}`)
  }
  const memoGet = (i: number): void => {
    const v = memo.get(i)
    if (v === undefined) malformed(`memo ${i} read before it was written (offset ${pos})`)
    stack.push(v)
  }
  const decimal = (s: string, at: number): PyValue => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s
    if (t === '00') return false // protocol 0 writes False and True as INT 00 and 01
    if (t === '01') return true
    if (!/^[-+]?\d{1,40}$/.test(t)) malformed(`bad integer ${JSON.stringify(s)} at offset ${at}`)
    const b = BigInt(t)
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b
  }
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0
    let v = 0n
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!)
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length)
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
  }
  const key = (k: PyValue): PyKey => {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return k
    return refused(`a dict key is ${describe(k)}; only text, numbers, booleans and None are read as keys`)
  }
  const setItem = (d: PyValue, k: PyValue, v: PyValue): void => {
    if (!(d instanceof PyDict)) return malformed(`SETITEM on ${describe(d)}`)
    d.map.set(key(k), v)
  }
  const global = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`
    if (!TORCH_ALLOWED_GLOBALS.has(full)) refused(`global ${full} is not on the allow-list`, { global: full })
    return new PyGlobal(full)
  }
  const call = (callee: PyValue, args: PyValue): PyValue => {
    if (!(callee instanceof PyGlobal)) return refused(`REDUCE calls ${describe(callee)}`)
    if (!(args instanceof PyTuple)) return malformed(`REDUCE arguments are ${describe(args)}, not a tuple`)
    const a = args.items
    switch (callee.name) {
      case 'collections.OrderedDict': {
        const d = new PyDict(true)
        if (a.length === 0) return d
        const items = a[0]
        if (a.length === 1 && (items instanceof PyList || items instanceof PyTuple)) {
          for (const pair of items.items) {
            if (!(pair instanceof PyTuple) || pair.items.length !== 2) return malformed('OrderedDict items are not pairs')
            d.map.set(key(pair.items[0]!), pair.items[1]!)
          }
          return d
        }
        return malformed('OrderedDict takes no arguments or a list of pairs')
      }
      case 'torch._utils._rebuild_tensor': case 'torch._utils._rebuild_tensor_v2': case 'torch._utils._rebuild_tensor_v3':
      case 'torch._utils._rebuild_parameter': case 'torch._utils._rebuild_parameter_with_state':
        return rebuild(callee.name, a)
      case 'torch.Size':
        if (a.length !== 1) malformed('torch.Size takes one tuple')
        return new PyTuple(ints(a[0]!, 'torch.Size'))
      case '_codecs.encode': {
        const [s, enc] = a
        if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) return refused('_codecs.encode is called with something other than (text, "latin1")')
        return new PyBytes(Buffer.from(s, 'latin1'))
      }
      default:
        return refused(`${callee.name} is not callable (it is only read as a value)`)
    }
  }

  for (;;) {
    if (pos >= n) malformed('stream ends before STOP')
    const at = pos
    const op = bytes[pos++]!
    switch (op) {
      case 0x80: { const v = u8(); if (v > 5) malformed(`unknown protocol ${v}`); break } // PROTO
      case 0x95: u64(); break // FRAME
      case 0x2e: { // STOP
        const v = pop()
        if (stack.length > 0) malformed(`${stack.length} values left on the stack at STOP`)
        if (pos !== n) malformed(`${n - pos} bytes after STOP`)
        return v
      }
      case 0x28: stack.push(MARK); break // MARK
      case 0x30: if (stack.pop() === undefined) malformed(`stack underflow at offset ${at}`); break // POP
      case 0x31: popMark(); break // POP_MARK
      case 0x32: stack.push(top()); break // DUP
      case 0x4e: stack.push(null); break // NONE
      case 0x88: stack.push(true); break // NEWTRUE
      case 0x89: stack.push(false); break // NEWFALSE
      case 0x49: case 0x4c: stack.push(decimal(line(), at)); break // INT, LONG
      case 0x46: { // FLOAT: repr() text
        const t = line()
        const special: Record<string, number> = { inf: Infinity, '-inf': -Infinity, nan: NaN }
        const v = t in special ? special[t]! : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t) ? Number(t) : malformed(`bad float ${JSON.stringify(t)} at offset ${at}`)
        stack.push(v)
        break
      }
      case 0x4a: stack.push(i32()); break // BININT
      case 0x4b: stack.push(u8()); break // BININT1
      case 0x4d: stack.push(u16()); break // BININT2
      case 0x47: { need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break } // BINFLOAT (big-endian)
      case 0x8a: stack.push(long(take(u8()))); break // LONG1
      case 0x8b: { const len = i32(); if (len < 0 || len > 64) malformed(`LONG4 of ${len} bytes at offset ${at}`); stack.push(long(take(len))); break }
      case 0x54: { const len = i32(); if (len < 0) malformed(`negative length at offset ${at}`); stack.push(Buffer.from(take(len)).toString('latin1')); break } // BINSTRING
      case 0x55: stack.push(Buffer.from(take(u8())).toString('latin1')); break // SHORT_BINSTRING
      case 0x56: { // UNICODE (protocol 0): raw-unicode-escape text, only \uXXXX and \UXXXXXXXX escaped
        const t = line().replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u: string | undefined, v: string | undefined) => {
          const cp = parseInt(u ?? v!, 16)
          return cp <= 0x10ffff ? String.fromCodePoint(cp) : malformed(`bad escape in UNICODE at offset ${at}`)
        })
        stack.push(t)
        break
      }
      case 0x50: line(); return refused(`PERSID at offset ${at}: text persistent ids (pickle protocol 0) do not name storages torch can load; save with torch.save's default protocol`)
      case 0x58: stack.push(text(take(u32()))); break // BINUNICODE
      case 0x8c: stack.push(text(take(u8()))); break // SHORT_BINUNICODE
      case 0x8d: stack.push(text(take(u64()))); break // BINUNICODE8
      case 0x42: stack.push(new PyBytes(take(u32()).slice())); break // BINBYTES
      case 0x43: stack.push(new PyBytes(take(u8()).slice())); break // SHORT_BINBYTES
      case 0x8e: stack.push(new PyBytes(take(u64()).slice())); break // BINBYTES8
      case 0x29: stack.push(new PyTuple([])); break // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break } // TUPLE3
      case 0x5d: stack.push(new PyList([])); break // EMPTY_LIST
      case 0x6c: stack.push(new PyList(popMark())); break // LIST
      case 0x61: { const v = pop(); const l = top(); if (!(l instanceof PyList)) malformed(`APPEND to ${describe(l)} at offset ${at}`); l.items.push(v); break }
      case 0x65: { const vs = popMark(); const l = top(); if (!(l instanceof PyList)) malformed(`APPENDS to ${describe(l)} at offset ${at}`); l.items.push(...vs); break }
      case 0x7d: stack.push(new PyDict(false)); break // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark()
        if (items.length % 2) malformed(`odd DICT at offset ${at}`)
        const d = new PyDict(false)
        for (let i = 0; i < items.length; i += 2) d.map.set(key(items[i]!), items[i + 1]!)
        stack.push(d)
        break
      }
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark()
        if (items.length % 2) malformed(`odd SETITEMS at offset ${at}`)
        const d = top()
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i]!, items[i + 1]!)
        break
      }
      case 0x67: { const s = line(); if (!/^\d{1,9}$/.test(s)) malformed(`bad memo index at offset ${at}`); memoGet(Number(s)); break } // GET
      case 0x68: memoGet(u8()); break // BINGET
      case 0x6a: memoGet(u32()); break // LONG_BINGET
      case 0x70: { const s = line(); if (!/^\d{1,9}$/.test(s)) malformed(`bad memo index at offset ${at}`); memo.set(Number(s), top()); break } // PUT
      case 0x71: memo.set(u8(), top()); break // BINPUT
      case 0x72: memo.set(u32(), top()); break // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break // MEMOIZE
      case 0x63: { const m = line(); const nm = line(); stack.push(global(m, nm)); break } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const nm = pop(); const m = pop()
        if (typeof m !== 'string' || typeof nm !== 'string') malformed(`STACK_GLOBAL operands are not text at offset ${at}`)
        stack.push(global(m as string, nm as string))
        break
      }
      case 0x52: { const args = pop(); const callee = pop(); stack.push(call(callee, args)); break } // REDUCE
      case 0x62: { // BUILD
        const state = pop()
        const inst = top()
        if (inst instanceof PyDict && state instanceof PyDict) { inst.attrs = state; break } // an OrderedDict's __dict__ (state_dict()._metadata)
        if (inst instanceof TorchTensor && (state === null || (state instanceof PyDict && state.map.size === 0))) break
        if (inst instanceof TorchTensor && state instanceof PyTuple && state.items.every((x) => x === null || (x instanceof PyDict && x.map.size === 0))) break // a parameter's empty state
        refused(`BUILD sets state on ${describe(inst)} at offset ${at}`)
        break
      }
      case 0x51: { // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = pop()
        if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') return refused(`a persistent id at offset ${at} is not a storage`)
        const [, cls, k, loc, numel] = pid.items
        if (!(cls instanceof PyGlobal) || !TORCH_STORAGE_DTYPES[cls.name.slice('torch.'.length)]) return refused(`storage type ${describe(cls!)} is not on the allow-list`)
        if (typeof k !== 'string' || !/^[A-Za-z0-9_]{1,64}$/.test(k)) return malformed(`storage key ${JSON.stringify(k)} at offset ${at}`)
        if (typeof loc !== 'string') return malformed(`storage location at offset ${at} is ${describe(loc!)}`)
        const count = int(numel!, 'storage size')
        if (count < 0) malformed(`storage ${k} has a negative size`)
        const dtype = TORCH_STORAGE_DTYPES[cls.name.slice('torch.'.length)]!
        const prev = storages.get(k)
        if (prev && (prev.dtype !== dtype || prev.numel !== count)) malformed(`storage ${k} is declared twice with different types or sizes`)
        const s: TorchStorage = prev ?? { kind: 'storage', dtype, key: k, location: loc, numel: count }
        storages.set(k, s)
        stack.push(s)
        break
      }
      default:
        return refused(`opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at} is not one torch.save of a state dict uses`)
    }
  }
}

export interface NamedTensor { name: string; tensor: TorchTensor }

/**
 * The tensors of a loaded object, named by their key path joined with '.': a state dict gives its
 * own keys (`conv1.weight`), a checkpoint `{'state_dict': sd, ...}` gives `state_dict.conv1.weight`,
 * list and tuple elements their index. Order: the pickle's (insertion) order. A name reached twice
 * (a key that itself holds a dot, clashing with a nested one), a container holding itself, or more
 * than WALK_BUDGET containers on the walk is malformed.
 */
export function torchTensorsOf(root: PyValue): NamedTensor[] {
  const out: NamedTensor[] = []
  const seen = new Set<string>()
  const onPath = new Set<object>()
  let steps = 0
  const walk = (v: PyValue, name: string, depth: number): void => {
    if (v instanceof TorchTensor) {
      if (seen.has(name)) malformed(`two tensors are both named ${JSON.stringify(name)}`)
      seen.add(name)
      out.push({ name, tensor: v })
      return
    }
    if (!(v instanceof PyDict || v instanceof PyList || v instanceof PyTuple)) return
    if (depth > 64) malformed('containers are nested more than 64 deep')
    // a container may be shared (memo), but not hold itself, and shared containers may not make
    // the walk blow up (a DAG whose paths grow exponentially)
    if (onPath.has(v)) malformed(`a container holds itself (at ${JSON.stringify(name)})`)
    if (++steps > WALK_BUDGET) malformed(`more than ${WALK_BUDGET} values to walk (containers shared over and over)`)
    onPath.add(v)
    const join = (k: string): string => (name === '' ? k : `${name}.${k}`)
    if (v instanceof PyDict) for (const [k, x] of v.map) walk(x, join(String(k)), depth + 1)
    else v.items.forEach((x, i) => walk(x, join(String(i)), depth + 1))
    onPath.delete(v)
  }
  walk(root, '', 0)
  if (root instanceof TorchTensor) out[0] = { name: 'tensor', tensor: root }
  return out
}

/**
 * A protocol-2 pickle of `root` the way torch.save writes one: dicts as plain dicts or
 * OrderedDicts, tensors through `torch._utils._rebuild_tensor_v2` over persistent storage ids.
 * `storageOf` gives each tensor's (new) storage: its key and element count, the tensor then being
 * contiguous at offset 0. Readable by `torch.load(..., weights_only=True)`.
 */
export function writeTorchPickle(root: PyValue, storageOf: (t: TorchTensor) => { key: string; dtype: string; numel: number }): Uint8Array {
  const parts: Buffer[] = [Buffer.from([0x80, 0x02])]
  const byte = (...b: number[]): void => { parts.push(Buffer.from(b)) }
  const glob = (m: string, n: string): void => { parts.push(Buffer.from(`c${m}\n${n}\n`, 'latin1')) }
  const str = (s: string): void => { const b = Buffer.from(s, 'utf8'); const h = Buffer.alloc(5); h[0] = 0x58; h.writeUInt32LE(b.length, 1); parts.push(h, b) }
  const intv = (v: number | bigint): void => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 256) byte(0x4b, v)
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 65536) byte(0x4d, v & 0xff, v >> 8)
    else if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) { const h = Buffer.alloc(5); h[0] = 0x4a; h.writeInt32LE(v, 1); parts.push(h) }
    else {
      let b = BigInt(v)
      const out: number[] = []
      for (;;) {
        out.push(Number(b & 0xffn))
        const done = (b >> 7n === 0n) || (b >> 7n === -1n)
        b >>= 8n
        if (done) break
      }
      byte(0x8a, out.length, ...out)
    }
  }
  const tuple = (items: Array<() => void>): void => {
    if (items.length === 0) { byte(0x29); return }
    if (items.length <= 3) { for (const f of items) f(); byte([0x85, 0x86, 0x87][items.length - 1]!); return }
    byte(0x28); for (const f of items) f(); byte(0x74)
  }
  const emptyOrderedDict = (): void => { glob('collections', 'OrderedDict'); byte(0x29, 0x52) }
  const storageClass = (dtype: string): string => {
    const cls = Object.entries(TORCH_STORAGE_DTYPES).find(([c, d]) => d === dtype && c !== 'UntypedStorage')
    if (!cls) throw new FormatError(`torch: no storage class holds dtype ${dtype}`, 'E_TORCH_PICKLE')
    return cls[0]
  }
  const onPath = new Set<object>()
  let steps = 0
  const emit = (v: PyValue, depth: number): void => {
    if (depth > 64) malformed('containers are nested more than 64 deep')
    if (v === null) { byte(0x4e); return }
    if (v === true) { byte(0x88); return }
    if (v === false) { byte(0x89); return }
    if (typeof v === 'number') {
      if (Number.isInteger(v) && !Object.is(v, -0)) { intv(v); return }
      const h = Buffer.alloc(9); h[0] = 0x47; h.writeDoubleBE(v, 1); parts.push(h); return
    }
    if (typeof v === 'bigint') { intv(v); return }
    if (typeof v === 'string') { str(v); return }
    if (v instanceof PyBytes) { glob('_codecs', 'encode'); tuple([() => str(Buffer.from(v.bytes).toString('latin1')), () => str('latin1')]); byte(0x52); return }
    if (v instanceof TorchTensor) {
      const s = storageOf(v)
      const strides: number[] = []
      let acc = 1
      for (let i = v.shape.length - 1; i >= 0; i--) { strides[i] = acc; acc *= Math.max(1, v.shape[i]!) }
      glob('torch._utils', '_rebuild_tensor_v2')
      byte(0x28) // MARK: the arguments
      byte(0x28); str('storage'); glob('torch', storageClass(s.dtype)); str(s.key); str('cpu'); intv(s.numel); byte(0x74, 0x51)
      intv(0)
      tuple(v.shape.map((d) => () => intv(d)))
      tuple(strides.map((d) => () => intv(d)))
      byte(0x89)
      emptyOrderedDict()
      byte(0x74, 0x52)
      return
    }
    if (v instanceof PyGlobal) { const i = v.name.lastIndexOf('.'); glob(v.name.slice(0, i), v.name.slice(i + 1)); return }
    if (v instanceof PyDict || v instanceof PyList || v instanceof PyTuple) {
      if (onPath.has(v)) malformed('a container holds itself')
      if (++steps > WALK_BUDGET) malformed(`more than ${WALK_BUDGET} values to write`)
      onPath.add(v)
      if (v instanceof PyDict) {
        if (v.ordered) emptyOrderedDict(); else byte(0x7d)
        if (v.map.size) {
          byte(0x28)
          for (const [k, x] of v.map) { emit(k, depth + 1); emit(x, depth + 1) }
          byte(0x75)
        }
        if (v.attrs) { emit(v.attrs, depth + 1); byte(0x62) }
      } else if (v instanceof PyList) {
        byte(0x5d)
        if (v.items.length) { byte(0x28); for (const x of v.items) emit(x, depth + 1); byte(0x65) }
      } else {
        tuple(v.items.map((x) => () => emit(x, depth + 1)))
      }
      onPath.delete(v)
      return
    }
    if (typeof v === 'object' && 'kind' in v) malformed('a bare storage cannot be written')
  }
  emit(root, 0)
  byte(0x2e)
  return Buffer.concat(parts)
}

/**
 * A copy of `root` with every tensor replaced by `replace(tensor, name)` (names as torchTensorsOf
 * gives them); other values are shared.
 */
export function mapTensors(root: PyValue, replace: (t: TorchTensor, name: string) => TorchTensor): PyValue {
  let steps = 0
  const walk = (v: PyValue, name: string, depth: number): PyValue => {
    if (depth > 64) malformed('containers are nested more than 64 deep')
    if ((v instanceof PyDict || v instanceof PyList || v instanceof PyTuple) && ++steps > WALK_BUDGET) malformed(`more than ${WALK_BUDGET} values to walk`)
    const join = (k: string): string => (name === '' ? k : `${name}.${k}`)
    if (v instanceof TorchTensor) return replace(v, name === '' ? 'tensor' : name)
    if (v instanceof PyDict) {
      const d = new PyDict(v.ordered)
      for (const [k, x] of v.map) d.map.set(k, walk(x, join(String(k)), depth + 1))
      d.attrs = v.attrs
      return d
    }
    if (v instanceof PyList) return new PyList(v.items.map((x, i) => walk(x, join(String(i)), depth + 1)))
    if (v instanceof PyTuple) return new PyTuple(v.items.map((x, i) => walk(x, join(String(i)), depth + 1)))
    return v
  }
  return walk(root, '', 0)
}
