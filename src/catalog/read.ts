/** Reading manifests from the work tree into columns (in-process, or in a worker: worker.ts). */
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { ColumnSet } from './columns.js'
import { extractRow } from './extract.js'
import { putRow, type FileFacts } from './rows.js'

const NO_FACTS: FileFacts = {}
import { ManifestScanner } from './scan.js'
import { RETIRED_FILE } from '../manifest/retirement.js'
import type { NodeHistory } from '../manifest/node-history.js'

export interface ReadItem { path: string; blob?: string }
/**
 * `store`: the local object store's folder, where format 2 manifests' histories are read (history
 * builds); `fetched`: checkpoint node blocks the command fetched for them (node-history.ts).
 */
export interface ReadJob { root: string; items: ReadItem[]; stat: boolean; history: boolean; store?: string; fetched?: ReadonlyMap<string, Uint8Array> }
/** A manifest that could not be indexed, with what identified its content then (to notice a fix). */
export interface Problem { path: string; problem: string; blob?: string; mtime?: number; size?: number; ino?: number }

/**
 * A whole file read into one reused buffer (grown when a file does not fit): open, read, close,
 * without readFileSync's fstat and fresh buffer per file (a cold build reads 50,000 of them). A read
 * that does not fill the buffer is taken as the file's end (a regular file reads short only there),
 * which saves the read that would return 0: three system calls per manifest instead of four. A file
 * cut short by a concurrent writer is no valid JSON and is reported like any other broken manifest.
 * The bytes are valid until the next call; rows extracted from them hold no reference to them.
 */
function reader(): (path: string) => Buffer {
  let buf = Buffer.allocUnsafe(1 << 16)
  return (path) => {
    const fd = openSync(path, 'r')
    try {
      let n = 0
      for (;;) {
        if (n === buf.length) { const b = Buffer.allocUnsafe(buf.length * 2); buf.copy(b, 0, 0, n); buf = b }
        const got = readSync(fd, buf, n, buf.length - n, null)
        n += got
        if (got === 0 || n < buf.length) return buf.subarray(0, n)
      }
    } finally { closeSync(fd) }
  }
}

/**
 * readItems on this thread, with the reader of format 2 histories when the job indexes history
 * (checkpoint nodes in the local store; loaded only then, so other builds load no store code).
 */
export async function readJob(job: ReadJob): Promise<{ cols: ColumnSet; problems: Problem[] }> {
  if (!job.history || !job.store) return readItems(job)
  const { NodeHistory } = await import('../manifest/node-history.js')
  const nodes = new NodeHistory(job.store, job.fetched)
  try { return readItems(job, nodes) } finally { nodes.close() }
}

/**
 * Manifests that are gone from the work tree are skipped silently: they are not in the zoo. Builds
 * without history read each manifest with the byte scanner (scan.ts), which writes the row's cells
 * directly; what it declines, and every manifest of a history build, goes through extractRow and
 * putRow (the same cells, or the problem to report).
 */
export function readItems(job: ReadJob, nodes?: NodeHistory): { cols: ColumnSet; problems: Problem[] } {
  const cols = new ColumnSet(job.items.length)
  const problems: Problem[] = []
  const readFile = reader()
  const scanner = job.history ? undefined : new ManifestScanner(cols)
  const base = join(job.root, '/')
  for (const it of job.items) {
    const full = base + it.path
    let text: Buffer
    let st: { mtimeMs: number; size: number; ino: number } | undefined
    try {
      if (job.stat) st = statSync(full)
      text = readFile(full)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') continue
      problems.push({ path: it.path, problem: `cannot read it (${code ?? (err as Error).message})` })
      continue
    }
    // retired: a RETIRED.json beside the manifest (src/promote/retire.ts); its content is for `show`.
    // git mode knows from the index (the id of a retired version is `<manifest>+<RETIRED.json>`,
    // build.ts listTracked): one file system lookup less per manifest
    const retired = job.stat || it.blob === undefined ? existsSync(join(job.root, dirname(it.path), RETIRED_FILE)) : it.blob.includes('+')
    const facts: FileFacts = st ? { ...(it.blob ? { blob: it.blob } : {}), mtime: st.mtimeMs, size: st.size, ino: st.ino } : it.blob ? { blob: it.blob } : NO_FACTS
    if (scanner?.add(it.path, text, retired, facts)) continue
    let row
    try { row = extractRow(it.path, text, job.history) } catch (err) {
      problems.push({ path: it.path, problem: (err as Error).message.replace(`${it.path}: `, ''), ...(it.blob ? { blob: it.blob } : {}),
        ...(st ? { mtime: st.mtimeMs, size: st.size, ino: st.ino } : {}) })
      continue
    }
    if (nodes && row.checkpointsLink) {
      const h = nodes.history(row.checkpointsLink)
      row.history = Array.isArray(h) ? h : []
      // marked, so that the command fetches the node and reads the row again (catalog.ts)
      if (h === 'absent') row.unfetched = true
    }
    if (retired) row.retired = true
    const i = cols.addRow()
    putRow(cols, i, row, job.history, facts)
  }
  return { cols, problems }
}
