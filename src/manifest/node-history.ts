/**
 * The per-epoch history of format 2 manifests for the catalog's history columns: read from their
 * checkpoint nodes in the local object store, synchronously (the build workers are synchronous).
 * Every block is checked against its CID before it is decoded. A node that is not in the store (a
 * lazy clone before a fetch) may come in `fetched` (blocks a command read from the zoo remotes for
 * this build, kept in memory: spec/catalog.md, "History in a lazy clone"); one in neither is told
 * apart ('absent'), so the command can fetch it. A damaged one gives no history (`git zoo verify`
 * reports those); the row keeps its final metrics and counts.
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { openViewSync, keyOf, type IndexView } from '../cas/pack-index.js'
import { bytesMatch } from '../cas/cid.js'
import { readHistorySync } from './checkpoints.js'
import type { CheckpointsLink } from './manifest.js'

/** A block in neither the local store nor the fetched ones. */
class Absent extends Error {}

export class NodeHistory {
  private view: IndexView | undefined
  private readonly fds = new Map<string, number>()

  constructor(private readonly storeRoot: string, private readonly fetched?: ReadonlyMap<string, Uint8Array>) {}

  /** The store's indexes, searched in place (the multi-pack index with one positioned read per lookup). */
  private load(): IndexView {
    return (this.view ??= openViewSync(join(this.storeRoot, 'packs')))
  }

  private get(cid: CID): Uint8Array {
    const k = keyOf(cid)
    const e = k ? this.load().lookup(k) : undefined
    if (!e) {
      const f = this.fetched?.get(cid.toString())
      if (!f) throw new Absent(`object ${cid} is not in the local store`)
      if (!bytesMatch(cid, f)) throw new Error(`object ${cid} does not match its CID`)
      return f
    }
    const bytes = Buffer.allocUnsafe(e.length)
    let fd = this.fds.get(e.pack)
    if (fd === undefined) { fd = openSync(join(this.storeRoot, 'packs', e.pack), 'r'); this.fds.set(e.pack, fd) }
    if (readSync(fd, bytes, 0, e.length, e.offset) !== e.length) throw new Error(`object ${cid} is truncated`)
    if (!bytesMatch(cid, bytes)) throw new Error(`object ${cid} does not match its CID`)
    return bytes
  }

  /** Close the pack files read. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd)
    this.fds.clear()
    this.view?.close()
    this.view = undefined
  }

  /**
   * The history a checkpoint node holds; 'absent' when the node or one of its pages is in neither the
   * store nor `fetched`; undefined when it cannot be read whole and checked.
   */
  history(link: CheckpointsLink): Array<Record<string, number>> | 'absent' | undefined {
    try { return readHistorySync(link, (cid) => this.get(cid)) } catch (err) { return err instanceof Absent ? 'absent' : undefined }
  }
}
