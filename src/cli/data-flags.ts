/** The flags eval and agree share to name a labelled dataset: --data (required), --labels, --batch-size. */
import { resolve } from 'node:path'
import type { Io } from './command.js'
import { int, str, type FlagSpecs, type Parsed } from './args.js'
import { openDataset, type Dataset } from '../evals/data.js'
import { UsageError } from '../errors.js'

/** The flags themselves, for a command's `flags`. */
export const DATA_FLAGS: FlagSpecs = {
  data: { type: 'string', value: 'file' },
  labels: { type: 'string', value: 'file' },
  'batch-size': { type: 'string', value: 'n' },
}

export interface DataFlags { batchSize?: number; open: () => Promise<Dataset> }

/** The flags checked (usage errors come before anything is read); `open()` opens the data (spec/eval.md). */
export function dataFlags(args: Parsed, io: Io): DataFlags {
  const dataPath = str(args, 'data')
  if (!dataPath) throw new UsageError('--data <file> is required: <stem>.x.npy (with <stem>.y.npy) or an .npz holding x and y', 'E_USAGE')
  const batchSize = int(args, 'batch-size')
  if (batchSize !== undefined && batchSize < 1) throw new UsageError('--batch-size must be at least 1', 'E_USAGE')
  const labels = str(args, 'labels')
  return { ...(batchSize !== undefined ? { batchSize } : {}), open: () => openDataset(resolve(io.cwd, dataPath), labels ? { labels: resolve(io.cwd, labels) } : {}) }
}
