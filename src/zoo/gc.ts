/**
 * Local garbage collection: remove from the store every object that no manifest reachable from a
 * ref, reflog, the index or the working tree needs. Packs younger than the grace period are never
 * touched, and gc does not start while any handle is registered as a writer of the store (every
 * LocalStore handle that writes registers itself: src/cas/local.ts), so what a writer is writing
 * is never removed, whatever the grace. Interrupted writes (packs that never got an index, stale
 * temp files) are removed once older than the grace period and counted in the bytes freed.
 */
import { readdir, stat, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { storeUsers, forgetStoreUser } from '../cas/users.js'
import { CID } from 'multiformats/cid'
import type { Repo } from '../repo.js'
import { historyManifests } from '../git/manifests.js'
import { presentManifests, reachableObjects } from '../manifest/walk.js'
import { lockForGc } from '../cas/lock.js'
import { LocalStore, isPaddingRecord } from '../cas/local.js'
import { CheckError } from '../errors.js'
import type { Manifest } from '../manifest/manifest.js'

export interface GcSummary {
  /** Bytes the store's files shrank by (estimated from the objects and files on a dry run). */
  freed_bytes: number
  removed_objects: number
  /** Bytes of the removed objects themselves. */
  removed_bytes: number
  kept_objects: number
  packs_removed: number
  packs_rewritten: number
  /** Packs of interrupted writes (no index) removed, and their bytes. */
  orphan_packs_removed: number
  orphan_bytes: number
  /** Stale temporary files removed. */
  temp_files_removed: number
  /** Files of manifests whose root object is not in the store (lazy clones; fetch brings them). */
  missing_roots: number
  dry_run: boolean
}

/** Per object record in a pack: u32 cid length, cid bytes, u32 data length (see src/cas/local.ts). */
function recordBytes(cid: string, length: number): number { return 8 + CID.parse(cid).bytes.length + length }

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => null))?.size ?? 0
}

/** Total size of the files directly in `dir`. */
async function folderBytes(dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(dir)) total += await sizeOf(join(dir, name))
  return total
}

export async function collectGarbage(repo: Repo, opts: { graceMs: number; dry: boolean; crashPoint?: (name: string) => void | Promise<void> }): Promise<GcSummary> {
  const { graceMs, dry } = opts
  const root = await repo.storeRoot()
  const lock = await lockForGc(repo.host, root)
  try {
    const store = await LocalStore.open(root, { gcLock: lock })
    try {
      return await sweep(repo, store, root, graceMs, dry, lock, opts.crashPoint)
    } finally { await store.close() }
  } finally {
    await lock.release()
  }
}

/**
 * The manifests of the other repositories that share this store (src/cas/users.ts): their history,
 * index and work tree, so gc here never removes what they need. A repository that no longer exists
 * is forgotten; one that exists but cannot be read stops gc before anything is removed.
 */
async function otherUsersManifests(repo: Repo, storeRoot: string): Promise<Manifest[]> {
  const out: Manifest[] = []
  for (const user of await storeUsers(storeRoot)) {
    if (resolve(user.workTree) === resolve(repo.root)) continue
    if (!(await stat(join(user.workTree, '.git')).catch(() => null))) { await forgetStoreUser(user); continue }
    try {
      const other = await repo.sibling(user.workTree)
      if (resolve(await other.storeRoot()) !== resolve(storeRoot)) { await forgetStoreUser(user); continue } // it moved to another store
      out.push(...await historyManifests(other.root, ['--all', '--reflog', '--indexed-objects'], other.env), ...await other.allManifests())
    } catch (err) {
      throw new CheckError(`gc stopped before removing anything: the repository ${user.workTree}, which shares this store, cannot be read (${(err as Error).message}); `
        + `fix it, or remove ${user.file} if it no longer uses the store`, 'E_GC_UNSAFE', {}, { cause: err })
    }
  }
  return out
}

async function sweep(repo: Repo, store: LocalStore, root: string, graceMs: number, dry: boolean, lock: Awaited<ReturnType<typeof lockForGc>>,
                     crashPoint?: (name: string) => void | Promise<void>): Promise<GcSummary> {
  const manifests: Manifest[] = await historyManifests(repo.root, ['--all', '--reflog', '--indexed-objects'], repo.env)
  try {
    manifests.push(...await repo.allManifests())
  } catch (err) {
    // an unreadable manifest in the work tree may be the only record of its objects: keep them all
    throw new CheckError(`gc stopped before removing anything: a manifest in the work tree cannot be read (${(err as Error).message}); `
      + 'fix or remove it, or run gc again when a checkout, merge or pull in progress has finished', 'E_GC_UNSAFE', {}, { cause: err })
  }
  manifests.push(...await otherUsersManifests(repo, root))
  // A file whose root is not in the store (a lazy clone, a fetch not run yet or cut short: nodes
  // are stored last) has nothing here a reader can reach; fetch brings it back. A root that is here
  // with a node below it missing or damaged is a broken store: then nothing is removed.
  let missingRoots = 0
  let live: Set<string>
  try {
    const reach = await presentManifests(manifests, store, (c) => store.has(c))
    missingRoots = reach.missingRoots
    live = await reachableObjects(reach.present, store, reach.seen)
  } catch (err) {
    // without the whole live set nothing can be removed safely
    throw new CheckError(`gc stopped before removing anything: a node a manifest needs cannot be read (${(err as Error).message}); run \`git zoo verify\` and \`git zoo fetch\` first`, 'E_GC_UNSAFE', {}, { cause: err })
  }
  const dir = join(root, 'packs')
  const before = dry ? 0 : await folderBytes(dir)
  let estimate = 0
  const now = Date.now()
  // each pack's objects; its padding records (src/cas/local.ts, isPaddingRecord) are neither live
  // nor garbage: they neither keep a pack nor get copied when it is rewritten
  const byPack = new Map<string, Array<[string, number]>>()
  const padded = new Map<string, number>() // record bytes of each pack's padding
  for (const [cid, e] of store.entries()) {
    const list = byPack.get(e.pack) ?? []
    byPack.set(e.pack, list)
    if (isPaddingRecord(e.pack, e.offset, e.length, cid)) { padded.set(e.pack, (padded.get(e.pack) ?? 0) + 8 + cid.bytes.length + e.length); continue }
    list.push([cid.toString(), e.length])
  }
  const s: GcSummary = {
    freed_bytes: 0, removed_objects: 0, removed_bytes: 0, kept_objects: 0, packs_removed: 0, packs_rewritten: 0,
    orphan_packs_removed: 0, orphan_bytes: 0, temp_files_removed: 0, missing_roots: missingRoots, dry_run: dry,
  }
  const rewriter = dry ? null : await LocalStore.open(root, { gcLock: lock })
  try {
    for (const [pack, objects] of byPack) {
      const st = await stat(store.packPath(pack)).catch(() => null)
      const young = st !== null && now - st.mtimeMs < graceMs
      const dead = objects.filter(([c]) => !live.has(c))
      // records no index lists any more (objects `verify --repair` replaced) are dead bytes too
      const listed = 8 + objects.reduce((a, [c, n]) => a + recordBytes(c, n), 0) + (padded.get(pack) ?? 0)
      const unlisted = st !== null && st.size > listed ? st.size - listed : 0
      if (young || (dead.length === 0 && unlisted === 0 && objects.length > 0)) { s.kept_objects += objects.length; continue }
      s.removed_objects += dead.length
      s.removed_bytes += dead.reduce((a, [, n]) => a + n, 0)
      s.kept_objects += objects.length - dead.length
      if (dead.length < objects.length) {
        estimate += dead.reduce((a, [c, n]) => a + recordBytes(c, n), 0) + unlisted
        if (dry) continue
        // copy the live objects into a new pack first, flushed, then drop the old one
        for (const [c] of objects) {
          if (!live.has(c)) continue
          const cid = CID.parse(c)
          await rewriter!.putVerified(cid, await store.get(cid), { rewrite: true })
        }
        await rewriter!.flush()
        await crashPoint?.('gc-after-rewrite')
        s.packs_rewritten++
      } else {
        estimate += (st?.size ?? 0) + await sizeOf(store.packPath(pack).slice(0, -5) + '.idx')
        if (dry) continue
        s.packs_removed++
      }
      await store.removePack(pack)
      await crashPoint?.('gc-after-remove')
    }
    // interrupted writes: packs that never got an index, and stray temp files
    for (const name of await readdir(dir)) {
      const full = join(dir, name)
      const isOrphan = name.endsWith('.pack') && !byPack.has(name) && !(await stat(join(dir, name.slice(0, -5) + '.idx')).catch(() => null))
      const isTemp = name.endsWith('.tmp') || name.endsWith('.zoo-tmp')
      if (!isOrphan && !isTemp) continue
      const st = await stat(full).catch(() => null)
      if (!st || now - st.mtimeMs < graceMs) continue
      if (!dry) await rm(full, { force: true })
      estimate += st.size
      if (isOrphan) { s.orphan_packs_removed++; s.orphan_bytes += st.size } else s.temp_files_removed++
    }
  } finally { await rewriter?.close() }
  // a multi-pack index naming packs removed here is merged again without them (with the new packs)
  if (!dry) await store.maintainIndex()
  s.freed_bytes = dry ? estimate : Math.max(0, before - await folderBytes(dir))
  return s
}
