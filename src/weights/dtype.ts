/**
 * Element types of tensors as numbers: decoding little-endian bytes to float64 and encoding float64
 * back (round to nearest, ties to even, as IEEE 754 and PyTorch do). Names are safetensors dtypes.
 */

/** Bytes per element of the dtypes this module decodes. */
export const ITEM_SIZE: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
}

/** Dtypes a soup averages (others must be identical across the models and are copied). */
export const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16'])

export function decodable(dtype: string): boolean { return dtype in ITEM_SIZE }

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return s * m * 2 ** -24
  if (e === 31) return m ? NaN : s * Infinity
  return s * (1 + m / 1024) * 2 ** (e - 15)
}

/**
 * float64 -> the bits of a binary float with `expBits` exponent and `mantBits` mantissa bits (a sign
 * bit on top), rounding the double directly to nearest, ties to even (no double rounding through
 * float32). Overflow gives infinity, NaN a quiet NaN; subnormals are kept.
 */
function toSmallFloat(v: number, expBits: number, mantBits: number): number {
  const signBit = 1 << (expBits + mantBits)
  const expMask = (1 << expBits) - 1
  if (Number.isNaN(v)) return (expMask << mantBits) | (1 << (mantBits - 1))
  const sign = v < 0 || Object.is(v, -0) ? signBit : 0
  const a = Math.abs(v)
  const bias = (1 << (expBits - 1)) - 1
  if (a === Infinity) return sign | (expMask << mantBits)
  const minExp = 1 - bias
  if (a < 2 ** minExp) {
    // subnormal, in units of 2^(minExp - mantBits); a carry into 2^mantBits is the smallest normal's pattern
    return sign | roundEven(a / 2 ** (minExp - mantBits))
  }
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e--
  else if (2 ** (e + 1) <= a) e++
  let m = roundEven((a / 2 ** e - 1) * 2 ** mantBits)
  if (m === 2 ** mantBits) { m = 0; e++ }
  if (e > bias) return sign | (expMask << mantBits)
  return sign | ((e + bias) << mantBits) | m
}

export function floatToHalf(v: number): number { return toSmallFloat(v, 5, 10) }
export function floatToBf16(v: number): number { return toSmallFloat(v, 8, 7) }

function roundEven(x: number): number {
  const f = Math.floor(x)
  const d = x - f
  if (d > 0.5) return f + 1
  if (d < 0.5) return f
  return f % 2 === 0 ? f : f + 1
}

export function bf16ToFloat(b: number): number {
  u32[0] = b << 16
  return f32[0]!
}

/** Decode `count` elements of `dtype` from little-endian `bytes` into `out` (float64). */
export function decodeInto(bytes: Uint8Array, dtype: string, out: Float64Array): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const n = out.length
  switch (dtype) {
    case 'F64': for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true); break
    case 'F32': for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true); break
    case 'F16': for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true)); break
    case 'BF16': for (let i = 0; i < n; i++) out[i] = bf16ToFloat(dv.getUint16(2 * i, true)); break
    case 'I64': for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true)); break
    case 'U64': for (let i = 0; i < n; i++) out[i] = Number(dv.getBigUint64(8 * i, true)); break
    case 'I32': for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true); break
    case 'U32': for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true); break
    case 'I16': for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true); break
    case 'U16': for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true); break
    case 'I8': for (let i = 0; i < n; i++) out[i] = dv.getInt8(i); break
    case 'U8': case 'BOOL': for (let i = 0; i < n; i++) out[i] = dv.getUint8(i); break
    default: throw new TypeError(`cannot decode dtype ${dtype}`)
  }
}

/** Encode float64 values as `dtype` (a float dtype) little-endian. */
export function encodeFloats(values: Float64Array, dtype: string): Uint8Array {
  const size = ITEM_SIZE[dtype]!
  const out = new Uint8Array(values.length * size)
  const dv = new DataView(out.buffer)
  const n = values.length
  switch (dtype) {
    case 'F64': for (let i = 0; i < n; i++) dv.setFloat64(8 * i, values[i]!, true); break
    case 'F32': for (let i = 0; i < n; i++) dv.setFloat32(4 * i, values[i]!, true); break
    case 'F16': for (let i = 0; i < n; i++) dv.setUint16(2 * i, floatToHalf(values[i]!), true); break
    case 'BF16': for (let i = 0; i < n; i++) dv.setUint16(2 * i, floatToBf16(values[i]!), true); break
    default: throw new TypeError(`cannot encode dtype ${dtype} from floats`)
  }
  return out
}
