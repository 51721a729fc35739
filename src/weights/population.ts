/**
 * Weight-space export of a population (spec/export.md): every checkpoint of the chosen models as
 * one float32 row (the model's float tensors flattened in a fixed order) in `<dir>/train.npz`,
 * `val.npz` and `test.npz` (arrays `w` [rows, width] float32, `model` and `epoch` int64), with
 * `<dir>/models.json` (one entry per model: name, version, seal, split, factors, metrics, epochs)
 * and `<dir>/index.json` (each tensor's name, shape and offset in a row). Models are split, never
 * checkpoints: a model's rows are all in one file. The split is a function of the seed and the
 * model names only. Memory stays bounded: rows are streamed tensor window by tensor window into
 * stored zip entries whose sizes are known up front.
 */
import { createHash } from 'node:crypto'
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Store } from '../cas/store.js'
import type { FileEntry, Json, Manifest } from '../manifest/manifest.js'
import { ZipWriter } from '../formats/zip.js'
import { checkpointsByEpoch, finalWeights } from './checkpoints.js'
import { decodeInto, FLOAT_DTYPES, ITEM_SIZE } from './dtype.js'
import { FileOpener, listTensors, type TensorRef } from './tensors.js'
import { UsageError } from '../errors.js'

export const SPLITS = ['train', 'val', 'test'] as const
export type SplitName = typeof SPLITS[number]

export interface PopulationOptions {
  /** The output folder: created, or empty. */
  out: string
  /** Relative sizes of train, val and test (normalised by their sum). */
  split: [number, number, number]
  seed: number
  /** Only these epochs of each trajectory (each model must have them all). */
  epochs?: number[]
  /** The weights file (path, or file name inside each checkpoint) when a model has several. */
  file?: string
  /** Only tensors whose name starts with this (e.g. `state_dict.` in a checkpoint dict that also holds optimizer state). */
  tensors?: string
  /** Fetches files ahead (lazy clones); called once per model before its checkpoints are read. */
  prefetch?: (files: FileEntry[]) => Promise<void>
  /** Called after each checkpoint row is written. */
  progress?: (rows: number, total: number) => void
  signal?: AbortSignal
  /** Named crash and pause points (spec/reliability.md): `export-row` after each row is written. */
  crashPoint?: (name: string) => void | Promise<void>
}

export interface IndexEntry { name: string; shape: number[]; offset: number; dtype: string }

export interface PopulationResult {
  out: string
  models: number
  rows: Record<SplitName, number>
  /** Models per split. */
  split_models: Record<SplitName, number>
  width: number
  tensors: number
  /** Tensors that are not floats (counters, masks): left out of the rows. */
  excluded: Array<{ name: string; dtype: string }>
  bytes: number
}

interface Planned { m: Manifest; split: SplitName; checkpoints: Array<{ epoch: number; file: FileEntry }> }

const label = (m: Manifest): string => `${m.name}@v${m.version}`
const WINDOW = 1 << 18
/** Rows up to this many bytes are read several at a time (LOOKAHEAD rows in memory at most). */
const SMALL_ROW = 1 << 20
const LOOKAHEAD = 16

/** `70/15/15` -> [70, 15, 15]: three non-negative numbers, not all zero. */
export function parseSplit(text: string): [number, number, number] {
  const parts = text.split('/')
  const ws = parts.map((p) => (/^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(p) ? Number(p) : NaN))
  if (ws.length !== 3 || ws.some((w) => !Number.isFinite(w)) || !(ws[0]! + ws[1]! + ws[2]! > 0)) {
    throw new UsageError(`--split takes three non-negative numbers train/val/test, e.g. 70/15/15, not ${JSON.stringify(text)}`, 'E_USAGE')
  }
  return ws as [number, number, number]
}

/** `0,10,40-50` -> [0, 10, 40, 41, ..., 50]. */
export function parseEpochs(text: string): number[] {
  const out = new Set<number>()
  for (const part of text.split(',')) {
    const m = /^\s*(\d{1,9})(?:\s*-\s*(\d{1,9}))?\s*$/.exec(part)
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) throw new UsageError(`--epochs takes epochs and ranges separated by commas, e.g. 0,10,40-50, not ${JSON.stringify(text)}`, 'E_USAGE')
    for (let e = Number(m[1]); e <= Number(m[2] ?? m[1]); e++) out.add(e)
  }
  return [...out].sort((a, b) => a - b)
}

/**
 * Each model's split: models ordered by sha256("<seed>\n<name>@v<version>"), the first share to
 * train, the next to val, the rest to test; shares rounded by largest remainder. Deterministic in the
 * seed and the set of models, whatever order they come in.
 */
export function assignSplits(models: Array<{ name: string; version: number }>, split: [number, number, number], seed: number): SplitName[] {
  const n = models.length
  const total = split[0] + split[1] + split[2]
  const exact = split.map((w) => (n * w) / total)
  const counts = exact.map(Math.floor)
  const order = [0, 1, 2].sort((a, b) => (exact[b]! - counts[b]!) - (exact[a]! - counts[a]!) || a - b)
  for (let k = 0, left = n - counts[0]! - counts[1]! - counts[2]!; left > 0; k++, left--) counts[order[k % 3]!]!++
  const keyed = models.map((m, i) => ({ i, key: createHash('sha256').update(`${seed}\n${m.name}@v${m.version}`).digest('hex') }))
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i))
  const out: SplitName[] = new Array(n)
  keyed.forEach((k, r) => { out[k.i] = r < counts[0]! ? 'train' : r < counts[0]! + counts[1]! ? 'val' : 'test' })
  return out
}

/** A .npy v1.0 header for a little-endian C-order array, padded to 64 bytes. */
export function npyHeader(descr: string, shape: number[]): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`
  const base = 10 + dict.length + 1
  const pad = (64 - (base % 64)) % 64
  const text = dict + ' '.repeat(pad) + '\n'
  const out = Buffer.alloc(10 + text.length)
  out.write('\x93NUMPY', 0, 'latin1')
  out[6] = 1; out[7] = 0
  out.writeUInt16LE(text.length, 8)
  out.write(text, 10, 'latin1')
  return out
}

function plan(models: Manifest[], o: PopulationOptions): Planned[] {
  const splits = assignSplits(models, o.split, o.seed)
  return models.map((m, i) => {
    let checkpoints = checkpointsByEpoch(m, o.file)
    if (checkpoints.length === 0) {
      if (o.epochs) throw new UsageError(`${label(m)} is not a trajectory (no checkpoint has an epoch), so --epochs cannot pick its checkpoints; leave it out with a filter such as 'checkpoints>0'`, 'E_EXPORT_EPOCHS')
      checkpoints = [{ epoch: -1, file: finalWeights(m, o.file) }]
    } else if (o.epochs) {
      const have = new Map(checkpoints.map((c) => [c.epoch, c]))
      const missing = o.epochs.filter((e) => !have.has(e))
      if (missing.length) throw new UsageError(`${label(m)} has no checkpoint at epoch${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''} (it has ${checkpoints.length}: ${checkpoints[0]!.epoch}..${checkpoints[checkpoints.length - 1]!.epoch}); export other --epochs or leave it out with a filter such as 'checkpoints>=${o.epochs.length}'`, 'E_EXPORT_EPOCHS')
      checkpoints = o.epochs.map((e) => have.get(e)!)
    }
    return { m, split: splits[i]!, checkpoints }
  })
}

/** The float tensors of a checkpoint in file order, checked against the reference layout. */
async function rowTensors(m: Manifest, file: FileEntry, opener: FileOpener, ref: { m: Manifest; index: IndexEntry[] } | undefined, prefix = ''): Promise<{ tensors: TensorRef[]; excluded: Array<{ name: string; dtype: string }> }> {
  const all = await listTensors(m, file, opener)
  const l = { tensors: all.tensors.filter((t) => t.name.startsWith(prefix)), skipped: all.skipped.filter((t) => t.name.startsWith(prefix)) }
  const s = l.skipped[0]
  if (s) throw new UsageError(`tensor ${s.name} of ${label(m)}:${file.path} cannot be exported: ${s.reason}`, 'E_EXPORT_INCOMPATIBLE')
  const tensors = l.tensors.filter((t) => FLOAT_DTYPES.has(t.dtype))
  const excluded = l.tensors.filter((t) => !FLOAT_DTYPES.has(t.dtype)).map((t) => ({ name: t.name, dtype: t.dtype }))
  if (!ref) return { tensors, excluded }
  const mine = new Map(tensors.map((t) => [t.name, t]))
  const ordered: TensorRef[] = []
  const problems: string[] = []
  for (const e of ref.index) {
    const t = mine.get(e.name)
    if (!t) { problems.push(`no float tensor ${e.name}`); continue }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) problems.push(`${e.name} is [${t.shape}], not [${e.shape}]`)
    ordered.push(t)
    mine.delete(e.name)
  }
  for (const name of mine.keys()) problems.push(`an extra tensor ${name}`)
  if (problems.length) {
    throw new UsageError(`${label(m)}:${file.path} does not have the shape of ${label(ref.m)}: ${problems.slice(0, 4).join('; ')}${problems.length > 4 ? `; and ${problems.length - 4} more` : ''}. A population export needs models of one architecture: narrow the filters (e.g. arch=...)`, 'E_EXPORT_INCOMPATIBLE')
  }
  return { tensors: ordered, excluded }
}

async function writeAt(fd: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.length) done += (await fd.write(bytes, done, bytes.length - done, position + done)).bytesWritten
}

/** Appends one tensor as float32, window by window. */
async function putFloat32(t: TensorRef, put: (b: Uint8Array) => Promise<void>): Promise<void> {
  const item = ITEM_SIZE[t.dtype]!
  const n = (t.end - t.start) / item
  if (t.dtype === 'F32') {
    for (let o = 0; o < n; o += WINDOW) await put(await t.file.read(t.start + o * 4, Math.min(WINDOW, n - o) * 4))
    return
  }
  const buf = new Float64Array(Math.min(WINDOW, n))
  for (let o = 0; o < n; o += WINDOW) {
    const k = Math.min(WINDOW, n - o)
    const v = k === buf.length ? buf : buf.subarray(0, k)
    decodeInto(await t.file.read(t.start + o * item, k * item), t.dtype, v)
    await put(new Uint8Array(Float32Array.from(v).buffer))
  }
}

async function writeInt64s(zip: ZipWriter, name: string, values: () => Iterable<number>, count: number): Promise<void> {
  const head = npyHeader('<i8', [count])
  await zip.begin(name, head.length + 8 * count)
  await zip.data(head)
  const buf = Buffer.alloc(8 * Math.min(count, 65536))
  let k = 0
  for (const v of values()) {
    buf.writeBigInt64LE(BigInt(v), 8 * k++)
    if (k * 8 === buf.length) { await zip.data(buf); k = 0 }
  }
  if (k) await zip.data(buf.subarray(0, 8 * k))
  await zip.end()
}

async function refuseNonEmpty(dir: string): Promise<void> {
  let existing: string[]
  try { existing = await readdir(dir) } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  // the temporary files of an export that was killed are not in the way: a new run replaces them
  const other = existing.filter((n) => !TEMP_FILE.test(n))
  if (other.length > 0) throw new UsageError(`${dir} is not empty (${other.slice(0, 3).join(', ')}${other.length > 3 ? ', ...' : ''}); the export is written into a new or empty folder`, 'E_NOT_EMPTY', { dir })
}

/** The names an export writes before renaming them into place. */
const TEMP_FILE = /^\.(train|val|test)\.npz\.tmp$|^\.(models|index)\.json\.tmp$/

/** Writes the population's files into `o.out` (see the module comment). */
export async function exportPopulation(models: Manifest[], store: Store, o: PopulationOptions): Promise<PopulationResult> {
  if (models.length === 0) throw new UsageError('no model matches the filters; `git zoo find <filter>...` shows what they select', 'E_NO_MODELS')
  await refuseNonEmpty(o.out) // before the checks, which read every model
  const planned = plan(models, o)
  const opener = (): FileOpener => new FileOpener(store)
  // the reference layout: the first model's first checkpoint; every model's first checkpoint is
  // checked against it before anything is written (the others as their rows are written)
  const first = planned[0]!
  await o.prefetch?.([first.checkpoints[0]!.file])
  const head = await rowTensors(first.m, first.checkpoints[0]!.file, opener(), undefined, o.tensors)
  if (head.tensors.length === 0) throw new UsageError(`${label(first.m)}:${first.checkpoints[0]!.file.path} holds no float tensor${o.tensors ? ` named ${o.tensors}...` : ''} to export`, 'E_EXPORT_INCOMPATIBLE')
  const index: IndexEntry[] = []
  let width = 0
  for (const t of head.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1)
    index.push({ name: t.name, shape: t.shape, offset: width, dtype: t.dtype })
    width += n
  }
  const ref = { m: first.m, index }
  for (const p of planned.slice(1)) {
    o.signal?.throwIfAborted()
    await o.prefetch?.([p.checkpoints[0]!.file])
    await rowTensors(p.m, p.checkpoints[0]!.file, opener(), ref, o.tensors)
  }

  await mkdir(o.out, { recursive: true })
  await refuseNonEmpty(o.out)
  const modelIndex = new Map(planned.map((p, i) => [p, i]))
  const total = planned.reduce((a, p) => a + p.checkpoints.length, 0)
  const rows = { train: 0, val: 0, test: 0 }
  const splitModels = { train: 0, val: 0, test: 0 }
  let done = 0
  let bytes = 0
  const temps: string[] = []
  const finals: Array<[string, string]> = []
  try {
    for (const split of SPLITS) {
      const members = planned.filter((p) => p.split === split)
      const count = members.reduce((a, p) => a + p.checkpoints.length, 0)
      rows[split] = count
      splitModels[split] = members.length
      const tmp = join(o.out, `.${split}.npz.tmp`)
      temps.push(tmp)
      await rm(tmp, { force: true }) // left by a killed export
      const fd = await open(tmp, 'wx', 0o644)
      try {
        const zip = new ZipWriter((b, p) => writeAt(fd, b, p), { align: 64 })
        const wHead = npyHeader('<f4', [count, width])
        await zip.begin('w.npy', wHead.length + 4 * count * width)
        await zip.data(wHead)
        // small rows (population zoos: thousands of weights) are read LOOKAHEAD at a time, so the
        // store's read latency overlaps; large rows stream tensor window by tensor window
        const small = 4 * width <= SMALL_ROW
        for (const p of members) {
          await o.prefetch?.(p.checkpoints.map((c) => c.file))
          if (small) {
            const rowOf = async (c: { file: FileEntry }): Promise<Uint8Array> => {
              const { tensors } = await rowTensors(p.m, c.file, opener(), ref, o.tensors) // an opener per checkpoint: caches do not outlive it
              const row = new Uint8Array(4 * width)
              let at = 0
              for (const t of tensors) await putFloat32(t, async (b) => { row.set(b, at); at += b.length })
              return row
            }
            const pending: Array<Promise<Uint8Array>> = []
            let next = 0
            const fill = (): void => { while (pending.length < LOOKAHEAD && next < p.checkpoints.length) { const r = rowOf(p.checkpoints[next++]!); r.catch(() => {}); pending.push(r) } }
            fill()
            while (pending.length) {
              o.signal?.throwIfAborted()
              const row = await pending.shift()!
              fill()
              await zip.data(row)
              o.progress?.(++done, total)
              await o.crashPoint?.('export-row')
            }
            continue
          }
          for (const c of p.checkpoints) {
            o.signal?.throwIfAborted()
            const { tensors } = await rowTensors(p.m, c.file, opener(), ref, o.tensors)
            for (const t of tensors) await putFloat32(t, (b) => zip.data(b))
            o.progress?.(++done, total)
            await o.crashPoint?.('export-row')
          }
        }
        await zip.end()
        await writeInt64s(zip, 'model.npy', function* () { for (const p of members) for (let k = 0; k < p.checkpoints.length; k++) yield modelIndex.get(p)! }, count)
        await writeInt64s(zip, 'epoch.npy', function* () { for (const p of members) for (const c of p.checkpoints) yield c.epoch }, count)
        bytes += await zip.finish()
        await fd.sync()
      } finally {
        await fd.close()
      }
      finals.push([tmp, join(o.out, `${split}.npz`)])
    }
    const json = async (name: string, value: unknown[]): Promise<void> => {
      const tmp = join(o.out, `.${name}.tmp`)
      temps.push(tmp)
      await rm(tmp, { force: true })
      // one entry a line: readable, and diffable between exports
      const text = Buffer.from(`[\n${(value as unknown[]).map((v) => `  ${JSON.stringify(v)}`).join(',\n')}\n]\n`)
      const fd = await open(tmp, 'wx', 0o644)
      try { await writeAt(fd, text, 0); await fd.sync() } finally { await fd.close() }
      bytes += text.length
      finals.push([tmp, join(o.out, name)])
    }
    await json('models.json', planned.map((p) => {
      const m = p.m
      const entry: Record<string, Json> = { name: m.name, version: m.version, seal: m.seal, split: p.split }
      if (m.dataset !== undefined) entry.dataset = m.dataset
      if (m.arch !== undefined) entry.arch = m.arch
      if (m.seed !== undefined) entry.seed = m.seed
      entry.factors = m.params
      entry.metrics = m.metrics
      entry.epochs = p.checkpoints.map((c) => c.epoch)
      return entry
    }))
    await json('index.json', index)
    for (const [from, to] of finals) await rename(from, to)
    const dir = await open(o.out, 'r')
    try { await dir.sync() } finally { await dir.close() }
  } catch (err) {
    for (const t of temps) await rm(t, { force: true })
    throw err
  }
  return { out: o.out, models: planned.length, rows, split_models: splitModels, width, tensors: index.length, excluded: head.excluded, bytes }
}
