/**
 * Weight-space comparison of two models (spec/eval.md, "diff"): tensors matched by name, then per
 * tensor L2 distance, cosine similarity, max |a - b| and identity; equal chunk CIDs prove identity
 * without reading a byte. Also the storage the two models share (chunks and nodes of their DAGs).
 */
import type { FileEntry, Manifest } from '../manifest/manifest.js'
import { decodable, decodeInto, ITEM_SIZE } from './dtype.js'
import { FileOpener, listTensors, scanStoredPickle, zipEntries, TENSOR_FORMATS, type TensorListing, type TensorRef } from './tensors.js'
import { ZooError } from '../errors.js'
import { isCompanionFile } from './checkpoints.js'

/** Elements per read window: memory stays O(window) whatever the tensor size. */
const WINDOW = 1 << 18

export interface TensorDiff {
  name: string
  dtype: string
  shape: number[]
  identical: boolean
  /** ||a - b||_2 over the tensor's elements (float64 arithmetic). */
  l2: number
  /** a.b / (|a| |b|); 1 for identical tensors, null when a norm is zero (or NaN). */
  cosine: number | null
  max_abs: number
  /** How identity was established: equal chunk CIDs (nothing read) or by reading the bytes. */
  by: 'chunks' | 'bytes'
}

interface Sums { sq: number; dot: number; na: number; nb: number }

export interface FileWeightDiff {
  a_file: string
  b_file: string
  /** The format of a's file (`pytorch-zip/safetensors` when the two differ). */
  format: string
  inspectable: boolean
  /** Why the weights were not compared (a torch file the restricted reader refused, other formats). */
  reason?: string
  pickle?: { a: { ok: boolean; problems: string[]; globals: string[] }; b: { ok: boolean; problems: string[]; globals: string[] } }
  /** For not-inspectable zips: entries whose stored bytes are equal (CRC and chunks), out of those matched by name. */
  entries?: { matched: number; identical: number; only_a: number; only_b: number }
  tensors: TensorDiff[]
  /** In a, not in b (by name). */
  missing: string[]
  /** In b, not in a. */
  extra: string[]
  /** Same name, different shape or dtype: not compared. */
  mismatched: Array<{ name: string; a: { dtype: string; shape: number[] }; b: { dtype: string; shape: number[] } }>
  skipped: Array<{ name: string; reason: string }>
  summary: { compared: number; identical: number; identical_bytes: number; l2: number; cosine: number | null }
}

function sameChunks(a: TensorRef, b: TensorRef): boolean {
  const ca = a.file.chunksCovering(a.start, a.end)
  const cb = b.file.chunksCovering(b.start, b.end)
  return ca !== undefined && cb !== undefined && ca.length === cb.length && ca.every((c, i) => c === cb[i])
}

/** Sum of squares of a tensor (for the overall cosine when the tensor itself was matched by chunks). */
async function norm2(t: TensorRef): Promise<number> {
  const item = ITEM_SIZE[t.dtype]!
  const n = (t.end - t.start) / item
  let s = 0
  const buf = new Float64Array(Math.min(WINDOW, n))
  for (let i = 0; i < n; i += WINDOW) {
    const k = Math.min(WINDOW, n - i)
    const v = k === buf.length ? buf : buf.subarray(0, k)
    decodeInto(await t.file.read(t.start + i * item, k * item), t.dtype, v)
    for (let j = 0; j < k; j++) s += v[j]! * v[j]!
  }
  return s
}

export async function compareTensors(a: TensorRef, b: TensorRef): Promise<{ diff: TensorDiff; sums: Sums | undefined }> {
  const base = { name: a.name, dtype: a.dtype, shape: a.shape }
  if (sameChunks(a, b)) return { diff: { ...base, identical: true, l2: 0, cosine: 1, max_abs: 0, by: 'chunks' }, sums: undefined }
  const item = ITEM_SIZE[a.dtype]!
  const n = (a.end - a.start) / item
  const va = new Float64Array(Math.min(WINDOW, n))
  const vb = new Float64Array(Math.min(WINDOW, n))
  const s: Sums = { sq: 0, dot: 0, na: 0, nb: 0 }
  let maxAbs = 0
  let identical = true
  for (let i = 0; i < n; i += WINDOW) {
    const k = Math.min(WINDOW, n - i)
    const ba = await a.file.read(a.start + i * item, k * item)
    const bb = await b.file.read(b.start + i * item, k * item)
    if (identical && Buffer.compare(ba, bb) !== 0) identical = false
    const xa = k === va.length ? va : va.subarray(0, k)
    const xb = k === vb.length ? vb : vb.subarray(0, k)
    decodeInto(ba, a.dtype, xa)
    decodeInto(bb, b.dtype, xb)
    for (let j = 0; j < k; j++) {
      const x = xa[j]!, y = xb[j]!
      const d = x - y
      s.sq += d * d
      s.dot += x * y
      s.na += x * x
      s.nb += y * y
      const ad = Math.abs(d)
      if (ad > maxAbs || Number.isNaN(ad)) maxAbs = ad
    }
  }
  return {
    diff: { ...base, identical, l2: identical ? 0 : Math.sqrt(s.sq), cosine: identical && s.na > 0 ? 1 : cosine(s), max_abs: identical ? 0 : maxAbs, by: 'bytes' },
    sums: s,
  }
}

function cosine(s: Sums): number | null {
  if (!(s.na > 0) || !(s.nb > 0)) return null
  const c = s.dot / Math.sqrt(s.na * s.nb)
  return Number.isFinite(c) ? Math.max(-1, Math.min(1, c)) : null
}

export interface DiffOptions {
  /** Do not read chunk-identical tensors for their norms; the overall cosine is then omitted (null). */
  fast?: boolean
}

/** Compare the weights of one file of model a with one file of model b. */
export async function diffFiles(ma: Manifest, fa: FileEntry, mb: Manifest, fb: FileEntry,
                                oa: FileOpener, ob: FileOpener, opts: DiffOptions = {}): Promise<FileWeightDiff> {
  const out: FileWeightDiff = {
    a_file: fa.path, b_file: fb.path, format: fa.format === fb.format ? fa.format : `${fa.format}/${fb.format}`, inspectable: true,
    tensors: [], missing: [], extra: [], mismatched: [], skipped: [],
    summary: { compared: 0, identical: 0, identical_bytes: 0, l2: 0, cosine: null },
  }
  let listings: [TensorListing, TensorListing] | undefined
  let refusal: string | undefined
  const torch = fa.format === 'pytorch-zip' || fb.format === 'pytorch-zip'
  const comparable = TENSOR_FORMATS.has(fa.format) && TENSOR_FORMATS.has(fb.format) && (fa.format === fb.format || (torch && fa.format !== 'onnx' && fb.format !== 'onnx'))
  if (comparable) {
    try {
      listings = await Promise.all([listTensors(ma, fa, oa), listTensors(mb, fb, ob)])
    } catch (err) {
      // a torch file the restricted reader refuses (a global off the allow-list) or cannot parse
      if (!torch || !(err instanceof ZooError) || (err.code !== 'E_TORCH_REFUSED' && err.code !== 'E_TORCH_PICKLE')) throw err
      refusal = err.message
    }
  }
  if (!listings) {
    out.inspectable = false
    if (fa.format === 'pytorch-zip' && fb.format === 'pytorch-zip') {
      const [sa, sb] = await Promise.all([scanStoredPickle(fa, oa), scanStoredPickle(fb, ob)])
      const pick = (s: typeof sa) => ({ ok: s.ok, problems: s.problems, globals: s.globals })
      out.pickle = { a: pick(sa), b: pick(sb) }
      out.reason = `not inspectable: ${refusal ?? 'the restricted reader could not read data.pkl'}`
      // byte-level facts that need no interpretation: which zip entries hold equal stored bytes
      const [ea, eb] = await Promise.all([zipEntries(fa, oa), zipEntries(fb, ob)])
      const [fa2, fb2] = await Promise.all([oa.get(fa), ob.get(fb)])
      const byName = new Map(eb.map((e) => [e.name.replace(/^[^/]*\//, ''), e]))
      let matched = 0, identical = 0
      for (const e of ea) {
        const o = byName.get(e.name.replace(/^[^/]*\//, ''))
        if (!o) continue
        matched++
        const ca = fa2.chunksCovering(e.start, e.end)
        const cb = fb2.chunksCovering(o.start, o.end)
        const same = e.end - e.start === o.end - o.start && e.crc32 === o.crc32 && e.method === o.method &&
          (ca !== undefined && cb !== undefined ? ca.join() === cb.join()
            : Buffer.compare(await fa2.read(e.start, e.end - e.start), await fb2.read(o.start, o.end - o.start)) === 0)
        if (same) identical++
      }
      out.entries = { matched, identical, only_a: ea.length - matched, only_b: eb.length - matched }
    } else {
      out.reason = refusal ? `not inspectable: ${refusal}` : fa.format === fb.format ? `not inspectable: ${fa.format} files hold no tensors git-zoo reads` : `not comparable: ${fa.format} vs ${fb.format}`
    }
    return out
  }
  const [la, lb] = listings
  out.skipped = [...la.skipped.map((s) => ({ ...s, name: `a:${s.name}` })), ...lb.skipped.map((s) => ({ ...s, name: `b:${s.name}` }))]
  const bByName = new Map(lb.tensors.map((t) => [t.name, t]))
  const aNames = new Set(la.tensors.map((t) => t.name))
  const total: Sums = { sq: 0, dot: 0, na: 0, nb: 0 }
  let cosineComplete = true
  for (const ta of la.tensors) {
    const tb = bByName.get(ta.name)
    if (!tb) { out.missing.push(ta.name); continue }
    if (ta.dtype !== tb.dtype || ta.shape.length !== tb.shape.length || ta.shape.some((d, i) => d !== tb.shape[i])) {
      out.mismatched.push({ name: ta.name, a: { dtype: ta.dtype, shape: ta.shape }, b: { dtype: tb.dtype, shape: tb.shape } })
      continue
    }
    if (!decodable(ta.dtype)) { out.skipped.push({ name: ta.name, reason: `dtype ${ta.dtype} is not compared` }); continue }
    const { diff, sums } = await compareTensors(ta, tb)
    out.tensors.push(diff)
    out.summary.compared++
    if (diff.identical) { out.summary.identical++; out.summary.identical_bytes += ta.end - ta.start }
    if (sums) {
      total.sq += sums.sq; total.dot += sums.dot; total.na += sums.na; total.nb += sums.nb
    } else if (opts.fast) {
      cosineComplete = false
    } else {
      const n2 = await norm2(ta)
      total.dot += n2; total.na += n2; total.nb += n2
    }
  }
  for (const t of lb.tensors) if (!aNames.has(t.name)) out.extra.push(t.name)
  out.summary.l2 = Math.sqrt(total.sq)
  out.summary.cosine = cosineComplete ? (out.summary.compared === out.summary.identical && total.na > 0 ? 1 : cosine(total)) : null
  return out
}

/**
 * Which files of a and b to compare: by path; files of a trajectory (with an epoch) by their path
 * within the checkpoint, at the last epoch of each model unless `epoch` is given; then, when each
 * side has exactly one unmatched file of a tensor format, those two.
 */
export function pairFiles(a: Manifest, b: Manifest, opts: { epoch?: number; file?: string } = {}): Array<[FileEntry, FileEntry]> {
  const weights = (m: Manifest): FileEntry[] => {
    const w = m.files.filter((f) => TENSOR_FORMATS.has(f.format))
    if (opts.file !== undefined) return w.filter((f) => f.path === opts.file)
    // companion files (optimizer state beside a checkpoint) are not the model's weights
    const own = w.filter((f) => !isCompanionFile(f))
    if (own.length === 0) return own
    const epochs = own.filter((f) => f.epoch !== undefined).map((f) => f.epoch!)
    if (epochs.length === 0) return own
    const pick = opts.epoch ?? Math.max(...epochs)
    return own.filter((f) => f.epoch === undefined || f.epoch === pick)
  }
  const key = (f: FileEntry): string => (f.epoch !== undefined ? `epoch:${f.path.split('/').pop()}` : f.path)
  const wa = weights(a), wb = weights(b)
  const pairs: Array<[FileEntry, FileEntry]> = []
  const usedB = new Set<FileEntry>()
  const restA: FileEntry[] = []
  for (const fa of wa) {
    const fb = wb.find((f) => !usedB.has(f) && key(f) === key(fa)) ?? wb.find((f) => !usedB.has(f) && f.path === fa.path)
    if (fb) { pairs.push([fa, fb]); usedB.add(fb) } else restA.push(fa)
  }
  const restB = wb.filter((f) => !usedB.has(f))
  const usedA = new Set<FileEntry>()
  for (const format of new Set(restA.map((f) => f.format))) {
    const xa = restA.filter((f) => f.format === format), xb = restB.filter((f) => f.format === format)
    if (xa.length === 1 && xb.length === 1) { pairs.push([xa[0]!, xb[0]!]); usedB.add(xb[0]!); usedA.add(xa[0]!) }
  }
  // the same weights saved in the other format: a lone safetensors file against a lone torch.save file
  const lastA = restA.filter((f) => !usedA.has(f) && f.format !== 'onnx'), lastB = restB.filter((f) => !usedB.has(f) && f.format !== 'onnx')
  if (lastA.length === 1 && lastB.length === 1 && lastA[0]!.format !== lastB[0]!.format) pairs.push([lastA[0]!, lastB[0]!])
  return pairs
}

export interface StorageShare {
  a: { objects: number; bytes: number }
  b: { objects: number; bytes: number }
  /** Objects (chunks and nodes) both models reference; bytes = the shared chunks' sizes. */
  shared: { objects: number; bytes: number }
}

/** What the two models' chunk DAGs have in common (every file, all checkpoints). */
export async function storageShare(a: Manifest, b: Manifest, oa: FileOpener, ob: FileOpener): Promise<StorageShare> {
  const collect = async (m: Manifest, o: FileOpener): Promise<{ chunks: Map<string, number>; nodes: Set<string> }> => {
    const chunks = new Map<string, number>()
    const nodes = new Set<string>()
    for (const f of m.files) {
      const sf = await o.get(f)
      for (const c of sf.chunks) chunks.set(c.cid, c.size)
      for (const n of sf.nodes) nodes.add(n)
    }
    return { chunks, nodes }
  }
  const [ca, cb] = [await collect(a, oa), await collect(b, ob)]
  const sum = (m: Map<string, number>): number => { let s = 0; for (const v of m.values()) s += v; return s }
  let sharedObjects = 0, sharedBytes = 0
  for (const [cid, size] of ca.chunks) if (cb.chunks.has(cid)) { sharedObjects++; sharedBytes += size }
  for (const n of ca.nodes) if (cb.nodes.has(n)) sharedObjects++
  return {
    a: { objects: ca.chunks.size + ca.nodes.size, bytes: sum(ca.chunks) },
    b: { objects: cb.chunks.size + cb.nodes.size, bytes: sum(cb.chunks) },
    shared: { objects: sharedObjects, bytes: sharedBytes },
  }
}
