/**
 * Remote retention (`git zoo gc --remote <name>`, spec/teams.md "Retention and gc"): remove from a
 * zoo remote the objects that no branch or tag of the matching git remote needs, never one younger
 * than the grace period, under locks so that a remote gc never runs beside another one or a push.
 *
 * 1. Lock (./remote-lock.ts): no other gc and no push may be running on the remote (E_REMOTE_LOCKED).
 * 2. Live set: `git fetch` every ref of the git remote into a private namespace, then every manifest
 *    reachable from any local ref (branches, tags, remote-tracking refs, that namespace), the index
 *    and the working tree; their file DAGs are walked reading nodes from the local store, else from
 *    the remote. A node that cannot be read stops gc before anything is removed (E_GC_UNSAFE).
 * 3. Sweep: every object on the remote not in the live set and older than the grace period (a push
 *    uploads objects before its refs, so a young object may belong to a push whose ref is not there
 *    yet). Nodes go first, parents before children, then chunks: an interrupted gc never leaves a
 *    node without the objects below it (invariant 2), so a later push never skips a broken subtree.
 */
import type { CID } from '../cas/cid.js'
import { DAG_CBOR, parseCid } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import type { LocalStore } from '../cas/local.js'
import { reachableObjects } from '../manifest/walk.js'
import { CheckError, NotFoundError, UsageError, ZooError, errorMessage } from '../errors.js'
import { historyManifests } from '../git/manifests.js'
import { decodeNode } from '../manifest/node.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Repo } from '../repo.js'
import { isRetentionStore, type AgedEntry, type RetentionStore } from './aged.js'
import { redactUrl } from './layout.js'
import { openZooRemote, pickZooRemote } from './sync.js'
import { lockRemoteForGc } from './remote-lock.js'

/** Default grace for remote gc: longer than any push is expected to take between uploading its first object and sending its refs. */
export const REMOTE_DEFAULT_GRACE = '7d'
const NAMESPACE = 'refs/zoo-gc'

export interface RemoteGcSummary {
  remote: string
  url: string
  git_remote: string
  /** Objects on the remote before gc. */
  listed_objects: number
  live_objects: number
  removed_objects: number
  freed_bytes: number
  /** Dead objects kept because they are younger than the grace period. */
  young_objects: number
  young_bytes: number
  /** Leftover temporary files of interrupted uploads removed (path remotes). */
  temp_files_removed: number
  /** Files of live manifests found neither locally nor on the remote (nothing of theirs can be named). */
  missing_roots: number
  grace_ms: number
  dry_run: boolean
}

export interface RemoteGcOptions {
  /** The zoo remote's name. */
  remote: string
  /** The git remote whose refs say what is live (default: the one named like the zoo remote). */
  gitRemote?: string
  graceMs: number
  dry: boolean
  now?: number
  /** Named crash points (tests): 'remote-gc-after-nodes' (dead nodes deleted, their chunks not yet). */
  crashPoint?: (name: string) => void
}

/** Node reads for the live walk: the local store first (no network), else the remote. */
class NodeSource {
  constructor(private readonly local: LocalStore, private readonly remote: Store) {}
  readonly location = 'local store or zoo remote'
  async get(cid: CID): Promise<Uint8Array> {
    try { return await this.local.get(cid) } catch (err) { if (!(err instanceof NotFoundError)) throw err }
    return this.remote.get(cid)
  }
  async has(cid: CID): Promise<boolean> {
    return (await this.local.locate(cid)) !== undefined || this.remote.has(cid)
  }
}

/** The private ref namespace a remote's refs are mirrored into while gc runs. */
function namespaceOf(gitRemote: string): string {
  return `${NAMESPACE}/${gitRemote.replace(/[^A-Za-z0-9._-]/g, '_')}`
}

async function fetchRemoteRefs(repo: Repo, gitRemote: string): Promise<void> {
  const url = gitRemote.startsWith('-') ? { code: 1 } : await repo.runGit(['remote', 'get-url', gitRemote])
  if (url.code !== 0) {
    throw new UsageError(`there is no git remote named ${gitRemote}, so gc cannot tell which objects its branches and tags need; `
      + 'name the git remote with --git-remote <name>', 'E_NO_GIT_REMOTE', { git_remote: gitRemote })
  }
  const r = await repo.runGit(['fetch', '--quiet', '--no-tags', '--prune', '--no-write-fetch-head', gitRemote, `+refs/*:${namespaceOf(gitRemote)}/*`])
  if (r.code !== 0) {
    throw new ZooError(`\`git fetch ${gitRemote}\` failed, so gc cannot tell which objects the remote's refs need; nothing was removed: ${r.stderr.trim()}`,
      'E_GIT', { git_remote: gitRemote })
  }
}

async function dropNamespace(repo: Repo, gitRemote: string): Promise<void> {
  const refs = (await repo.runGit(['for-each-ref', '--format=%(refname)', `${namespaceOf(gitRemote)}/`])).stdout.split('\n').filter(Boolean)
  if (refs.length) await repo.runGit(['update-ref', '--stdin'], { input: refs.map((r) => `delete ${r}\n`).join('') })
}

/** Dead nodes in an order where every parent comes before the nodes it links to. */
async function parentsFirst(nodes: AgedEntry[], remote: Store): Promise<AgedEntry[]> {
  const byCid = new Map(nodes.map((n) => [n.cid!.toString(), n]))
  const children = new Map<string, string[]>()
  const parents = new Map<string, number>()
  for (const n of nodes) {
    const k = n.cid!.toString()
    let links: string[] = []
    // an unreadable or malformed node links to nothing we can name: it simply goes early
    try { links = decodeNode(await remote.get(n.cid!), n.cid!).links.map(([c]) => c.toString()).filter((c) => byCid.has(c)) } catch { /* see above */ }
    children.set(k, links)
    for (const c of links) parents.set(c, (parents.get(c) ?? 0) + 1)
  }
  const ready = nodes.filter((n) => !parents.get(n.cid!.toString())).map((n) => n.cid!.toString())
  const out: AgedEntry[] = []
  while (ready.length) {
    const k = ready.pop()!
    out.push(byCid.get(k)!)
    for (const c of children.get(k) ?? []) {
      const left = parents.get(c)! - 1
      parents.set(c, left)
      if (left === 0) ready.push(c)
    }
  }
  return out
}

export async function collectRemoteGarbage(repo: Repo, opts: RemoteGcOptions): Promise<RemoteGcSummary> {
  const zoo = await pickZooRemote(repo, { name: opts.remote })
  const store = await openZooRemote(repo, zoo)
  try {
    if (!isRetentionStore(store)) {
      throw new ZooError(`the zoo remote ${zoo.name} (${redactUrl(zoo.url)}) is read-only over HTTP, so gc cannot remove objects from it; `
        + `run gc against the path or s3 remote behind it: \`git config zoo.remote.${zoo.name}.url <path or s3 URL>\``, 'E_READ_ONLY',
      { remote: zoo.name, url: redactUrl(zoo.url) })
    }
    const gitRemote = opts.gitRemote ?? zoo.name
    const now = opts.now ?? Date.now()
    const lock = await lockRemoteForGc(store, repo.host, opts.graceMs, now)
    try {
      return await sweep(repo, store, { ...opts, gitRemote, now }, { remote: zoo.name, url: redactUrl(zoo.url) })
    } finally {
      await lock.release()
    }
  } finally {
    await store.close()
  }
}

async function sweep(repo: Repo, store: RetentionStore, opts: RemoteGcOptions & { gitRemote: string; now: number },
  names: { remote: string; url: string }): Promise<RemoteGcSummary> {
  const s: RemoteGcSummary = {
    ...names, git_remote: opts.gitRemote, listed_objects: 0, live_objects: 0, removed_objects: 0, freed_bytes: 0,
    young_objects: 0, young_bytes: 0, temp_files_removed: 0, missing_roots: 0, grace_ms: opts.graceMs, dry_run: opts.dry,
  }
  let manifests: Manifest[]
  await fetchRemoteRefs(repo, opts.gitRemote)
  try {
    manifests = [...await historyManifests(repo.root, ['--all', '--indexed-objects'], repo.env), ...await repo.allManifests()]
  } finally {
    await dropNamespace(repo, opts.gitRemote)
  }
  const local = await repo.openStore()
  let live: Set<string>
  try {
    const nodes = new NodeSource(local, store)
    // roots found nowhere: nothing under them can be named, so they are left out of the walk
    const present: Manifest[] = []
    for (const m of manifests) {
      const files = []
      for (const f of m.files) {
        if (await nodes.has(parseCid(f.root))) files.push(f)
        else s.missing_roots++
      }
      present.push({ ...m, files })
    }
    live = await reachableObjects(present, nodes as unknown as Store)
  } catch (err) {
    if (err instanceof ZooError && err.code === 'E_REMOTE_IO') throw err
    throw new CheckError(`gc --remote stopped before removing anything: a node a live manifest needs cannot be read (${errorMessage(err)}); `
      + `run \`git zoo verify\` and \`git zoo push --all\` first`, 'E_GC_UNSAFE', {}, { cause: err })
  } finally {
    await local.close()
  }
  const dead: AgedEntry[] = []
  const temps: AgedEntry[] = []
  for await (const e of store.listAged()) {
    const young = opts.now - e.modified < opts.graceMs
    if (!e.cid) { if (!young) temps.push(e); continue }
    s.listed_objects++
    if (live.has(e.cid.toString())) { s.live_objects++; continue }
    if (young) { s.young_objects++; s.young_bytes += e.size; continue }
    dead.push(e)
  }
  const deadNodes = dead.filter((e) => e.cid!.code === DAG_CBOR)
  const nodes = opts.dry ? deadNodes : await parentsFirst(deadNodes, store)
  const chunks = dead.filter((e) => e.cid!.code !== DAG_CBOR)
  const order = [...nodes, ...chunks]
  s.removed_objects = order.length
  s.freed_bytes = order.reduce((a, e) => a + e.size, 0) + temps.reduce((a, e) => a + e.size, 0)
  s.temp_files_removed = temps.length
  if (!opts.dry) {
    for (let i = 0; i < nodes.length; i += 1000) await store.deleteEntries(nodes.slice(i, i + 1000).map((e) => e.key))
    opts.crashPoint?.('remote-gc-after-nodes')
    for (let i = 0; i < chunks.length; i += 1000) await store.deleteEntries(chunks.slice(i, i + 1000).map((e) => e.key))
    await store.deleteEntries(temps.map((e) => e.key))
  }
  return s
}
