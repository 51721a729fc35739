/**
 * Sharing a zoo: which zoo remote serves a repository, and moving the objects its manifests need.
 * Used by the push, pull, fetch, clone and hook-pre-push commands (and by get in lazy clones).
 *
 * Zoo remotes are recorded in the committed `.zoo/config.json` (`remotes: { <name>: { url } }`,
 * `default_remote`), so every clone knows where objects live. A clone may point a name elsewhere
 * with `git config zoo.remote.<name>.url <url>` (a mount at another path, or the path/s3 remote
 * behind an http one for pushing); credentials only ever come from the environment.
 */
import type { CID } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { CheckError, UsageError, ZooError } from '../errors.js'
import { historyManifests } from '../git/manifests.js'
import { expandAll } from '../manifest/checkpoints.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Repo } from '../repo.js'
import { syncFiles, type FileRoot } from './dag.js'
import { openRemote, redactUrl } from './index.js'
import type { TransferProgress, TransferResult } from './transfer.js'
import { DEFAULT_CONCURRENCY } from './transfer.js'
import { verifyObject, type Digester } from './verify.js'
import { HashPool } from '../cas/hash-pool.js'
import { checkRemoteFolder, resolveRemoteUrl } from './resolve.js'
import type { Held } from '../cas/lock.js'
import { isRetentionStore } from './aged.js'
import { registerPush } from './remote-lock.js'
import { objectsMissing } from './lazy.js'
import type { PackedStore } from './packed.js'

export const REMOTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

export interface ZooRemote {
  name: string
  url: string
  /** Where the URL came from: the committed config, or this clone's git config override. */
  source: 'config' | 'git-config'
}

export interface SyncSummary {
  remote: string
  url: string
  models: number
  objects: number
  bytes: number
  skipped_objects: number
  skipped_bytes: number
}

/** Every zoo remote: the committed ones, with this clone's `zoo.remote.<name>.url` overrides. */
export async function zooRemotes(repo: Repo): Promise<ZooRemote[]> {
  const config = await repo.config()
  const out = new Map<string, ZooRemote>()
  for (const [name, value] of Object.entries(config.remotes ?? {})) out.set(name, { name, url: value.url, source: 'config' })
  const r = await repo.runGit(['config', '--get-regexp', '^zoo\\.remote\\..*\\.url$'])
  if (r.code === 0) {
    for (const line of r.stdout.split('\n')) {
      const m = /^zoo\.remote\.(.+)\.url (.*)$/.exec(line)
      if (m && REMOTE_NAME.test(m[1]!)) out.set(m[1]!, { name: m[1]!, url: m[2]!, source: 'git-config' })
    }
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name))
}

/**
 * The zoo remote to use: `name` when given; else the one named like the git remote; else
 * `default_remote`; else the only one. Throws when none is configured.
 */
export async function pickZooRemote(repo: Repo, opts: { name?: string; gitRemote?: string } = {}): Promise<ZooRemote> {
  const all = await zooRemotes(repo)
  const byName = (n: string): ZooRemote | undefined => all.find((r) => r.name === n)
  if (opts.name !== undefined) {
    const r = byName(opts.name)
    if (!r) {
      throw new UsageError(`no zoo remote named ${opts.name}; ${all.length ? `the zoo has ${all.map((x) => x.name).join(', ')}` : 'add one with `git zoo remote add <name> <url>`'}`,
        'E_UNKNOWN_ZOO_REMOTE', { name: opts.name })
    }
    return r
  }
  if (opts.gitRemote !== undefined && byName(opts.gitRemote)) return byName(opts.gitRemote)!
  const config = await repo.config()
  if (config.default_remote && byName(config.default_remote)) return byName(config.default_remote)!
  if (all.length === 1) return all[0]!
  if (all.length === 0) {
    throw new CheckError('this zoo has no zoo remote, so its objects have nowhere to go or come from; add one with '
      + '`git zoo remote add <name> <url>` and commit .zoo/config.json', 'E_NO_ZOO_REMOTE')
  }
  throw new UsageError(`this zoo has several zoo remotes (${all.map((r) => r.name).join(', ')}) and none is named like the git remote `
    + 'or set as default; name one (--from <name>) or run `git zoo remote add --default`', 'E_AMBIGUOUS_ZOO_REMOTE')
}

/**
 * Open a zoo remote, a relative path resolved against the zoo's home (./resolve.ts). With `read`,
 * a path remote whose folder does not exist is refused by name (E_REMOTE_MISSING) rather than
 * reporting each object as missing; a push creates the folder.
 */
export async function openZooRemote(repo: Repo, remote: ZooRemote,
  opts: { digest?: Digester; read?: boolean; point?: (name: string) => void | Promise<void> } = {}): Promise<PackedStore> {
  const resolved = await resolveRemoteUrl(repo, remote.url, remote.source)
  if (opts.read) await checkRemoteFolder(remote.name, remote.url, resolved)
  return openRemote(resolved.url, repo.env, { cwd: repo.root, digest: opts.digest, point: opts.point })
}

/** Objects in flight: --jobs, else GIT_ZOO_JOBS, else 8. */
export function jobs(flag: number | undefined, env: NodeJS.ProcessEnv): number {
  const raw = flag ?? (env.GIT_ZOO_JOBS ? Number(env.GIT_ZOO_JOBS) : DEFAULT_CONCURRENCY)
  if (!Number.isInteger(raw) || raw < 1 || raw > 256) {
    throw new UsageError(`transfers run 1 to 256 objects at once; got ${flag ?? env.GIT_ZOO_JOBS}`, 'E_USAGE')
  }
  return raw
}

/** Store methods some stores add: reads without hashing, writes of bytes already verified. */
interface Unchecked {
  readUnverified?: (cid: CID) => Promise<Uint8Array>
  putVerified?: (cid: CID, bytes: Uint8Array) => Promise<boolean>
}

/**
 * A Store adapter for transfers between a repository and a remote:
 * - puts run one at a time when `serial` (the local pack writer appends to one file, and transfer
 *   calls put from several workers);
 * - gets hash with `digest` (worker threads) when the store can read without hashing;
 * - with `trustPuts`, puts skip re-hashing: every byte a transfer puts comes from a get that has
 *   just verified it (all stores here verify on get).
 */
export class TransferSide implements Store {
  private queue: Promise<unknown> = Promise.resolve()
  constructor(readonly inner: Store & Unchecked,
    private readonly opts: { serial?: boolean; trustPuts?: boolean; digest?: Digester } = {}) {}
  get location(): string { return this.inner.location }
  /** Whether the store makes objects visible in put order (./packed.ts): then DAG copies flush once. */
  get ordered(): boolean { return (this.inner as { ordered?: boolean }).ordered === true }
  put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    const write = (): Promise<boolean> => this.opts.trustPuts && this.inner.putVerified
      ? this.inner.putVerified(cid, bytes) : this.inner.put(cid, bytes)
    if (!this.opts.serial) return write()
    const run = this.queue.then(write)
    this.queue = run.catch(() => {})
    return run
  }
  async get(cid: CID): Promise<Uint8Array> {
    if (!this.opts.digest || !this.inner.readUnverified) return this.inner.get(cid)
    const bytes = await this.inner.readUnverified(cid)
    await verifyObject(cid, bytes, this.inner.location, this.opts.digest)
    return bytes
  }
  has(cid: CID): Promise<boolean> { return this.inner.has(cid) }
  list(): AsyncIterable<CID> { return this.inner.list() }
  async flush(): Promise<void> { await this.queue; await this.inner.flush() }
  async close(): Promise<void> { await this.queue; await this.inner.close() }
}

/** Worker-thread hashing for transfers big enough to gain from it; `close` ends the workers. */
function hashing(total: number): { digest?: Digester; close: () => Promise<void> } {
  if (total < POOL_THRESHOLD) return { close: async () => {} }
  const pool = new HashPool()
  return { digest: (b, mh) => pool.hash(b, mh), close: () => pool.close() }
}
const POOL_THRESHOLD = 16 * 1024 * 1024

/**
 * The complete views of `manifests` (src/manifest/checkpoints.ts) and the checkpoint nodes they
 * link: each node is read from `local` when it is there, else from `remote` (verified by the store).
 */
export async function completeViews(manifests: Iterable<Manifest>, local: Store, remote?: Store): Promise<{ views: Manifest[]; nodes: string[] }> {
  const nodes: string[] = []
  const source: Store = remote ? {
    location: local.location,
    get: async (cid) => (await local.has(cid) ? local.get(cid) : remote.get(cid)),
    put: (c, b) => local.put(c, b), has: (c) => local.has(c), list: () => local.list(), flush: () => local.flush(), close: async () => {},
  } : local
  const views = await expandAll(manifests, source, (cid) => nodes.push(cid.toString()))
  return { views, nodes }
}

/** The distinct file roots of manifests, with their sizes and the total. */
export function fileRoots(manifests: Iterable<Manifest>): { roots: FileRoot[]; total: number; models: number } {
  const seen = new Map<string, number>()
  let models = 0
  for (const m of manifests) {
    models++
    for (const f of m.files) seen.set(f.root, f.size)
  }
  let total = 0
  for (const s of seen.values()) total += s
  return { roots: [...seen].map(([root, size]) => ({ root, size })), total, models }
}

function summary(remote: ZooRemote, models: number, r: TransferResult): SyncSummary {
  return {
    remote: remote.name, url: redactUrl(remote.url), models,
    objects: r.objects, bytes: r.bytes, skipped_objects: r.skippedObjects, skipped_bytes: r.skippedBytes,
  }
}

export interface MoveOptions {
  concurrency?: number
  /** Called with the byte total first (0 bytes done), then as objects move. */
  onProgress?: (done: number, total: number) => void
  /** Stops taking new objects; what was copied is flushed (durable, skipped by the next run). */
  signal?: AbortSignal
  /** Named crash and pause points (`transfer-object`, spec/reliability.md). */
  point?: (name: string) => void | Promise<void>
}

function progressOf(total: number, opts: MoveOptions): ((p: TransferProgress) => void) | undefined {
  if (!opts.onProgress) return undefined
  opts.onProgress(0, total)
  return (p) => opts.onProgress!(Math.min(total, p.bytes + p.skippedBytes), total)
}

/** Copy the objects of `manifests` from the zoo remote into the local store. */
export async function fetchObjects(repo: Repo, manifests: Manifest[], remote: ZooRemote, opts: MoveOptions = {}): Promise<SyncSummary> {
  // the sizes of checkpoint files are known only once their nodes are read: hashing is sized on
  // the manifests' own files (checkpoints of many small files gain nothing from worker threads)
  const pool = hashing(fileRoots(manifests).total)
  const from = await openZooRemote(repo, remote, { digest: pool.digest, read: true }).catch(async (err) => { await pool.close(); throw err })
  const local = new TransferSide(await repo.openStore(), { serial: true, trustPuts: true })
  try {
    const { views, nodes } = await completeViews(manifests, local, from)
    const { roots, total, models } = fileRoots(views)
    const r = await syncFiles(from, local, roots, { concurrency: opts.concurrency, signal: opts.signal, crashPoint: opts.point, onProgress: progressOf(total, opts), last: nodes })
    return summary(remote, models, r)
  } finally {
    await local.close()
    await from.close()
    await pool.close()
  }
}

/**
 * For get in a lazy clone: fetch the objects of `manifests` that are missing locally from the zoo
 * remote. Returns undefined (and touches no remote) when everything is already here.
 */
export async function ensureObjects(repo: Repo, manifests: Manifest[], opts: MoveOptions = {}): Promise<SyncSummary | undefined> {
  const local = await repo.openStore()
  let missing: boolean
  try { missing = await objectsMissing(manifests, local) } finally { await local.close() }
  if (!missing) return undefined
  return fetchObjects(repo, manifests, await pickZooRemote(repo), opts)
}

/** One ref update of a push, as the pre-push hook receives it. */
export interface RefUpdate { localRef: string; localSha: string; remoteRef: string; remoteSha: string }

const ZERO = /^0+$/

/**
 * Invariant 4: upload every object the manifests of the pushed commits reference that the zoo
 * remote lacks, before git sends the refs. Manifests already reachable from the git remote's
 * tracking refs (or the remote's old tips) were uploaded by the push that sent them, so they are
 * skipped unless `all` is set. Returns undefined when no manifest is being pushed.
 */
export async function pushObjects(repo: Repo, gitRemote: string, updates: RefUpdate[],
  opts: MoveOptions & { zooRemote?: string; all?: boolean; onWait?: (why: string) => void; registered?: boolean } = {}): Promise<SyncSummary | undefined> {
  const tips = updates.map((u) => u.localSha).filter((s) => !ZERO.test(s))
  if (tips.length === 0) return undefined
  const revs = [...tips]
  if (!opts.all) {
    const known: string[] = []
    for (const u of updates) {
      if (ZERO.test(u.remoteSha)) continue
      const r = await repo.runGit(['cat-file', '-e', `${u.remoteSha}^{commit}`])
      if (r.code === 0) known.push(u.remoteSha)
    }
    revs.push('--not', ...known)
    if (REMOTE_NAME.test(gitRemote)) revs.push(`--remotes=${gitRemote}`)
  }
  const manifests = await historyManifests(repo.root, revs, repo.env)
  if (manifests.length === 0) return undefined
  const remote = await pickZooRemote(repo, { name: opts.zooRemote, gitRemote })
  // checkpoint nodes are read from the local store: a manifest's node and files go up with it
  const plain = await repo.openStore()
  let complete: { views: Manifest[]; nodes: string[] }
  try { complete = await completeViews(manifests, plain) } finally { await plain.close() }
  const { roots, total, models } = fileRoots(complete.views)
  const raw = await openZooRemote(repo, remote, { point: opts.point })
  const to = new TransferSide(raw, { trustPuts: true })
  const pool = hashing(total)
  const local = new TransferSide(await repo.openStore(), { digest: pool.digest })
  try {
    // registered before asking the remote what it has, so a remote gc cannot remove what it answers
    // (`registered`: the caller holds a registration until its refs are sent: holdRemoteForPush)
    const registration = isRetentionStore(raw) && !opts.registered ? await registerPush(raw, repo.host, { onWait: opts.onWait }) : undefined
    try {
      const r = await syncFiles(local, to, roots, { concurrency: opts.concurrency, signal: opts.signal, crashPoint: opts.point, onProgress: progressOf(total, opts), last: complete.nodes })
      return summary(remote, models, r)
    } finally { await registration?.release() }
  } catch (err) {
    if (err instanceof ZooError && err.code === 'E_READ_ONLY') {
      throw new ZooError(`${err.message}. Objects are missing on the zoo remote ${remote.name}, so the push was stopped before any ref was sent; `
        + `point this clone at a writable remote with \`git config zoo.remote.${remote.name}.url <path or s3 URL>\``, 'E_READ_ONLY', err.data, { cause: err })
    }
    throw err
  } finally {
    await to.close()
    await local.close()
    await pool.close()
  }
}

/**
 * For `git zoo push`: register a push on the zoo remote it will upload to, held until the caller
 * has also sent the git refs (pushObjects registers only while it uploads, which is all the
 * pre-push hook can do). A no-op when there is no writable zoo remote to register on.
 */
export async function holdRemoteForPush(repo: Repo, gitRemote: string, zooRemote?: string, onWait?: (why: string) => void): Promise<Held> {
  let remote: ZooRemote
  try {
    remote = await pickZooRemote(repo, { name: zooRemote, gitRemote })
  } catch (err) {
    if (err instanceof ZooError && err.code === 'E_NO_ZOO_REMOTE') return { release: async () => {} } // pushObjects says so if it matters
    throw err
  }
  const store = await openZooRemote(repo, remote)
  if (!isRetentionStore(store)) { await store.close(); return { release: async () => {} } }
  try {
    const held = await registerPush(store, repo.host, { onWait })
    return { release: async () => { try { await held.release() } finally { await store.close() } } }
  } catch (err) {
    await store.close()
    throw err
  }
}

