/**
 * The per-epoch history of format 2 manifests for the catalog's history columns: read from their
 * checkpoint nodes in the local object store, synchronously (the build workers are synchronous).
 * Every block is checked against its CID before it is decoded. A node that is not in the store (a
 * lazy clone before a fetch) gives no history, and neither does a damaged one (`git zoo verify`
 * reports those); the row keeps its final metrics and counts.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { parseIndex } from '../cas/local.js'
import { readHistorySync } from './checkpoints.js'
import type { CheckpointsLink } from './manifest.js'

export class NodeHistory {
  private index: Map<string, { pack: string; offset: number; length: number }> | undefined
  private readonly fds = new Map<string, number>()

  constructor(private readonly storeRoot: string) {}

  private load(): Map<string, { pack: string; offset: number; length: number }> {
    if (this.index) return this.index
    const index = new Map<string, { pack: string; offset: number; length: number }>()
    const dir = join(this.storeRoot, 'packs')
    let names: string[] = []
    try { names = readdirSync(dir) } catch { /* no store yet */ }
    for (const name of names) {
      if (!name.endsWith('.idx')) continue
      try {
        for (const [k, offset, length] of parseIndex(readFileSync(join(dir, name)), name)) if (!index.has(k)) index.set(k, { pack: name.slice(0, -4) + '.pack', offset, length })
      } catch { /* a damaged or vanished index: its objects are not read here */ }
    }
    return (this.index = index)
  }

  private get(cid: CID): Uint8Array {
    const e = this.load().get(Buffer.from(cid.bytes).toString('latin1'))
    if (!e) throw new Error(`object ${cid} is not in the local store`)
    const bytes = Buffer.allocUnsafe(e.length)
    let fd = this.fds.get(e.pack)
    if (fd === undefined) { fd = openSync(join(this.storeRoot, 'packs', e.pack), 'r'); this.fds.set(e.pack, fd) }
    if (readSync(fd, bytes, 0, e.length, e.offset) !== e.length) throw new Error(`object ${cid} is truncated`)
    const digest = createHash('sha256').update(bytes).digest()
    if (!digest.equals(Buffer.from(cid.multihash.digest))) throw new Error(`object ${cid} does not match its CID`)
    return bytes
  }

  /** Close the pack files read. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd)
    this.fds.clear()
  }

  /** The history a checkpoint node holds, or undefined when it cannot be read whole and checked. */
  history(link: CheckpointsLink): Array<Record<string, number>> | undefined {
    try { return readHistorySync(link, (cid) => this.get(cid)) } catch { return undefined }
  }
}
