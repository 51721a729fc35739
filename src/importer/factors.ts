/**
 * Generating factors from a run's config (config.json / params.json / hparams.json) and metrics
 * from its result file, for import (rules in spec/import.md).
 *   seed     the integer under a key whose last segment is `seed` (seed, training::seed, ...)
 *   dataset  a string under dataset / dataset_name / data, or the file name of dataset::dump
 *   arch     a string under arch / architecture / model_type / model::type / model (when a string)
 *   params   every other config value, nested objects flattened with '.', keys kept as written
 *   parent   `parent` (a folder relative to the import root, or a zoo model name), `relation`
 */
import { readFile } from 'node:fs/promises'
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
}

/** Ray Tune's bookkeeping columns in result.json / progress.csv: not metrics of the model. */
export const RAY_KEYS = new Set(['timestamp', 'time_this_iter_s', 'time_total_s', 'pid', 'time_since_restore', 'timesteps_since_restore',
  'iterations_since_restore', 'timesteps_total', 'episodes_total', 'warmup_time', 'done', 'should_checkpoint', 'checkpoint_dir_name'])

function lastSegment(key: string): string { return key.split(/::|\./).pop()!.toLowerCase() }

function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, Json> = {}): Record<string, Json> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out)
    else if (v !== undefined && !(typeof v === 'number' && !Number.isFinite(v))) out[key] = v as Json
  }
  return out
}

export function factorsFromConfig(config: Record<string, unknown>): Factors {
  const flat = flatten(config)
  const f: Factors = { params: {} }
  const take = new Set<string>()
  for (const [k, v] of Object.entries(flat)) {
    const last = lastSegment(k)
    if (f.seed === undefined && last === 'seed' && Number.isSafeInteger(v)) { f.seed = v as number; take.add(k) }
    else if (f.dataset === undefined && typeof v === 'string' && ['dataset', 'dataset_name', 'data'].includes(k.toLowerCase())) { f.dataset = v; take.add(k) }
    else if (f.arch === undefined && typeof v === 'string' && (['arch', 'architecture', 'model_type', 'model'].includes(k.toLowerCase()) || k.toLowerCase() === 'model::type' || k.toLowerCase() === 'model.type')) { f.arch = v; take.add(k) }
    else if (k === 'parent' && typeof v === 'string' && v) { f.parent = v; take.add(k) }
    else if (k === 'relation' && typeof v === 'string' && v) { f.relation = v; take.add(k) }
  }
  if (f.dataset === undefined) {
    const dump = Object.entries(flat).find(([k, v]) => k.toLowerCase() === 'dataset::dump' && typeof v === 'string')
    if (dump) f.dataset = (dump[1] as string).split('/').pop()!.replace(/\.[a-z0-9]+$/i, '')
  }
  for (const [k, v] of Object.entries(flat)) if (!take.has(k) && k !== 'parent') f.params[k] = v
  return f
}

export async function readConfig(path: string): Promise<Record<string, unknown>> {
  let text: string
  try { text = await readFile(path, 'utf8') } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'E_NO_FILE', { path }, { cause: err })
  }
  try {
    const v = JSON.parse(text) as unknown
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object')
    return v as Record<string, unknown>
  } catch (err) {
    throw new UsageError(`${path} is not a JSON object of training settings (${(err as Error).message})`, 'E_RUN_CONFIG', { path }, { cause: err })
  }
}

/** Metrics and history of a run, without Ray Tune's bookkeeping columns. */
export async function readRunMetrics(path: string): Promise<MetricsRead> {
  const text = await readFile(path, 'utf8')
  const r = parseMetrics(text, path)
  const clean = (rec: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(rec).filter(([k]) => !RAY_KEYS.has(k)))
  return { metrics: clean(r.metrics), ...(r.history ? { history: r.history.map(clean) } : {}) }
}
