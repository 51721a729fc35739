/** Reading manifests from the work tree into columns (in-process, or in a worker: worker.ts). */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { ColumnSet } from './columns.js'
import { extractRow } from './extract.js'
import { putRow } from './rows.js'
import { RETIRED_FILE } from '../manifest/retirement.js'

export interface ReadItem { path: string; blob?: string }
export interface ReadJob { root: string; items: ReadItem[]; stat: boolean; history: boolean }
/** A manifest that could not be indexed, with what identified its content then (to notice a fix). */
export interface Problem { path: string; problem: string; blob?: string; mtime?: number; size?: number; ino?: number }

/** Manifests that are gone from the work tree are skipped silently: they are not in the zoo. */
export function readItems(job: ReadJob): { cols: ColumnSet; problems: Problem[] } {
  const cols = new ColumnSet(job.items.length)
  const problems: Problem[] = []
  for (const it of job.items) {
    const full = join(job.root, it.path)
    let text: Buffer
    let st: { mtimeMs: number; size: number; ino: number } | undefined
    try {
      if (job.stat) st = statSync(full)
      text = readFileSync(full)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') continue
      problems.push({ path: it.path, problem: `cannot read it (${code ?? (err as Error).message})` })
      continue
    }
    let row
    try { row = extractRow(it.path, text, job.history) } catch (err) {
      problems.push({ path: it.path, problem: (err as Error).message.replace(`${it.path}: `, ''), ...(it.blob ? { blob: it.blob } : {}),
        ...(st ? { mtime: st.mtimeMs, size: st.size, ino: st.ino } : {}) })
      continue
    }
    // retired: a RETIRED.json beside the manifest (src/promote/retire.ts); its content is for `show`.
    // git mode knows from the index (the id of a retired version is `<manifest>+<RETIRED.json>`,
    // build.ts listTracked): one file system lookup less per manifest
    const retired = job.stat || it.blob === undefined ? existsSync(join(job.root, dirname(it.path), RETIRED_FILE)) : it.blob.includes('+')
    if (retired) row.retired = true
    const i = cols.addRow()
    putRow(cols, i, row, job.history, { ...(it.blob ? { blob: it.blob } : {}), ...(st ? { mtime: st.mtimeMs, size: st.size, ino: st.ino } : {}) })
  }
  return { cols, problems }
}
