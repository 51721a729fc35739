/**
 * Local garbage collection: remove from the store every object that no manifest reachable from a
 * ref, reflog, the index or the working tree needs. Packs younger than the grace period and anything
 * while a writer holds the store are never touched (spec/store.md).
 */
import { readdir, stat, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import type { Repo } from '../repo.js'
import { historyManifests } from '../git/manifests.js'
import { reachableObjects } from '../manifest/walk.js'
import { lockForGc } from '../cas/lock.js'
import { LocalStore } from '../cas/local.js'
import { CheckError } from '../errors.js'
import type { Manifest } from '../manifest/manifest.js'

export interface GcSummary {
  removed_objects: number
  removed_bytes: number
  kept_objects: number
  packs_removed: number
  packs_rewritten: number
  dry_run: boolean
}

export async function collectGarbage(repo: Repo, opts: { graceMs: number; dry: boolean }): Promise<GcSummary> {
  const { graceMs, dry } = opts
  const root = await repo.storeRoot()
  const lock = await lockForGc(repo.host, root)
  const store = await LocalStore.open(root)
  try {
    const manifests: Manifest[] = [
      ...await historyManifests(repo.root, ['--all', '--reflog', '--indexed-objects'], repo.env),
      ...await repo.allManifests(),
    ]
    let live: Set<string>
    try {
      live = await reachableObjects(manifests, store)
    } catch (err) {
      // without the whole live set nothing can be removed safely
      throw new CheckError(`gc stopped before removing anything: a node a manifest needs cannot be read (${(err as Error).message}); run \`git zoo verify\` and \`git zoo fetch\` first`, 'E_GC_UNSAFE', {}, { cause: err })
    }
    const now = Date.now()
    const byPack = new Map<string, Array<[string, number]>>()
    for (const [cid, e] of store.entries()) {
      const list = byPack.get(e.pack) ?? []
      list.push([cid.toString(), e.length])
      byPack.set(e.pack, list)
    }
    let removedObjects = 0; let removedBytes = 0; let keptObjects = 0; let packsRemoved = 0; let packsRewritten = 0
    const rewriter = dry ? null : await LocalStore.open(root)
    try {
      for (const [pack, objects] of byPack) {
        const st = await stat(store.packPath(pack)).catch(() => null)
        const young = st !== null && now - st.mtimeMs < graceMs
        const dead = objects.filter(([c]) => !live.has(c))
        if (young || dead.length === 0) { keptObjects += objects.length; continue }
        removedObjects += dead.length
        removedBytes += dead.reduce((a, [, n]) => a + n, 0)
        keptObjects += objects.length - dead.length
        if (dry) continue
        if (dead.length < objects.length) {
          // copy the live objects into a new pack first, flushed, then drop the old one
          for (const [c] of objects) {
            if (!live.has(c)) continue
            const cid = CID.parse(c)
            await rewriter!.putVerified(cid, await store.get(cid), { rewrite: true })
          }
          await rewriter!.flush()
          packsRewritten++
        } else packsRemoved++
        await store.removePack(pack)
      }
      // interrupted writes: packs that never got an index, and stray temp files
      const dir = join(root, 'packs')
      for (const name of await readdir(dir)) {
        const full = join(dir, name)
        const isOrphan = name.endsWith('.pack') && !byPack.has(name) && !(await stat(join(dir, name.slice(0, -5) + '.idx')).catch(() => null))
        if (!isOrphan && !name.endsWith('.tmp') && !name.endsWith('.zoo-tmp')) continue
        const st = await stat(full).catch(() => null)
        if (!st || now - st.mtimeMs < graceMs) continue
        if (!dry) await rm(full, { force: true })
      }
    } finally { await rewriter?.close() }
    return { removed_objects: removedObjects, removed_bytes: removedBytes, kept_objects: keptObjects, packs_removed: packsRemoved, packs_rewritten: packsRewritten, dry_run: dry }
  } finally {
    await store.close()
    await lock.release()
  }
}
