/**
 * What `add` promotes from the paths it is given: a checkpoint file is stored under its base name;
 * a run folder contributes all its files (paths relative to it), with the epoch of checkpoint_<n>/
 * folders and epoch_<n> files (a checkpoint's optimizer state and metadata marked with their role),
 * and its metrics file (result.json, metrics.csv, ...) when it holds a
 * trajectory.
 */
import { stat, readdir } from 'node:fs/promises'
import { resolve, join, basename, relative } from 'node:path'
import type { SourceFile } from '../promote/promote.js'
import { epochOf, companionRole, METRICS_FILES } from './run.js'
import { UsageError } from '../errors.js'

/** The files of a run directory, with paths relative to it (sorted; no symlinks followed). */
export async function collectDir(dir: string): Promise<SourceFile[]> {
  const out: SourceFile[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name)
      if (e.isDirectory()) await walk(full)
      else if (e.isFile()) out.push({ source: full, path: relative(dir, full).split('\\').join('/') })
      else if (e.isSymbolicLink()) throw new UsageError(`${full} is a symbolic link; add the file it points to instead`, 'E_NO_FILE', { path: full })
    }
  }
  await walk(dir)
  return out.sort((a, b) => (a.path < b.path ? -1 : 1))
}

/** The files `paths` (relative to `cwd`) name, and the metrics file of the first run folder with a trajectory. */
export async function sourcesOf(paths: string[], cwd: string): Promise<{ files: SourceFile[]; runMetrics?: string }> {
  const files: SourceFile[] = []
  let runMetrics: string | undefined
  for (const p of paths) {
    const abs = resolve(cwd, p)
    let st
    try { st = await stat(abs) } catch (err) {
      throw new UsageError(`cannot read ${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`, 'E_NO_FILE', { path: p }, { cause: err })
    }
    if (st.isDirectory()) {
      const dirFiles = (await collectDir(abs)).map((f) => {
        const e = epochOf(f.path)
        const role = e === undefined ? undefined : companionRole(f.path)
        return e === undefined ? f : { ...f, epoch: e, ...(role ? { role } : {}) }
      })
      files.push(...dirFiles)
      if (!runMetrics && dirFiles.some((f) => f.epoch !== undefined)) runMetrics = METRICS_FILES.map((n) => dirFiles.find((f) => f.path === n)?.source).find(Boolean)
    } else files.push({ source: abs, path: basename(abs) })
  }
  return { files, ...(runMetrics ? { runMetrics } : {}) }
}
