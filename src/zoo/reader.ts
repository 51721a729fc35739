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
 * The one reader of a command that expands manifests and then reads their files (diff, agree, eval,
 * soup): opened on first use (openReader), closed once by close(), which does nothing when it was
 * never opened.
 */
export class CommandReader {
  private opened: Promise<Store> | undefined
  constructor(private readonly repo: Repo) {}

  store(): Promise<Store> { return (this.opened ??= openReader(this.repo)) }

  /**
   * A version's complete manifest view (every file and the history, src/manifest/checkpoints.ts),
   * its checkpoint node read through this reader: fetched from the zoo remote in a lazy clone.
   */
  async complete<T extends ManifestBody>(m: T): Promise<T> {
    return m.checkpoints ? expandManifest(m, await this.store()) : m
  }

  async close(): Promise<void> {
    const opened = this.opened
    this.opened = undefined
    const store = await opened?.catch(() => undefined)
    await store?.close()
  }
}

/** One version's complete manifest view (CommandReader.complete), with a reader of its own. */
export async function completeManifest<T extends ManifestBody>(repo: Repo, m: T): Promise<T> {
  const reader = new CommandReader(repo)
  try { return await reader.complete(m) } finally { await reader.close() }
}
