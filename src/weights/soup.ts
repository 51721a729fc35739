/**
 * Model soups and epoch averaging (spec/eval.md, "soup"): the element-wise weighted mean of
 * compatible safetensors files or torch.save checkpoints, computed in float64 and rounded once to
 * each tensor's dtype, written without holding whole tensors in memory in the first member's format:
 * a safetensors file, or a torch.save zip (the first member's object tree, e.g. a state dict, with
 * its tensors averaged) that `torch.load(path, weights_only=True)` reads. Optionally an ONNX file:
 * the graph of a template model with its initializers replaced by the soup's tensors of the same name.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { FileEntry, Manifest } from '../manifest/manifest.js'
import { SAFETENSORS_DTYPES } from '../formats/safetensors.js'
import { readOnnxLayout, ONNX_TYPES } from '../onnx/inspect.js'
import { decodeInto, encodeFloats, FLOAT_DTYPES, ITEM_SIZE } from './dtype.js'
import { FileOpener, listTensors, type TensorListing, type TensorRef } from './tensors.js'
import { WEIGHT_FORMATS } from './checkpoints.js'
import { writeTorchArchive, type TorchWriteTensor } from '../formats/torch.js'
import { mapTensors, TorchTensor } from '../formats/torch-pickle.js'
import { UsageError } from '../errors.js'

const WINDOW = 1 << 18

export interface SoupMember { manifest: Manifest; file: FileEntry; weight: number; epoch?: number }

export interface SoupTensor {
  name: string; dtype: string; shape: number[]; bytes: number; refs: TensorRef[]; averaged: boolean
  /** For a tensor that is not averaged: the member whose bytes are copied. */
  copyFrom: number
}

/** What a soup writes: its tensors, in the first member's format (and, for torch, its object tree). */
export interface SoupPlan { tensors: SoupTensor[]; format: 'safetensors' | 'pytorch-zip'; torch?: NonNullable<TensorListing['torch']> }

const RANK = new Map(SAFETENSORS_DTYPES.map(([name], i) => [name, i]))

function label(m: SoupMember): string { return `${m.manifest.name}@v${m.manifest.version}:${m.file.path}` }

/** Checks that every member holds the same tensor names, dtypes and shapes; returns them in file order. */
export interface PlanOptions {
  /**
   * Tensors that are not floats (step counters such as BatchNorm's num_batches_tracked, masks):
   * 'agree' (model soups) requires them identical in every member; 'last' (epoch averaging) takes
   * the last member's, the newest checkpoint of the trajectory.
   */
  nonFloat?: 'agree' | 'last'
}

export async function planSoup(members: SoupMember[], opener: FileOpener, opts: PlanOptions = {}): Promise<SoupPlan> {
  if (members.length < 2) throw new UsageError('a soup needs at least two checkpoints', 'E_USAGE')
  const listings = []
  for (const m of members) {
    if (!WEIGHT_FORMATS.has(m.file.format)) throw new UsageError(`${label(m)} is ${m.file.format}; soups average safetensors files and torch.save checkpoints`, 'E_SOUP_FORMAT')
    const l = await listTensors(m.manifest, m.file, opener)
    const s = l.skipped[0]
    if (s) throw new UsageError(`tensor ${s.name} of ${label(m)} cannot be averaged: ${s.reason}`, 'E_SOUP_INCOMPATIBLE')
    listings.push(l)
  }
  const first = listings[0]!.tensors
  const out: SoupTensor[] = []
  for (const [i, l] of listings.entries()) {
    const names = new Set(l.tensors.map((t) => t.name))
    const missing = first.filter((t) => !names.has(t.name)).map((t) => t.name)
    const extra = l.tensors.filter((t) => !first.some((f) => f.name === t.name)).map((t) => t.name)
    if (missing.length || extra.length) {
      throw new UsageError(`${label(members[i]!)} is not compatible with ${label(members[0]!)}: ${[
        missing.length ? `missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}` : '',
        extra.length ? `extra ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}` : '',
      ].filter(Boolean).join('; ')}`, 'E_SOUP_INCOMPATIBLE')
    }
  }
  for (const t of first) {
    const refs = listings.map((l) => l.tensors.find((x) => x.name === t.name)!)
    for (const [i, r] of refs.entries()) {
      if (r.dtype !== t.dtype || r.shape.length !== t.shape.length || r.shape.some((d, j) => d !== t.shape[j])) {
        throw new UsageError(`tensor ${t.name}: ${label(members[i]!)} has ${r.dtype} [${r.shape}] but ${label(members[0]!)} has ${t.dtype} [${t.shape}]`, 'E_SOUP_INCOMPATIBLE')
      }
    }
    const averaged = FLOAT_DTYPES.has(t.dtype)
    const copyFrom = opts.nonFloat === 'last' ? refs.length - 1 : 0
    if (!averaged && opts.nonFloat !== 'last') {
      // integer, bool and exotic tensors (step counters, masks) must agree exactly: copied, not averaged
      for (let i = 1; i < refs.length; i++) {
        if (!(await sameBytes(refs[0]!, refs[i]!))) {
          throw new UsageError(`tensor ${t.name} is ${t.dtype}, which is not averaged (only F32, F16, BF16, F64 are), and ${label(members[i]!)} holds other values than ${label(members[0]!)}`, 'E_SOUP_DTYPE')
        }
      }
    }
    out.push({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.end - t.start, refs, averaged, copyFrom })
  }
  const head = listings[0]!
  return head.torch ? { tensors: out, format: 'pytorch-zip', torch: head.torch } : { tensors: out, format: 'safetensors' }
}

async function sameBytes(a: TensorRef, b: TensorRef): Promise<boolean> {
  if (a.end - a.start !== b.end - b.start) return false
  const ca = a.file.chunksCovering(a.start, a.end), cb = b.file.chunksCovering(b.start, b.end)
  if (ca && cb && ca.join() === cb.join()) return true
  const step = 16 << 20
  for (let o = 0; o < a.end - a.start; o += step) {
    const n = Math.min(step, a.end - a.start - o)
    if (Buffer.compare(await a.file.read(a.start + o, n), await b.file.read(b.start + o, n)) !== 0) return false
  }
  return true
}

/**
 * The safetensors header for these tensors, laid out as the reference writer (and
 * src/formats/safetensors.ts encodeSafetensors) does: sorted by dtype rank descending then name,
 * compact JSON, `__metadata__` first, padded with spaces to a multiple of 8. Returns the header
 * bytes (with the 8-byte length) and the tensor order.
 */
export function safetensorsHeader(tensors: Array<{ name: string; dtype: string; shape: number[]; bytes: number }>, metadata?: Record<string, string>): { head: Uint8Array; order: number[] } {
  const cmp = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
  const order = tensors.map((_, i) => i).sort((i, j) => (RANK.get(tensors[j]!.dtype)! - RANK.get(tensors[i]!.dtype)!) || cmp(tensors[i]!.name, tensors[j]!.name))
  const parts: string[] = []
  if (metadata) {
    const keys = Object.keys(metadata).sort(cmp)
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`)
  }
  let offset = 0
  for (const i of order) {
    const t = tensors[i]!
    parts.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + t.bytes}]}`)
    offset += t.bytes
  }
  let json = Buffer.from(`{${parts.join(',')}}`, 'utf8')
  const pad = (8 - (json.length % 8)) % 8
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)])
  const head = new Uint8Array(8 + json.length)
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true)
  head.set(json, 8)
  return { head, order }
}

async function writeAll(fd: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0
  while (done < bytes.length) done += (await fd.write(bytes, done, bytes.length - done)).bytesWritten
}

/**
 * The soup's bytes of one tensor, window by window: sum_i w_i x_i / sum_i w_i per element
 * (float64), rounded to the tensor's dtype; a non-float tensor is copied (see PlanOptions).
 */
async function soupTensorBytes(t: SoupTensor, weights: number[], total: number, put: (bytes: Uint8Array) => Promise<void>): Promise<void> {
  if (!t.averaged) {
    const r = t.refs[t.copyFrom]!
    for (let o = 0; o < t.bytes; o += 16 << 20) await put(await r.file.read(r.start + o, Math.min(16 << 20, t.bytes - o)))
    return
  }
  const item = ITEM_SIZE[t.dtype]!
  const n = t.bytes / item
  const acc = new Float64Array(Math.min(WINDOW, n))
  const x = new Float64Array(Math.min(WINDOW, n))
  for (let e = 0; e < n; e += WINDOW) {
    const k = Math.min(WINDOW, n - e)
    const a = k === acc.length ? acc : acc.subarray(0, k)
    const v = k === x.length ? x : x.subarray(0, k)
    a.fill(0)
    for (const [m, r] of t.refs.entries()) {
      const w = weights[m]!
      if (w === 0) continue
      decodeInto(await r.file.read(r.start + e * item, k * item), t.dtype, v)
      for (let j = 0; j < k; j++) a[j]! += w * v[j]!
    }
    for (let j = 0; j < k; j++) a[j] = a[j]! / total
    await put(encodeFloats(a, t.dtype))
  }
}

async function writeAt(fd: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.length) done += (await fd.write(bytes, done, bytes.length - done, position + done)).bytesWritten
}

/**
 * Writes the soup in the plan's format (safetensors, or a torch.save zip whose object tree is the
 * first member's with each tensor averaged; other values, e.g. an `epoch` entry, are the first
 * member's). Returns where each tensor's bytes landed in the file.
 */
export async function writeSoup(plan: SoupPlan, weights: number[], outPath: string, metadata?: Record<string, string>): Promise<Map<string, { start: number; end: number; dtype: string; shape: number[] }>> {
  const total = weights.reduce((a, b) => a + b, 0)
  if (!(total > 0) || weights.some((w) => !(w >= 0) || !Number.isFinite(w))) throw new UsageError('soup weights must be finite, non-negative and not all zero', 'E_USAGE')
  const where = new Map<string, { start: number; end: number; dtype: string; shape: number[] }>()
  const fd = await open(outPath, 'wx', 0o644)
  try {
    if (plan.format === 'pytorch-zip' && plan.torch) {
      const byName = new Map(plan.tensors.map((t) => [t.name, t]))
      const written: TorchWriteTensor[] = []
      const node = new Map<string, TorchTensor>()
      const tree = mapTensors(plan.torch.root, (old, name) => {
        const t = byName.get(name)
        if (!t) throw new UsageError(`tensor ${name} of the first checkpoint is not in the soup`, 'E_SOUP_INCOMPATIBLE')
        const fresh = new TorchTensor(old.storage, t.dtype, 0, t.shape, [], false)
        node.set(name, fresh)
        written.push({ tensor: fresh, dtype: t.dtype, bytes: t.bytes, fill: (put) => soupTensorBytes(t, weights, total, put) })
        return fresh
      })
      const { offsets } = await writeTorchArchive((b, p) => writeAt(fd, b, p), tree, written)
      for (const t of plan.tensors) {
        const at = offsets.get(node.get(t.name)!)!
        where.set(t.name, { start: at, end: at + t.bytes, dtype: t.dtype, shape: t.shape })
      }
    } else {
      const { head, order } = safetensorsHeader(plan.tensors, metadata)
      await writeAll(fd, head)
      let at = head.length
      for (const i of order) {
        const t = plan.tensors[i]!
        where.set(t.name, { start: at, end: at + t.bytes, dtype: t.dtype, shape: t.shape })
        at += t.bytes
        await soupTensorBytes(t, weights, total, (b) => writeAll(fd, b))
      }
    }
    await fd.sync()
  } finally {
    await fd.close()
  }
  return where
}

/** Initializers of at most this many elements may be kept from the template unverified (graph constants). */
export const ONNX_CONSTANT_MAX = 16

/**
 * An ONNX file for the soup: the template's bytes with every inline raw_data initializer named like
 * a soup tensor replaced by that tensor's bytes (same dtype and dims, so the same length and the
 * protobuf framing is unchanged). So that the graph can never silently compute another model, an
 * initializer that is not in the checkpoints is kept only when it is byte-identical in every other
 * member's ONNX file (`others`), or is a constant of at most ONNX_CONSTANT_MAX elements; otherwise
 * no ONNX file is written and the reason is returned.
 */
export async function writeSoupOnnx(template: FileEntry, tm: Manifest, opener: FileOpener, soupPath: string,
                                    where: Map<string, { start: number; end: number; dtype: string; shape: number[] }>,
                                    plan: SoupPlan, outPath: string,
                                    others: Array<{ manifest: Manifest; file: FileEntry }> = []): Promise<{ replaced: number; kept: number; unused: number } | { refused: string }> {
  const file = await opener.get(template)
  const layout = await readOnnxLayout((o, l) => file.read(o, l), file.size)
  const otherLayouts = []
  for (const o of others) {
    const f = await opener.get(o.file)
    otherLayouts.push({ f, label: `${o.manifest.name}@v${o.manifest.version}:${o.file.path}`, inits: new Map((await readOnnxLayout((a, l) => f.read(a, l), f.size)).initializers.map((t) => [t.name, t])) })
  }
  const replace: Array<{ start: number; end: number; src: { start: number; end: number } }> = []
  const soup = new Map(plan.tensors.map((t) => [t.name, t]))
  let kept = 0
  for (const init of layout.initializers) {
    const t = soup.get(init.name)
    if (!t) {
      if (otherLayouts.length) {
        for (const o of otherLayouts) {
          const x = o.inits.get(init.name)
          const same = x && x.raw && init.raw && x.raw.end - x.raw.start === init.raw.end - init.raw.start &&
            Buffer.compare(await o.f.read(x.raw.start, x.raw.end - x.raw.start), await file.read(init.raw.start, init.raw.end - init.raw.start)) === 0
          if (!same) return { refused: `initializer ${init.name} of ${tm.name}@v${tm.version}:${template.path} is not in the checkpoints and differs in ${o.label}` }
        }
      } else if (init.numel > ONNX_CONSTANT_MAX) {
        return { refused: `initializer ${init.name} (${init.numel} elements) of ${tm.name}@v${tm.version}:${template.path} is not in the checkpoints, so the graph would not compute the soup` }
      }
      kept++
      continue
    }
    const dtype = ONNX_TYPES[init.dataType]?.safetensors
    if (dtype !== t.dtype || init.dims.length !== t.shape.length || init.dims.some((d, i) => d !== t.shape[i])) {
      return { refused: `initializer ${t.name} of the template is ${ONNX_TYPES[init.dataType]?.name ?? init.dataType} [${init.dims}], the soup tensor is ${t.dtype} [${t.shape}]` }
    }
    if (!init.raw || init.raw.end - init.raw.start !== t.bytes) return { refused: `initializer ${t.name} of the template is not stored inline as raw_data` }
    replace.push({ start: init.raw.start, end: init.raw.end, src: where.get(t.name)! })
  }
  if (replace.length === 0) return { refused: `no initializer of ${tm.name}@v${tm.version}:${template.path} is named like a checkpoint tensor` }
  replace.sort((a, b) => a.start - b.start)
  const src = await open(soupPath, 'r')
  const fd = await open(outPath, 'wx', 0o644)
  try {
    let pos = 0
    const copyTemplate = async (end: number): Promise<void> => {
      for (; pos < end;) { const n = Math.min(16 << 20, end - pos); await writeAll(fd, await file.read(pos, n)); pos += n }
    }
    for (const r of replace) {
      await copyTemplate(r.start)
      for (let o = r.src.start; o < r.src.end;) {
        const n = Math.min(16 << 20, r.src.end - o)
        const buf = Buffer.alloc(n)
        const { bytesRead } = await src.read(buf, 0, n, o)
        if (bytesRead !== n) throw new Error(`short read of ${soupPath}`)
        await writeAll(fd, buf)
        o += n
      }
      pos = r.end
    }
    await copyTemplate(file.size)
    await fd.sync()
  } finally {
    await fd.close()
    await src.close()
  }
  return { replaced: replace.length, kept, unused: plan.tensors.length - replace.length }
}
