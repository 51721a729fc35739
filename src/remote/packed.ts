/**
 * PackedStore: objects on a zoo remote travel and rest in packs with an index (spec/remotes.md,
 * "Packs"), on every remote kind. The kinds (./path.ts, ./http.ts, ./s3.ts) provide only files:
 * byte ranges, small whole files, create-if-absent, replace, list, remove.
 *
 *   <root>/zoo-remote.json                  {"layout": 2}: packs only (absent: a layout-1 remote,
 *                                           whose loose objects/<xx>/<cid> files are read as well)
 *   <root>/packs/pack-<hex>.pack            "ZOOPACK1", then records: u32 cid length, cid, u32 length, bytes
 *   <root>/packs/pack-<hex>.idx             "ZOOIDX01", u32 count, (u8 cid length, cid, u64 offset,
 *                                           u32 length)*, sha256 of all before it
 *   <root>/packs/packs.txt                  the index names, one a line (for web servers without listings)
 *
 * `<hex>` is the sha256 of the pack's record headers, which name every object by its CID in order, so
 * the name is a hash of the pack's content: two pushers never write different bytes under one name,
 * and a rerun that packs the same objects writes the same name (create-if-absent answers "exists").
 * A pack is created whole and atomically (temp + fsync + link on a path; one PutObject on S3), then
 * its index; an object becomes visible with its index. A pack without an index (a writer killed in
 * between) is invisible and removed by remote gc after the grace period.
 *
 * Reads: the indexes are loaded once per handle (a miss in get reloads new ones); an object is one
 * ranged read of its pack (HTTP Range, ranged GetObject, pread), verified against its CID before it
 * is returned. A damaged index (bad checksum) is rebuilt from its pack, whose records describe
 * themselves, each checked against its CID; a writable remote gets the rebuilt index written back.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { checkCidForm, verifyBytes } from '../cas/cid.js'
import { encodeIndex, parseIndex, PACK_MAGIC } from '../cas/local.js'
import type { Store } from '../cas/store.js'
import { MAX_OBJECT_SIZE } from '../cas/store.js'
import { CorruptObjectError, NotFoundError, ZooError } from '../errors.js'
import type { AgedEntry, RetentionStore } from './aged.js'
import { verifyObject, type Digester } from './verify.js'

export const LAYOUT_FILE = 'zoo-remote.json'
export const PACKS_DIR = 'packs'
export const PACK_LIST = `${PACKS_DIR}/packs.txt`
/** Layout 1: loose objects (objects/<xx>/<cid>), maybe packs beside them. Layout 2: packs only. */
export const LAYOUT_LOOSE = 1
export const LAYOUT_PACKS = 2
/** A pack is sealed and uploaded when the next object would not fit in this many bytes. */
export const REMOTE_PACK_TARGET = 64 * 1024 * 1024
/** Record header: u32 cid length, cid (at most 64 bytes), u32 data length. */
const MAX_HEADER = 8 + 64
const MAX_INDEX_BYTES = 64 * 1024 * 1024

export interface FileInfo { name: string; size: number; modified: number }

/** What a remote kind provides to the pack layout. Writers also provide the optional methods. */
export interface RemoteFiles {
  readonly location: string
  /** With `partial`, a range running past the end returns the bytes there are. */
  readRange(key: string, offset: number, length: number, partial?: boolean): Promise<Uint8Array>
  readFile(key: string, maxBytes: number): Promise<Uint8Array | undefined>
  /** undefined: this kind cannot list (a web server without folder listings). */
  listFiles(dir: string): Promise<FileInfo[] | undefined>
  createFile?(key: string, parts: Uint8Array[], midway?: () => void | Promise<void>): Promise<boolean>
  replaceFile?(key: string, bytes: Uint8Array): Promise<void>
  removeFiles?(keys: string[]): Promise<void>
}

/** The kind's own store (loose objects of layout 1, locks) with its files. */
export type Backing = Store & RemoteFiles & Partial<RetentionStore> & { putVerified?: (cid: CID, bytes: Uint8Array) => Promise<boolean> }

export interface PackedOptions {
  digest?: Digester
  /** Bytes per pack (default REMOTE_PACK_TARGET). */
  packTarget?: number
  /** Packs uploading at once while the next one fills (default 2). */
  inflight?: number
  /** Crash and pause points: `remote-pack-midway` (half a pack written), `remote-pack-written` (pack, no index). */
  point?: (name: string) => void | Promise<void>
}

export interface Entry { pack: string; offset: number; length: number }
export interface PackInfo { name: string; entries: Array<[string, number, number]>; size: number; modified: number }

export function cidKey(cid: CID): string { return Buffer.from(cid.bytes).toString('latin1') }
export function cidOfKey(k: string): CID { return CID.decode(Buffer.from(k, 'latin1')) }
export const packKey = (name: string): string => `${PACKS_DIR}/${name}.pack`
export const idxKey = (name: string): string => `${PACKS_DIR}/${name}.idx`
const PACK_NAME = /^pack-[0-9a-f]{64}$/

/** A pack being filled: one buffer, reused after its upload. */
interface Filling { buf: Buffer; size: number; entries: Array<[string, number, number]>; hash: ReturnType<typeof createHash> }

export class PackedStore implements Store {
  readonly location: string
  protected readonly index = new Map<string, Entry>()
  protected readonly packs = new Map<string, PackInfo>()
  /** Sizes and ages of the pack files from the last listing (path and s3). */
  private sizes = new Map<string, FileInfo>()
  private loaded: Promise<void> | undefined
  private layoutRead: Promise<number> | undefined
  /** Objects put but not yet visible through an uploaded index: served from memory. */
  private readonly pending = new Map<string, Uint8Array>()
  private cur: Filling | null = null
  private readonly spare: Buffer[] = []
  private uploads: Array<Promise<void>> = []
  private chain: Promise<unknown> = Promise.resolve()
  private failure: unknown
  private wroteIndex = false
  /** Index creations run in the order the packs were sealed (see `ordered`). */
  private indexChain: Promise<unknown> = Promise.resolve()
  /**
   * Objects become visible in the order they were put: packs upload side by side, but their indexes
   * are created one after another, in order. So a node put after its children never becomes visible
   * before them, even without a flush in between (src/remote/dag.ts then flushes once, at the end).
   */
  readonly ordered = true
  protected readonly target: number

  constructor(readonly backing: Backing, protected readonly opts: PackedOptions = {}) {
    this.location = backing.location
    this.target = opts.packTarget ?? REMOTE_PACK_TARGET
  }

  get writable(): boolean { return typeof this.backing.createFile === 'function' }
  /** Bytes per pack this handle writes. */
  get packTarget(): number { return this.target }

  /** The remote's layout version: 2 (packs only), 1 (loose objects, maybe packs too) or 0 (empty). */
  layout(): Promise<number> {
    this.layoutRead ??= (async () => {
      const raw = await this.backing.readFile(LAYOUT_FILE, 64 * 1024)
      if (raw) {
        let record: unknown
        try { record = JSON.parse(Buffer.from(raw).toString('utf8')) } catch { record = undefined }
        if (record === null || typeof record !== 'object' || Array.isArray(record)) {
          // not a record at all (empty, cut short, overwritten): no version to upgrade to, so say what it is
          throw new ZooError(`the zoo remote ${this.location} has a damaged ${LAYOUT_FILE} (${raw.length} bytes that are not a JSON object; `
            + `it should read {"format": "git-zoo remote", "layout": 2}); a server that stores files non-atomically can show it half-written `
            + `while another push writes it, so run the command again; if it stays so, remove ${LAYOUT_FILE} `
            + 'and run `git zoo remote migrate <name>`, which records the layout again', 'E_REMOTE_LAYOUT', { remote: this.location, bytes: raw.length })
        }
        const layout = (record as { layout?: unknown }).layout
        if (layout !== LAYOUT_LOOSE && layout !== LAYOUT_PACKS) {
          throw new ZooError(`the zoo remote ${this.location} records layout ${JSON.stringify(layout)} in ${LAYOUT_FILE}, which this git-zoo does not know; `
            + 'upgrade git-zoo', 'E_REMOTE_LAYOUT', { remote: this.location, layout })
        }
        return layout
      }
      try {
        for await (const _ of this.backing.list()) return LAYOUT_LOOSE
      } catch (err) {
        if (err instanceof ZooError && err.code === 'E_UNSUPPORTED') return LAYOUT_LOOSE // a web server without listings: look for loose objects too
        throw err
      }
      return 0
    })()
    this.layoutRead.catch(() => { this.layoutRead = undefined })
    return this.layoutRead
  }

  // ---- indexes ----

  private ensureLoaded(): Promise<void> {
    this.loaded ??= this.refresh()
    this.loaded.catch(() => { this.loaded = undefined })
    return this.loaded
  }

  /** The index names on the remote: a listing, else packs.txt (web servers without listings). */
  protected async indexNames(): Promise<string[]> {
    let files = await this.backing.listFiles(PACKS_DIR)
    if (files === undefined) {
      const list = await this.backing.readFile(PACK_LIST, MAX_INDEX_BYTES)
      files = list ? Buffer.from(list).toString('utf8').split('\n').filter(Boolean).map((name) => ({ name, size: 0, modified: 0 })) : []
    }
    this.sizes = new Map(files.filter((f) => f.name.endsWith('.pack')).map((f) => [f.name.slice(0, -5), f]))
    return files.map((f) => f.name).filter((n) => n.endsWith('.idx') && PACK_NAME.test(n.slice(0, -4))).map((n) => n.slice(0, -4)).sort()
  }
  /** Load the indexes that appeared since the last look; forget those that are gone (gc). */
  async refresh(): Promise<void> {
    const names = await this.indexNames()
    const now = new Set(names)
    let dropped = false
    for (const name of [...this.packs.keys()]) if (!now.has(name)) { this.packs.delete(name); dropped = true }
    for (const name of names) {
      if (this.packs.has(name)) continue
      const entries = await this.readIndex(name)
      if (!entries) continue // removed meanwhile
      const info = this.sizes.get(name)
      this.packs.set(name, { name, entries, size: info?.size ?? 0, modified: info?.modified ?? 0 })
      if (!dropped) for (const [k, offset, length] of entries) if (!this.index.has(k)) this.index.set(k, { pack: name, offset, length })
    }
    if (dropped) {
      this.index.clear()
      for (const p of this.packs.values()) for (const [k, offset, length] of p.entries) if (!this.index.has(k)) this.index.set(k, { pack: p.name, offset, length })
    }
  }

  /** A pack's index entries; a damaged index is rebuilt from the pack (and written back when writable). */
  private async readIndex(name: string): Promise<Array<[string, number, number]> | undefined> {
    const raw = await this.backing.readFile(idxKey(name), MAX_INDEX_BYTES)
    if (!raw) return undefined
    try {
      return parseIndex(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), idxKey(name))
    } catch (err) {
      if (!(err instanceof CorruptObjectError)) throw err
    }
    const entries = await this.scanPack(name)
    if (this.backing.replaceFile) await this.backing.replaceFile(idxKey(name), encodeIndex(entries))
    return entries
  }

  /**
   * A pack's records read from the pack itself, in windows, each checked against its CID. Stops at
   * the first record that does not parse or verify (the rest of the pack cannot be trusted).
   */
  async scanPack(name: string): Promise<Array<[string, number, number]>> {
    const WINDOW = MAX_OBJECT_SIZE + 2 * MAX_HEADER + 1024 * 1024
    const read = async (at: number): Promise<Buffer> =>
      Buffer.from(await this.backing.readRange(packKey(name), at, WINDOW, true).catch(rangeEnd))
    const entries: Array<[string, number, number]> = []
    let base = 0
    let buf = await read(0)
    let atEnd = buf.length < WINDOW
    if (buf.length < PACK_MAGIC.length || !buf.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)) return entries
    let p = PACK_MAGIC.length
    for (;;) {
      if (!atEnd && buf.length - p < MAX_HEADER + MAX_OBJECT_SIZE) {
        // a whole record might not be in the window: read on from p
        base += p
        buf = await read(base)
        atEnd = buf.length < WINDOW
        p = 0
      }
      if (p + 8 > buf.length) break
      const n = buf.readUInt32LE(p)
      if (n > 64 || p + 8 + n > buf.length) break
      const kb = buf.subarray(p + 4, p + 4 + n)
      const len = buf.readUInt32LE(p + 4 + n)
      const start = p + 8 + n
      if (len > MAX_OBJECT_SIZE || start + len > buf.length) break
      let cid: CID
      try { cid = CID.decode(kb); checkCidForm(cid); verifyBytes(cid, buf.subarray(start, start + len)) } catch { break }
      entries.push([kb.toString('latin1'), base + start, len])
      p = start + len
    }
    return entries
  }

  // ---- Store ----

  async get(cid: CID): Promise<Uint8Array> {
    const k = cidKey(cid)
    const held = this.pending.get(k)
    if (held) return Uint8Array.from(held)
    await this.ensureLoaded()
    let e = this.index.get(k)
    if (!e) { await this.refresh(); e = this.index.get(k) }
    if (e) {
      let bytes: Uint8Array
      try {
        bytes = await this.readEntry(e)
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err
        // the pack went away (a remote gc repacked it) after this handle read its index: look again once
        await this.refresh()
        const again = this.index.get(k)
        if (!again) throw new NotFoundError(`object ${cid} is not in ${this.location}`, { cid: String(cid), remote: this.location }, { cause: err })
        if (again.pack === e.pack) throw new CorruptObjectError(`object ${cid} is listed in ${idxKey(e.pack)} on ${this.location}, whose pack is missing`, { cid: String(cid), remote: this.location })
        bytes = await this.readEntry(again)
      }
      await verifyObject(cid, bytes, `${this.location} (${packKey(e.pack)} bytes ${e.offset}-${e.offset + e.length - 1})`, this.opts.digest)
      return bytes
    }
    if (await this.layout() === LAYOUT_LOOSE) return this.backing.get(cid)
    throw new NotFoundError(`object ${cid} is not in ${this.location}`, { cid: String(cid), remote: this.location })
  }

  private async readEntry(e: Entry): Promise<Uint8Array> {
    if (e.length === 0) return new Uint8Array(0)
    if (e.length > MAX_OBJECT_SIZE) {
      // an index naming more than an object may hold is refused before anything is read or allocated
      throw new CorruptObjectError(`${idxKey(e.pack)} on ${this.location} lists an object of ${e.length} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`,
        { remote: this.location, pack: e.pack })
    }
    return this.backing.readRange(packKey(e.pack), e.offset, e.length)
  }

  /** Whether a pack index (or this handle's unflushed pack) lists the object; loose objects are not asked. */
  async indexed(cid: CID): Promise<boolean> {
    const k = cidKey(cid)
    if (this.pending.has(k)) return true
    await this.ensureLoaded()
    return this.index.has(k)
  }

  async has(cid: CID): Promise<boolean> {
    const k = cidKey(cid)
    if (this.pending.has(k)) return true
    await this.ensureLoaded()
    if (this.index.has(k)) return true
    return await this.layout() === LAYOUT_LOOSE ? this.backing.has(cid) : false
  }

  async *list(): AsyncIterable<CID> {
    await this.refresh()
    const seen = new Set<string>()
    for (const k of [...this.index.keys(), ...this.pending.keys()]) {
      if (seen.has(k)) continue
      seen.add(k)
      yield cidOfKey(k)
    }
    if (await this.layout() !== LAYOUT_LOOSE) return
    for await (const cid of this.backing.list()) {
      const k = cidKey(cid)
      if (!seen.has(k)) { seen.add(k); yield cid }
    }
  }

  async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (bytes.length > MAX_OBJECT_SIZE) {
      throw new ZooError(`object ${cid} is ${bytes.length} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`, 'E_TOO_LARGE', { cid: String(cid) })
    }
    if (!this.writable) return this.backing.put(cid, bytes) // refused: E_READ_ONLY naming the URL
    await verifyObject(cid, bytes, 'put', this.opts.digest)
    return this.putVerified(cid, bytes)
  }

  /** put for bytes the caller has just verified against `cid`: appended to the pack being filled. */
  putVerified(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (!this.writable) return this.backing.put(cid, bytes)
    const run = this.chain.then(() => this.append(cid, bytes))
    this.chain = run.catch(() => {})
    return run
  }

  private async append(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (this.failure !== undefined) throw this.failure
    const k = cidKey(cid)
    if (this.pending.has(k)) return false
    await this.ensureLoaded()
    if (this.index.has(k)) return false
    const kb = cid.bytes
    const need = 8 + kb.length + bytes.length
    if (this.cur && this.cur.size + need > this.cur.buf.length) await this.seal()
    const cur = this.cur ??= this.startPack(need)
    const buf = cur.buf
    const head = cur.size
    buf.writeUInt32LE(kb.length, head)
    buf.set(kb, head + 4)
    buf.writeUInt32LE(bytes.length, head + 4 + kb.length)
    cur.hash.update(buf.subarray(head, head + 8 + kb.length))
    const offset = head + 8 + kb.length
    buf.set(bytes, offset)
    cur.size = offset + bytes.length
    cur.entries.push([k, offset, bytes.length])
    this.pending.set(k, buf.subarray(offset, offset + bytes.length))
    return true
  }

  private startPack(need: number): Filling {
    const size = Math.max(this.target, PACK_MAGIC.length + need)
    let buf = this.spare.pop()
    if (!buf || buf.length < size) buf = Buffer.allocUnsafe(size)
    PACK_MAGIC.copy(buf, 0)
    const hash = createHash('sha256').update(PACK_MAGIC)
    return { buf, size: PACK_MAGIC.length, entries: [], hash }
  }

  /** Upload the pack being filled (in the background, at most `inflight` at once). */
  private async seal(): Promise<void> {
    const cur = this.cur
    this.cur = null
    if (!cur || cur.entries.length === 0) { if (cur) this.spare.push(cur.buf); return }
    const name = `pack-${cur.hash.digest('hex')}`
    const previous = this.indexChain
    const up = this.upload(name, cur, previous).catch((err) => { this.failure ??= err })
    this.indexChain = up
    this.uploads.push(up)
    while (this.uploads.length >= (this.opts.inflight ?? 2)) await this.uploads.shift()
  }

  private async upload(name: string, cur: Filling, previous: Promise<unknown>): Promise<void> {
    const point = this.opts.point
    const bytes = cur.buf.subarray(0, cur.size)
    // with crash points, two parts: `remote-pack-midway` runs with half the pack written
    const parts = point ? [bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)] : [bytes]
    await this.backing.createFile!(packKey(name), parts, point ? () => point('remote-pack-midway') : undefined)
    await point?.('remote-pack-written')
    await previous // the packs sealed before this one are visible first
    if (this.failure !== undefined) return // an earlier pack failed: this one stays invisible (gc removes it)
    await this.backing.createFile!(idxKey(name), [encodeIndex(cur.entries)])
    this.packs.set(name, { name, entries: cur.entries, size: cur.size, modified: Date.now() })
    for (const [k, offset, length] of cur.entries) {
      if (!this.index.has(k)) this.index.set(k, { pack: name, offset, length })
      this.pending.delete(k)
    }
    this.wroteIndex = true
    this.spare.splice(0, this.spare.length, cur.buf) // keep one buffer for the next pack
  }

  /** Upload what is buffered and wait for every upload; then record the layout and the pack list. */
  async flush(): Promise<void> {
    await this.chain
    if (this.writable) {
      await this.seal()
      await Promise.all(this.uploads.splice(0))
    }
    if (this.failure !== undefined) { const f = this.failure; this.failure = undefined; throw f }
    if (this.wroteIndex) {
      this.wroteIndex = false
      if (await this.layout() === 0) await this.writeLayout(LAYOUT_PACKS)
      await this.publishList()
    }
    await this.backing.flush()
  }

  /** Record the layout version (migrate, or the first push to an empty remote). */
  async writeLayout(layout: number): Promise<void> {
    await this.backing.replaceFile!(LAYOUT_FILE, Buffer.from(JSON.stringify({ format: 'git-zoo remote', layout }) + '\n'))
    this.layoutRead = Promise.resolve(layout)
  }

  /**
   * Rewrite packs/packs.txt from a listing, until a listing taken after the write holds nothing the
   * file lacks: of two pushers racing, the one writing last has listed after both indexes existed.
   */
  async publishList(): Promise<void> {
    for (let i = 0; i < 8; i++) {
      const names = await this.indexNames()
      await this.backing.replaceFile!(PACK_LIST, Buffer.from(names.map((n) => `${n}.idx\n`).join('')))
      const again = await this.indexNames()
      if (again.every((n) => names.includes(n))) return
    }
  }

  async close(): Promise<void> {
    try { await this.flush() } finally { await this.backing.close() }
  }
}

/** A path or s3 remote: packs, plus what remote gc and push registration need (./aged.ts). */
export class WritablePackedStore extends PackedStore implements RetentionStore {
  constructor(backing: Backing & RetentionStore, opts: PackedOptions = {}) { super(backing, opts) }
  private get retention(): Backing & RetentionStore { return this.backing as Backing & RetentionStore }

  /** Loose objects (layout 1) with their ages, for remote gc. */
  listAged(): AsyncIterable<AgedEntry> { return this.retention.listAged() }
  deleteEntries(keys: string[]): Promise<void> { return this.retention.deleteEntries(keys) }
  putLock(name: string, body: string): Promise<void> { return this.retention.putLock(name, body) }
  listLocks(prefix: string): Promise<Array<{ name: string; body: string }>> { return this.retention.listLocks(prefix) }
  removeLock(name: string): Promise<void> { return this.retention.removeLock(name) }

  /** Every indexed pack with its entries, size and age; and the packs no index lists (interrupted writes, temp files). */
  async inventory(): Promise<{ packs: PackInfo[]; orphans: FileInfo[] }> {
    this.packs.clear()
    this.index.clear()
    await this.refresh()
    const files = (await this.backing.listFiles(PACKS_DIR)) ?? []
    const orphans = files.filter((f) => (f.name.endsWith('.pack') && !this.packs.has(f.name.slice(0, -5))) || f.name.startsWith('.tmp-'))
    return { packs: [...this.packs.values()], orphans }
  }

  /** Read one entry of a pack, verified. */
  async readFromPack(pack: string, k: string, offset: number, length: number): Promise<Uint8Array> {
    const cid = cidOfKey(k)
    const bytes = length === 0 ? new Uint8Array(0) : await this.backing.readRange(packKey(pack), offset, length)
    await verifyObject(cid, bytes, `${this.location} (${packKey(pack)})`, this.opts.digest)
    return bytes
  }

  /** Rewrite a pack's index to list only `keep` (gc); an index with nothing left is removed. */
  async rewriteIndex(pack: string, keep: Array<[string, number, number]>): Promise<void> {
    if (keep.length === 0) await this.backing.removeFiles!([idxKey(pack)])
    else await this.backing.replaceFile!(idxKey(pack), encodeIndex(keep))
  }

  /** Remove pack files (their indexes must be gone first). */
  async removeFiles(keys: string[]): Promise<void> { await this.backing.removeFiles!(keys) }

  /** Write objects into new packs even when listed elsewhere (gc copying live objects out of a pack). */
  async rewrite(objects: Array<{ cid: CID; bytes: Uint8Array }>): Promise<void> {
    for (const { cid, bytes } of objects) {
      this.index.delete(cidKey(cid))
      await this.putVerified(cid, bytes)
    }
    await this.flush()
  }
}

/** A range read past the end of a pack: treat as no more bytes. */
function rangeEnd(err: unknown): Uint8Array {
  if (err instanceof ZooError && (err.code === 'E_REMOTE_HTTP' || err.code === 'E_REMOTE_IO') && /416|ranges?/i.test(err.message)) return new Uint8Array(0)
  throw err
}
