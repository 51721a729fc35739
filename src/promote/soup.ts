/**
 * A soup promoted (`git zoo soup`): the members chosen (models, or the last k checkpoints of one
 * trajectory), their safetensors files or torch.save checkpoints averaged by weights/soup.ts (and
 * model.onnx written from the first model's graph when it fits), and the result promoted as a new
 * model whose parents carry the relation `soup`, through the one promotion path.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Repo } from '../repo.js'
import type { FileEntry, Json, Manifest } from '../manifest/manifest.js'
import { promote, type PromotionResult } from './promote.js'
import { FileOpener } from '../weights/tensors.js'
import { CommandReader, prefetchFiles } from '../zoo/reader.js'
import { planSoup, writeSoup, writeSoupOnnx, type SoupMember } from '../weights/soup.js'
import { checkpointsByEpoch, finalWeights } from '../weights/checkpoints.js'
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
  /** Which weights file of each model (with lastK: the checkpoint file's name in each epoch). */
  file?: string
  /** Write model.onnx from the first model's graph when it fits (default true). */
  onnx?: boolean
  message?: string
  allowDirty?: boolean
  /** Checked once the average is computed, then through the promotion (see PromoteOptions.signal). */
  signal?: AbortSignal
  /** Named crash and pause points of the promotion (see PromoteOptions.crashPoint). */
  crashPoint?: (name: string) => void | Promise<void>
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

/** The last k checkpoints (safetensors or torch.save, one per epoch) of a trajectory model, oldest first. */
function lastK(m: Manifest, k: number, file?: string): FileEntry[] {
  const traj = checkpointsByEpoch(m, file)
  if (traj.length === 0) throw new UsageError(`${m.name}@v${m.version} holds no trajectory (no safetensors or torch.save checkpoints with an epoch); --last-k averages the checkpoints of one trajectory`, 'E_USAGE')
  if (k < 2 || k > traj.length) throw new UsageError(`--last-k must be between 2 and the ${traj.length} checkpoints of ${m.name}@v${m.version}`, 'E_USAGE')
  return traj.slice(-k).map((c) => c.file)
}

export async function promoteSoup(repo: Repo, o: SoupOptions): Promise<SoupResult> {
  const k = o.lastK
  const models: Manifest[] = []
  const reader = new CommandReader(repo) // a lazy clone fetches what it reads (spec/teams.md)
  const tmp = await mkdtemp(join(tmpdir(), 'git-zoo-soup-'))
  try {
    let members: SoupMember[]
    let method: string
    let onnxNote: SoupOnnxNote | undefined
    const files: Array<{ source: string; path: string }> = []
    try {
      // complete views: a trajectory's checkpoint files are in its checkpoint node
      for (const ref of o.refs) models.push(await reader.complete(await repo.resolve(ref)))
      if (new Set(models.map((m) => m.seal)).size !== models.length) throw new UsageError('a model is named twice; use --weights to weigh one model more', 'E_USAGE')
      members = k !== undefined
        ? lastK(models[0]!, k, o.file).map((f) => ({ manifest: models[0]!, file: f, weight: 1, ...(f.epoch !== undefined ? { epoch: f.epoch } : {}) }))
        : models.map((m) => ({ manifest: m, file: finalWeights(m, o.file), weight: 1 }))
      const weights = o.weights
      if (weights) {
        if (weights.length !== members.length) throw new UsageError(`--weights has ${weights.length} values for ${members.length} checkpoints`, 'E_USAGE')
        if (weights.some((w) => !Number.isFinite(w) || w < 0)) throw new UsageError('--weights takes non-negative numbers', 'E_USAGE')
        if (!(weights.reduce((a, b) => a + b, 0) > 0)) throw new UsageError('--weights must not all be zero', 'E_USAGE')
        weights.forEach((w, i) => { members[i]!.weight = w })
      }
      method = k !== undefined ? 'epoch-average' : weights ? 'weighted' : 'uniform'
      const store = await reader.store()
      await prefetchFiles(store, members.map((m) => m.file)) // every member is read whole
      const opener = new FileOpener(store)
      const plan = await planSoup(members, opener, { nonFloat: k !== undefined ? 'last' : 'agree' })
      const out = plan.format === 'pytorch-zip' ? 'model.pt' : 'model.safetensors' // the first member's format
      files.push({ source: join(tmp, out), path: out })
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
      await reader.close()
    }
    o.signal?.throwIfAborted()
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
    }], { allowDirty: o.allowDirty ?? false, subject: `zoo: soup ${o.name}`, ...(o.signal ? { signal: o.signal } : {}), ...(o.crashPoint ? { crashPoint: o.crashPoint } : {}) })
    return { commit, result: results[0]!, soup, label, ...(onnxNote ? { onnx: onnxNote } : {}), first: models[0]! }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}
