/**
 * Building and refreshing the catalog cache from the manifests (spec/catalog.md, "Freshness").
 *
 * Cold: list the manifests git tracks (`git ls-files -s`, with their blob ids); in worktree mode also
 * walk models/ for untracked ones; read and extract them all (in worker threads for large zoos);
 * write the cache file. Incremental: when the git key changed, re-read only the manifests whose index
 * blob changed (git mode) or whose stat changed (worktree mode), drop the vanished ones, rewrite.
 */
import { readdirSync, statSync, mkdirSync, writeFileSync, renameSync, existsSync } from 'node:fs'
import { join, dirname, isAbsolute, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import type { GitPlaces } from './gitstate.js'
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { ColumnSet, CatalogFile, encodeCatalog, mergeCatalogs, composeCatalog, PART_HEAD, manifestPathOf, type CatalogHeader, type HeadFields, type RowRun } from './columns.js'
import { readJob, type ReadItem, type ReadJob, type Problem } from './read.js'
import { RETIRED_FILE } from '../manifest/retirement.js'
import { ZooError } from '../errors.js'
import { git, type GitEnv } from '../git/git.js'

export const MANIFEST_RE = /^models\/(.+)\/v([1-9]\d*)\/manifest\.json$/
export { WORKTREE_LIMIT } from './columns.js'
import { WORKTREE_LIMIT } from './columns.js'
const WORKER_MIN = 1500
const MAX_PROBLEMS = 100

export type CheckMode = 'auto' | 'always' | 'git'

/** Row order: by model name, then version as a number (so a query's ties come out in that order). */
export function byNameVersion(a: string, b: string): number {
  const x = MANIFEST_RE.exec(a), y = MANIFEST_RE.exec(b)
  if (!x || !y) return a < b ? -1 : a > b ? 1 : 0
  return x[1]! < y[1]! ? -1 : x[1]! > y[1]! ? 1 : Number(x[2]) - Number(y[2])
}

/**
 * Manifest paths in git's index with their blob ids (conflicted entries: no blob, always re-read).
 * A retired version's id is `<manifest blob>+<RETIRED.json blob>`, so retiring (or un-retiring, by
 * a checkout) a version changes what the catalog compares and the row is read again.
 */
export async function listTracked(root: string, env: GitEnv): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>()
  const retired = new Map<string, string>()
  const text = await git(root, ['ls-files', '-s', '-z', '--', ':(glob)models/**/manifest.json', `:(glob)models/**/${RETIRED_FILE}`], { env })
  // records "<mode> <blob> <stage>\t<path>\0", read in place (no split: 50,000 of them)
  for (let pos = 0; pos < text.length;) {
    const nul = text.indexOf('\0', pos)
    const end = nul === -1 ? text.length : nul
    const tab = text.indexOf('\t', pos)
    const sp1 = text.indexOf(' ', pos), sp2 = sp1 === -1 ? -1 : text.indexOf(' ', sp1 + 1)
    pos = end + 1
    if (tab === -1 || tab > end || sp2 === -1 || sp2 > tab) continue
    const blob = text.slice(sp1 + 1, sp2)
    const merged = tab === sp2 + 2 && text.charCodeAt(sp2 + 1) === 0x30 // stage 0
    const path = text.slice(tab + 1, end)
    if (path.endsWith(`/${RETIRED_FILE}`)) {
      retired.set(path.slice(0, -RETIRED_FILE.length) + 'manifest.json', merged ? blob : 'conflict')
      continue
    }
    if (!MANIFEST_RE.test(path)) continue
    out.set(path, merged && !out.has(path) ? blob : undefined)
  }
  for (const [path, r] of retired) {
    const blob = out.get(path)
    if (blob !== undefined) out.set(path, `${blob}+${r}`)
  }
  return out
}

/**
 * `xs` in byNameVersion order of their paths, each path parsed once (a comparator that runs the
 * regex on both paths costs ~90 ms over 50,000 manifests; this ~20 ms).
 */
export function sortByNameVersion<T>(xs: T[], pathOf: (x: T) => string): T[] {
  const keyed = xs.map((x) => {
    const p = pathOf(x)
    const m = MANIFEST_RE.exec(p)
    return { x, p, name: m ? m[1]! : undefined, v: m ? Number(m[2]) : 0 }
  })
  keyed.sort((a, b) => (a.name !== undefined && b.name !== undefined
    ? (a.name < b.name ? -1 : a.name > b.name ? 1 : a.v - b.v)
    : (a.p < b.p ? -1 : a.p > b.p ? 1 : 0)))
  return keyed.map((k) => k.x)
}

/** Every manifest under models/ on disk, and every folder with its mtime. */
export function walkModels(root: string): { paths: string[]; dirs: Array<[string, number]> } {
  const paths: string[] = []
  const dirs: Array<[string, number]> = []
  const walk = (rel: string): void => {
    let st
    try { st = statSync(join(root, rel)) } catch { return }
    if (!st.isDirectory()) return
    dirs.push([rel, st.mtimeMs])
    let entries
    try { entries = readdirSync(join(root, rel), { withFileTypes: true }) } catch { return }
    for (const e of entries) {
      if (e.isDirectory()) walk(`${rel}/${e.name}`)
      else if (e.name === 'manifest.json' && MANIFEST_RE.test(`${rel}/${e.name}`)) paths.push(`${rel}/${e.name}`)
    }
  }
  walk('models')
  return { paths: sortByNameVersion(paths, (p) => p), dirs }
}

type WorkerReply = { cols?: Parameters<typeof ColumnSet.fromMessage>[0]; bytes?: Uint8Array; problems: Problem[] }

/**
 * Build workers (worker.ts), started before the manifests are listed so that their start (a thread,
 * node's bootstrap, loading the catalog code: ~60 ms) overlaps `git ls-files`; each then gets its
 * share of the items by message. `run` gives their replies in share order.
 */
class WorkerPool {
  private workers: Worker[]
  private failed: Promise<never>
  constructor(n: number, data: Omit<ReadJob, 'items'> & { encode: boolean }) {
    const url = new URL('./worker.js', import.meta.url)
    this.workers = Array.from({ length: n }, () => new Worker(url, { workerData: data }))
    // a worker that fails before it is given work fails the build when its reply is awaited
    this.failed = new Promise<never>((_, reject) => {
      for (const w of this.workers) {
        w.once('error', reject)
        w.once('exit', (code) => { if (code !== 0) reject(new ZooError(`a catalog build worker exited with code ${code}`, 'E_CATALOG')) })
      }
    })
    this.failed.catch(() => { /* reported by run() */ })
  }

  /** One share per worker. */
  async run(shares: ReadItem[][]): Promise<WorkerReply[]> {
    const replies = this.workers.map((w, j) => new Promise<WorkerReply>((resolve) => {
      w.once('message', resolve)
      w.postMessage(shares[j] ?? [])
    }))
    return Promise.race([Promise.all(replies), this.failed])
  }

  /** Stop workers that were started for nothing (a zoo smaller than guessed). */
  close(): void { for (const w of this.workers) void w.terminate() }
}

/**
 * Threads a build of `items` manifests uses: this one and the workers (as many threads as cores, up
 * to 4); 0 when it is small enough to read here alone.
 */
function threadCount(items: number): number {
  const n = Math.min(4, availableParallelism())
  return items < WORKER_MIN || n < 2 ? 0 : n
}

/**
 * Read the items in shares of consecutive rows: the first in this thread, the others in workers (a
 * pool started early, or new ones), all at once. Undefined when the items are few (read them here).
 */
async function inThreads<T>(job: ReadJob, encode: boolean, here: (cols: ColumnSet) => T, pool?: WorkerPool): Promise<{ parts: Array<T | WorkerReply>; problems: Problem[] } | undefined> {
  const threads = threadCount(job.items.length)
  if (threads === 0) { pool?.close(); return undefined }
  const per = Math.ceil(job.items.length / threads)
  const shares = Array.from({ length: threads }, (_, j) => job.items.slice(j * per, (j + 1) * per))
  const { items: _, ...data } = job
  const workers = pool ?? new WorkerPool(threads - 1, { ...data, encode })
  const pending = workers.run(shares.slice(1))
  pending.catch(() => { /* awaited below */ })
  let mine
  try { mine = await readJob({ ...job, items: shares[0]! }) } catch (err) { workers.close(); throw err }
  const first = here(mine.cols)
  const replies = await pending
  return { parts: [first, ...replies], problems: [...mine.problems, ...replies.flatMap((r) => r.problems)] }
}

/** The local object store's folder, as Repo.storeRoot finds it ($GIT_ZOO_STORE, zoo.store, <git common dir>/zoo). */
export function storeFolder(places: GitPlaces, env: NodeJS.ProcessEnv): string {
  if (env.GIT_ZOO_STORE) return resolve(places.root, env.GIT_ZOO_STORE)
  const r = spawnSync('git', ['config', '--get', 'zoo.store'], { cwd: places.root, env, encoding: 'utf8' })
  const configured = r.status === 0 ? r.stdout.trim() : ''
  if (configured) return isAbsolute(configured) ? configured : resolve(places.root, configured)
  return join(places.commonDir, 'zoo')
}

/** What a build reads with: the store's folder and the fetched blocks for history (history builds). */
function sources(o: BuildOptions): Pick<ReadJob, 'store' | 'fetched'> {
  return { ...(o.store ? { store: o.store } : {}), ...(o.fetched ? { fetched: o.fetched } : {}) }
}

async function readAll(job: ReadJob): Promise<{ cols: ColumnSet | ColumnSet[]; problems: Problem[] }> {
  const shared = await inThreads(job, false, (cols) => cols)
  if (!shared) return readJob(job)
  const [first, ...rest] = shared.parts
  return { cols: [first as ColumnSet, ...rest.map((p) => ColumnSet.fromMessage((p as WorkerReply).cols!))], problems: shared.problems }
}

/** Read, extract and encode every item (a cold build): in threads whose encoded parts are merged. */
async function readAllEncoded(job: ReadJob, head: (problems: Problem[]) => HeadFields, pool?: WorkerPool): Promise<Buffer> {
  const shared = await inThreads(job, true, (cols) => encodeCatalog(cols, PART_HEAD(job.history), { part: true }), pool)
  if (!shared) {
    const { cols, problems } = await readJob(job)
    return encodeCatalog(cols, head(problems))
  }
  const files = shared.parts.map((p) => {
    const b = p instanceof Uint8Array ? p : (p as WorkerReply).bytes!
    return CatalogFile.fromBytes(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
  })
  return mergeCatalogs(files, head(shared.problems))
}

/**
 * `store`: the local object store's folder (format 2 histories are read from checkpoint nodes
 * there); `fetched`: node blocks fetched for rows whose node is not there (catalog.ts). `gitDir`:
 * where git's index is, whose size tells a cold build early whether the zoo is large enough for
 * build workers.
 */
export interface BuildOptions {
  root: string; env: GitEnv; key: string; check: CheckMode; history: boolean; store?: string; fetched?: ReadonlyMap<string, Uint8Array>
  gitDir?: string; progress?: (text: string) => void
}

/** An index of this many bytes or more lists ~WORKER_MIN manifests or more (an entry is 62 bytes and its path). */
const INDEX_BYTES_FOR_WORKERS = 128 * 1024

function header(mode: CatalogHeader['mode'], history: boolean, key: string, started: number, problems: Problem[], dirs?: Array<[string, number]>): Omit<CatalogHeader, 'sections' | 'dicts' | 'count' | 'format'> {
  return {
    key, mode, history, built: new Date().toISOString(), buildMs: Math.round(performance.now() - started),
    problems: problems.slice(0, MAX_PROBLEMS), problemCount: problems.length, ...(dirs ? { dirs } : {}),
  }
}

export async function coldBuild(o: BuildOptions): Promise<Buffer> {
  const started = performance.now()
  // a large index: start the workers now, while git lists the manifests (git mode reads no stats)
  let pool: WorkerPool | undefined
  if (o.check === 'git' || o.check === 'auto') {
    let indexBytes = 0
    try { if (o.gitDir) indexBytes = statSync(join(o.gitDir, 'index')).size } catch { /* no index */ }
    const n = threadCount(indexBytes >= INDEX_BYTES_FOR_WORKERS ? WORKER_MIN : 0)
    if (n > 0) pool = new WorkerPool(n - 1, { root: o.root, stat: false, history: o.history, encode: true, ...sources(o) })
  }
  try {
    const tracked = await listTracked(o.root, o.env)
    const worktree = o.check === 'always' || (o.check === 'auto' && tracked.size <= WORKTREE_LIMIT)
    if (worktree) { pool?.close(); pool = undefined }
    let items: ReadItem[]
    let dirs: Array<[string, number]> | undefined
    if (worktree) {
      const w = walkModels(o.root)
      dirs = w.dirs
      items = w.paths.map((path) => ({ path, ...(tracked.get(path) ? { blob: tracked.get(path)! } : {}) }))
    } else {
      items = sortByNameVersion([...tracked], ([path]) => path).map(([path, blob]) => ({ path, ...(blob ? { blob } : {}) }))
    }
    if (items.length > 2000) o.progress?.(`git zoo: indexing ${items.length} manifests (once; the catalog is cached in .zoo/cache/)\n`)
    const p = pool
    pool = undefined
    return await readAllEncoded({ root: o.root, items, stat: worktree, history: o.history, ...sources(o) },
      (problems) => header(worktree ? 'worktree' : 'git', o.history, o.key, started, problems, dirs), p)
  } finally { pool?.close() }
}

/**
 * What changed since `file` was built: paths to re-read and paths to drop, or undefined when nothing
 * did. Worktree mode compares stats (and re-walks when a folder changed); git mode compares blob ids.
 */
export async function changesSince(file: CatalogFile, root: string, env: GitEnv, keyChanged: boolean, worktree = file.header.mode === 'worktree'): Promise<{ reread: ReadItem[]; drop: Set<string>; dirs?: Array<[string, number]> } | undefined> {
  const h = file.header
  const n = file.count
  const known = new Map<string, { row?: number; blob?: string }>()
  const paths = file.paths(), blobs = file.strings('blob')
  for (let i = 0; i < n; i++) known.set(paths[i]!, { row: i, ...(blobs[i] ? { blob: blobs[i] } : {}) })
  const problemAt = new Map(h.problems.map((p) => [p.path, p]))
  for (const p of h.problems) known.set(p.path, { ...(p.blob ? { blob: p.blob } : {}) })
  const reread: ReadItem[] = []
  const drop = new Set<string>()
  if (worktree) {
    let dirs = h.dirs
    let onDisk: Set<string> | undefined
    // folders whose entries changed: a manifest or a RETIRED.json added or removed there
    const changedDirs = new Set((h.dirs ?? []).filter(([d, m]) => { try { return statSync(join(root, d)).mtimeMs !== m } catch { return true } }).map(([d]) => d))
    const dirChanged = keyChanged || ((h.dirs ?? []).length === 0 && existsSync(join(root, 'models'))) || changedDirs.size > 0
    const tracked = keyChanged ? await listTracked(root, env) : undefined
    if (dirChanged) { const w = walkModels(root); dirs = w.dirs; onDisk = new Set(w.paths) }
    const mt = file.f64('st:mtime'), sz = file.f64('st:size'), ino = file.f64('st:ino')
    for (const [path, k] of known) {
      if (onDisk && !onDisk.has(path)) { drop.add(path); continue }
      let st
      try { st = statSync(join(root, path)) } catch { drop.add(path); continue }
      const was = k.row === undefined ? problemAt.get(path) : { mtime: mt?.[k.row], size: sz?.[k.row], ino: ino?.[k.row] }
      if (st.mtimeMs !== was?.mtime || st.size !== was?.size || st.ino !== was?.ino || changedDirs.has(dirname(path))) {
        reread.push({ path, ...(tracked?.get(path) ? { blob: tracked.get(path)! } : {}) })
      }
    }
    for (const path of onDisk ?? []) if (!known.has(path)) reread.push({ path, ...(tracked?.get(path) ? { blob: tracked.get(path)! } : {}) })
    if (reread.length === 0 && drop.size === 0 && !dirChanged) return undefined
    return { reread, drop, ...(dirs ? { dirs } : {}) }
  }
  if (!keyChanged) return undefined
  const tracked = await listTracked(root, env)
  for (const [path, k] of known) {
    if (!tracked.has(path)) drop.add(path)
    else { const b = tracked.get(path); if (b === undefined || b !== k.blob) reread.push({ path, ...(b ? { blob: b } : {}) }) }
  }
  for (const [path, blob] of tracked) if (!known.has(path)) reread.push({ path, ...(blob ? { blob } : {}) })
  return { reread, drop }
}

/**
 * Apply changes to a cache file: the re-read manifests are encoded as a small catalog of their own,
 * and the new file is composed of runs of the old file's unchanged rows and those rows, in row order
 * (columns.ts composeCatalog): nothing of the unchanged rows is decoded but their paths and names.
 */
export async function incrementalBuild(file: CatalogFile, o: BuildOptions, changes: NonNullable<Awaited<ReturnType<typeof changesSince>>>, mode: CatalogHeader['mode'] = file.header.mode): Promise<Buffer> {
  const started = performance.now()
  const h = file.header
  const read = await readAll({ root: o.root, items: changes.reread, stat: mode === 'worktree', history: h.history, ...sources(o) })
  const cols = Array.isArray(read.cols) ? concat(read.cols) : read.cols
  const order = sortByNameVersion(Array.from({ length: cols.count }, (_, j) => j), (j) => manifestPathOf(cols.getStr('name', j)!, cols.getNum('version', j)))
  const fresh = CatalogFile.fromBytes(encodeCatalog(cols.permute(order), header(mode, h.history, o.key, started, [])))
  const paths = file.paths()
  const freshPaths = fresh.paths()
  const touched = new Set([...changes.drop, ...changes.reread.map((r) => r.path)])
  // where each re-read row goes: before the first old row that sorts after it
  const insertAt = freshPaths.map((p) => {
    let lo = 0, hi = paths.length
    while (lo < hi) { const mid = (lo + hi) >> 1; if (byNameVersion(paths[mid]!, p) > 0) hi = mid; else lo = mid + 1 }
    return lo
  })
  const runs: RowRun[] = []
  const take = (src: number, row: number): void => {
    const last = runs[runs.length - 1]
    if (last && last.src === src && last.to === row) last.to++
    else runs.push({ src, from: row, to: row + 1 })
  }
  for (let i = 0, g = 0; i <= paths.length; i++) {
    while (g < freshPaths.length && insertAt[g] === i) take(1, g++)
    if (i < paths.length && !touched.has(paths[i]!)) take(0, i)
  }
  const problems = [...h.problems.filter((p) => !touched.has(p.path)), ...read.problems]
  const head = header(mode, h.history, o.key, started, problems, mode === 'worktree' ? changes.dirs ?? h.dirs : undefined)
  return composeCatalog([file, fresh], runs, { ...head, problemCount: problems.length + Math.max(0, h.problemCount - h.problems.length) })
}

function concat(parts: ColumnSet[]): ColumnSet {
  const c = new ColumnSet(parts.reduce((a, p) => a + p.count, 0))
  for (const p of parts) c.append(p)
  return c
}

/** Write the cache file atomically (temp + rename; a cache needs no fsync). */
export function writeCache(path: string, bytes: Buffer): void {
  mkdirSync(dirname(path), { recursive: true })
  const ignore = join(dirname(path), '.gitignore')
  if (!existsSync(ignore)) { try { writeFileSync(ignore, '# derived, rebuildable cache of git-zoo (spec/catalog.md)\n*\n') } catch { /* best effort */ } }
  const tmp = `${path}.${randomBytes(8).toString('hex')}.tmp`
  writeFileSync(tmp, bytes)
  renameSync(tmp, path)
}
