/**
 * Generating factors from a run's config (config.json / params.json / hparams.json) and metrics
 * from its result file, for import (rules in spec/import.md). The keys are read the way the Model
 * Zoos and ViT zoo authors write them (ModelZoos/ModelZooDataset, ModelZoos/ViTModelZoo):
 *   seed     the integer under `seed` (else `training::seed`, else the only key whose last segment
 *            is `seed`; `model::head::seed` or `pretraining::seed` are other factors, kept in params)
 *   dataset  a string under dataset / dataset_name / dataset::name / data; else the dataset a
 *            `dataset::dump` path names: the folder after `zoos/` (zoos/CIFAR10/large/.../dataset.pt
 *            is CIFAR10), else the dump's file name when it is not a generic one (dataset, data, ...)
 *   arch     a string under arch / architecture / model_type / model::type / model.type / model
 *   parent   `parent` (a folder relative to the import root, or a zoo model name) with `relation`;
 *            else `training::init_checkpoint_path` (the Ray trial a sparsified twin starts from:
 *            relation `sparsified` for the authors' ARD / variational-dropout models, else
 *            `continued`); else `pretraining::model` (the pre-trained ViT a fine-tune starts from)
 *   params   every other config value, nested objects flattened with '.', keys kept as written
 */
import { readFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import type { Json } from '../manifest/manifest.js'
import { parseMetrics, type MetricsRead } from '../promote/metrics.js'
import { UsageError } from '../errors.js'

export interface Factors {
  seed?: number
  dataset?: string
  arch?: string
  params: Record<string, Json>
  parent?: string
  relation?: string
  /** The parent a config key such as training::init_checkpoint_path names (after `parent` and folder nesting). */
  initParent?: string
  initRelation?: string
}

/** Ray Tune's bookkeeping columns in result.json / progress.csv: not metrics of the model. */
export const RAY_KEYS = new Set(['timestamp', 'time_this_iter_s', 'time_total_s', 'pid', 'time_since_restore', 'timesteps_since_restore',
  'iterations_since_restore', 'timesteps_total', 'episodes_total', 'warmup_time', 'done', 'should_checkpoint', 'checkpoint_dir_name'])

/** The value Ray Tune trials of the published zoos log for a metric that does not exist yet (iteration 0). */
export const RAY_PLACEHOLDER = -999

const SEED_KEYS = ['seed', 'training::seed', 'training.seed', 'random_seed']
const DATASET_KEYS = ['dataset', 'dataset_name', 'dataset::name', 'dataset.name', 'data']
const ARCH_KEYS = ['arch', 'architecture', 'model_type', 'model::type', 'model.type', 'model']
/** Config keys naming the model a run was initialised from, with the relation they mean. */
const PARENT_KEYS = ['training::init_checkpoint_path', 'pretraining::model']
/** File and folder names of a dump that say nothing about which dataset it is. */
const GENERIC_DUMP = /^(dataset|datasets|data|dump|dataset_dump|ds|train|trainset|preprocessed|cache)$/i

function lastSegment(key: string): string { return key.split(/::|\./).pop()!.toLowerCase() }

function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, Json> = {}): Record<string, Json> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out)
    else if (v !== undefined && !(typeof v === 'number' && !Number.isFinite(v))) out[key] = v as Json
  }
  return out
}

/**
 * The dataset a dump path names. The Model Zoos generators write `zoos/<DATASET>/[<size>/]<experiment>/dataset.pt`
 * and the ViT zoo `.../zoos/<DATASET>/dataset_dump/<name>.pt`: the folder after the last `zoos`
 * segment; otherwise the file name without extension, or the nearest folder, skipping generic names.
 */
export function datasetOfDump(path: string): string | undefined {
  const segs = path.split(/[\\/]+/).filter(Boolean)
  const zoos = segs.map((s) => s.toLowerCase()).lastIndexOf('zoos')
  if (zoos !== -1 && zoos < segs.length - 2) return segs[zoos + 1]
  for (let i = segs.length - 1; i >= 0; i--) {
    const stem = i === segs.length - 1 ? segs[i]!.replace(/\.[a-z0-9]+$/i, '') : segs[i]!
    if (stem && !GENERIC_DUMP.test(stem)) {
      const tune = /^tune_zoo_([a-z0-9-]+?)(?:_|$)/i.exec(stem) // tune_zoo_mnist_uniform
      return tune ? tune[1] : stem
    }
  }
  return undefined
}

function pick(flat: Record<string, Json>, keys: string[], ok: (v: Json) => boolean): [string, Json] | undefined {
  const lower = new Map(Object.keys(flat).map((k) => [k.toLowerCase(), k]))
  for (const want of keys) {
    const k = lower.get(want)
    if (k !== undefined && ok(flat[k]!)) return [k, flat[k]!]
  }
  return undefined
}

export function factorsFromConfig(config: Record<string, unknown>): Factors {
  const flat = flatten(config)
  const f: Factors = { params: {} }
  const take = new Set<string>()
  const isInt = (v: Json): boolean => Number.isSafeInteger(v)
  const isStr = (v: Json): boolean => typeof v === 'string' && v !== ''
  let seed = pick(flat, SEED_KEYS, isInt)
  if (!seed) {
    const any = Object.entries(flat).filter(([k, v]) => lastSegment(k) === 'seed' && isInt(v))
    if (any.length === 1) seed = any[0]
  }
  if (seed) { f.seed = seed[1] as number; take.add(seed[0]) }
  const ds = pick(flat, DATASET_KEYS, isStr)
  if (ds) { f.dataset = ds[1] as string; take.add(ds[0]) } else {
    const dump = pick(flat, ['dataset::dump', 'dataset.dump', 'dataset_dump'], isStr)
    const named = dump ? datasetOfDump(dump[1] as string) : undefined
    if (named) f.dataset = named // the dump path itself stays in params
  }
  const arch = pick(flat, ARCH_KEYS, isStr)
  if (arch) { f.arch = arch[1] as string; take.add(arch[0]) }
  const parent = pick(flat, ['parent'], isStr)
  if (parent) { f.parent = parent[1] as string; take.add(parent[0]) }
  const relation = pick(flat, ['relation'], isStr)
  if (relation) { f.relation = relation[1] as string; take.add(relation[0]) }
  // these keys stay in params too: they are generating factors as the authors wrote them
  const init = pick(flat, PARENT_KEYS, isStr)
  if (init) {
    f.initParent = init[1] as string
    f.initRelation = init[0].toLowerCase() === 'pretraining::model' ? 'fine-tune'
      : /ard|sparse|_vd$|variational/i.test(`${f.arch ?? ''}`) ? 'sparsified' : 'continued'
  }
  for (const [k, v] of Object.entries(flat)) if (!take.has(k)) f.params[k] = v
  return f
}

export function readConfig(path: string): Record<string, unknown> {
  return parseConfig(readConfigBytes(path), path)
}

/** A config file's bytes (E_NO_FILE when it cannot be read). */
export function readConfigBytes(path: string): Buffer {
  try { return readFileSync(path) } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'E_NO_FILE', { path }, { cause: err })
  }
}

/** A config file's training settings: a JSON object (E_RUN_CONFIG otherwise). */
export function parseConfig(bytes: Uint8Array, path: string): Record<string, unknown> {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  try {
    const v = JSON.parse(text) as unknown
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object')
    return v as Record<string, unknown>
  } catch (err) {
    throw new UsageError(`${path} is not a JSON object of training settings (${(err as Error).message})`, 'E_RUN_CONFIG', { path }, { cause: err })
  }
}

/**
 * Metrics and history of a run, without Ray Tune's bookkeeping columns and without Ray's -999
 * placeholders (a metric that does not exist at that iteration: no value, so no best or plot
 * point). Ray writes no `epoch`: its `training_iteration` numbers the checkpoint folders
 * (checkpoint_<training_iteration>), so it becomes each record's epoch.
 */
export function runMetricsOf(text: string, path: string): MetricsRead {
  const r = parseMetrics(text, path)
  const clean = (rec: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(rec).filter(([k, v]) => !RAY_KEYS.has(k) && v !== RAY_PLACEHOLDER))
  if (!r.history) return { metrics: clean(r.metrics) }
  let history = r.history.map(clean)
  if (history.every((h) => h.epoch === undefined && Number.isSafeInteger(h.training_iteration))) {
    history = history.map((h) => ({ epoch: h.training_iteration!, ...h })).sort((a, b) => a.epoch - b.epoch)
  }
  // final metrics: each metric's last real value (a placeholder in the last record is no value)
  const metrics: Record<string, number> = {}
  for (const h of history) for (const [k, v] of Object.entries(h)) if (k !== 'epoch') metrics[k] = v
  return { metrics, history }
}

export async function readRunMetrics(path: string): Promise<MetricsRead> {
  return runMetricsOf(await readFile(path, 'utf8'), path)
}
