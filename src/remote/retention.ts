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
import { presentManifests, reachableObjects } from '../manifest/walk.js'
import { CheckError, NotFoundError, UsageError, ZooError, errorMessage } from '../errors.js'
import { historyManifests } from '../git/manifests.js'
import { decodeNode } from '../manifest/node.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Repo } from '../repo.js'
import { isRetentionStore, type AgedEntry, type RetentionStore } from './aged.js'
import { redactUrl } from './layout.js'
import { openZooRemote, pickZooRemote } from './sync.js'
import { lockRemoteForGc } from './remote-lock.js'
import { cidOfKey, packKey, WritablePackedStore, type PackInfo } from './packed.js'

/** A partly dead pack is rewritten when at least this share of its bytes is dead; else only its index drops them. */
export const REPACK_DEAD_SHARE = 0.25
/** Packs under this share of the pack size (one per small push) are merged when a gc finds several. */
export const SMALL_PACK_SHARE = 0.25

/**
 * gc of the packs of a remote (spec/remotes.md, "Remote gc with packs"). Objects are kept when live,
 * when in a pack younger than the grace (a push in progress), or below a node in such a pack.
 * 1. Dead nodes leave the indexes first, parents before children (rounds of index rewrites), so an
 *    interrupted gc never leaves a visible node without the objects below it (invariant 2).
 * 2. Then each old pack: nothing kept -> its index, then the pack, removed; a quarter or more of
 *    its bytes dead -> the kept objects rewritten into a new pack (published), then the old index
 *    and pack removed; less -> its index rewritten without the dead objects.
 * 3. Packs no index lists (a writer killed between pack and index) and temp files past the grace go.
 */
async function sweepPacks(store: WritablePackedStore, live: Set<string>, opts: RemoteGcOptions & { now: number }, s: RemoteGcSummary): Promise<void> {
  const { packs, orphans } = await store.inventory()
  const young = (p: { modified: number }): boolean => opts.now - p.modified < opts.graceMs
  const keep = new Set(live)
  const all = new Map<string, { size: number; packs: PackInfo[] }>()
  for (const p of packs) {
    for (const [k, , length] of p.entries) {
      const c = cidOfKey(k).toString()
      const e = all.get(c) ?? { size: length, packs: [] }
      e.packs.push(p)
      all.set(c, e)
    }
  }
  // whatever is in a young pack, and everything below its nodes, stays (a push may be relying on it)
  const below: string[] = []
  for (const p of packs) if (young(p)) for (const [k] of p.entries) { const c = cidOfKey(k).toString(); if (!keep.has(c)) { keep.add(c); below.push(c) } }
  while (below.length) {
    const c = below.pop()!
    const cid = parseCid(c)
    if (cid.code !== DAG_CBOR) continue
    let links: string[] = []
    try { links = decodeNode(await store.get(cid), cid).links.map(([x]) => x.toString()) } catch { /* unreadable: nothing to name */ }
    for (const l of links) if (!keep.has(l)) { keep.add(l); below.push(l) }
  }
  const dead = new Set<string>()
  for (const [c, e] of all) {
    s.listed_objects++
    if (live.has(c)) { s.live_objects++; continue }
    if (keep.has(c)) { s.young_objects++; s.young_bytes += e.size; continue }
    dead.add(c)
  }
  s.removed_objects += dead.size
  const oldPacks = packs.filter((p) => !young(p))
  const staleOrphans = orphans.filter((o) => !young(o))
  s.temp_files_removed += staleOrphans.length
  if (opts.dry) {
    for (const c of dead) s.freed_bytes += all.get(c)!.size
    for (const o of staleOrphans) s.freed_bytes += o.size
    return
  }
  // 1. dead nodes out of the indexes, parents first
  const removed = new Set<string>()
  const deadNodes = [...dead].filter((c) => parseCid(c).code === DAG_CBOR)
  const parents = new Map<string, number>()
  const children = new Map<string, string[]>()
  for (const c of deadNodes) {
    let links: string[] = []
    try { links = decodeNode(await store.get(parseCid(c)), parseCid(c)).links.map(([x]) => x.toString()).filter((x) => dead.has(x) && parseCid(x).code === DAG_CBOR) } catch { /* goes early */ }
    children.set(c, links)
    for (const l of links) parents.set(l, (parents.get(l) ?? 0) + 1)
  }
  let ready = deadNodes.filter((c) => !parents.get(c))
  const current = new Map(oldPacks.map((p) => [p.name, p.entries]))
  const dropFrom = async (names: Set<string>, gone: Set<string>): Promise<void> => {
    for (const name of names) {
      const entries = current.get(name)!
      const kept = entries.filter(([k]) => !gone.has(cidOfKey(k).toString()))
      if (kept.length === entries.length) continue
      await store.rewriteIndex(name, kept)
      current.set(name, kept)
    }
  }
  while (ready.length) {
    const round = new Set(ready)
    const touched = new Set<string>()
    for (const c of round) for (const p of all.get(c)!.packs) touched.add(p.name)
    await dropFrom(touched, round)
    for (const c of round) removed.add(c)
    const next: string[] = []
    for (const c of round) for (const l of children.get(c) ?? []) { const left = parents.get(l)! - 1; parents.set(l, left); if (left === 0) next.push(l) }
    ready = next
  }
  opts.crashPoint?.('remote-gc-after-nodes')
  // 2. the packs themselves: wholly dead ones removed; mostly dead ones, and small ones (one per
  // small push) when there are several, rewritten together into full packs
  const rewrites: Array<{ p: PackInfo; kept: Array<[string, number, number]>; deadBytes: number }> = []
  const small: typeof rewrites = []
  for (const p of oldPacks) {
    const entries = current.get(p.name)!
    const kept = entries.filter(([k]) => !dead.has(cidOfKey(k).toString()))
    const deadBytes = p.entries.filter(([k]) => dead.has(cidOfKey(k).toString())).reduce((a, [, , l]) => a + l, 0)
    if (kept.length === 0) {
      await store.rewriteIndex(p.name, [])
      await store.removeFiles([packKey(p.name)])
      s.packs_removed++
      s.freed_bytes += p.size
    } else if (deadBytes > 0 && deadBytes >= REPACK_DEAD_SHARE * p.size) {
      rewrites.push({ p, kept, deadBytes })
    } else if (p.size < store.packTarget * SMALL_PACK_SHARE) {
      small.push({ p, kept, deadBytes })
    } else if (kept.length !== entries.length) {
      await store.rewriteIndex(p.name, kept)
    }
  }
  if (small.length >= 2) rewrites.push(...small)
  else for (const x of small) if (x.kept.length !== current.get(x.p.name)!.length) await store.rewriteIndex(x.p.name, x.kept)
  // in batches of about a pack: the new packs are published before the old ones go
  let batch: typeof rewrites = []
  let objects: Array<{ cid: ReturnType<typeof cidOfKey>; bytes: Uint8Array }> = []
  let bytes = 0
  const publish = async (): Promise<void> => {
    if (batch.length === 0) return
    await store.rewrite(objects)
    for (const x of batch) {
      await store.rewriteIndex(x.p.name, [])
      await store.removeFiles([packKey(x.p.name)])
      s.packs_rewritten++
      s.freed_bytes += x.deadBytes
    }
    batch = []; objects = []; bytes = 0
  }
  for (const x of rewrites) {
    for (const [k, offset, length] of x.kept) { objects.push({ cid: cidOfKey(k), bytes: await store.readFromPack(x.p.name, k, offset, length) }); bytes += length }
    batch.push(x)
    if (bytes >= store.packTarget) await publish()
  }
  await publish()
  // 3. interrupted writes
  if (staleOrphans.length) {
    await store.removeFiles(staleOrphans.map((o) => `packs/${o.name}`))
    for (const o of staleOrphans) s.freed_bytes += o.size
  }
  await store.publishList()
}

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
  /** Leftover temporary files of interrupted uploads removed (path remotes), and packs no index lists. */
  temp_files_removed: number
  /** Packs removed whole (every object in them dead), and packs rewritten without their dead objects. */
  packs_removed: number
  packs_rewritten: number
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
    young_objects: 0, young_bytes: 0, temp_files_removed: 0, packs_removed: 0, packs_rewritten: 0, missing_roots: 0, grace_ms: opts.graceMs, dry_run: opts.dry,
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
    const reach = await presentManifests(manifests, nodes as unknown as Store, (c) => nodes.has(c))
    s.missing_roots += reach.missingRoots
    live = await reachableObjects(reach.present, nodes as unknown as Store, reach.seen)
  } catch (err) {
    if (err instanceof ZooError && err.code === 'E_REMOTE_IO') throw err
    throw new CheckError(`gc --remote stopped before removing anything: a node a live manifest needs cannot be read (${errorMessage(err)}); `
      + `run \`git zoo verify\` and \`git zoo push --all\` first`, 'E_GC_UNSAFE', {}, { cause: err })
  } finally {
    await local.close()
  }
  if (store instanceof WritablePackedStore) await sweepPacks(store, live, opts, s)
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
  s.removed_objects += order.length
  s.freed_bytes += order.reduce((a, e) => a + e.size, 0) + temps.reduce((a, e) => a + e.size, 0)
  s.temp_files_removed += temps.length
  if (!opts.dry) {
    for (let i = 0; i < nodes.length; i += 1000) await store.deleteEntries(nodes.slice(i, i + 1000).map((e) => e.key))
    opts.crashPoint?.('remote-gc-after-nodes')
    for (let i = 0; i < chunks.length; i += 1000) await store.deleteEntries(chunks.slice(i, i + 1000).map((e) => e.key))
    await store.deleteEntries(temps.map((e) => e.key))
  }
  return s
}
