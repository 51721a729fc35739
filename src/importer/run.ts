/**
 * A run directory: the files of one training run, with the epoch of each checkpoint taken from its
 * folder or file name, and the metrics and config files found beside them (spec/import.md).
 *
 *   checkpoint_000012/model.safetensors   epoch 12     (also checkpoint-12/, ckpt_12/, epoch_12/, epoch12/)
 *   epoch_3.pt, checkpoint-40.safetensors epoch 3, 40  (a checkpoint file directly in the run folder)
 *   result.json results.json metrics.json metrics.jsonl metrics.csv progress.csv history.json history.csv
 *                                         per-epoch metrics (the first found, in this order)
 *   config.json params.json hparams.json  the training config / generating factors
 *
 * Inside a checkpoint folder, files beside the weights are companions, kept with the checkpoint and
 * marked with a `role` so nothing reads them as weights: `optimizer` (optimizer / scheduler / scaler
 * state, `optimizer`, `optimizer.pt`, ...) and `metadata` (Ray Tune's `.tune_metadata`,
 * `<checkpoint>.tune_metadata`, `.is_checkpoint`, Hugging Face's trainer_state.json, rng_state.pth).
 * Ray's hidden files are kept (other hidden entries are skipped).
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { SourceFile } from '../promote/promote.js'
import { UsageError } from '../errors.js'

export const CHECKPOINT_DIR = /^(?:checkpoint|ckpt|epoch)[_-]?(\d+)$/i
export const CHECKPOINT_FILE = /^(?:checkpoint|ckpt|epoch|model[_-]epoch)[_-]?(\d+)\.[a-z0-9]+$/i
export const METRICS_FILES = ['result.json', 'results.json', 'metrics.json', 'metrics.jsonl', 'metrics.csv', 'progress.csv', 'history.json', 'history.csv']
export const CONFIG_FILES = ['config.json', 'params.json', 'hparams.json']

export interface RunDir {
  files: SourceFile[]
  /** Absolute path of the metrics file in the run folder itself, if any. */
  metricsFile?: string
  configFile?: string
  /** Distinct checkpoint epochs. */
  epochs: number[]
}

/** The epoch a file of a run belongs to, from the first path segment that names one. */
export function epochOf(relPath: string): number | undefined {
  const segs = relPath.split('/')
  for (let i = 0; i < segs.length - 1; i++) {
    const m = CHECKPOINT_DIR.exec(segs[i]!)
    if (m) return Number(m[1])
  }
  const m = segs.length === 1 ? CHECKPOINT_FILE.exec(segs[0]!) : null
  return m ? Number(m[1]) : undefined
}

/** Hidden files Ray Tune writes into a checkpoint folder; kept, as metadata. */
const RAY_HIDDEN = /^\.(tune_metadata|is_checkpoint|orig_checkpoint_path)$|\.tune_metadata$/
const OPTIMIZER = /^(optim|optimizer|optimiser|scheduler|lr_scheduler|scaler|amp)(_state|_state_dict)?(\.[a-z0-9]+)?$/i
const METADATA = /^(\.tune_metadata|\.is_checkpoint|\.orig_checkpoint_path|trainer_state\.json|training_args\.bin|rng_state(_\d+)?\.pth)$|\.tune_metadata$/i

/** The role of a checkpoint folder's file that is not model weights, if it is one (see above). */
export function companionRole(relPath: string): 'optimizer' | 'metadata' | undefined {
  const base = relPath.split('/').pop()!
  if (METADATA.test(base)) return 'metadata'
  if (OPTIMIZER.test(base)) return 'optimizer'
  return undefined
}

export function isCheckpointEntry(name: string, isDir: boolean): boolean {
  return isDir ? CHECKPOINT_DIR.test(name) : CHECKPOINT_FILE.test(name)
}

/**
 * Every regular file under `dir` (sorted, paths relative to it), skipping the folders in `skip`
 * (nested runs) and hidden entries (.git, .DS_Store, ...). Symbolic links are refused.
 */
export async function describeRunDir(dir: string, skip: Set<string> = new Set()): Promise<RunDir> {
  const files: SourceFile[] = []
  // synchronous listing: a run folder is dozens of small folders, and a readdir round trip through
  // the thread pool costs more than the listing itself (import reads thousands of runs)
  // `rel`: the folder's path relative to `dir`, '/'-separated, built as the walk descends
  const walk = (d: string, rel: string): void => {
    const entries = readdirSync(d, { withFileTypes: true })
    for (const e of entries) {
      if (e.name.startsWith('.') && !(e.isFile() && RAY_HIDDEN.test(e.name) && d !== dir)) continue
      const full = join(d, e.name)
      if (e.isDirectory()) { if (!skip.has(full)) walk(full, rel ? `${rel}/${e.name}` : e.name) }
      else if (e.isFile()) {
        const path = rel ? `${rel}/${e.name}` : e.name
        const epoch = epochOf(path)
        const role = epoch !== undefined ? companionRole(path) : undefined
        files.push({ source: full, path, ...(epoch !== undefined ? { epoch } : {}), ...(role ? { role } : {}) })
      } else if (e.isSymbolicLink()) throw new UsageError(`${full} is a symbolic link; copy the file it points to instead`, 'E_NO_FILE', { path: full })
    }
  }
  walk(dir, '')
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const top = new Set(files.filter((f) => !f.path.includes('/')).map((f) => f.path))
  const metrics = METRICS_FILES.find((n) => top.has(n))
  const config = CONFIG_FILES.find((n) => top.has(n))
  const epochs = [...new Set(files.filter((f) => f.epoch !== undefined).map((f) => f.epoch!))].sort((a, b) => a - b)
  return { files, ...(metrics ? { metricsFile: join(dir, metrics) } : {}), ...(config ? { configFile: join(dir, config) } : {}), epochs }
}
