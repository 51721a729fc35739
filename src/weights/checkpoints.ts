/**
 * Which file of a model holds its weights, per checkpoint: what soups, epoch averaging and the
 * population export read. Weights are safetensors files and torch.save zips; companion files kept
 * beside a checkpoint (optimizer and scheduler state, RNG state, trainer state: marked with a `role`
 * by import, or recognised by their file name) are not taken for the model's weights.
 */
import { posix } from 'node:path'
import type { FileEntry, Manifest } from '../manifest/manifest.js'
import { UsageError } from '../errors.js'

/** Formats whose tensors soups and exports read. */
export const WEIGHT_FORMATS: ReadonlySet<string> = new Set(['safetensors', 'pytorch-zip'])

/** File names of training state kept beside the weights (optimizer.pt, scheduler, rng_state.pth, ...). */
const COMPANION = /(^|[^a-z])(optim|optimizer|scheduler|sched|lr_scheduler|scaler|rng|rng_state|random_state|trainer_state|training_state)([^a-z]|$)/i

export function isCompanion(path: string): boolean {
  return COMPANION.test(posix.basename(path))
}

/** A file kept beside the weights: marked with a `role` (optimizer, metadata: set by import), or named like one. */
export function isCompanionFile(f: FileEntry): boolean {
  return (typeof f.role === 'string' && f.role !== '') || isCompanion(f.path)
}

function label(m: Manifest): string { return `${m.name}@v${m.version}` }

/** The weight files a soup or export may take: `file` (a path, or a file name inside each checkpoint), or every non-companion weights file. */
function candidates(m: Manifest, file?: string): FileEntry[] {
  const w = m.files.filter((f) => WEIGHT_FORMATS.has(f.format))
  if (file !== undefined) return w.filter((f) => f.path === file || (f.epoch !== undefined && posix.basename(f.path) === posix.basename(file)))
  return w.filter((f) => !isCompanionFile(f))
}

/**
 * The checkpoints of a trajectory model, by epoch (ascending): one weights file per epoch, or a
 * usage error naming the epoch that holds several (choose with `file`). Empty when the model has no
 * file with an epoch.
 */
export function checkpointsByEpoch(m: Manifest, file?: string): Array<{ epoch: number; file: FileEntry }> {
  const byEpoch = new Map<number, FileEntry[]>()
  for (const f of candidates(m, file)) if (f.epoch !== undefined) byEpoch.set(f.epoch, [...(byEpoch.get(f.epoch) ?? []), f])
  for (const [e, fs] of byEpoch) {
    if (fs.length === 1) continue
    const st = fs.filter((f) => f.format === 'safetensors') // the same weights saved twice: safetensors is read first
    if (st.length === 1) { byEpoch.set(e, st); continue }
    throw new UsageError(`epoch ${e} of ${label(m)} has ${fs.length} weights files (${fs.map((f) => f.path).slice(0, 4).join(', ')}); choose one with --file <name>`, 'E_USAGE')
  }
  return [...byEpoch.keys()].sort((a, b) => a - b).map((epoch) => ({ epoch, file: byEpoch.get(epoch)![0]! }))
}

/** The one weights file of a model: `file`, the only one, or the last epoch's. */
export function finalWeights(m: Manifest, file?: string): FileEntry {
  if (file !== undefined) {
    const f = m.files.find((x) => x.path === file)
    if (!f || !WEIGHT_FORMATS.has(f.format)) throw new UsageError(`${label(m)} has no safetensors or torch.save file ${file}`, 'E_USAGE')
    return f
  }
  const w = candidates(m)
  const pick = (fs: FileEntry[]): FileEntry | undefined => {
    if (fs.length === 1) return fs[0]!
    const plain = fs.filter((f) => f.epoch === undefined)
    if (plain.length === 1) return plain[0]!
    if (plain.length === 0 && fs.length > 0) {
      const traj = checkpointsByEpoch(m)
      if (traj.length) return traj[traj.length - 1]!.file
    }
    return undefined
  }
  // a folder with the same weights twice (model.safetensors and pytorch_model.bin): safetensors
  const found = pick(w) ?? pick(w.filter((f) => f.format === 'safetensors'))
  if (found) return found
  throw new UsageError(`${label(m)} has ${w.length ? `${w.length} weights files (${w.map((f) => f.path).slice(0, 4).join(', ')}${w.length > 4 ? ', ...' : ''}); choose one with --file` : 'no safetensors or torch.save file'}`, 'E_USAGE')
}
