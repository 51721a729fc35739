/**
 * Single objects from the zoo remotes, for the commands that need one object at a time: reads in a
 * lazy clone (OnDemandStore) and `git zoo verify --repair`. Every copy is verified against its CID
 * by the remote store's get before anyone sees it (spec/teams.md).
 */
import type { CID } from '../cas/cid.js'
import { RAW, parseCid } from '../cas/cid.js'
import type { LocalStore } from '../cas/local.js'
import type { Store } from '../cas/store.js'
import { CorruptObjectError, NotFoundError, ZooError, errorMessage } from '../errors.js'
import type { Repo } from '../repo.js'
import { redactUrl } from './index.js'
import { syncFiles } from './dag.js'
import { TransferSide, openZooRemote, pickZooRemote, zooRemotes, type ZooRemote } from './sync.js'

/**
 * The zoo remotes in the order objects are looked for: only `from` when given; else the default one
 * (as fetch picks it) first, then the others by name.
 */
export async function remotesInOrder(repo: Repo, from?: string): Promise<ZooRemote[]> {
  if (from !== undefined) return [await pickZooRemote(repo, { name: from })]
  const all = await zooRemotes(repo)
  let first: ZooRemote | undefined
  try { first = await pickZooRemote(repo) } catch { first = undefined } // several and no default: by name
  return first ? [first, ...all.filter((r) => r.name !== first!.name)] : all
}

/** Why one remote could not give a good copy. */
export interface RemoteFailure { remote: string; url: string; reason: string; damaged: boolean }

/** A good copy, the remote it came from and where that remote is (a path or a URL without credentials). */
export type Found = { bytes: Uint8Array; remote: ZooRemote; location: string } | { failures: RemoteFailure[] }

/** Looks objects up on the zoo remotes in order; each remote is opened once, when first needed. */
export class RemoteObjects {
  private readonly opened = new Map<string, Promise<Store>>()

  constructor(private readonly repo: Repo, private readonly remotes: () => Promise<ZooRemote[]>) {}

  private open(r: ZooRemote): Promise<Store> {
    let s = this.opened.get(r.name)
    if (!s) {
      s = openZooRemote(this.repo, r, { read: true })
      s.catch(() => {}) // reported by find, once per object
      this.opened.set(r.name, s)
    }
    return s
  }

  /** A verified copy of `cid` from the first remote that has a good one, else what each said. */
  async find(cid: CID): Promise<Found> {
    const failures: RemoteFailure[] = []
    const remotes = await this.remotes()
    if (remotes.length === 0) {
      return { failures: [{ remote: '', url: '', reason: 'this zoo has no zoo remote (add one with `git zoo remote add <name> <url>`)', damaged: false }] }
    }
    for (const r of remotes) {
      const fail = (reason: string, damaged = false): void => { failures.push({ remote: r.name, url: redactUrl(r.url), reason, damaged }) }
      let store: Store
      try { store = await this.open(r) } catch (err) { fail(errorMessage(err)); continue }
      try {
        return { bytes: await store.get(cid), remote: r, location: store.location }
      } catch (err) {
        if (err instanceof NotFoundError) fail('not there')
        else if (err instanceof CorruptObjectError) fail('it holds damaged bytes (they do not match the CID; nothing was kept)', true)
        else fail(errorMessage(err))
      }
    }
    return { failures }
  }

  /** The first zoo remote in order that opens, or undefined. */
  async first(): Promise<Store | undefined> {
    for (const r of await this.remotes()) {
      try { return await this.open(r) } catch { /* the next one */ }
    }
    return undefined
  }

  async close(): Promise<void> {
    for (const s of this.opened.values()) await s.then((x) => x.close(), () => {})
    this.opened.clear()
  }
}

export function describeFailures(failures: RemoteFailure[]): string {
  return failures.map((f) => (f.remote ? `${f.remote} (${f.url}): ${f.reason}` : f.reason)).join('; ')
}

/** An object a lazy clone needs that no zoo remote could give: exit 3 (operational). */
export class ObjectUnavailableError extends ZooError {
  constructor(cid: CID, where: string, failures: RemoteFailure[]) {
    super(`object ${cid} is not in the local store ${where} (a lazy clone fetches objects when they are read) and no zoo remote gave a good copy: `
      + `${describeFailures(failures)}; check the remote with \`git zoo remote list\`, or fetch from another one with \`git zoo fetch --from <zoo-remote>\``,
    'E_OBJECT_UNAVAILABLE', { cid: cid.toString(), failures })
  }
}

/**
 * The local store of a lazy clone, fetching on demand: an object absent locally is fetched from the
 * zoo remotes (verified against its CID) when it is read. Fetched chunks are stored locally, so the
 * next read is local; fetched nodes are kept in memory only, because invariant 2 lets the local store
 * hold a node only once every object below it is there (fetch skips a subtree whose node it has).
 * A damaged local object is never papered over: its CorruptObjectError reaches the caller.
 */
export class OnDemandStore implements Store {
  readonly location: string
  private readonly nodes = new Map<string, Uint8Array>()
  private readonly inflight = new Map<string, Promise<Uint8Array>>()
  /** Objects and bytes fetched from the remotes by this handle. */
  fetchedObjects = 0
  fetchedBytes = 0

  constructor(readonly local: LocalStore, private readonly remotes: RemoteObjects) {
    this.location = local.location
  }

  async get(cid: CID): Promise<Uint8Array> {
    try {
      return await this.local.get(cid)
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
    }
    const k = cid.toString()
    const node = this.nodes.get(k)
    if (node) return node
    let p = this.inflight.get(k)
    if (!p) {
      p = this.fetch(cid).finally(() => this.inflight.delete(k))
      this.inflight.set(k, p)
    }
    return p
  }

  private async fetch(cid: CID): Promise<Uint8Array> {
    const found = await this.remotes.find(cid)
    if ('failures' in found) throw new ObjectUnavailableError(cid, this.local.location, found.failures)
    if (cid.code === RAW) await this.local.putVerified(cid, found.bytes)
    else this.nodes.set(cid.toString(), found.bytes)
    this.fetchedObjects++
    this.fetchedBytes += found.bytes.length
    return found.bytes
  }

  /**
   * Fetch whole files ahead of reading them, several objects at once (syncFiles: verified, nodes
   * stored after their children), from the first zoo remote that serves them all. Best effort:
   * on any failure the reads fall back to fetching object by object, where each remote is tried.
   */
  async prefetch(files: Array<{ root: string; size: number }>): Promise<void> {
    const absent = []
    for (const f of files) if (!(await this.local.has(parseCid(f.root)))) absent.push({ root: f.root, size: f.size })
    if (absent.length === 0) return
    const from = await this.remotes.first()
    if (!from) return
    try {
      await syncFiles(from, new TransferSide(this.local, { serial: true, trustPuts: true }), absent)
    } catch {
      // what arrived is kept (and durable after flush); the rest is fetched on demand
    }
  }

  /** Whether the object is in the local store (what is fetched on demand is not counted). */
  has(cid: CID): Promise<boolean> { return this.local.has(cid) }
  put(cid: CID, bytes: Uint8Array): Promise<boolean> { return this.local.put(cid, bytes) }
  list(): AsyncIterable<CID> { return this.local.list() }
  flush(): Promise<void> { return this.local.flush() }

  async close(): Promise<void> {
    try { await this.local.close() } finally { await this.remotes.close() }
  }
}
