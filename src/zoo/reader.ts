/**
 * The store that reads of model bytes go through (diff, eval, soup, agree): in a lazy clone
 * (`git zoo clone --lazy`) an OnDemandStore, which fetches what is read from the zoo remotes,
 * verified (spec/teams.md, "Lazy clones"); else the local store, where an absent object is an error
 * that names `git zoo fetch`.
 */
import type { Store } from '../cas/store.js'
import type { ManifestBody } from '../manifest/manifest.js'
import { expandManifest } from '../manifest/checkpoints.js'
import type { Repo } from '../repo.js'
import { OnDemandStore, RemoteObjects, remotesInOrder } from '../remote/objects.js'
import { isLazy, type ZooRemote } from '../remote/sync.js'

export async function openReader(repo: Repo): Promise<Store> {
  const local = await repo.openStore()
  if (!(await isLazy(repo))) return local
  let order: Promise<ZooRemote[]> | undefined
  return new OnDemandStore(local, new RemoteObjects(repo, () => (order ??= remotesInOrder(repo))))
}

/** For reads of whole files: fetch them ahead in a lazy clone, several objects at once; nothing otherwise. */
export async function prefetchFiles(store: Store, files: Array<{ root: string; size: number }>): Promise<void> {
  if (store instanceof OnDemandStore) await store.prefetch(files)
}

/**
 * A version's complete manifest view (every file and the history, src/manifest/checkpoints.ts),
 * its checkpoint node read through openReader: fetched from the zoo remote in a lazy clone.
 */
export async function completeManifest<T extends ManifestBody>(repo: Repo, m: T): Promise<T> {
  if (!m.checkpoints) return m
  const store = await openReader(repo)
  try { return await expandManifest(m, store) } finally { await store.close() }
}
