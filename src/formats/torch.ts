/**
 * PyTorch checkpoints (`torch.save` zip archives, torch >= 1.6): where each tensor's bytes are.
 * The archive holds `<prefix>/data.pkl` (the object, read by the restricted VM of torch-pickle.ts),
 * `<prefix>/data/<key>` (one stored entry per storage) and `<prefix>/version`; torch 1.x names the
 * prefix after the file (`checkpoints/`, `model/`), torch 2.x writes `archive/`. Also the writer of
 * such archives (soups of torch checkpoints).
 */
import { FormatError } from '../errors.js'
import { readExact, type ReadAt } from './reader.js'
import { readZipLayout, ZipWriter, type WriteAt, type ZipLayout } from './zip.js'
import { readTorchPickle, torchTensorsOf, TORCH_ITEM_SIZE, TORCH_PICKLE_MAX, writeTorchPickle, type PyValue, type TorchTensor } from './torch-pickle.js'

export interface TorchTensorPlace {
  name: string
  tensor: TorchTensor
  dtype: string
  shape: number[]
  /** The bytes of a contiguous tensor in the file: [start, end). */
  start?: number
  end?: number
  /** Why the tensor has no single byte extent (non-contiguous view, compressed storage). */
  problem?: string
}

export interface TorchLayout {
  /** The archive's folder: `archive` (torch 2.x) or the file's stem (torch 1.x). */
  prefix: string
  root: PyValue
  tensors: TorchTensorPlace[]
}

function bad(message: string): never {
  throw new FormatError(`torch: ${message}`, 'E_TORCH_PICKLE')
}

/** Reads a torch.save zip's data.pkl in the restricted VM and places each tensor in the file. */
export async function readTorchLayout(read: ReadAt, size: number, zip?: ZipLayout): Promise<TorchLayout> {
  const layout = zip ?? await readZipLayout(read, size)
  const pkls = layout.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name))
  if (pkls.length !== 1) bad(pkls.length === 0 ? 'no <prefix>/data.pkl entry: not a torch.save archive' : `${pkls.length} data.pkl entries`)
  const pkl = pkls[0]!
  const prefix = pkl.name.slice(0, -'/data.pkl'.length)
  if (pkl.method !== 0) bad(`${pkl.name} is compressed; torch.save stores it`)
  if (pkl.compressedSize > TORCH_PICKLE_MAX) bad(`${pkl.name} is ${pkl.compressedSize} bytes, over the ${TORCH_PICKLE_MAX}-byte limit`)
  const root = readTorchPickle(await readExact(read, pkl.dataOffset, pkl.compressedSize))
  const byName = new Map(layout.entries.map((e) => [e.name, e]))
  const tensors: TorchTensorPlace[] = []
  for (const { name, tensor } of torchTensorsOf(root)) {
    const s = tensor.storage
    const entryName = `${prefix}/data/${s.key}`
    const e = byName.get(entryName)
    if (!e) bad(`tensor ${name}: its storage ${entryName} is not in the archive`)
    const storageBytes = s.numel * TORCH_ITEM_SIZE[s.dtype]!
    if (e.uncompressedSize < storageBytes) bad(`tensor ${name}: storage ${entryName} holds ${e.uncompressedSize} bytes, data.pkl says ${storageBytes}`)
    const place: TorchTensorPlace = { name, tensor, dtype: tensor.dtype, shape: tensor.shape }
    const item = TORCH_ITEM_SIZE[tensor.dtype]!
    if (e.method !== 0) place.problem = `storage ${entryName} is compressed`
    else if (!tensor.contiguous) place.problem = `a non-contiguous view (shape [${tensor.shape}], stride [${tensor.stride}]); save tensor.contiguous() to compare or average it`
    else { place.start = e.dataOffset + tensor.offset * item; place.end = place.start + tensor.numel * item }
    tensors.push(place)
  }
  return { prefix, root, tensors }
}

export interface TorchWriteTensor {
  /** The tensor of the template tree it replaces. */
  tensor: TorchTensor
  dtype: string
  bytes: number
  /** Writes exactly `bytes` bytes of the tensor's data through `put`. */
  fill: (put: (bytes: Uint8Array) => Promise<void>) => Promise<void>
}

/**
 * Writes a torch.save archive (torch 2.x layout: `archive/data.pkl`, `archive/byteorder`,
 * `archive/data/<n>` aligned to 64 bytes, `archive/version` = 3) holding `root` with each tensor of
 * `tensors` stored contiguously in a storage of its own. Returns each tensor's data offset.
 */
export async function writeTorchArchive(write: WriteAt, root: PyValue, tensors: TorchWriteTensor[], prefix = 'archive'): Promise<{ size: number; offsets: Map<TorchTensor, number> }> {
  const keys = new Map<TorchTensor, string>()
  tensors.forEach((t, i) => keys.set(t.tensor, String(i)))
  const pickle = writeTorchPickle(root, (t) => {
    const key = keys.get(t)
    if (key === undefined) bad('a tensor of the tree has no data to write')
    const w = tensors[Number(key)]!
    return { key, dtype: w.dtype, numel: w.bytes / TORCH_ITEM_SIZE[w.dtype]! }
  })
  const zip = new ZipWriter(write, { align: 64 })
  await zip.add(`${prefix}/data.pkl`, pickle)
  await zip.add(`${prefix}/byteorder`, Buffer.from('little'))
  const offsets = new Map<TorchTensor, number>()
  for (const [i, t] of tensors.entries()) {
    offsets.set(t.tensor, await zip.begin(`${prefix}/data/${i}`, t.bytes))
    await t.fill((b) => zip.data(b))
    await zip.end()
  }
  await zip.add(`${prefix}/version`, Buffer.from('3\n'))
  return { size: await zip.finish(), offsets }
}
