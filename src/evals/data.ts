/**
 * Labelled evaluation data (spec/eval.md, "Data format"): NumPy arrays x (float, [N, ...]) and
 * y (integer class labels, [N]), given as
 *   - `<stem>.x.npy` with its labels in `<stem>.y.npy` beside it (or named by --labels), or
 *   - `<stem>.npz` holding arrays `x` and `y` (np.savez or np.savez_compressed).
 * Inputs are read in row batches, never whole (except the deflated arrays of a compressed .npz).
 * The data digest does not depend on the container: the same arrays as .npy pair or .npz give the
 * same digest, so evaluation records and agreement match across both.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { createHash } from 'node:crypto'
import { inflateRawSync } from 'node:zlib'
import * as zlib from 'node:zlib'
import { npyHeaderLength, parseNpyHeader, type NpyHeader } from '../formats/npy.js'
import { readZipLayout } from '../formats/zip.js'
import { readExact, type ReadAt } from '../formats/reader.js'
import { UsageError, FormatError, errorMessage } from '../errors.js'
import { halfToFloat } from '../weights/dtype.js'

export const DATA_DIGEST_PREFIX = 'git-zoo-eval-data/1\n'
/** A compressed .npz array is inflated in memory; larger ones are refused (use np.savez or .npy). */
export const MAX_INFLATED = 1 << 30

export interface ArrayInfo { descr: string; shape: number[] }

export interface Dataset {
  /** The file(s) as the user named them, for messages and records. */
  source: string
  n: number
  /** x's shape without the leading N. */
  rowShape: number[]
  x: ArrayInfo
  y: ArrayInfo
  labels: Int32Array
  /** sha256 (hex) of the arrays, container-independent (spec/eval.md). */
  sha256: string
  /** Rows [start, start + count) of x as float32, row-major. */
  readRows(start: number, count: number): Promise<Float32Array>
  close(): Promise<void>
}

interface NpyArray { header: NpyHeader; descr: string; read: ReadAt; close: () => Promise<void> }

const X_DESCR = /^[<=|]f[248]$/
const Y_DESCR = /^[<=|][iu][1248]$/

function dataError(message: string, data: Record<string, unknown> = {}): never {
  throw new UsageError(message, 'E_BAD_DATA', data)
}

async function npyFromRead(read: ReadAt, size: number, what: string, close: () => Promise<void>): Promise<NpyArray> {
  try {
    const pre = await readExact(read, 0, Math.min(size, 12))
    const need = npyHeaderLength(pre)
    if (need > size) dataError(`${what}: the .npy header runs past the end of the data`)
    const header = parseNpyHeader(await readExact(read, 0, need), size)
    if (typeof header.descr !== 'string') dataError(`${what}: structured arrays are not evaluation data; x must be float and y integer`)
    return { header, descr: header.descr, read, close }
  } catch (err) {
    await close()
    if (err instanceof FormatError) dataError(`${what} is not a readable .npy array: ${err.message}`)
    throw err
  }
}

async function openNpyFile(path: string): Promise<NpyArray> {
  let fd: FileHandle
  try { fd = await open(path, 'r') } catch (err) {
    dataError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err)}`, { path })
  }
  const { size } = await fd.stat()
  const read: ReadAt = async (o, l) => { const b = Buffer.alloc(l); const { bytesRead } = await fd.read(b, 0, l, o); return b.subarray(0, bytesRead) }
  return npyFromRead(read, size, path, () => fd.close())
}

async function openNpz(path: string): Promise<{ x: NpyArray; y: NpyArray; close: () => Promise<void> }> {
  let fd: FileHandle
  try { fd = await open(path, 'r') } catch (err) {
    dataError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err)}`, { path })
  }
  const { size } = await fd.stat()
  const read: ReadAt = async (o, l) => { const b = Buffer.alloc(l); const { bytesRead } = await fd.read(b, 0, l, o); return b.subarray(0, bytesRead) }
  let closed = false
  const close = async (): Promise<void> => { if (!closed) { closed = true; await fd.close() } }
  try {
    const layout = await readZipLayout(read, size)
    const entry = async (name: string): Promise<NpyArray> => {
      const e = layout.entries.find((x) => x.name === `${name}.npy`)
      if (!e) dataError(`${path} has no array ${JSON.stringify(name)} (it holds ${layout.entries.map((x) => x.name.replace(/\.npy$/, '')).join(', ') || 'nothing'}); an evaluation .npz holds arrays x and y`)
      if (e.method === 0) {
        if (e.compressedSize !== e.uncompressedSize) dataError(`${path}: stored entry ${e.name} has inconsistent sizes`)
        return npyFromRead((o, l) => read(e.dataOffset + o, l), e.compressedSize, `${path}:${e.name}`, async () => {})
      }
      if (e.method !== 8) dataError(`${path}: entry ${e.name} uses compression method ${e.method}; only stored and deflate are read`)
      if (e.uncompressedSize > MAX_INFLATED) dataError(`${path}: compressed entry ${e.name} inflates to ${e.uncompressedSize} bytes, over the ${MAX_INFLATED}-byte limit; save with np.savez (uncompressed) or as .npy files`)
      let bytes: Buffer
      try {
        bytes = inflateRawSync(await readExact(read, e.dataOffset, e.compressedSize), { maxOutputLength: Math.max(1, e.uncompressedSize) })
      } catch (err) { dataError(`${path}: entry ${e.name} does not inflate: ${errorMessage(err)}`) }
      if (bytes.length !== e.uncompressedSize) dataError(`${path}: entry ${e.name} inflates to ${bytes.length} bytes, its header says ${e.uncompressedSize}`)
      const crc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32
      if (crc && crc(bytes) >>> 0 !== e.crc32 >>> 0) dataError(`${path}: entry ${e.name} fails its CRC-32 check`)
      return npyFromRead(async (o, l) => bytes.subarray(o, o + l), bytes.length, `${path}:${e.name}`, async () => {})
    }
    // the arrays are read through `read`: the file stays open until the dataset is closed
    return { x: await entry('x'), y: await entry('y'), close }
  } catch (err) {
    await close()
    if (err instanceof FormatError) dataError(`${path} is not a readable .npz: ${err.message}`)
    throw err
  }
}

/** The labels file that goes with `<stem>.x.npy`. */
export function labelsPathFor(xPath: string): string | undefined {
  const m = /^(.*)\.x\.npy$/.exec(basename(xPath))
  return m ? join(dirname(xPath), `${m[1]}.y.npy`) : undefined
}

export async function openDataset(path: string, opts: { labels?: string } = {}): Promise<Dataset> {
  let x: NpyArray, y: NpyArray
  let source: string
  let closeAll: () => Promise<void>
  if (/\.npz$/i.test(path)) {
    if (opts.labels) dataError('--labels goes with an .npy input; an .npz holds its own y')
    const z = await openNpz(path)
    x = z.x; y = z.y
    source = basename(path)
    closeAll = z.close
  } else {
    const labels = opts.labels ?? labelsPathFor(path)
    if (!labels) dataError(`cannot tell where the labels of ${path} are: name the inputs <stem>.x.npy and the labels <stem>.y.npy, pass --labels <file>, or use an .npz holding x and y`, { path })
    x = await openNpyFile(path)
    try { y = await openNpyFile(labels) } catch (err) { await x.close(); throw err }
    source = `${basename(path)} + ${basename(labels)}`
    closeAll = async () => { await x.close(); await y.close() }
  }
  try {
    return await describe(x, y, source, closeAll)
  } catch (err) {
    await closeAll()
    throw err
  }
}

async function describe(x: NpyArray, y: NpyArray, source: string, close: () => Promise<void>): Promise<Dataset> {
  const xh = x.header, yh = y.header
  if (!X_DESCR.test(x.descr)) dataError(`x has dtype ${x.descr}; evaluation inputs are little-endian float (<f4, <f8 or <f2)`)
  if (!Y_DESCR.test(y.descr)) dataError(`y has dtype ${y.descr}; labels are little-endian integers (<i8, <i4, |u1, ...)`)
  if (xh.shape.length < 1) dataError('x is a scalar; it must be [N, ...]')
  if (yh.shape.length !== 1) dataError(`y has shape (${yh.shape.join(', ')}); labels are one class index per sample, shape (N,)`)
  const n = xh.shape[0]!
  if (n === 0) dataError('the dataset holds no samples')
  if (yh.shape[0] !== n) dataError(`x holds ${n} samples but y holds ${yh.shape[0]} labels`)
  if (xh.fortranOrder && xh.shape.filter((d) => d > 1).length > 1) dataError('x is stored in Fortran order; save it C-ordered (np.ascontiguousarray)')
  const rowShape = xh.shape.slice(1)
  const rowSize = rowShape.reduce((a, b) => a * b, 1)
  const xItem = xh.itemSize
  // labels: small, read whole
  const yBytes = await readExact(y.read, yh.dataOffset, yh.dataLength)
  const labels = new Int32Array(n)
  const dv = new DataView(yBytes.buffer, yBytes.byteOffset, yBytes.byteLength)
  const signed = y.descr[1] === 'i'
  const ys = yh.itemSize
  for (let i = 0; i < n; i++) {
    let v: number
    switch (ys) {
      case 1: v = signed ? dv.getInt8(i) : dv.getUint8(i); break
      case 2: v = signed ? dv.getInt16(2 * i, true) : dv.getUint16(2 * i, true); break
      case 4: v = signed ? dv.getInt32(4 * i, true) : dv.getUint32(4 * i, true); break
      default: { const b = signed ? dv.getBigInt64(8 * i, true) : dv.getBigUint64(8 * i, true); v = b > 0x7fffffffn || b < -1n ? -2 : Number(b) }
    }
    if (v < 0 || v > 0x7fffffff) dataError(`label ${i} is ${v === -2 ? 'out of range' : v}; labels are class indexes 0, 1, 2, ...`)
    labels[i] = v
  }
  // the digest: container-independent, over both arrays (one streaming pass over x)
  const hash = createHash('sha256').update(DATA_DIGEST_PREFIX)
  hash.update(`x ${x.descr} ${xh.shape.join(',')}\n`)
  for (let o = 0; o < xh.dataLength; o += 8 << 20) hash.update(await readExact(x.read, xh.dataOffset + o, Math.min(8 << 20, xh.dataLength - o)))
  hash.update(`y ${y.descr} ${yh.shape.join(',')}\n`).update(yBytes)
  const sha256 = hash.digest('hex')
  const readRows = async (start: number, count: number): Promise<Float32Array> => {
    const bytes = await readExact(x.read, xh.dataOffset + start * rowSize * xItem, count * rowSize * xItem)
    const out = new Float32Array(count * rowSize)
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    if (xItem === 4) for (let i = 0; i < out.length; i++) out[i] = v.getFloat32(4 * i, true)
    else if (xItem === 8) for (let i = 0; i < out.length; i++) out[i] = v.getFloat64(8 * i, true)
    else for (let i = 0; i < out.length; i++) out[i] = halfToFloat(v.getUint16(2 * i, true))
    return out
  }
  return {
    source, n, rowShape,
    x: { descr: x.descr, shape: xh.shape }, y: { descr: y.descr, shape: yh.shape },
    labels, sha256, readRows, close,
  }
}
