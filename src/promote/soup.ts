/**
 * A soup promoted (`git zoo soup`): the members chosen (models, or the last k checkpoints of one
 * trajectory), their safetensors averaged by weights/soup.ts (and model.onnx written from the first
 * model's graph when it fits), and the result promoted as a new model whose parents carry the
 * relation `soup`, through the one promotion path.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Repo } from '../repo.js'
import type { FileEntry, Json, Manifest } from '../manifest/manifest.js'
import { promote, type PromotionResult } from './promote.js'
import { FileOpener } from '../weights/tensors.js'
import { openReader, prefetchFiles } from '../zoo/reader.js'
import { planSoup, writeSoup, writeSoupOnnx, type SoupMember } from '../weights/soup.js'
import { UsageError } from '../errors.js'

export interface SoupOptions {
  /** The new model's name. */
  name: string
  /** The models to average; with `lastK`, the one model whose last k checkpoints are averaged. */
  refs: string[]
  /** One non-negative weight per member (normalised by their sum); default uniform. */
  weights?: number[]
  /** Epoch averaging: the last k checkpoints of the one model in `refs`. */
  lastK?: number
  /** Which safetensors file of each model (with lastK: the checkpoint file's name in each epoch). */
  file?: string
  /** Write model.onnx from the first model's graph when it fits (default true). */
  onnx?: boolean
  message?: string
  allowDirty?: boolean
}

export type SoupOnnxNote = { replaced: number; kept: number; unused: number } | { refused: string }

export interface SoupResult {
  commit: string
  result: PromotionResult
  /** The sealed `soup` field: method and members. */
  soup: Record<string, Json>
  /** One line saying what was averaged. */
  label: string
  onnx?: SoupOnnxNote
  /** The first model (whose graph model.onnx uses). */
  first: Manifest
}

/** The safetensors file of a model to put in a soup: --file, the only one, or the last epoch's. */
function soupFile(m: Manifest, file?: string): FileEntry {
  const st = m.files.filter((f) => f.format === 'safetensors')
  if (file !== undefined) {
    const f = m.files.find((x) => x.path === file)
    if (!f || f.format !== 'safetensors') throw new UsageError(`${m.name}@v${m.version} has no safetensors file ${file}`, 'E_USAGE')
    return f
  }
  if (st.length === 1) return st[0]!
  const plain = st.filter((f) => f.epoch === undefined)
  if (plain.length === 1) return plain[0]!
  const epochs = st.filter((f) => f.epoch !== undefined)
  if (epochs.length) {
    const last = Math.max(...epochs.map((f) => f.epoch!))
    const at = epochs.filter((f) => f.epoch === last)
    if (at.length === 1) return at[0]!
  }
  throw new UsageError(`${m.name}@v${m.version} has ${st.length ? `${st.length} safetensors files (${st.map((f) => f.path).slice(0, 4).join(', ')}${st.length > 4 ? ', ...' : ''}); choose one with --file` : 'no safetensors file; soups average safetensors'}`, 'E_USAGE')
}

/** The last k checkpoints (safetensors, one per epoch) of a trajectory model, oldest first. */
function lastK(m: Manifest, k: number, file?: string): FileEntry[] {
  const base = file?.split('/').pop()
  const st = m.files.filter((f) => f.format === 'safetensors' && f.epoch !== undefined && (base === undefined || f.path.split('/').pop() === base))
  const byEpoch = new Map<number, FileEntry[]>()
  for (const f of st) byEpoch.set(f.epoch!, [...(byEpoch.get(f.epoch!) ?? []), f])
  if (byEpoch.size === 0) throw new UsageError(`${m.name}@v${m.version} holds no trajectory (no safetensors files with an epoch); --last-k averages the checkpoints of one trajectory`, 'E_USAGE')
  for (const [e, fs] of byEpoch) if (fs.length > 1) throw new UsageError(`epoch ${e} of ${m.name}@v${m.version} has ${fs.length} safetensors files; choose one with --file <name>`, 'E_USAGE')
  const epochs = [...byEpoch.keys()].sort((x, y) => x - y)
  if (k < 2 || k > epochs.length) throw new UsageError(`--last-k must be between 2 and the ${epochs.length} checkpoints of ${m.name}@v${m.version}`, 'E_USAGE')
  return epochs.slice(-k).map((e) => byEpoch.get(e)![0]!)
}

export async function promoteSoup(repo: Repo, o: SoupOptions): Promise<SoupResult> {
  const k = o.lastK
  const models: Manifest[] = []
  for (const ref of o.refs) models.push(await repo.resolve(ref))
  if (new Set(models.map((m) => m.seal)).size !== models.length) throw new UsageError('a model is named twice; use --weights to weigh one model more', 'E_USAGE')
  const members: SoupMember[] = k !== undefined
    ? lastK(models[0]!, k, o.file).map((f) => ({ manifest: models[0]!, file: f, weight: 1, ...(f.epoch !== undefined ? { epoch: f.epoch } : {}) }))
    : models.map((m) => ({ manifest: m, file: soupFile(m, o.file), weight: 1 }))
  const weights = o.weights
  if (weights) {
    if (weights.length !== members.length) throw new UsageError(`--weights has ${weights.length} values for ${members.length} checkpoints`, 'E_USAGE')
    if (weights.some((w) => !Number.isFinite(w) || w < 0)) throw new UsageError('--weights takes non-negative numbers', 'E_USAGE')
    if (!(weights.reduce((a, b) => a + b, 0) > 0)) throw new UsageError('--weights must not all be zero', 'E_USAGE')
    weights.forEach((w, i) => { members[i]!.weight = w })
  }
  const method = k !== undefined ? 'epoch-average' : weights ? 'weighted' : 'uniform'

  const tmp = await mkdtemp(join(tmpdir(), 'git-zoo-soup-'))
  try {
    const store = await openReader(repo) // a lazy clone fetches what it reads (spec/teams.md)
    let onnxNote: SoupOnnxNote | undefined
    const files = [{ source: join(tmp, 'model.safetensors'), path: 'model.safetensors' }]
    try {
      await prefetchFiles(store, members.map((m) => m.file)) // every member is read whole
      const opener = new FileOpener(store)
      const plan = await planSoup(members, opener)
      const where = await writeSoup(plan, members.map((m) => m.weight), files[0]!.source, { 'git-zoo': `soup/${method}` })
      if (o.onnx ?? true) {
        const first = models[0]!
        const onnxFiles = first.files.filter((f) => f.format === 'onnx')
        if (onnxFiles.length) {
          const { chooseOnnxFile } = await import('../evals/onnx-session.js')
          let template: FileEntry | undefined
          try { template = chooseOnnxFile(first) } catch (err) { onnxNote = { refused: (err as Error).message } }
          if (template) {
            // model soups: constants kept from the template must be the same in every member's graph
            const others = []
            if (k === undefined) {
              for (const m of models.slice(1)) {
                try { others.push({ manifest: m, file: chooseOnnxFile(m) }) } catch (err) { onnxNote = { refused: `${m.name}@v${m.version}: ${(err as Error).message}` } }
              }
            }
            if (!onnxNote) onnxNote = await writeSoupOnnx(template, first, opener, files[0]!.source, where, plan, join(tmp, 'model.onnx'), others)
            if ('replaced' in onnxNote) files.push({ source: join(tmp, 'model.onnx'), path: 'model.onnx' })
          }
        }
      }
    } finally {
      await store.close()
    }
    const same = <T>(f: (m: Manifest) => T | undefined): T | undefined => {
      const vs = models.map(f)
      return vs.every((v) => v !== undefined && v === vs[0]) ? vs[0] : undefined
    }
    const dataset = same((m) => m.dataset), arch = same((m) => m.arch)
    const soup: Record<string, Json> = {
      method,
      members: members.map((m) => ({ name: m.manifest.name, version: m.manifest.version, seal: m.manifest.seal, file: m.file.path, weight: m.weight, ...(m.epoch !== undefined ? { epoch: m.epoch } : {}) })),
    }
    const label = k !== undefined
      ? `epoch average of the last ${k} checkpoints of ${models[0]!.name}@v${models[0]!.version}`
      : `${method} soup of ${models.map((m) => `${m.name}@v${m.version}`).join(', ')}`
    const { commit, results } = await promote(repo, [{
      name: o.name, files,
      ...(dataset ? { dataset } : {}), ...(arch ? { arch } : {}),
      params: { soup_method: method, soup_size: members.length },
      parents: models.map((m) => ({ ref: `${m.name}@v${m.version}`, relation: 'soup' })),
      message: o.message ?? label,
      extra: { soup },
    }], { allowDirty: o.allowDirty ?? false, subject: `zoo: soup ${o.name}` })
    return { commit, result: results[0]!, soup, label, ...(onnxNote ? { onnx: onnxNote } : {}), first: models[0]! }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}
