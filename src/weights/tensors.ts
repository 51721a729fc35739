/**
 * The tensors of a model file as the store holds it: names, dtypes, shapes and byte extents, from
 * safetensors headers, ONNX initializers (inline raw_data, or external data in another file of
 * the same model) and torch.save zips (data.pkl read by the restricted VM of
 * formats/torch-pickle.ts, which refuses any global off its allow-list and runs nothing).
 */
import { posix } from 'node:path'
import type { FileEntry, Manifest } from '../manifest/manifest.js'
import type { Store } from '../cas/store.js'
import { parseSafetensorsHeader, safetensorsHeaderLength } from '../formats/safetensors.js'
import { readZipLayout } from '../formats/zip.js'
import { scanPickle, type PickleScan } from '../formats/pickle-scan.js'
import { readTorchLayout } from '../formats/torch.js'
import type { PyValue, TorchTensor } from '../formats/torch-pickle.js'
import { readOnnxLayout, ONNX_TYPES, onnxItemSize } from '../onnx/inspect.js'
import { StoredFile } from './stored-file.js'
import { FormatError } from '../errors.js'

export interface TensorRef {
  name: string
  /** safetensors dtype name (ONNX types are mapped: float32 -> F32, ...). */
  dtype: string
  shape: number[]
  /** The file holding the bytes, and their extent [start, end) in it. */
  file: StoredFile
  start: number
  end: number
}

export interface TensorListing {
  format: string
  tensors: TensorRef[]
  /** pytorch-zip: the object data.pkl holds, and each listed tensor's node in it (for writing a soup back). */
  torch?: { root: PyValue; nodes: Map<string, TorchTensor> }
  /** Tensors that exist but cannot be compared byte-wise, with why. */
  skipped: Array<{ name: string; reason: string }>
}

/** Opens stored files once per model (external data shares them). */
export class FileOpener {
  private open = new Map<string, Promise<StoredFile>>()
  constructor(private readonly store: Store) {}
  get(entry: FileEntry): Promise<StoredFile> {
    let p = this.open.get(entry.root + entry.path)
    if (!p) { p = StoredFile.open(this.store, entry); this.open.set(entry.root + entry.path, p) }
    return p
  }
}

export const TENSOR_FORMATS = new Set(['safetensors', 'onnx', 'pytorch-zip'])

export async function listTensors(m: Manifest, entry: FileEntry, files: FileOpener): Promise<TensorListing> {
  const file = await files.get(entry)
  if (entry.format === 'safetensors') {
    const head8 = await file.read(0, Math.min(8, file.size))
    const n = safetensorsHeaderLength(head8)
    if (8 + n > file.size) throw new FormatError(`safetensors: header of ${n} bytes runs past the end of ${entry.path}`, 'E_SAFETENSORS')
    const layout = parseSafetensorsHeader(await file.read(0, 8 + n), file.size)
    return { format: 'safetensors', tensors: layout.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, file, start: t.start, end: t.end })), skipped: [] }
  }
  if (entry.format === 'onnx') {
    const layout = await readOnnxLayout((o, l) => file.read(o, l), file.size)
    const tensors: TensorRef[] = []
    const skipped: TensorListing['skipped'] = []
    const dir = posix.dirname(entry.path)
    for (const t of layout.initializers) {
      const dtype = ONNX_TYPES[t.dataType]?.safetensors
      const item = onnxItemSize(t.dataType)
      if (!dtype || item === undefined) { skipped.push({ name: t.name, reason: `element type ${ONNX_TYPES[t.dataType]?.name ?? t.dataType} is not compared` }); continue }
      const bytes = t.numel * item
      if (t.raw) {
        if (t.raw.end - t.raw.start !== bytes) { skipped.push({ name: t.name, reason: `raw_data holds ${t.raw.end - t.raw.start} bytes, dims say ${bytes}` }); continue }
        tensors.push({ name: t.name, dtype, shape: t.dims, file, start: t.raw.start, end: t.raw.end })
      } else if (t.external) {
        const where = externalPathProblem(t.external.location)
        if (where) { skipped.push({ name: t.name, reason: `external data ${JSON.stringify(t.external.location)}: ${where}` }); continue }
        const path = dir === '.' ? t.external.location : `${dir}/${t.external.location}`
        const other = m.files.find((f) => f.path === posix.normalize(path))
        if (!other) { skipped.push({ name: t.name, reason: `external data ${t.external.location} is not a file of the model` }); continue }
        const len = t.external.length ?? bytes
        if (len !== bytes || t.external.offset + len > other.size) { skipped.push({ name: t.name, reason: `external extent [${t.external.offset}, +${len}) does not fit ${other.path} or the dims` }); continue }
        tensors.push({ name: t.name, dtype, shape: t.dims, file: await files.get(other), start: t.external.offset, end: t.external.offset + len })
      } else if (t.typed) {
        skipped.push({ name: t.name, reason: 'values are stored in typed fields (float_data, ...), not raw_data' })
      } else if (t.numel === 0) {
        tensors.push({ name: t.name, dtype, shape: t.dims, file, start: 0, end: 0 })
      } else {
        skipped.push({ name: t.name, reason: 'no data' })
      }
    }
    return { format: 'onnx', tensors, skipped }
  }
  if (entry.format === 'pytorch-zip') {
    const layout = await readTorchLayout((o, l) => file.read(o, l), file.size)
    const tensors: TensorRef[] = []
    const skipped: TensorListing['skipped'] = []
    const nodes = new Map<string, TorchTensor>()
    for (const t of layout.tensors) {
      nodes.set(t.name, t.tensor)
      if (t.start === undefined || t.end === undefined) skipped.push({ name: t.name, reason: t.problem ?? 'no byte extent' })
      else tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, file, start: t.start, end: t.end })
    }
    return { format: 'pytorch-zip', tensors, skipped, torch: { root: layout.root, nodes } }
  }
  throw new FormatError(`${entry.path} is ${entry.format}; tensors are read from safetensors, ONNX and torch.save files`, 'E_NOT_TENSORS')
}

/**
 * Why an ONNX external-data location is unsafe, or undefined: it must be a relative path inside the
 * model's folder (no `..`, not absolute, no backslash or NUL), as onnxruntime 1.30 also demands.
 */
export function externalPathProblem(location: string): string | undefined {
  if (location === '') return 'empty location'
  if (location.includes('\0')) return 'NUL in location'
  if (location.includes('\\')) return 'backslash in location'
  if (location.startsWith('/') || /^[A-Za-z]:/.test(location)) return 'absolute path'
  const parts = location.split('/')
  if (parts.some((p) => p === '..')) return 'a ".." component leaves the model folder'
  if (parts.some((p) => p === '' || p === '.')) return 'empty or "." component'
  return undefined
}

/**
 * The static scan of a stored PyTorch zip's data.pkl: never unpickled. `ok` false when the scan
 * fails or finds anything outside the allow-list (fail closed).
 */
export async function scanStoredPickle(entry: FileEntry, files: FileOpener): Promise<PickleScan & { entries: number }> {
  const file = await files.get(entry)
  const layout = await readZipLayout((o, l) => file.read(o, l), file.size)
  const pkl = layout.entries.find((e) => /(^|\/)data\.pkl$/.test(e.name))
  const base = { entries: layout.entries.length }
  if (!pkl) return { ...base, ok: false, globals: [], problems: ['no data.pkl entry'], end: 0 }
  if (pkl.method !== 0) return { ...base, ok: false, globals: [], problems: ['data.pkl is compressed; not scanned'], end: 0 }
  if (pkl.compressedSize > 64 * 1024 * 1024) return { ...base, ok: false, globals: [], problems: ['data.pkl is too large to scan'], end: 0 }
  return { ...base, ...scanPickle(await file.read(pkl.dataOffset, pkl.compressedSize)) }
}

/** Zip entries of a stored PyTorch checkpoint with their stored extents (for byte-level comparison). */
export async function zipEntries(entry: FileEntry, files: FileOpener): Promise<Array<{ name: string; start: number; end: number; crc32: number; method: number }>> {
  const file = await files.get(entry)
  const layout = await readZipLayout((o, l) => file.read(o, l), file.size)
  return layout.entries.map((e) => ({ name: e.name, start: e.dataOffset, end: e.dataOffset + e.compressedSize, crc32: e.crc32, method: e.method }))
}
