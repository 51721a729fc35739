import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FormatError } from '../src/errors.js'
import { describeFile } from '../src/formats/index.js'
import { ggufSegments, readGgufLayout } from '../src/formats/gguf.js'
import { npySegments, parseNpyHeader } from '../src/formats/npy.js'
import { scanPickle } from '../src/formats/pickle-scan.js'
import {
  encodeSafetensors, parseSafetensorsHeader, safetensorsHeaderLength, safetensorsSegments,
} from '../src/formats/safetensors.js'
import { isWeightsFile, sniff } from '../src/formats/sniff.js'
import { readZipLayout, zipSegments } from '../src/formats/zip.js'

// ---------- helpers ----------

const memRead = (buf: Uint8Array) => async (offset: number, length: number): Promise<Uint8Array> => {
  assert.ok(offset >= 0 && length >= 0 && offset + length <= buf.length, `read [${offset}, +${length}) outside ${buf.length}`)
  return buf.subarray(offset, offset + length)
}
const head = (b: Uint8Array): Uint8Array => b.subarray(0, 64 * 1024)
const sniffBytes = (b: Uint8Array) => sniff(head(b), b.length)
const f32 = (...xs: number[]) => new Uint8Array(new Float32Array(xs).buffer)

/** Raw safetensors bytes from a header string, with `dataLength` zero bytes of data. */
function rawSafetensors(header: string, dataLength: number, n?: bigint): Uint8Array {
  const h = Buffer.from(header, 'utf8')
  const out = Buffer.alloc(8 + h.length + dataLength)
  out.writeBigUInt64LE(n ?? BigInt(h.length), 0)
  h.copy(out, 8)
  return out
}

function expectFormatError(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FormatError, `expected FormatError, got ${String(err)}`)
    assert.equal(err.code, code)
    assert.match(err.message, message)
    return true
  })
}

async function expectFormatErrorAsync(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FormatError, `expected FormatError, got ${String(err)}`)
    assert.equal(err.code, code)
    assert.match(err.message, message)
    return true
  })
}

/** A minimal stored-only zip writer for crafted archives. */
function buildZip(entries: { name: string; data: Uint8Array }[], opts: { zip64?: boolean; localOffsets?: number[]; count?: number } = {}): Uint8Array {
  const parts: Buffer[] = []
  const offsets: number[] = []
  let pos = 0
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8')
    const h = Buffer.alloc(30)
    h.writeUInt32LE(0x04034b50, 0); h.writeUInt16LE(20, 4); h.writeUInt16LE(0x800, 6)
    h.writeUInt32LE(e.data.length, 18); h.writeUInt32LE(e.data.length, 22); h.writeUInt16LE(name.length, 26)
    offsets.push(pos)
    parts.push(h, name, Buffer.from(e.data))
    pos += 30 + name.length + e.data.length
  }
  const cdStart = pos
  entries.forEach((e, i) => {
    const name = Buffer.from(e.name, 'utf8')
    const c = Buffer.alloc(46)
    c.writeUInt32LE(0x02014b50, 0); c.writeUInt16LE(20, 4); c.writeUInt16LE(20, 6); c.writeUInt16LE(0x800, 8)
    c.writeUInt32LE(e.data.length, 20); c.writeUInt32LE(e.data.length, 24); c.writeUInt16LE(name.length, 28)
    c.writeUInt32LE(opts.localOffsets?.[i] ?? offsets[i]!, 42)
    parts.push(c, name)
    pos += 46 + name.length
  })
  const cdSize = pos - cdStart
  const count = opts.count ?? entries.length
  const eocd = Buffer.alloc(22)
  eocd.writeUInt32LE(0x06054b50, 0)
  if (opts.zip64) {
    const rec = Buffer.alloc(56)
    rec.writeUInt32LE(0x06064b50, 0); rec.writeBigUInt64LE(44n, 4); rec.writeUInt16LE(45, 12); rec.writeUInt16LE(45, 14)
    rec.writeBigUInt64LE(BigInt(count), 24); rec.writeBigUInt64LE(BigInt(count), 32)
    rec.writeBigUInt64LE(BigInt(cdSize), 40); rec.writeBigUInt64LE(BigInt(cdStart), 48)
    const loc = Buffer.alloc(20)
    loc.writeUInt32LE(0x07064b50, 0); loc.writeBigUInt64LE(BigInt(pos), 8); loc.writeUInt32LE(1, 16)
    parts.push(rec, loc)
    eocd.writeUInt16LE(0xffff, 8); eocd.writeUInt16LE(0xffff, 10); eocd.writeUInt32LE(0xffffffff, 12); eocd.writeUInt32LE(0xffffffff, 16)
  } else {
    eocd.writeUInt16LE(count & 0xffff, 8); eocd.writeUInt16LE(count & 0xffff, 10)
    eocd.writeUInt32LE(cdSize, 12); eocd.writeUInt32LE(cdStart, 16)
  }
  parts.push(eocd)
  return Buffer.concat(parts)
}

/** A little GGUF writer for crafted files. */
class GgufWriter {
  private parts: Buffer[] = []
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.parts.push(b); return this }
  u64(v: bigint | number): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.parts.push(b); return this }
  str(s: string): this { const b = Buffer.from(s); return this.u64(b.length).raw(b) }
  raw(b: Uint8Array): this { this.parts.push(Buffer.from(b)); return this }
  get length(): number { return this.parts.reduce((a, b) => a + b.length, 0) }
  pad(to: number): this { const n = (to - (this.length % to)) % to; return this.raw(Buffer.alloc(n)) }
  bytes(): Uint8Array { return Buffer.concat(this.parts) }
}

/** A well-formed v3 GGUF: metadata of several kinds, an F32 [4,2] tensor and a Q8_0 [32] tensor. */
function goodGguf(alignment = 32): { bytes: Uint8Array; dataStart: number } {
  const w = new GgufWriter().raw(Buffer.from('GGUF')).u32(3).u64(2).u64(4)
  w.str('general.architecture').u32(8).str('llama')
  w.str('general.alignment').u32(4).u32(alignment)
  w.str('tokenizer.ggml.tokens').u32(9).u32(8).u64(3).str('a').str('bb').str('ccc')
  w.str('some.floats').u32(9).u32(6).u64(5).raw(Buffer.alloc(20))
  w.str('w').u32(2).u64(4).u64(2).u32(0).u64(0) // F32 4x2 = 32 bytes at 0
  w.str('q').u32(1).u64(32).u32(8).u64(alignment * Math.ceil(32 / alignment)) // Q8_0: 34 bytes
  w.pad(alignment)
  const dataStart = w.length
  w.raw(Buffer.alloc(alignment * Math.ceil(32 / alignment), 1)).raw(Buffer.alloc(34, 2))
  return { bytes: w.bytes(), dataStart }
}

// ---------- fixtures made by python3 (standard library + numpy) ----------

const PY = String.raw`
import sys, os, io, pickle, types, collections, zipfile
import numpy as np
d = sys.argv[1]
def w(name, data):
    with open(os.path.join(d, name), 'wb') as f: f.write(data)
np.save(os.path.join(d, 'f32.npy'), np.arange(12, dtype='<f4').reshape(3, 4))
np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(np.arange(6, dtype='<i8').reshape(2, 3)))
np.save(os.path.join(d, 'struct.npy'), np.zeros(3, dtype=[('x', '<f4'), ('y', '<i2', (2,))]))
np.save(os.path.join(d, 'scalar.npy'), np.float64(1.5))
np.save(os.path.join(d, 'empty.npy'), np.zeros((0, 5), dtype='<f2'))
np.save(os.path.join(d, 'object.npy'), np.array([{'a': 1}, None], dtype=object), allow_pickle=True)
with open(os.path.join(d, 'v2.npy'), 'wb') as f: np.lib.format.write_array(f, np.ones(4, dtype='<u2'), version=(2, 0))
np.savez(os.path.join(d, 'pair.npz'), a=np.arange(1000, dtype='<f4'), b=np.ones((7, 3), dtype='<f8'))
np.savez_compressed(os.path.join(d, 'packed.npz'), a=np.arange(1000, dtype='<f4'))

# A stand-in "torch" so pickles reference torch globals exactly as torch.save writes them.
torch = types.ModuleType('torch'); tu = types.ModuleType('torch._utils')
torch._utils = tu; sys.modules['torch'] = torch; sys.modules['torch._utils'] = tu
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = 'torch._utils'; _rebuild_tensor_v2.__qualname__ = '_rebuild_tensor_v2'
tu._rebuild_tensor_v2 = _rebuild_tensor_v2
class FloatStorage: pass
FloatStorage.__module__ = 'torch'; FloatStorage.__qualname__ = 'FloatStorage'; torch.FloatStorage = FloatStorage
class Storage:
    def __init__(self, key, n): self.key, self.n = key, n
class Tensor:
    def __init__(self, key, shape): self.key, self.shape = key, shape
    def __reduce_ex__(self, proto):
        n = 1
        for s in self.shape: n *= s
        return (_rebuild_tensor_v2, (Storage(self.key, n), 0, self.shape, (1,) * len(self.shape), False, collections.OrderedDict()))
class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage): return ('storage', FloatStorage, obj.key, 'cpu', obj.n)
        return None
def dump(obj, proto):
    b = io.BytesIO(); TorchPickler(b, protocol=proto).dump(obj); return b.getvalue()
class Evil:
    def __reduce__(self): return (os.system, ('echo pwned',))
sd = collections.OrderedDict([('fc.weight', Tensor('0', (2, 3))), ('fc.bias', Tensor('1', (2,)))])
sd._metadata = collections.OrderedDict([('', {'version': 1})])
ckpt = {'epoch': 3, 'lr': 0.1, 'tag': 'run-1', 'blob': b'\x00\x01', 'state_dict': sd, 'betas': (0.9, 0.999)}
w('benign2.pkl', dump(ckpt, 2)); w('benign4.pkl', dump(ckpt, 4)); w('benign5.pkl', dump(ckpt, 5))
w('evil2.pkl', pickle.dumps({'w': Evil()}, protocol=2)); w('evil4.pkl', pickle.dumps({'w': Evil()}, protocol=4))
w('evil0.pkl', pickle.dumps(Evil(), protocol=0))
w('hidden.pkl', dump({'state_dict': sd, 'extra': Evil()}, 2))
def torch_zip(name, pkl):
    with zipfile.ZipFile(os.path.join(d, name), 'w', zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', pkl)
        z.writestr('archive/byteorder', 'little')
        z.writestr('archive/data/0', np.arange(6, dtype='<f4').tobytes())
        z.writestr('archive/data/1', np.arange(2, dtype='<f4').tobytes())
        z.writestr('archive/version', '3\n')
torch_zip('torchlike.txt', dump(sd, 2))
torch_zip('torch-evil.pt', dump({'state_dict': sd, 'extra': Evil()}, 2))
with zipfile.ZipFile(os.path.join(d, 'slip.zip'), 'w') as z:
    z.writestr('ok.txt', b'x'); z.writestr('../../etc/evil.txt', b'y')
`

let dir = ''
const fixture = (name: string): Uint8Array => readFileSync(join(dir, name))

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zoo-formats-'))
  const r = spawnSync('python3', ['-c', PY, dir], { encoding: 'utf8' })
  assert.equal(r.status, 0, `fixture generation failed: ${r.stderr}`)
})
after(() => rmSync(dir, { recursive: true, force: true }))

// ---------- safetensors ----------

describe('safetensors writer', () => {
  test('matches the reference library byte for byte (its own test vectors)', () => {
    const one = encodeSafetensors([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: f32(0, 1, 2, 3, 4, 5) }])
    assert.deepEqual([...one], [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
      116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
      58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
      101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64])
    const padded = encodeSafetensors([{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data: f32(0, 1, 2, 3, 4, 5) }])
    assert.equal(padded.length, 8 + 72 + 24)
    assert.equal(Buffer.from(padded.subarray(8, 80)).toString(), '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ')
    assert.deepEqual([...encodeSafetensors([])], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
    assert.equal(Buffer.from(encodeSafetensors([], { framework: 'pt' })).toString('latin1'),
      '\x28\0\0\0\0\0\0\0{"__metadata__":{"framework":"pt"}}     ')
  })

  test('sorts by dtype (reference enum order, descending) then name, and round-trips', () => {
    const bytes = encodeSafetensors([
      { name: 'b', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
      { name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([9]) },
      { name: 'z', dtype: 'F64', shape: [1], data: new Uint8Array(8) },
      { name: 'm', dtype: 'BF16', shape: [2], data: new Uint8Array(4) },
      { name: 'e', dtype: 'F32', shape: [0], data: new Uint8Array(0) },
    ], { format: 'pt' })
    const layout = parseSafetensorsHeader(bytes, bytes.length)
    assert.deepEqual(layout.tensors.map((t) => t.name), ['z', 'e', 'm', 'a', 'b'])
    assert.deepEqual(layout.metadata, { format: 'pt' })
    assert.equal(layout.dataStart % 8, 0)
    const segments = safetensorsSegments(layout, bytes.length)
    assert.deepEqual(segments, [layout.dataStart, 8, 4, 1, 3]) // the empty tensor adds no segment
    assert.equal(segments.reduce((a, b) => a + b), bytes.length)
    assert.deepEqual([...bytes.subarray(layout.tensors[4]!.start, layout.tensors[4]!.end)], [1, 2, 3])
  })

  test('refuses inputs it could not write faithfully', () => {
    assert.throws(() => encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data: new Uint8Array(4) }]), /do not match/)
    assert.throws(() => encodeSafetensors([{ name: 'x', dtype: 'F33', shape: [1], data: new Uint8Array(4) }]), /unknown/)
    const t = { name: 'x', dtype: 'U8', shape: [1], data: new Uint8Array(1) }
    assert.throws(() => encodeSafetensors([t, t]), /duplicate/)
  })

  test('is byte-identical to the python safetensors library when it is installed', (t) => {
    const probe = spawnSync('python3', ['-c', 'import safetensors.numpy'], { encoding: 'utf8' })
    if (probe.status !== 0) { t.skip('python safetensors module not installed'); return }
    const path = join(dir, 'py.safetensors')
    const r = spawnSync('python3', ['-c', `
import numpy as np, sys
from safetensors.numpy import save_file
save_file({'b': np.arange(4, dtype='<f4').reshape(2, 2), 'a': np.arange(3, dtype='<i8'), 'c': np.ones(5, dtype='u1'),
           'h': np.zeros(3, dtype='<f2')}, sys.argv[1], metadata={'format': 'np'})`, path], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    const ours = encodeSafetensors([
      { name: 'b', dtype: 'F32', shape: [2, 2], data: f32(0, 1, 2, 3) },
      { name: 'a', dtype: 'I64', shape: [3], data: new Uint8Array(new BigInt64Array([0n, 1n, 2n]).buffer) },
      { name: 'c', dtype: 'U8', shape: [5], data: new Uint8Array(5).fill(1) },
      { name: 'h', dtype: 'F16', shape: [3], data: new Uint8Array(6) },
    ], { format: 'np' })
    assert.deepEqual(Buffer.from(ours), readFileSync(path))
  })
})

describe('safetensors hostile headers', () => {
  const tensor = (dtype: string, shape: number[], begin: number, end: number) =>
    `{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${begin},${end}]}`
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['2^63 header length', () => rawSafetensors('{}', 0, 1n << 63n), /2\^63 exceeds the 100000000-byte cap/],
    ['2^64-1 header length', () => rawSafetensors('{}', 0, (1n << 64n) - 1n), /exceeds/],
    ['zero header length', () => rawSafetensors('{}', 0, 0n), /header length is 0/],
    ['header longer than the file', () => rawSafetensors('{}', 0, 1000n), /runs past the end/],
    ['file shorter than 8 bytes', () => new Uint8Array([1, 0, 0]), /shorter than the 8-byte/],
    ['not UTF-8', () => { const b = rawSafetensors('{"\u00e9":1}', 0); b[10] = 0xff; return b }, /not valid UTF-8/],
    ['not JSON', () => rawSafetensors('{"a":', 0), /not valid JSON/],
    ['JSON array', () => rawSafetensors('[1,2]', 0), /not a JSON object/],
    ['JSON string', () => rawSafetensors('"x"', 0), /not a JSON object/],
    ['NUL padding', () => rawSafetensors('{}\0\0', 0), /not valid JSON/],
    ['duplicate keys', () => rawSafetensors(`{"a":${tensor('U8', [1], 0, 1)},"a":${tensor('U8', [1], 1, 2)}}`, 2), /duplicate key "a"/],
    ['unknown dtype', () => rawSafetensors(`{"a":${tensor('F33', [1], 0, 4)}}`, 4), /unknown dtype "F33"/],
    ['negative shape', () => rawSafetensors(`{"a":${tensor('U8', [-1], 0, 1)}}`, 1), /not a non-negative integer/],
    ['fractional shape', () => rawSafetensors(`{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}`, 1), /not a non-negative integer/],
    ['shape beyond 2^53', () => rawSafetensors(`{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}}`, 1), /too large/],
    ['shape product overflow', () => rawSafetensors(`{"a":${tensor('F32', [4294967296, 4294967296, 4294967296], 0, 8)}}`, 8), /2\^98 bytes but data_offsets span 8/],
    ['size mismatch', () => rawSafetensors(`{"a":${tensor('F32', [3], 0, 8)}}`, 8), /12 bytes but data_offsets span 8/],
    ['sub-byte remainder', () => rawSafetensors(`{"a":${tensor('F4', [3], 0, 1)}}`, 1), /not a whole number of bytes/],
    ['offsets not a pair', () => rawSafetensors(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, 1), /not \[begin, end\]/],
    ['end before begin', () => rawSafetensors(`{"a":${tensor('U8', [0], 4, 0)}}`, 4), /end before they begin/],
    ['overlapping offsets', () => rawSafetensors(`{"a":${tensor('F32', [2], 0, 8)},"b":${tensor('F32', [2], 4, 12)}}`, 12), /overlaps/],
    ['gap between tensors', () => rawSafetensors(`{"a":${tensor('F32', [2], 0, 8)},"b":${tensor('F32', [2], 12, 20)}}`, 20), /gap of 4 bytes/],
    ['first tensor not at 0', () => rawSafetensors(`{"a":${tensor('F32', [2], 8, 16)}}`, 16), /gap of 8 bytes/],
    ['trailing garbage', () => rawSafetensors(`{"a":${tensor('F32', [2], 0, 8)}}`, 12), /4 bytes of trailing data/],
    ['truncated data', () => rawSafetensors(`{"a":${tensor('F32', [4], 0, 16)}}`, 12), /past the 12-byte data section/],
    ['metadata not strings', () => rawSafetensors('{"__metadata__":{"k":1}}', 0), /__metadata__ value for "k" is not a string/],
    ['metadata not an object', () => rawSafetensors('{"__metadata__":[1]}', 0), /__metadata__ is not an object/],
    ['tensor not an object', () => rawSafetensors('{"a":7}', 0), /tensor "a" is not an object/],
    ['unexpected tensor field', () => rawSafetensors(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, 1), /unexpected field "x"/],
    ['deep nesting', () => rawSafetensors(`{"a":${'['.repeat(100000)}${']'.repeat(100000)}}`, 0), /nesting too deep/],
    ['lone surrogate escape', () => rawSafetensors('{"\\ud800":1}', 0), /lone surrogate/],
  ]
  for (const [name, make, message] of cases) {
    test(name, () => {
      const bytes = make()
      expectFormatError(() => parseSafetensorsHeader(bytes, bytes.length), 'E_SAFETENSORS', message)
    })
  }

  test('a truncated copy of a good file is refused', () => {
    const good = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [4], data: f32(1, 2, 3, 4) }])
    for (const cut of [1, 4, good.length - 8]) {
      const bad = good.subarray(0, good.length - cut)
      expectFormatError(() => parseSafetensorsHeader(bad, bad.length), 'E_SAFETENSORS', /truncated|past|shorter/)
    }
  })

  test('accepts what the reference reader accepts: leading whitespace, null metadata, __proto__ names', () => {
    const b = rawSafetensors(` \n{"__metadata__":null,"__proto__":${tensor('U8', [2], 0, 2)}}`, 2)
    const layout = parseSafetensorsHeader(b, b.length)
    assert.equal(layout.metadata, null)
    assert.equal(layout.tensors[0]!.name, '__proto__')
    assert.equal(({} as Record<string, unknown>)['dtype'], undefined)
    const m = rawSafetensors('{"__metadata__":{"__proto__":"x","k":"v"}}', 0)
    const meta = parseSafetensorsHeader(m, m.length).metadata!
    assert.deepEqual(Object.entries(meta), [['__proto__', 'x'], ['k', 'v']])
    assert.equal(Object.getPrototypeOf(meta), Object.prototype)
  })

  test('the header length can be read from 8 bytes alone, and a short head is reported', () => {
    const good = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: f32(1) }])
    const n = safetensorsHeaderLength(good.subarray(0, 8))
    assert.equal(n + 8 + 4, good.length)
    expectFormatError(() => parseSafetensorsHeader(good.subarray(0, 20), good.length), 'E_SAFETENSORS', /needs/)
  })
})

// ---------- sniffing ----------

describe('sniff', () => {
  test('by magic bytes, whatever the file is called', () => {
    const st = encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [1], data: f32(1) }])
    writeFileSync(join(dir, 'model.pt'), st) // a safetensors file named like a torch file
    assert.equal(sniffBytes(fixture('model.pt')), 'safetensors')
    assert.equal(sniffBytes(fixture('f32.npy')), 'npy')
    assert.equal(sniffBytes(fixture('pair.npz')), 'npz')
    assert.equal(sniffBytes(fixture('packed.npz')), 'npz')
    assert.equal(sniffBytes(fixture('torchlike.txt')), 'pytorch-zip')
    assert.equal(sniffBytes(fixture('slip.zip')), 'zip')
    assert.equal(sniffBytes(fixture('benign2.pkl')), 'pickle')
    assert.equal(sniffBytes(fixture('benign5.pkl')), 'pickle')
    assert.equal(sniffBytes(goodGguf().bytes), 'gguf')
    const hdf5 = Buffer.alloc(2048); Buffer.from('\x89HDF\r\n\x1a\n', 'latin1').copy(hdf5, 512)
    assert.equal(sniffBytes(hdf5), 'hdf5')
    assert.equal(sniffBytes(Buffer.from('{"a": 1, "b": [1, 2, 3]}\n')), 'unknown') // JSON is not safetensors
    assert.equal(sniffBytes(Buffer.from('hello world, this is text')), 'unknown')
    assert.equal(sniffBytes(new Uint8Array(0)), 'unknown')
  })

  test('onnx by a conservative ModelProto walk', () => {
    const field = (tag: number, payload: Uint8Array) => Buffer.concat([Buffer.from([tag, payload.length]), payload])
    const graph = field(0x0a, Buffer.from('node')) // some GraphProto bytes
    const model = Buffer.concat([Buffer.from([0x08, 0x08]), field(0x12, Buffer.from('pytorch')), field(0x1a, Buffer.from('2.1')),
      field(0x3a, graph), field(0x42, Buffer.from([0x10, 0x11]))])
    assert.equal(sniffBytes(model), 'onnx')
    assert.equal(isWeightsFile(model, model.length), true)
    const noGraph = Buffer.concat([Buffer.from([0x08, 0x08]), field(0x12, Buffer.from('pytorch'))])
    assert.equal(sniffBytes(noGraph), 'unknown')
    const outOfOrder = Buffer.concat([Buffer.from([0x08, 0x08]), field(0x3a, graph), field(0x12, Buffer.from('pytorch'))])
    assert.equal(sniffBytes(outOfOrder), 'unknown')
    const bigIr = Buffer.concat([Buffer.from([0x08, 0xc8, 0x01]), field(0x3a, graph)])
    assert.equal(sniffBytes(bigIr), 'unknown')
    const pastEnd = Buffer.concat([Buffer.from([0x08, 0x08, 0x3a, 0x7f]), Buffer.from('abc')])
    assert.equal(sniffBytes(pastEnd), 'unknown')
  })

  test('isWeightsFile: weights formats yes, small pickles, plain zips and text no', () => {
    const yes = ['f32.npy', 'pair.npz', 'torchlike.txt', 'model.pt', 'benign2.pkl']
    for (const f of yes) {
      const b = fixture(f)
      const padded = f.endsWith('.pkl') ? Buffer.concat([b, Buffer.alloc(2048)]) : b // a pickle over 1 KiB
      assert.equal(isWeightsFile(head(padded), padded.length), true, f)
    }
    const tiny = fixture('benign2.pkl')
    assert.ok(tiny.length < 1024)
    assert.equal(isWeightsFile(head(tiny), tiny.length), false)
    assert.equal(isWeightsFile(head(fixture('slip.zip')), fixture('slip.zip').length), false)
    assert.equal(isWeightsFile(Buffer.from('just text'), 9), false)
    assert.equal(isWeightsFile(head(goodGguf().bytes), goodGguf().bytes.length), true)
  })
})

// ---------- zip ----------

describe('zip', () => {
  test('a torch-style archive: each stored tensor is its own segment', async () => {
    const bytes = fixture('torchlike.txt')
    const layout = await readZipLayout(memRead(bytes), bytes.length)
    assert.deepEqual(layout.entries.map((e) => e.name), ['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/data/1', 'archive/version'])
    const t0 = layout.entries[2]!
    assert.equal(t0.method, 0)
    assert.deepEqual(Buffer.from(bytes.subarray(t0.dataOffset, t0.dataOffset + t0.compressedSize)), Buffer.from(f32(0, 1, 2, 3, 4, 5)))
    const segments = zipSegments(layout.entries, bytes.length)
    assert.equal(segments.reduce((a, b) => a + b), bytes.length)
    assert.ok(segments.every((s) => s > 0))
    let at = 0
    const starts = segments.map((s) => { const x = at; at += s; return x })
    for (const e of layout.entries) {
      const i = starts.indexOf(e.dataOffset)
      assert.ok(i >= 0, `${e.name} data begins a segment`)
      assert.equal(segments[i], e.compressedSize)
    }
  })

  test('npz from numpy, stored and compressed', async () => {
    for (const f of ['pair.npz', 'packed.npz']) {
      const bytes = fixture(f)
      const layout = await readZipLayout(memRead(bytes), bytes.length)
      assert.ok(layout.entries.every((e) => e.name.endsWith('.npy')))
      assert.equal(zipSegments(layout.entries, bytes.length).reduce((a, b) => a + b), bytes.length)
    }
  })

  test('zip64 end records', async () => {
    const bytes = buildZip([{ name: 'a', data: new Uint8Array([1, 2, 3]) }, { name: 'b/c', data: new Uint8Array(10) }], { zip64: true })
    const layout = await readZipLayout(memRead(bytes), bytes.length)
    assert.equal(layout.zip64, true)
    assert.deepEqual(layout.entries.map((e) => [e.name, e.dataOffset, e.compressedSize]), [['a', 31, 3], ['b/c', 34 + 33, 10]])
  })

  test('path traversal and absolute names are hostile', async () => {
    const slip = fixture('slip.zip')
    await expectFormatErrorAsync(readZipLayout(memRead(slip), slip.length), 'E_ZIP_PATH', /"\.\.\/\.\.\/etc\/evil\.txt".*"\.\." path component/)
    for (const [name, why] of [['/etc/passwd', /absolute/], ['C:\\x', /drive-letter/], ['a\\..\\..\\b', /"\.\."/], ['a\0b', /NUL/]] as const) {
      const z = buildZip([{ name, data: new Uint8Array(1) }])
      await expectFormatErrorAsync(readZipLayout(memRead(z), z.length), 'E_ZIP_PATH', why)
    }
  })

  test('structural lies are refused', async () => {
    const entries = [{ name: 'a', data: new Uint8Array(100) }, { name: 'b', data: new Uint8Array(100) }]
    const overlap = buildZip(entries, { localOffsets: [0, 50] })
    await expectFormatErrorAsync(readZipLayout(memRead(overlap), overlap.length), 'E_ZIP', /no local header|overlap/)
    const outOfRange = buildZip(entries, { localOffsets: [0, 1 << 30] })
    await expectFormatErrorAsync(readZipLayout(memRead(outOfRange), outOfRange.length), 'E_ZIP', /out of range/)
    const tooMany = buildZip(entries, { zip64: true, count: 2 ** 40 })
    await expectFormatErrorAsync(readZipLayout(memRead(tooMany), tooMany.length), 'E_ZIP', /cannot fit/)
    const good = buildZip(entries)
    await expectFormatErrorAsync(readZipLayout(memRead(good.subarray(0, good.length - 30)), good.length - 30), 'E_ZIP', /end of central directory/)
    // the same data entry listed twice: both claim the same bytes
    const twice = buildZip(entries, { localOffsets: [0, 0] })
    await expectFormatErrorAsync(readZipLayout(memRead(twice), twice.length), 'E_ZIP', /overlap/)
  })
})

// ---------- gguf ----------

describe('gguf', () => {
  test('a well-formed v3 file: tensors, alignment, segments', async () => {
    const { bytes, dataStart } = goodGguf()
    const layout = await readGgufLayout(memRead(bytes), bytes.length)
    assert.equal(layout.version, 3)
    assert.equal(layout.alignment, 32)
    assert.equal(layout.dataStart, dataStart)
    assert.deepEqual(layout.tensors.map((t) => [t.name, t.typeName, t.dims, t.start - dataStart, t.end - t.start]),
      [['w', 'F32', [4, 2], 0, 32], ['q', 'Q8_0', [32], 32, 34]])
    assert.deepEqual(ggufSegments(layout, bytes.length), [dataStart, 32, 34])
    const custom = goodGguf(64)
    const l64 = await readGgufLayout(memRead(custom.bytes), custom.bytes.length)
    assert.equal(l64.alignment, 64)
    assert.deepEqual(ggufSegments(l64, custom.bytes.length), [custom.dataStart, 64, 34]) // padding stays with "w"
  })

  const header = (tensors: bigint, kvs: bigint) => new GgufWriter().raw(Buffer.from('GGUF')).u32(3).u64(tensors).u64(kvs)
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['2^63 tensors', () => header(1n << 63n, 0n).raw(Buffer.alloc(64)).bytes(), /tensor count 2\^63/],
    ['2^63 metadata entries', () => header(0n, 1n << 63n).raw(Buffer.alloc(64)).bytes(), /metadata count 2\^63/],
    ['more tensors than bytes', () => header(1000n, 0n).raw(Buffer.alloc(64)).bytes(), /cannot fit/],
    ['2^63-byte key', () => header(0n, 1n).u64(1n << 63n).raw(Buffer.alloc(64)).bytes(), /2\^63 bytes long/],
    ['2^62-byte string value', () => header(0n, 1n).str('k').u32(8).u64(1n << 62n).raw(Buffer.alloc(64)).bytes(), /runs past the end/],
    ['2^61 u64 array', () => header(0n, 1n).str('k').u32(9).u32(10).u64(1n << 61n).raw(Buffer.alloc(64)).bytes(), /runs past the end/],
    ['2^60 string array', () => header(0n, 1n).str('k').u32(9).u32(8).u64(1n << 60n).raw(Buffer.alloc(64)).bytes(), /claims 2\^60 elements/],
    ['deeply nested arrays', () => {
      const w = header(0n, 1n).str('k').u32(9)
      for (let i = 0; i < 10; i++) w.u32(9).u64(1)
      return w.u32(0).u64(0).raw(Buffer.alloc(64)).bytes()
    }, /nests arrays/],
    ['unknown value type', () => header(0n, 1n).str('k').u32(77).raw(Buffer.alloc(64)).bytes(), /unknown value type 77/],
    ['alignment not a power of two', () => header(0n, 1n).str('general.alignment').u32(4).u32(24).raw(Buffer.alloc(64)).bytes(), /not a power of two/],
    ['alignment of the wrong type', () => header(0n, 1n).str('general.alignment').u32(10).u64(32).raw(Buffer.alloc(64)).bytes(), /not uint32/],
    ['too many dimensions', () => header(1n, 0n).str('t').u32(9).raw(Buffer.alloc(128)).bytes(), /9 dimensions/],
    ['unknown ggml type', () => header(1n, 0n).str('t').u32(1).u64(4).u32(99).u64(0).pad(32).raw(Buffer.alloc(16)).bytes(), /unknown ggml type 99/],
    ['tensor past the end', () => header(1n, 0n).str('t').u32(1).u64(1000).u32(0).u64(0).pad(32).raw(Buffer.alloc(16)).bytes(), /runs past the end/],
    ['dimension 2^63', () => header(1n, 0n).str('t').u32(2).u64(1n << 63n).u64(1n << 63n).u32(0).u64(0).pad(32).bytes(), /dimension 0 is 9223372036854775808/],
    ['misaligned offset', () => header(1n, 0n).str('t').u32(1).u64(4).u32(0).u64(8).pad(32).raw(Buffer.alloc(64)).bytes(), /not a multiple of the alignment/],
    ['overlapping tensors', () => header(2n, 0n).str('a').u32(1).u64(16).u32(0).u64(0).str('b').u32(1).u64(16).u32(0).u64(32)
      .pad(32).raw(Buffer.alloc(96)).bytes(), /overlap/],
    ['duplicate tensor names', () => header(2n, 0n).str('a').u32(1).u64(4).u32(0).u64(0).str('a').u32(1).u64(4).u32(0).u64(32)
      .pad(32).raw(Buffer.alloc(64)).bytes(), /duplicate tensor name/],
    ['quantized row not a whole block', () => header(1n, 0n).str('t').u32(1).u64(31).u32(8).u64(0).pad(32).raw(Buffer.alloc(64)).bytes(), /block size 32/],
    ['version 1', () => new GgufWriter().raw(Buffer.from('GGUF')).u32(1).raw(Buffer.alloc(64)).bytes(), /v1/],
    ['truncated header', () => header(1n, 0n).bytes(), /cannot fit/],
  ]
  for (const [name, make, message] of cases) {
    test(`hostile: ${name}`, async () => {
      const bytes = make()
      await expectFormatErrorAsync(readGgufLayout(memRead(bytes), bytes.length), 'E_GGUF', message)
    })
  }

  test('big-endian v3 files are read too', async () => {
    const w: Buffer[] = [Buffer.from('GGUF')]
    const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); w.push(b) }
    const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); w.push(b) }
    u32(3); u64(1); u64(0); u64(1); w.push(Buffer.from('t')); u32(1); u64(4); u32(0); u64(0)
    let bytes = Buffer.concat(w)
    bytes = Buffer.concat([bytes, Buffer.alloc((32 - (bytes.length % 32)) % 32), Buffer.alloc(16)])
    const layout = await readGgufLayout(memRead(bytes), bytes.length)
    assert.equal(layout.littleEndian, false)
    assert.deepEqual(layout.tensors[0]!.dims, [4])
  })
})

// ---------- npy ----------

describe('npy', () => {
  test('real numpy files', () => {
    const expect: Record<string, [unknown, boolean, number[], number]> = {
      'f32.npy': ['<f4', false, [3, 4], 4],
      'fortran.npy': ['<i8', true, [2, 3], 8],
      'struct.npy': [[{ name: 'x', descr: '<f4', shape: [] }, { name: 'y', descr: '<i2', shape: [2] }], false, [3], 8],
      'scalar.npy': ['<f8', false, [], 8],
      'empty.npy': ['<f2', false, [0, 5], 2],
      'v2.npy': ['<u2', false, [4], 2],
    }
    for (const [file, [descr, fortran, shape, itemSize]] of Object.entries(expect)) {
      const bytes = fixture(file)
      const h = parseNpyHeader(bytes, bytes.length)
      assert.deepEqual([h.descr, h.fortranOrder, h.shape, h.itemSize], [descr, fortran, shape, itemSize], file)
      const segments = npySegments(h, bytes.length)
      assert.equal(segments.reduce((a, b) => a + b), bytes.length)
      assert.equal(segments[0], h.dataOffset)
    }
    assert.equal(parseNpyHeader(fixture('v2.npy'), fixture('v2.npy').length).major, 2)
  })

  test('object arrays (pickles inside), truncation and tampered headers are refused', () => {
    const obj = fixture('object.npy')
    expectFormatError(() => parseNpyHeader(obj, obj.length), 'E_NPY', /object dtype/)
    const good = Buffer.from(fixture('f32.npy'))
    expectFormatError(() => parseNpyHeader(good.subarray(0, good.length - 1), good.length - 1), 'E_NPY', /48 bytes but the file holds 47/)
    // rewrite the header literal in place, keeping its length (numpy pads it with spaces)
    const tamper = (from: string, to: string) => {
      const len = good.readUInt16LE(8)
      const text = good.subarray(10, 10 + len).toString('latin1')
      assert.ok(text.includes(from))
      const body = text.replace(from, to).trimEnd()
      const header = body.padEnd(len - 1, ' ') + '\n'
      assert.equal(header.length, len)
      return Buffer.concat([good.subarray(0, 10), Buffer.from(header, 'latin1'), good.subarray(10 + len)])
    }
    const evalMe = tamper("'fortran_order': False", "'fortran_order': __import__('os')")
    expectFormatError(() => parseNpyHeader(evalMe, evalMe.length), 'E_NPY', /not a plain dict literal/)
    const badKey = tamper("'fortran_order'", "'fortran_ordeX'")
    expectFormatError(() => parseNpyHeader(badKey, badKey.length), 'E_NPY', /header keys/)
    const huge = tamper('(3, 4)', '(9999999999, 9)')
    expectFormatError(() => parseNpyHeader(huge, huge.length), 'E_NPY', /bytes but the file holds/)
  })
})

// ---------- pickle scanning ----------

describe('pickle scan', () => {
  test('torch-like checkpoints (protocols 2, 4, 5) pass', () => {
    for (const f of ['benign2.pkl', 'benign4.pkl', 'benign5.pkl']) {
      const r = scanPickle(fixture(f))
      assert.deepEqual(r.problems, [], f)
      assert.equal(r.ok, true)
      assert.deepEqual([...r.globals].sort(), ['_codecs.encode', 'collections.OrderedDict', 'torch.FloatStorage', 'torch._utils._rebuild_tensor_v2'].filter((g) => f === 'benign2.pkl' || g !== '_codecs.encode'))
    }
  })

  test('a malicious __reduce__ (os.system) fails, in every protocol', () => {
    for (const f of ['evil0.pkl', 'evil2.pkl', 'evil4.pkl', 'hidden.pkl']) {
      const r = scanPickle(fixture(f))
      assert.equal(r.ok, false, f)
      assert.ok(r.globals.some((g) => /^(posix|nt|os)\.system$/.test(g)), `${f}: ${r.globals.join(', ')}`)
      assert.ok(r.problems.some((p) => /system is not on the allow-list/.test(p)), f)
    }
  })

  test('truncated, trailing, unknown opcodes and odd streams fail', () => {
    const good = fixture('benign4.pkl')
    for (const cut of [1, 5, Math.floor(good.length / 2)]) {
      const r = scanPickle(good.subarray(0, good.length - cut))
      assert.equal(r.ok, false)
      assert.ok(r.problems.some((p) => /truncated|malformed/.test(p)), r.problems.join('; '))
    }
    assert.match(scanPickle(Buffer.concat([good, Buffer.from('x')])).problems.join(), /1 bytes after STOP/)
    assert.equal(scanPickle(Buffer.concat([good, Buffer.from('x')]), { allowTrailing: true }).ok, true)
    assert.match(scanPickle(Buffer.from([0x80, 0x02, 0xff])).problems.join(), /unknown opcode 0xff/)
    assert.match(scanPickle(new Uint8Array(0)).problems.join(), /truncated/)
    assert.match(scanPickle(Buffer.from([0x80, 0x06, 0x4e, 0x2e])).problems.join(), /unknown protocol 6/)
    const bigLen = Buffer.from([0x80, 0x04, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x2e])
    assert.match(scanPickle(bigLen).problems.join(), /truncated/)
    assert.match(scanPickle(Buffer.from([0x80, 0x04, 0x95, 100, 0, 0, 0, 0, 0, 0, 0, 0x4e, 0x2e])).problems.join(), /truncated: length 100/)
    assert.match(scanPickle(Buffer.from('N0.')).problems.join(), /stack underflow/) // POP leaves nothing for STOP
    assert.match(scanPickle(Buffer.from('NN.')).problems.join(), /left on the stack/)
  })

  const sbu = (s: string) => Buffer.concat([Buffer.from([0x8c, s.length]), Buffer.from(s)]) // SHORT_BINUNICODE

  test('STACK_GLOBAL operands are tracked through the memo', () => {
    const p = Buffer.concat([Buffer.from([0x80, 0x04]), sbu('collections'), Buffer.from([0x94]), sbu('OrderedDict'), Buffer.from([0x94]),
      Buffer.from([0x68, 0x00, 0x68, 0x01, 0x93]), Buffer.from(')R.')])
    // h0 h1 pushes the two memoized strings again; the first pair is left under them -> odd stack
    const r = scanPickle(p)
    assert.deepEqual(r.globals, ['collections.OrderedDict'])
    const clean = Buffer.concat([Buffer.from([0x80, 0x04]), sbu('collections'), Buffer.from([0x94]), sbu('OrderedDict'), Buffer.from([0x94, 0x93]), Buffer.from(')R.')])
    assert.deepEqual(scanPickle(clean), { ok: true, globals: ['collections.OrderedDict'], problems: [], end: clean.length })
  })

  test('STACK_GLOBAL with operands it cannot determine fails closed', () => {
    const p = Buffer.concat([Buffer.from([0x80, 0x04]), Buffer.from('ccollections\nOrderedDict\n)R'), sbu('system'), Buffer.from([0x93]), Buffer.from(')R.')])
    const r = scanPickle(p)
    assert.equal(r.ok, false)
    assert.match(r.problems.join(), /STACK_GLOBAL at offset \d+ takes operands that are not literal strings/)
    assert.match(r.problems.join(), /REDUCE at offset \d+ calls something that is not a named global/)
  })

  test('dotted names and calls to non-callable references are refused', () => {
    const dotted = Buffer.concat([Buffer.from([0x80, 0x04]), sbu('torch'), sbu('os.system'), Buffer.from([0x93]), sbu('id'), Buffer.from([0x85]), Buffer.from('R.')])
    const r = scanPickle(dotted)
    assert.equal(r.ok, false)
    assert.deepEqual(r.globals, ['torch.os.system'])
    const callStorage = scanPickle(Buffer.from('\x80\x02ctorch\nFloatStorage\n)R.', 'latin1'))
    assert.equal(callStorage.ok, false)
    assert.match(callStorage.problems.join(), /calls torch\.FloatStorage, which is not an allowed callable/)
    const ext = scanPickle(Buffer.from([0x80, 0x02, 0x82, 0x01, 0x2e]))
    assert.match(ext.problems.join(), /extension registry/)
  })
})

// ---------- describeFile ----------

describe('describeFile', () => {
  test('safetensors: segments and tensors', async () => {
    const bytes = encodeSafetensors([
      { name: 'a', dtype: 'F32', shape: [2], data: f32(1, 2) },
      { name: 'b', dtype: 'U8', shape: [3], data: new Uint8Array(3) },
    ])
    const d = await describeFile(memRead(bytes), bytes.length)
    assert.equal(d.format, 'safetensors')
    assert.deepEqual(d.segments, [bytes.length - 11, 8, 3])
    assert.deepEqual(d.fixed, [false, true, true]) // tensor data: fixed-size chunks when over 1 MiB
    assert.deepEqual(d.tensors!.map((t) => t.name), ['a', 'b'])
    assert.equal(d.warning, undefined)
  })

  test('safetensors with a header larger than the sniffed head', async () => {
    const tensors = Array.from({ length: 2000 }, (_, i) => ({ name: `layer.${i}.weight.with.a.long.name`, dtype: 'U8', shape: [1], data: new Uint8Array([i & 255]) }))
    const bytes = encodeSafetensors(tensors)
    assert.ok(safetensorsHeaderLength(bytes) > 64 * 1024)
    const d = await describeFile(memRead(bytes), bytes.length)
    assert.equal(d.segments!.length, 2001)
    assert.equal(d.segments!.reduce((a, b) => a + b), bytes.length)
  })

  test('a hostile safetensors file gives a warning and no segments', async () => {
    const bytes = rawSafetensors('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', 12)
    const d = await describeFile(memRead(bytes), bytes.length)
    assert.deepEqual([d.format, d.segments], ['safetensors', null])
    assert.match(d.warning!, /^safetensors: tensor "b" overlaps/)
  })

  test('pytorch zip: segments plus a pickle scan of data.pkl', async () => {
    const bytes = fixture('torchlike.txt')
    const d = await describeFile(memRead(bytes), bytes.length)
    assert.equal(d.format, 'pytorch-zip')
    assert.equal(d.segments!.reduce((a, b) => a + b), bytes.length)
    assert.equal(d.pickle!.ok, true)
    // the storages under data/ are tensor data; the pickle and zip framing are not
    assert.equal(d.fixed!.length, d.segments!.length)
    assert.ok(d.fixed!.some((f) => f) && d.fixed!.some((f) => !f), JSON.stringify(d.fixed))
    assert.equal(d.fixed![0], false)
    const evil = fixture('torch-evil.pt')
    const e = await describeFile(memRead(evil), evil.length)
    assert.equal(e.pickle!.ok, false)
    assert.ok(e.segments) // stored as chunks all the same: nothing is ever unpickled
  })

  test('gguf, npy, npz, pickle, unknown', async () => {
    const { bytes: g } = goodGguf()
    const dg = await describeFile(memRead(g), g.length)
    assert.deepEqual([dg.format, dg.tensors!.map((t) => t.dtype)], ['gguf', ['F32', 'Q8_0']])
    assert.deepEqual(dg.fixed, [false, true, true])
    const n = fixture('f32.npy')
    const dn = await describeFile(memRead(n), n.length)
    assert.deepEqual([dn.format, dn.segments, dn.tensors![0]!.shape, dn.fixed], ['npy', [128, 48], [3, 4], [false, true]])
    const z = fixture('pair.npz')
    const dz = await describeFile(memRead(z), z.length)
    assert.equal(dz.format, 'npz')
    assert.equal(dz.fixed!.filter((f) => f).length, 2) // a.npy and b.npy
    const p = fixture('evil2.pkl')
    const dp = await describeFile(memRead(p), p.length)
    assert.deepEqual([dp.format, dp.segments, dp.pickle!.ok], ['pickle', null, false])
    const t = Buffer.from('plain text')
    assert.deepEqual(await describeFile(memRead(t), t.length), { format: 'unknown', segments: null })
    const slip = fixture('slip.zip')
    const ds = await describeFile(memRead(slip), slip.length)
    assert.deepEqual([ds.format, ds.segments], ['zip', null])
    assert.match(ds.warning!, /hostile entry name/)
    const obj = fixture('object.npy')
    assert.match((await describeFile(memRead(obj), obj.length)).warning!, /object dtype/)
  })

  test('I/O errors are rethrown, not turned into warnings', async () => {
    const { bytes } = goodGguf()
    let calls = 0
    const flaky = async (offset: number, length: number) => {
      if (++calls > 1) throw new Error('disk on fire')
      return bytes.subarray(offset, offset + length)
    }
    await assert.rejects(describeFile(flaky, bytes.length), /disk on fire/)
    const short = async () => new Uint8Array(1)
    await assert.rejects(describeFile(short, 100), /short read/)
  })
})
