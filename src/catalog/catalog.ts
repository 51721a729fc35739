/**
 * Opening the catalog: the cache file when it is fresh, else an incremental or cold rebuild.
 * Warm path: a few stat/read calls for the git key, the cache header, then only the sections the
 * query touches; build code is imported only when a rebuild is needed.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { CatalogFile, WORKTREE_LIMIT } from './columns.js'
import { findGitPlaces, gitKey, type GitPlaces } from './gitstate.js'
import type { CheckMode } from './build.js'
import { UsageError } from '../errors.js'

export interface OpenCatalogOptions {
  cwd: string
  env: NodeJS.ProcessEnv
  /** Rebuild from scratch, checking the work tree (untracked and unstaged manifests too). */
  refresh?: boolean
  /** The query needs history-derived columns (best/max/min, metric@epoch, epochs). */
  history?: boolean
  /** Progress notes for long builds (stderr on a TTY). */
  progress?: (text: string) => void
  /**
   * Checkpoint node blocks the command fetched (verified) for rows marked unfetched
   * (CatalogFile.unfetched): the marked rows at `paths` are read again with them (spec/catalog.md,
   * "History in a lazy clone").
   */
  fetched?: { blocks: ReadonlyMap<string, Uint8Array>; paths: ReadonlySet<string> }
}

export interface OpenedCatalog { file: CatalogFile; places: GitPlaces; rebuilt: 'no' | 'incremental' | 'cold'; path: string }

/** `.zoo/cache/catalog.bin` in a zoo; in a repository without `.zoo/`, under the git dir. */
export function cachePath(p: GitPlaces): string {
  return existsSync(join(p.root, '.zoo')) ? join(p.root, '.zoo', 'cache', 'catalog.bin') : join(p.gitDir, 'zoo-catalog', 'catalog.bin')
}

function checkMode(env: NodeJS.ProcessEnv): CheckMode {
  const v = env.GIT_ZOO_CATALOG_CHECK
  if (v === undefined || v === '' || v === 'auto') return 'auto'
  if (v === 'always' || v === 'git') return v
  throw new UsageError(`GIT_ZOO_CATALOG_CHECK must be auto, always or git, not ${JSON.stringify(v)}`, 'E_USAGE')
}

export async function openCatalog(o: OpenCatalogOptions): Promise<OpenedCatalog> {
  const env = o.env
  const places = await findGitPlaces(o.cwd, env)
  const path = cachePath(places)
  const key = gitKey(places)
  const check = checkMode(env)
  const wantWorktree = (count: number): boolean => check === 'always' || (check === 'auto' && count <= WORKTREE_LIMIT)
  let file = o.refresh ? undefined : CatalogFile.open(path)
  const hadHistory = file?.header.history ?? false
  // history is indexed on first need: a cache without it is rebuilt with it (and kept with it after)
  if (file && o.history && !file.header.history) { file.close(); file = undefined }
  if (file) {
    const worktree = wantWorktree(file.count)
    // git mode: an unchanged key is all it takes (a cache built in worktree mode is fresher still)
    if (!worktree && file.header.key === key && !o.fetched) return { file, places, rebuilt: 'no', path }
    if (worktree && file.header.mode !== 'worktree') { file.close(); file = undefined }
  }
  const build = await import('./build.js')
  const history = Boolean(o.history) || hadHistory
  // the options of a build; the store folder (a `git config` call) only once something is re-read
  const options = (): Parameters<typeof build.coldBuild>[0] => {
    const store = history ? build.storeFolder(places, env) : undefined
    return {
      root: places.root, gitDir: places.gitDir, env, key, history, check: o.refresh ? 'always' as const : check, ...(store ? { store } : {}),
      ...(o.fetched ? { fetched: o.fetched.blocks } : {}), ...(o.progress ? { progress: o.progress } : {}),
    }
  }
  if (file) {
    const worktree = wantWorktree(file.count)
    let changes = await build.changesSince(file, places.root, env, file.header.key !== key, worktree)
    if (o.fetched) changes = withUnfetched(file, changes, o.fetched.paths)
    if (!changes && file.header.key === key) return { file, places, rebuilt: 'no', path }
    const opts = options()
    const bytes = await build.incrementalBuild(file, opts, changes ?? { reread: [], drop: new Set() }, worktree ? 'worktree' : 'git')
    file.close()
    return { file: reopen(path, bytes, build.writeCache), places, rebuilt: 'incremental', path }
  }
  const bytes = await build.coldBuild(options())
  return { file: reopen(path, bytes, build.writeCache), places, rebuilt: 'cold', path }
}

/** `changes` and the rows marked unfetched at `paths`, read again (with the fetched blocks). */
function withUnfetched(file: CatalogFile, changes: Awaited<ReturnType<typeof import('./build.js').changesSince>>, paths: ReadonlySet<string>): typeof changes {
  const rows = file.unfetched()
  if (rows.length === 0) return changes
  const out = changes ?? { reread: [], drop: new Set<string>() }
  const at = file.paths(), blobs = file.strings('blob')
  const listed = new Set([...out.drop, ...out.reread.map((r) => r.path)])
  for (const i of rows) if (paths.has(at[i]!) && !listed.has(at[i]!)) out.reread.push({ path: at[i]!, ...(blobs[i] ? { blob: blobs[i] } : {}) })
  return out
}

function reopen(path: string, bytes: Buffer, write: (p: string, b: Buffer) => void): CatalogFile {
  try { write(path, bytes) } catch { /* a read-only checkout: answer from memory */ }
  const f = CatalogFile.open(path)
  if (f && f.size === bytes.length) return f
  f?.close()
  return CatalogFile.fromBytes(bytes)
}
