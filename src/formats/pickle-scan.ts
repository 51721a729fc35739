/**
 * A static pickle opcode scanner that fails closed. It walks every opcode of protocols 0-5 with a
 * symbolic stack (nothing is executed or imported) and reports every global the stream would look
 * up. `ok` is true only when the stream is well formed, every opcode is known and expected, every
 * global is on the allow-list below, and every call (REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST) targets
 * an allowed callable that the scanner can identify. See spec/formats.md for the reasoning.
 */
export interface PickleScan {
  ok: boolean
  /** "module.name" of every global, first appearance order, allowed or not. */
  globals: string[]
  problems: string[]
  /** Offset just past STOP (or where scanning stopped). */
  end: number
}

export interface PickleScanOptions {
  /** Bytes after STOP are a problem unless this is set (legacy torch files chain several pickles). */
  allowTrailing?: boolean
}

/** Callables a torch.save state_dict / checkpoint calls while loading. */
export const PICKLE_ALLOWED_CALLABLES: ReadonlySet<string> = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  '_codecs.encode', // how protocol 2 pickles a bytes object
  'torch.Size', // a tuple of ints (a shape kept in a checkpoint)
])

const STORAGES = ['Double', 'Float', 'Half', 'BFloat16', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool',
  'ComplexDouble', 'ComplexFloat', 'QInt8', 'QInt32', 'QUInt8', 'QUInt4x2', 'QUInt2x4', 'Untyped']
const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'complex32', 'complex64', 'complex128',
  'uint8', 'uint16', 'uint32', 'uint64', 'int8', 'int16', 'int32', 'int64', 'bool',
  'float8_e4m3fn', 'float8_e4m3fnuz', 'float8_e5m2', 'float8_e5m2fnuz', 'float8_e8m0fnu', 'float4_e2m1fn_x2',
  'qint8', 'quint8', 'qint32', 'quint4x2', 'quint2x4']

/** Globals that may appear as values but are never called: storage classes (inside persistent ids) and dtypes. */
export const PICKLE_ALLOWED_REFERENCES: ReadonlySet<string> = new Set([
  ...STORAGES.map((s) => `torch.${s}Storage`),
  ...DTYPES.map((d) => `torch.${d}`),
])

type Sym =
  | { k: 'mark' }
  | { k: 'str'; s: string }
  | { k: 'global'; name: string }
  | { k: 'any' }

const MARK: Sym = { k: 'mark' }
const ANY: Sym = { k: 'any' }
const MAX_PROBLEMS = 50

class Truncated extends Error {}
class Malformed extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function scanPickle(bytes: Uint8Array, opts: PickleScanOptions = {}): PickleScan {
  const globals: string[] = []
  const seenGlobals = new Set<string>()
  const problems: string[] = []
  const problem = (p: string): void => { if (problems.length < MAX_PROBLEMS) problems.push(p) }
  const stack: Sym[] = []
  const memo = new Map<number, Sym>()
  const n = bytes.length
  let pos = 0
  let stopped = false

  const need = (k: number): void => { if (pos + k > n) throw new Truncated(`needs ${k} bytes at offset ${pos}`) }
  const take = (k: number): Uint8Array => { need(k); const b = bytes.subarray(pos, pos + k); pos += k; return b }
  const u8 = (): number => take(1)[0]!
  const i32 = (): number => { const b = take(4); return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) }
  const u32 = (): number => i32() >>> 0
  const u64 = (): number => {
    const b = take(8)
    const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)
    if (v > BigInt(n)) throw new Truncated(`length ${v} at offset ${pos - 8} is longer than the stream`)
    return Number(v)
  }
  const line = (): Uint8Array => {
    const nl = bytes.indexOf(0x0a, pos)
    if (nl < 0) throw new Truncated(`unterminated text argument at offset ${pos}`)
    const b = bytes.subarray(pos, nl)
    pos = nl + 1
    return b
  }
  const text = (b: Uint8Array): string => {
    try { return utf8.decode(b) } catch { throw new Malformed(`invalid UTF-8 at offset ${pos}`) }
  }
  const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1')
  const pop = (): Sym => {
    const v = stack.pop()
    if (v === undefined) throw new Malformed(`stack underflow at offset ${pos - 1}`)
    if (v.k === 'mark') throw new Malformed(`unexpected MARK on the stack at offset ${pos - 1}`)
    return v
  }
  const top = (): Sym => {
    const v = stack[stack.length - 1]
    if (v === undefined || v.k === 'mark') throw new Malformed(`stack underflow at offset ${pos - 1}`)
    return v
  }
  const popMark = (): Sym[] => {
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i]!.k === 'mark') return stack.splice(i).slice(1)
    }
    throw new Malformed(`no MARK on the stack at offset ${pos - 1}`)
  }
  const addGlobal = (module: string, name: string): Sym => {
    const full = `${module}.${name}`
    if (!seenGlobals.has(full)) {
      seenGlobals.add(full)
      globals.push(full)
    }
    if (!PICKLE_ALLOWED_CALLABLES.has(full) && !PICKLE_ALLOWED_REFERENCES.has(full)) problem(`global ${full} is not on the allow-list`)
    return { k: 'global', name: full }
  }
  const call = (op: string, callee: Sym): void => {
    if (callee.k !== 'global') problem(`${op} at offset ${pos - 1} calls something that is not a named global`)
    else if (!PICKLE_ALLOWED_CALLABLES.has(callee.name)) problem(`${op} at offset ${pos - 1} calls ${callee.name}, which is not an allowed callable`)
  }
  const memoIndex = (b: Uint8Array): number => {
    const s = latin1(b)
    if (!/^\d{1,9}$/.test(s)) throw new Malformed(`bad memo index ${JSON.stringify(s)} at offset ${pos}`)
    return Number(s)
  }
  const get = (i: number): void => {
    const v = memo.get(i)
    if (v === undefined) throw new Malformed(`memo ${i} read before it was written (offset ${pos})`)
    stack.push(v)
  }
  const put = (i: number): void => { memo.set(i, top()) }
  const quoted = (b: Uint8Array): Sym => {
    // protocol 0 STRING: a repr such as 'abc'; anything with escapes is left unknown
    const s = latin1(b)
    if (s.length < 2 || s[0] !== s[s.length - 1] || (s[0] !== "'" && s[0] !== '"')) throw new Malformed(`bad STRING argument at offset ${pos}`)
    const body = s.slice(1, -1)
    return body.includes('\\') ? ANY : { k: 'str', s: body }
  }

  try {
    while (!stopped) {
      if (pos >= n) throw new Truncated('stream ends before STOP')
      const at = pos
      const op = bytes[pos++]!
      switch (op) {
        case 0x80: { const v = u8(); if (v > 5) problem(`unknown protocol ${v}`); break } // PROTO
        case 0x95: { const len = u64(); if (pos + len > n) throw new Truncated(`frame of ${len} bytes at offset ${at} runs past the end`); break } // FRAME: opcodes follow inline
        case 0x2e: // STOP
          pop()
          if (stack.length > 0) problem(`${stack.length} values left on the stack at STOP`)
          stopped = true
          break
        case 0x28: stack.push(MARK); break // MARK
        case 0x30: if (stack.pop() === undefined) throw new Malformed(`stack underflow at offset ${at}`); break // POP
        case 0x31: popMark(); break // POP_MARK
        case 0x32: stack.push(top()); break // DUP
        // numbers and constants
        case 0x46: case 0x49: case 0x4c: line(); stack.push(ANY); break // FLOAT, INT, LONG
        case 0x4a: take(4); stack.push(ANY); break // BININT
        case 0x4b: take(1); stack.push(ANY); break // BININT1
        case 0x4d: take(2); stack.push(ANY); break // BININT2
        case 0x47: take(8); stack.push(ANY); break // BINFLOAT
        case 0x8a: take(u8()); stack.push(ANY); break // LONG1
        case 0x8b: { const len = i32(); if (len < 0) throw new Malformed(`negative LONG4 length at offset ${at}`); take(len); stack.push(ANY); break }
        case 0x4e: case 0x88: case 0x89: stack.push(ANY); break // NONE, NEWTRUE, NEWFALSE
        // strings and bytes
        case 0x53: stack.push(quoted(line())); break // STRING
        case 0x54: { const len = i32(); if (len < 0) throw new Malformed(`negative BINSTRING length at offset ${at}`); stack.push({ k: 'str', s: latin1(take(len)) }); break }
        case 0x55: stack.push({ k: 'str', s: latin1(take(u8())) }); break // SHORT_BINSTRING
        case 0x56: { const b = line(); stack.push(b.includes(0x5c) ? ANY : { k: 'str', s: latin1(b) }); break } // UNICODE
        case 0x58: stack.push({ k: 'str', s: text(take(u32())) }); break // BINUNICODE
        case 0x8c: stack.push({ k: 'str', s: text(take(u8())) }); break // SHORT_BINUNICODE
        case 0x8d: stack.push({ k: 'str', s: text(take(u64())) }); break // BINUNICODE8
        case 0x42: take(u32()); stack.push(ANY); break // BINBYTES
        case 0x43: take(u8()); stack.push(ANY); break // SHORT_BINBYTES
        case 0x8e: case 0x96: take(u64()); stack.push(ANY); break // BINBYTES8, BYTEARRAY8
        // containers
        case 0x29: case 0x5d: case 0x7d: case 0x8f: stack.push(ANY); break // EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT, EMPTY_SET
        case 0x74: case 0x6c: case 0x64: case 0x91: popMark(); stack.push(ANY); break // TUPLE, LIST, DICT, FROZENSET
        case 0x85: pop(); stack.push(ANY); break // TUPLE1
        case 0x86: pop(); pop(); stack.push(ANY); break // TUPLE2
        case 0x87: pop(); pop(); pop(); stack.push(ANY); break // TUPLE3
        case 0x61: pop(); top(); break // APPEND
        case 0x65: popMark(); top(); break // APPENDS
        case 0x73: pop(); pop(); top(); break // SETITEM
        case 0x75: { const items = popMark(); if (items.length % 2 !== 0) throw new Malformed(`odd SETITEMS at offset ${at}`); top(); break }
        case 0x90: popMark(); top(); break // ADDITEMS
        case 0x62: pop(); top(); break // BUILD: state applied to an object built by an allowed callable
        // memo
        case 0x67: get(memoIndex(line())); break // GET
        case 0x68: get(u8()); break // BINGET
        case 0x6a: get(u32()); break // LONG_BINGET
        case 0x70: put(memoIndex(line())); break // PUT
        case 0x71: put(u8()); break // BINPUT
        case 0x72: put(u32()); break // LONG_BINPUT
        case 0x94: memo.set(memo.size, top()); break // MEMOIZE
        // globals and calls
        case 0x63: { const m = text(line()); const nm = text(line()); stack.push(addGlobal(m, nm)); break } // GLOBAL
        case 0x93: { // STACK_GLOBAL
          const name = pop()
          const module = pop()
          if (module.k !== 'str' || name.k !== 'str') {
            problem(`STACK_GLOBAL at offset ${at} takes operands that are not literal strings`)
            stack.push(ANY)
          } else {
            stack.push(addGlobal(module.s, name.s))
          }
          break
        }
        case 0x52: { pop(); call('REDUCE', pop()); stack.push(ANY); break } // REDUCE
        case 0x81: { pop(); call('NEWOBJ', pop()); stack.push(ANY); break } // NEWOBJ
        case 0x92: { pop(); pop(); call('NEWOBJ_EX', pop()); stack.push(ANY); break } // NEWOBJ_EX
        case 0x6f: { // OBJ
          const items = popMark()
          if (items.length === 0) throw new Malformed(`OBJ without a class at offset ${at}`)
          call('OBJ', items[0]!)
          stack.push(ANY)
          break
        }
        case 0x69: { // INST
          const m = text(line()); const nm = text(line())
          popMark()
          call('INST', addGlobal(m, nm))
          stack.push(ANY)
          break
        }
        case 0x51: pop(); stack.push(ANY); break // BINPERSID: torch's persistent id tuple (storages)
        case 0x50: line(); problem(`PERSID at offset ${at}: text persistent ids are not produced by torch.save`); stack.push(ANY); break
        case 0x82: case 0x83: case 0x84: // EXT1, EXT2, EXT4
          take(op === 0x82 ? 1 : op === 0x83 ? 2 : 4)
          problem(`extension registry opcode at offset ${at} names a global indirectly`)
          stack.push(ANY)
          break
        case 0x97: problem(`NEXT_BUFFER at offset ${at}: out-of-band buffers are not expected`); stack.push(ANY); break
        case 0x98: problem(`READONLY_BUFFER at offset ${at}: out-of-band buffers are not expected`); top(); break
        default:
          throw new Malformed(`unknown opcode 0x${op.toString(16).padStart(2, '0')} at offset ${at}`)
      }
    }
  } catch (err) {
    if (err instanceof Truncated) problems.push(`truncated: ${err.message}`)
    else if (err instanceof Malformed) problems.push(`malformed: ${err.message}`)
    else throw err
  }
  if (stopped && pos < n && !opts.allowTrailing) problem(`${n - pos} bytes after STOP`)
  return { ok: problems.length === 0, globals, problems, end: pos }
}
