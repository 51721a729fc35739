/**
 * One entry point for the store: what is this file, and where must chunk boundaries fall?
 * Reads headers and tensor extents only; never unpickles and never loads weights whole.
 */
import { errorMessage } from '../errors.js'
import { ggufSegments, ggufTensorInfos, readGgufLayout } from './gguf.js'
import { npyHeaderLength, npySegments, parseNpyHeader } from './npy.js'
import { scanPickle, type PickleScan } from './pickle-scan.js'
import { readExact, type ReadAt } from './reader.js'
import { parseSafetensorsHeader, safetensorsHeaderLength, safetensorsSegments, type TensorInfo } from './safetensors.js'
import { SNIFF_BYTES, sniff, type FormatName } from './sniff.js'
import { readZipLayout, zipSegments } from './zip.js'

export type { FormatName } from './sniff.js'
export type { TensorInfo } from './safetensors.js'
export type { PickleScan } from './pickle-scan.js'
export type { ReadAt } from './reader.js'

export interface FileDescription {
  format: FormatName
  /**
   * Lengths (each > 0, summing to the file size) of consecutive regions that chunk boundaries must
   * follow: a chunk never spans two. null when the format has no known layout or the file is
   * malformed; the caller then stores it as opaque bytes.
   */
  segments: number[] | null
  tensors?: TensorInfo[]
  /** Set when the file claims a known format but its layout is malformed or hostile. */
  warning?: string
  /** Static scan of the pickle inside a PyTorch zip (data.pkl) or of a raw pickle file. */
  pickle?: PickleScan
}

/** Pickles up to this size are scanned by describeFile; larger ones get ok: false, unscanned. */
export const PICKLE_SCAN_MAX = 64 * 1024 * 1024

/**
 * Describes a file from its bytes. `read(offset, length)` must return exactly `length` bytes.
 * Never throws for bad content: errors thrown by `read` itself (I/O) are rethrown unchanged.
 */
export async function describeFile(read: ReadAt, size: number): Promise<FileDescription> {
  let ioError: { err: unknown } | undefined
  const io: ReadAt = async (offset, length) => {
    try {
      return await readExact(read, offset, length)
    } catch (err) {
      ioError = { err }
      throw err
    }
  }
  const head = await io(0, Math.min(size, SNIFF_BYTES))
  const format = sniff(head, size)
  try {
    switch (format) {
      case 'safetensors': {
        const need = 8 + safetensorsHeaderLength(head)
        const bytes = head.length >= need ? head : await io(0, Math.min(need, size))
        const layout = parseSafetensorsHeader(bytes, size)
        return { format, segments: safetensorsSegments(layout, size), tensors: layout.tensors }
      }
      case 'npy': {
        const need = npyHeaderLength(head)
        const bytes = head.length >= need ? head : await io(0, Math.min(need, size))
        const header = parseNpyHeader(bytes, size)
        const tensors: TensorInfo[] = [{
          name: '', dtype: typeof header.descr === 'string' ? header.descr : JSON.stringify(header.descr),
          shape: header.shape, start: header.dataOffset, end: size,
        }]
        return { format, segments: npySegments(header, size), tensors }
      }
      case 'gguf': {
        const layout = await readGgufLayout(io, size)
        return { format, segments: ggufSegments(layout, size), tensors: ggufTensorInfos(layout) }
      }
      case 'pytorch-zip': case 'zip': case 'npz': {
        const layout = await readZipLayout(io, size)
        const out: FileDescription = { format, segments: zipSegments(layout.entries, size) }
        if (format === 'pytorch-zip') {
          const pkl = layout.entries.find((e) => /(^|\/)data\.pkl$/.test(e.name))
          if (!pkl) out.pickle = { ok: false, globals: [], problems: ['no data.pkl entry'], end: 0 }
          else if (pkl.method !== 0) out.pickle = { ok: false, globals: [], problems: ['data.pkl is compressed; not scanned'], end: 0 }
          else if (pkl.compressedSize > PICKLE_SCAN_MAX) out.pickle = { ok: false, globals: [], problems: ['data.pkl is too large to scan'], end: 0 }
          else out.pickle = scanPickle(await io(pkl.dataOffset, pkl.compressedSize))
        }
        return out
      }
      case 'pickle':
        return { format, segments: null, pickle: await scanRawPickle(io, size) }
      default:
        return { format, segments: null }
    }
  } catch (err) {
    if (ioError !== undefined) throw ioError.err
    return { format, segments: null, warning: errorMessage(err) }
  }
}

/**
 * A raw pickle file. Legacy (pre-1.6) torch files chain five pickles (magic number, protocol,
 * system info, the object, storage keys) before raw storage bytes; scan up to five in a row.
 */
async function scanRawPickle(io: ReadAt, size: number): Promise<PickleScan> {
  const bytes = await io(0, Math.min(size, PICKLE_SCAN_MAX))
  const globals: string[] = []
  const problems: string[] = []
  let pos = 0
  for (let i = 0; i < 5 && pos < bytes.length && (i === 0 || bytes[pos] === 0x80); i++) {
    const r = scanPickle(bytes.subarray(pos), { allowTrailing: true })
    for (const g of r.globals) if (!globals.includes(g)) globals.push(g)
    problems.push(...r.problems.map((p) => (i === 0 ? p : `pickle ${i + 1}: ${p}`)))
    if (r.problems.length > 0) break
    pos += r.end
  }
  if (size > PICKLE_SCAN_MAX && problems.length === 0 && pos >= bytes.length) problems.push('pickle is too large to scan')
  return { ok: problems.length === 0, globals, problems, end: pos }
}

export { sniff, isWeightsFile, SNIFF_BYTES } from './sniff.js'
export { parseSafetensorsHeader, safetensorsHeaderLength, safetensorsSegments, encodeSafetensors } from './safetensors.js'
export { readZipLayout, zipSegments, hostileZipName } from './zip.js'
export { readGgufLayout, ggufSegments } from './gguf.js'
export { parseNpyHeader, npyHeaderLength, npySegments } from './npy.js'
export { scanPickle, PICKLE_ALLOWED_CALLABLES, PICKLE_ALLOWED_REFERENCES } from './pickle-scan.js'
export { readTorchLayout, writeTorchArchive } from './torch.js'
export { readTorchPickle, torchTensorsOf, TORCH_ALLOWED_GLOBALS } from './torch-pickle.js'
