/**
 * The per-epoch history of format 2 manifests for the catalog's history columns: read from their
 * checkpoint nodes in the local object store, synchronously (the build workers are synchronous).
 * Every block is checked against its CID before it is decoded. A node that is not in the store (a
 * lazy clone before a fetch) gives no history, and neither does a damaged one (`git zoo verify`
 * reports those); the row keeps its final metrics and counts.
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { openViewSync, keyOf, type IndexView } from '../cas/pack-index.js'
import { digestMatches, sha256 } from '../cas/cid.js'
import { readHistorySync } from './checkpoints.js'
import type { CheckpointsLink } from './manifest.js'

export class NodeHistory {
  private view: IndexView | undefined
  private readonly fds = new Map<string, number>()

  constructor(private readonly storeRoot: string) {}

  /** The store's indexes, searched in place (the multi-pack index with one positioned read per lookup). */
  private load(): IndexView {
    return (this.view ??= openViewSync(join(this.storeRoot, 'packs')))
  }

  private get(cid: CID): Uint8Array {
    const k = keyOf(cid)
    const e = k ? this.load().lookup(k) : undefined
    if (!e) throw new Error(`object ${cid} is not in the local store`)
    const bytes = Buffer.allocUnsafe(e.length)
    let fd = this.fds.get(e.pack)
    if (fd === undefined) { fd = openSync(join(this.storeRoot, 'packs', e.pack), 'r'); this.fds.set(e.pack, fd) }
    if (readSync(fd, bytes, 0, e.length, e.offset) !== e.length) throw new Error(`object ${cid} is truncated`)
    if (!digestMatches(cid, sha256(bytes))) throw new Error(`object ${cid} does not match its CID`)
    return bytes
  }

  /** Close the pack files read. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd)
    this.fds.clear()
    this.view?.close()
    this.view = undefined
  }

  /** The history a checkpoint node holds, or undefined when it cannot be read whole and checked. */
  history(link: CheckpointsLink): Array<Record<string, number>> | undefined {
    try { return readHistorySync(link, (cid) => this.get(cid)) } catch { return undefined }
  }
}
