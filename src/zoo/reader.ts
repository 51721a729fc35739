/**
 * The store that reads of model bytes go through (diff, eval, soup, agree): in a lazy clone
 * (`git zoo clone --lazy`) an OnDemandStore, which fetches what is read from the zoo remotes,
 * verified (spec/teams.md, "Lazy clones"); else the local store, where an absent object is an error
 * that names `git zoo fetch`.
 */
import type { Store } from '../cas/store.js'
import type { ManifestBody } from '../manifest/manifest.js'
import { expandManifest, readHistorySync } from '../manifest/checkpoints.js'
import type { CID } from '../cas/cid.js'
import type { Repo } from '../repo.js'
import { NotFoundError, errorMessage } from '../errors.js'
import { ObjectUnavailableError, OnDemandStore, RemoteObjects, describeFailures, remotesInOrder, type RemoteFailure } from '../remote/objects.js'
import { isLazy } from '../remote/lazy.js'
import type { ZooRemote } from '../remote/sync.js'

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

/** A version whose checkpoint node could not be read, and why (`unavailable`: absent here and from every zoo remote). */
export interface NodeMiss { model: string; reason: string; unavailable: boolean }

/** A block checkpointNodes has yet to read. */
class Wanted extends Error { constructor(readonly cid: CID) { super(`${cid} is wanted`) } }

/** Versions whose checkpoint nodes are read at once. */
const NODE_READS = 16

/**
 * The blocks of these versions' checkpoint nodes (each root and its pages), for the catalog's history
 * columns where the local store lacks them (a lazy clone: spec/catalog.md, "History in a lazy
 * clone"): read through the command's reader, so an absent block is fetched from the zoo remotes and
 * verified against its CID, NODE_READS versions at once, and read as the catalog reads them
 * (readHistorySync: the pages a root links, the summary checked). They are returned, not stored: a
 * node is stored only after every object it links to (invariant 2). What could not be read is
 * listed with why.
 */
export async function checkpointNodes(repo: Repo, versions: ReadonlyArray<{ name: string; version: number }>, opts: { signal?: AbortSignal } = {}): Promise<{ blocks: Map<string, Uint8Array>; missing: NodeMiss[] }> {
  const blocks = new Map<string, Uint8Array>()
  const missing: NodeMiss[] = []
  const reader = new CommandReader(repo)
  try {
    const store = await reader.store()
    /** The node's blocks, root first, then each page the reading asks for. */
    const read = async (link: NonNullable<ManifestBody['checkpoints']>): Promise<void> => {
      for (;;) {
        try {
          readHistorySync(link, (cid) => {
            const b = blocks.get(cid.toString())
            if (!b) throw new Wanted(cid)
            return b
          })
          return
        } catch (err) {
          if (!(err instanceof Wanted)) throw err
          blocks.set(err.cid.toString(), await store.get(err.cid))
        }
      }
    }
    let next = 0
    const work = async (): Promise<void> => {
      for (let i = next++; i < versions.length; i = next++) {
        opts.signal?.throwIfAborted()
        const v = versions[i]!
        try {
          const m = await repo.readManifest(v.name, v.version)
          if (m.checkpoints) await read(m.checkpoints)
        } catch (err) {
          if (opts.signal?.aborted) throw err
          const failures = err instanceof ObjectUnavailableError ? (err.data.failures as RemoteFailure[]) : undefined
          missing.push({
            model: `${v.name}@v${v.version}`, unavailable: failures !== undefined || err instanceof NotFoundError,
            reason: failures ? describeFailures(failures) : errorMessage(err),
          })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(NODE_READS, versions.length) }, work))
  } finally { await reader.close() }
  return { blocks, missing }
}
