/**
 * The local store: objects appended to pack files, each pack made visible by its index.
 *
 * Layout under the store root (default `.git/zoo/`, see spec/format.md):
 *   packs/pack-<id>.pack   "ZOOPACK1" then records: u32 cid length, cid bytes, u32 data length, data
 *   packs/pack-<id>.idx    "ZOOIDX02": entries sorted by key with a fanout, searched in place
 *   packs/multi-pack-index one sorted index over many packs, searched with positioned reads
 *   (src/cas/pack-index.ts has the layouts; old "ZOOIDX01" indexes stay readable)
 * add writes a large file's slabs as images of their records straight from its buffers (putImage),
 * after a padding record where the pack's end is not at the slab's alignment (spec/format.md).
 * A pack is written by one process only and becomes visible when its index is renamed into place
 * after the pack and the index were fsynced (the folder is fsynced once per flush, for all the indexes
 * renamed since the last one: a command's packs are durable when its flush returns). A pack without
 * an index is an interrupted write: it is invisible until the next add or import indexes it
 * (recoverInterrupted: every record checked against its CID) or gc removes it after the grace period. Many small objects cost one file per 64 MiB.
 *
 * Writers and gc (src/cas/lock.ts): a handle registers itself as a writer of the store the first
 * time it is asked to write or asked whether it holds an object (`has`, `put`, `putVerified`: a
 * "yes" lets the caller skip a write, so it must not be answered from a pack gc is removing), and
 * releases the registration on close(). Every command that writes is covered by construction. While
 * registered, gc refuses to start; a handle registering while gc runs waits for it, then forgets the
 * packs gc removed before answering. Pure readers (`get`) never register.
 *
 * Lookups never expand an index into objects: the handle's own objects not yet indexed are in a
 * small map, the per-pack indexes no multi-pack index covers are searched in memory (one buffer
 * each), and the multi-pack index with one positioned read per lookup. A writing handle writes a new
 * multi-pack index when it flushes with MIDX_THRESHOLD per-pack indexes uncovered, or when the one
 * there is damaged or names packs gc removed (see writeMultiPackIndex).
 */
import { open, readdir, readFile, mkdir, stat, rm, type FileHandle } from 'node:fs/promises'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { verifyBytes, cidFromDigest, sha256 as sha256Of, RAW } from './cid.js'
import { CorruptObjectError, NotFoundError, ZooError, diskFull } from '../errors.js'
import { MAX_OBJECT_SIZE, type Store } from './store.js'
import { writeFileAtomic, fsyncDir, remainingIov } from './atomic.js'
import { AppendWriter, DIRECT_ALIGN } from './append-write.js'
import { registerWriter, liveWriters, type Held } from './lock.js'
import type { Host } from '../host.js'
import {
  PACK_MAGIC, MIDX_FILE, MIDX_THRESHOLD, IndexView, PackIdx, encodeIndexV2, parseIndex, readPackIdx, scanPack, scanPackBytes,
  keyOf, keyOfCidBytes, cidAt, cidBytesAt, isIdxName, packOfIdx, idxOfPack, openMidx, writeMultiPackIndex, type Triple, type MidxWriteResult,
} from './pack-index.js'

export { PACK_MAGIC, parseIndex, encodeIndex, scanPack } from './pack-index.js'
/** Bytes of a raw chunk's CID (CIDv1, raw, a 32-byte sha2-256 or BLAKE3 digest): the records putImage lays out. */
export const CID_LEN = 36
/** Bytes of a record's header before its data when the CID is CID_LEN bytes: u32le CID length, CID, u32le data length. */
export const RECORD_GAP = 4 + CID_LEN + 4
/** The smallest padding record (header and 16 bytes of data: its pack offset and the pack's id). */
const PAD_MIN = RECORD_GAP + 16

/**
 * The data of the padding record at `offset` of `pack` (LocalStore.padRecord): its offset as u64le,
 * the pack's random id (the 16 hex digits of its name), then zeros, `length` bytes in all.
 */
function paddingBytes(pack: string, offset: number, length: number): Buffer {
  const bytes = Buffer.alloc(length)
  bytes.writeBigUInt64LE(BigInt(offset), 0)
  Buffer.from(/-([0-9a-f]{16})\.pack$/.exec(pack)?.[1] ?? '', 'hex').copy(bytes, 8)
  return bytes
}

/**
 * Whether the object `cid` found at `offset` (`length` bytes) of `pack` is a padding record of
 * that pack: nothing links to it, and it is neither live nor garbage (gc leaves a pack alone for
 * it, and does not copy it when the pack is rewritten). Known from its place alone, no read: its
 * CID must be the sha2-256 of the bytes a padding record there would hold.
 */
export function isPaddingRecord(pack: string, offset: number, length: number, cid: CID): boolean {
  if (length < PAD_MIN - RECORD_GAP || length > DIRECT_ALIGN + PAD_MIN - RECORD_GAP || cid.code !== RAW || cid.multihash.code !== 0x12) return false
  return Buffer.from(sha256Of(paddingBytes(pack, offset, length))).equals(cid.multihash.digest)
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff; b[at + 1] = (v >>> 8) & 0xff; b[at + 2] = (v >>> 16) & 0xff; b[at + 3] = (v >>> 24) & 0xff
}

/**
 * A pack record's header (u32le CID length | CID | u32le data length: spec/format.md) written into
 * `into` at `at`; `into` null: a new buffer of its own. Returns the header's bytes.
 */
function recordHeader(cid: CID, length: number, into: Uint8Array | null = null, at = 0): Uint8Array {
  const b = into ?? new Uint8Array(8 + cid.bytes.length)
  writeU32(b, at, cid.bytes.length)
  b.set(cid.bytes, at + 4)
  writeU32(b, at + 4 + cid.bytes.length, length)
  return into ? b.subarray(at, at + 8 + cid.bytes.length) : b
}

/**
 * A pack is closed (indexed) and a new one started once it reaches this size, checked after each
 * write: a pack may end past it by up to one write (an object, or add's image of one slab).
 */
export const PACK_TARGET_SIZE = 64 * 1024 * 1024

/** An object read from a pack (readPackObjects): where it is in the pack, where it goes in the caller's buffer. */
export interface PackObject { cid: CID; offset: number; len: number; at: number }

/**
 * Where the bytes between the objects of one vectored read go (record headers, small gaps): shared by
 * every read, as nobody reads them. Reads fill it concurrently; the bytes are garbage by design.
 */
const GAP_SCRATCH = new Uint8Array(64 * 1024)
/**
 * Fill `bufs`, in order, from file position `at`, looping on short reads (remainingIov); past the end
 * of the file the rest is zero-filled.
 */
async function readAllAt(fd: FileHandle, bufs: readonly Uint8Array[], at: number): Promise<void> {
  let total = 0
  for (const b of bufs) total += b.length
  let done = 0
  while (done < total) {
    const rest = remainingIov(bufs, done)
    const { bytesRead } = await fd.readv(rest, at + done)
    if (bytesRead === 0) {
      for (let r = rest; r.length > 0; r = remainingIov(bufs, done)) for (const b of r) { b.fill(0); done += b.length }
      return
    }
    done += bytesRead
  }
}

export interface Entry { pack: string; offset: number; length: number }

function key(cid: CID): string { return Buffer.from(cid.bytes).toString('latin1') }
function cidOfKey(k: string): CID { return CID.decode(Buffer.from(k, 'latin1')) }

export interface LocalStoreOptions {
  /** Close a pack and start a new one at this size (default PACK_TARGET_SIZE). */
  packTargetSize?: number
  /**
   * The process this handle writes for: it registers as a writer of the store under this host's
   * pid (Repo.openStore passes it). Without one (tests of the store alone) it does not register.
   */
  host?: Host
  /**
   * The gc lock the caller holds (gc itself reads and rewrites packs): this handle then does not
   * register as a writer, which would wait for that very lock.
   */
  gcLock?: Held
  /**
   * Write packs of bulk data (putBatchVerified: a large file's chunks) with O_DIRECT where the
   * filesystem takes it (default true; src/cas/append-write.ts); false writes them through the page
   * cache (`GIT_ZOO_DIRECT_IO=0`).
   */
  directIO?: boolean
  /** Named crash points of the store (`midx-written`, spec/reliability.md); the CLI passes its own. */
  crashPoint?: (name: string) => void | Promise<void>
  /** Uncovered per-pack indexes that make a writing handle's flush write a multi-pack index (MIDX_THRESHOLD). */
  midxThreshold?: number
}

export class LocalStore implements Store {
  readonly location: string
  private readonly packsDir: string
  /** The indexes on disk this handle has read (src/cas/pack-index.ts). */
  private readonly view = new IndexView()
  /** This handle's objects that no index it has loaded lists yet (the pack being written, packs being closed). */
  private readonly pending = new Map<string, Entry>()
  /** The multi-pack index as last seen (inode, size, mtime), and whether it was damaged. */
  private midxIdent: string | null = null
  private midxDamaged = false
  private readonly midxThreshold: number
  private readonly crashPoint: ((name: string) => void | Promise<void>) | undefined
  private readonly fds = new Map<string, Promise<FileHandle>>()
  private scannedMtime = 0
  private readonly packTarget: number
  /** This handle's writer registration, taken on first use (see the file comment). */
  private writer: Promise<Held> | null = null
  private readonly gcLock: Held | undefined
  private readonly host: Host | undefined
  // the pack being written by this handle
  private cur: { name: string, writer: AppendWriter, size: number, entries: Array<[string, number, number]> } | null = null
  private readonly directIO: boolean
  /** Bytes newly written by this handle (for `add --json` stored_bytes). */
  storedBytes = 0
  private closing: Array<Promise<void>> = []
  /** The write error that stopped this handle's pack (ENOSPC, EIO): every later write and flush rethrows it. */
  private broken: Error | null = null
  private writeChain: Promise<unknown> = Promise.resolve()
  /** An index was renamed into place since the packs folder was last fsynced (see flush). */
  private dirDirty = false

  private constructor(readonly root: string, opts: LocalStoreOptions) {
    this.location = root
    this.packsDir = join(root, 'packs')
    this.packTarget = opts.packTargetSize ?? PACK_TARGET_SIZE
    this.gcLock = opts.gcLock
    this.host = opts.host
    this.directIO = opts.directIO ?? true
    this.midxThreshold = opts.midxThreshold ?? MIDX_THRESHOLD
    this.crashPoint = opts.crashPoint
  }

  /**
   * Register this handle as a writer (once), then drop what it knew of packs a gc removed before
   * the registration: from here on gc cannot start until close().
   */
  private registered(): Promise<unknown> {
    if (this.gcLock || !this.host) return Promise.resolve()
    if (!this.writer) {
      const w = registerWriter(this.host, this.root, 'a git zoo command writing to the store').then(async (held) => {
        try { await this.forgetRemovedPacks() } catch (err) { await held.release(); throw err }
        return held
      })
      this.writer = w
      w.catch(() => { if (this.writer === w) this.writer = null })
    }
    return this.writer
  }

  /** Forget packs whose index is gone (gc removed or rewrote them), then load new indexes. */
  private async forgetRemovedPacks(): Promise<void> {
    const names = new Set(await readdir(this.packsDir))
    const known = [...this.view.idxs.keys()]
    if (this.view.midx) for (const pack of this.view.midx.packs) known.push(idxOfPack(pack))
    for (const idx of known) {
      const pack = packOfIdx(idx)
      if (this.cur?.name === pack || this.view.dropped.has(pack)) continue
      if (!names.has(idx)) await this.dropPack(pack)
    }
    await this.rescan()
  }

  static async open(root: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const s = new LocalStore(root, opts)
    await mkdir(s.packsDir, { recursive: true })
    await s.rescan()
    return s
  }

  /**
   * Load index files that appeared since the last scan (other processes' flushed packs), and the
   * multi-pack index when it changed; the per-pack indexes it covers are then not kept in memory.
   */
  async rescan(): Promise<void> {
    const st = await stat(this.packsDir)
    this.scannedMtime = st.mtimeMs
    this.refresh(await readdir(this.packsDir))
  }

  private refresh(names: string[]): void {
    const present = new Set(names.filter(isIdxName))
    if (names.includes(MIDX_FILE)) {
      let ident: string | null = null
      try { const m = statSync(join(this.packsDir, MIDX_FILE)); ident = `${m.ino}:${m.size}:${m.mtimeMs}` } catch { /* removed meanwhile */ }
      if (ident !== this.midxIdent) {
        this.midxIdent = ident
        const { midx, damaged } = ident ? openMidx(this.packsDir) : { midx: null, damaged: false }
        this.midxDamaged = damaged
        this.view.setMidx(midx)
      }
    } else if (this.midxIdent !== null) {
      this.midxIdent = null
      this.midxDamaged = false
      this.view.setMidx(null)
    }
    // packs the multi-pack index names whose index is gone (gc removed them) answer nothing
    const m = this.view.midx
    if (m) for (const pack of m.packs) if (!present.has(idxOfPack(pack))) this.view.dropped.add(pack)
    for (const name of present) {
      const pack = packOfIdx(name)
      if (this.view.covers(pack) || this.view.idxs.has(name)) continue
      const idx = this.loadIdx(name)
      if (idx) this.view.addIdx(name, idx)
    }
  }

  /** One per-pack index, checked; a damaged one is rebuilt from its pack's records. Null when it is gone. */
  private loadIdx(name: string): PackIdx | null {
    const pack = packOfIdx(name)
    let bytes: Buffer
    try { bytes = readFileSync(join(this.packsDir, name)) } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null // removed by gc meanwhile
      throw err
    }
    try {
      return readPackIdx(bytes, name, pack)
    } catch (err) {
      if (!(err instanceof CorruptObjectError)) throw err
      // A damaged index: the pack's records describe themselves, so rebuild from the pack.
      let data: Buffer
      try { data = readFileSync(join(this.packsDir, pack)) } catch { data = Buffer.alloc(0) }
      return new PackIdx(pack, encodeIndexV2(scanPackBytes(data).entries))
    }
  }

  /**
   * Where the object is: this handle's own pending objects, then the indexes. A multi-pack index
   * found damaged here is dropped for the per-pack indexes (rewritten by the next writer's flush).
   */
  private lookup(cid: CID): Entry | undefined {
    const own = this.pending.get(key(cid))
    if (own) return own
    const k = keyOf(cid)
    return k ? this.lookupKey(k) : undefined
  }

  /** A multi-pack index found damaged while read: answer from the per-pack indexes (the next write rebuilds it). */
  private dropDamagedMidx(): void {
    this.midxDamaged = true
    this.view.setMidx(null)
    this.refresh(readdirSync(this.packsDir))
  }

  private lookupKey(k: Buffer): Entry | undefined {
    try {
      return this.view.lookup(k)
    } catch (err) {
      if (!(err instanceof CorruptObjectError)) throw err
      this.dropDamagedMidx()
      return this.view.lookup(k)
    }
  }

  /** lookup for a key in the old form (the CID's bytes as latin1). */
  private lookupCidBytes(k: string): Entry | undefined {
    const own = this.pending.get(k)
    if (own) return own
    const kb = keyOfCidBytes(Buffer.from(k, 'latin1'))
    return kb ? this.lookupKey(kb) : undefined
  }

  private async rescanIfChanged(): Promise<boolean> {
    // asked on every miss (an import's new chunks): a synchronous stat costs microseconds, a
    // thread-pool round trip much more
    const st = statSync(this.packsDir)
    if (st.mtimeMs === this.scannedMtime) return false
    await this.rescan()
    return true
  }

  async has(cid: CID): Promise<boolean> {
    await this.registered()
    if (this.lookup(cid)) return true
    if (await this.rescanIfChanged()) return this.lookup(cid) !== undefined
    return false
  }

  /** Where an object lives (tests use it to damage objects; fsck to report them). */
  async locate(cid: CID): Promise<Entry | undefined> {
    let e = this.lookup(cid)
    if (!e && await this.rescanIfChanged()) e = this.lookup(cid)
    return e ? { ...e } : undefined
  }

  packPath(pack: string): string { return join(this.packsDir, pack) }

  async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (bytes.length > MAX_OBJECT_SIZE) throw new ZooError(`object ${cid} is ${bytes.length} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`, 'E_TOO_LARGE')
    verifyBytes(cid, bytes, 'put')
    return this.putVerified(cid, bytes)
  }

  /**
   * Like put, for bytes whose CID the caller has just computed from them (the add pipeline hashes
   * in worker threads; hashing again here would halve throughput). `rewrite` writes the object
   * into this handle's pack even when another pack has it (gc copying live objects out of a pack).
   */
  putVerified(cid: CID, bytes: Uint8Array, opts: { rewrite?: boolean } = {}): Promise<boolean> {
    // puts on one handle are serialised: one pack is appended to at a time, in call order
    const next = this.writeChain.then(async () => { this.throwIfBroken(); await this.registered(); return this.append(cid, bytes, opts) })
      .catch((err: unknown) => { throw diskFull(err, this.root) })
    this.writeChain = next.catch(() => {})
    return next
  }

  /**
   * putVerified for a run of objects at once (the add pipeline, one slab of a file at a time): the
   * new ones are appended in order with one vectored write, and when the promise settles their bytes
   * are in the kernel, so the caller may reuse the memory they came from. Returns, per object,
   * whether it was newly written. A write error (ENOSPC, EIO) rejects it; nothing is retried.
   */
  putBatchVerified(items: ReadonlyArray<{ cid: CID; bytes: Uint8Array }>): Promise<boolean[]> {
    const next = this.writeChain.then(async () => {
      this.throwIfBroken()
      await this.registered()
      const out: boolean[] = []
      for (const { cid, bytes } of items) {
        if (bytes.length > MAX_OBJECT_SIZE) throw new ZooError(`object ${cid} is ${bytes.length} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`, 'E_TOO_LARGE')
        out.push(await this.append(cid, bytes, { bulk: true }))
      }
      // the caller may reuse the batch's memory once this settles
      if (this.cur) await this.writing(this.cur, (w) => w.release())
      return out
    }).catch((err: unknown) => { throw diskFull(err, this.root) })
    this.writeChain = next.catch(() => {})
    return next
  }

  /**
   * putBatchVerified for a slab of a large file laid out as the pack's bytes (add's zero-copy path,
   * src/ingest/ingest.ts): `slab` starts on a page boundary; item i's bytes are at
   * `slab[off, off + len)` with RECORD_GAP free bytes before each for its record header, the first
   * header at `head` (< DIRECT_ALIGN), each record right after the one before; `slab[0, head)` holds
   * nothing the caller needs. When every item is new (no index or earlier item of the run names it)
   * and its CID is CID_LEN bytes, the headers are written into the gaps and the records appended
   * with one aligned direct write straight from the slab (AppendWriter.appendAligned; buffered mode:
   * one positional write), after a padding record when the pack's end is not at `head` modulo
   * DIRECT_ALIGN (padRecord); the pack is closed after the image once it reaches PACK_TARGET_SIZE
   * (so it may end up to one image past the target). A run where some items are already stored has
   * its new items appended through staging as putBatchVerified does. Entries, pending objects and
   * stored bytes are the same as putBatchVerified's; the caller may
   * reuse the slab once the promise settles, and no byte of the items' ranges is written here.
   */
  putImage(slab: Uint8Array, head: number, items: ReadonlyArray<{ cid: CID; off: number; len: number }>): Promise<boolean[]> {
    // the chain goes on once the image's write is issued (the next slab's write may start while it
    // runs: AppendWriter.issueAligned); the caller gets the slab back once it is written
    let written: Promise<void> = Promise.resolve()
    const next = this.writeChain.then(async () => {
      this.throwIfBroken()
      await this.registered()
      const seen = new Set<string>()
      let image = items.length > 0 && head >= 0 && head < DIRECT_ALIGN
      let at = head
      for (const { cid, off, len } of items) {
        if (len > MAX_OBJECT_SIZE) throw new ZooError(`object ${cid} is ${len} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`, 'E_TOO_LARGE')
        const k = key(cid)
        if (cid.bytes.length !== CID_LEN || off !== at + RECORD_GAP || seen.has(k) || this.lookup(cid)) image = false
        seen.add(k)
        at = off + len
      }
      const out: boolean[] = []
      if (!image) {
        // some are stored already (a fine-tune, a repeated tensor): the new ones through staging
        for (const { cid, off, len } of items) out.push(await this.append(cid, slab.subarray(off, off + len), { bulk: true }))
        if (this.cur) await this.writing(this.cur, (w) => w.release())
        return out
      }
      const cur = this.cur ?? await this.startPack(true)
      if (cur.writer.direct) await this.padRecord(cur, head)
      for (const { cid, off, len } of items) recordHeader(cid, len, slab, off - RECORD_GAP)
      // slab byte x lands at pack offset base + x
      const base = cur.size - head
      await this.writing(cur, async (w) => { written = (await w.issueAligned(slab, head, at - head)).written })
      cur.size += at - head
      for (const { cid, off, len } of items) {
        const k = key(cid)
        cur.entries.push([k, base + off, len])
        this.pending.set(k, { pack: cur.name, offset: base + off, length: len })
        this.storedBytes += len
        out.push(true)
      }
      // the whole image went in this pack: it is closed once it reaches packTarget, as after
      // append()'s records, so it may end up to one image past the target (splitting the slab
      // would copy the records after the split through staging)
      if (cur.size >= this.packTarget) await this.rollover()
      return out
    }).catch((err: unknown) => { throw diskFull(err, this.root) })
    this.writeChain = next.catch(() => {})
    // a failed write was kept by the pack's writer: the next write, flush or close of this handle
    // abandons the pack and throws it too (writing())
    return next.then(async (out) => { await written.catch((err: unknown) => { throw diskFull(err, this.root) }); return out })
  }

  /**
   * Bring the open pack's end to `head` modulo DIRECT_ALIGN with a padding record (spec/format.md,
   * "Image writes and padding records"): an ordinary raw object named by the sha2-256 of its bytes,
   * at least PAD_MIN bytes of record, whose bytes (its pack offset as u64le, the pack's random id,
   * zeros) are unique to this pack and this offset, so it is always written and never deduplicated.
   * Its index entry is written like any other; stored bytes do not count it.
   */
  private async padRecord(cur: NonNullable<LocalStore['cur']>, head: number): Promise<void> {
    let gap = (head - (cur.size % DIRECT_ALIGN) + DIRECT_ALIGN) % DIRECT_ALIGN
    if (gap === 0) return
    if (gap < PAD_MIN) gap += DIRECT_ALIGN
    const offset = cur.size + RECORD_GAP
    const bytes = paddingBytes(cur.name, offset, gap - RECORD_GAP)
    const cid = cidFromDigest(RAW, sha256Of(bytes))
    const hdr = recordHeader(cid, bytes.length)
    cur.size += gap
    await this.writing(cur, (w) => w.append([hdr, bytes]))
    const k = key(cid)
    cur.entries.push([k, offset, bytes.length])
    this.pending.set(k, { pack: cur.name, offset, length: bytes.length })
  }

  /** `bulk`: a run of a large file's chunks (putBatchVerified); a pack it starts is written with direct I/O. */
  private async append(cid: CID, bytes: Uint8Array, opts: { rewrite?: boolean; bulk?: boolean }): Promise<boolean> {
    const k = key(cid)
    if (!opts.rewrite && this.lookup(cid)) return false
    const cur = this.cur ?? await this.startPack(opts.bulk === true)
    const head = recordHeader(cid, bytes.length)
    const offset = cur.size + head.length
    cur.size += head.length + bytes.length
    await this.writing(cur, (w) => w.append([head, bytes]))
    cur.entries.push([k, offset, bytes.length])
    this.pending.set(k, { pack: cur.name, offset, length: bytes.length })
    this.storedBytes += bytes.length
    if (cur.size >= this.packTarget) await this.rollover()
    return true
  }

  /**
   * A new pack, written with O_DIRECT when it starts with bulk data (the chunks of a large file) and
   * the handle allows it; one started by single objects (nodes, small files, fetched or rewritten
   * objects) is written through the page cache, where a few KiB cost less than a direct write of
   * padded blocks (src/cas/append-write.ts).
   */
  private async startPack(bulk: boolean): Promise<NonNullable<LocalStore['cur']>> {
    const name = `pack-${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.pack`
    const writer = await AppendWriter.create(join(this.packsDir, name), this.packsDir, { direct: this.directIO && bulk })
    const cur = { name, writer, size: PACK_MAGIC.length, entries: [] }
    this.cur = cur
    await this.writing(cur, (w) => w.append([PACK_MAGIC]))
    return cur
  }

  /**
   * Run a write of the open pack; a failure (ENOSPC, EIO) abandons the pack (abandonPack) and is
   * thrown as the store's disk-full error where it is one.
   */
  private async writing(cur: NonNullable<LocalStore['cur']>, op: (w: AppendWriter) => Promise<void>): Promise<void> {
    try {
      await op(cur.writer)
    } catch (err) {
      const failure = diskFull(err, this.root) as Error
      await this.abandonPack(cur, failure)
      throw failure
    }
  }

  /** Every byte appended to the open pack `pack` readable through a reader's handle. */
  private async readableIfOpen(pack: string): Promise<void> {
    const cur = this.cur
    if (cur && pack === cur.name) await this.writing(cur, (w) => w.readable())
    // a pack being closed (rollover) has every byte written once its writer has finished
    else await this.finishing.get(pack)
  }

  /** Packs being closed by rollover() whose last writes may still run: their writers' finish(). */
  private readonly finishing = new Map<string, Promise<void>>()

  /**
   * A write to the open pack failed (disk full, I/O error): forget every object of that pack, close
   * it without an index (the next add recovers its complete records, gc removes it otherwise) and
   * fail every later write and flush of this handle with the same error.
   */
  private async abandonPack(cur: NonNullable<LocalStore['cur']>, err: Error): Promise<void> {
    this.broken ??= err
    if (this.cur === cur) this.cur = null
    this.forgetPending(cur)
    await cur.writer.abandon()
    await cur.writer.fd.close().catch(() => {})
  }

  /** Drop the pending entries of a pack (its index is loaded now, or it was abandoned). */
  private forgetPending(cur: { name: string, entries: Triple[] }): void {
    for (const [k] of cur.entries) if (this.pending.get(k)?.pack === cur.name) this.pending.delete(k)
  }

  private throwIfBroken(): void {
    if (this.broken) throw this.broken
  }

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = await this.readUnverified(cid)
    verifyBytes(cid, bytes, `${this.location}`)
    return bytes
  }

  /**
   * The stored bytes of `cid` without checking them: for callers that hash them elsewhere (verify
   * hashes in worker threads). NotFoundError when absent; a missing pack is CorruptObjectError.
   */
  async readUnverified(cid: CID): Promise<Uint8Array> {
    let e = this.lookup(cid)
    if (!e && await this.rescanIfChanged()) e = this.lookup(cid)
    if (!e) throw new NotFoundError(`object ${cid} is not in the local store ${this.location}; run \`git zoo fetch\` to get it from a zoo remote`, { cid: cid.toString() })
    await this.readableIfOpen(e.pack)
    let fd: FileHandle
    try {
      fd = await this.fd(e.pack)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      // gc may have rewritten the pack since this handle read its index: look again, once
      const gone = e.pack
      await this.forgetRemovedPacks()
      e = this.lookup(cid)
      if (!e) throw new NotFoundError(`object ${cid} is not in the local store ${this.location} any more (gc removed it); run \`git zoo fetch\` to get it from a zoo remote`, { cid: cid.toString() }, { cause: err })
      if (e.pack === gone) throw new CorruptObjectError(`object ${cid} is listed in pack ${gone}, which is missing`, { cid: cid.toString(), pack: gone }, { cause: err })
      fd = await this.fd(e.pack)
    }
    const bytes = Buffer.allocUnsafe(e.length)
    const { bytesRead } = await fd.read(bytes, 0, e.length, e.offset)
    return bytesRead === e.length ? bytes : bytes.subarray(0, bytesRead)
  }

  /**
   * Read objects of pack `pack`, unchecked, each to its place in `target` (src/cas/pack-read.ts
   * hashes them): `objects` ascending in the pack, each at `offset` (in the pack) for `len` bytes,
   * to `target[at, at + len)`. One vectored read takes them all; the bytes between them (record
   * headers, small gaps) land in a scratch buffer, so the objects can lie side by side in `target`
   * (get lays a file's chunks out in file order). Bytes past the end of a truncated pack read as
   * zeros, so the objects there fail their check. The fault-injecting wrapper (src/cas/faulty.ts)
   * counts and damages reads per object.
   */
  async readPackObjects(pack: string, objects: readonly PackObject[], target: Uint8Array): Promise<void> {
    if (objects.length === 0) return
    await this.readableIfOpen(pack)
    const fd = await this.fd(pack)
    const parts: Uint8Array[] = []
    let end = objects[0]!.offset
    for (const o of objects) {
      if (o.offset < end) throw new Error(`readPackObjects: objects of ${pack} overlap or are out of order`)
      for (let gap = o.offset - end; gap > 0; gap -= GAP_SCRATCH.length) parts.push(GAP_SCRATCH.subarray(0, Math.min(gap, GAP_SCRATCH.length)))
      parts.push(target.subarray(o.at, o.at + o.len))
      end = o.offset + o.len
    }
    await readAllAt(fd, parts, objects[0]!.offset)
  }

  /** Where an object lives, from what this handle has loaded (no rescan): for batch readers. */
  entryOf(cid: CID): Entry | undefined {
    return this.lookup(cid)
  }

  private async fd(pack: string): Promise<FileHandle> {
    // reads never use the writer's handle, even for the pack being written: rollover closes that
    // handle in the background, and a read in flight on it would fail with EBADF
    // concurrent readers share one open (caching the promise, not the handle, avoids leaking fds)
    let fd = this.fds.get(pack)
    if (!fd) {
      fd = open(join(this.packsDir, pack), 'r')
      this.fds.set(pack, fd)
      fd.catch(() => this.fds.delete(pack))
    }
    return fd
  }

  async *list(): AsyncIterable<CID> {
    await this.rescanIfChanged()
    for (const [cid] of this.entries()) yield cid
  }

  /** Every object once, with its location as lookups answer (for gc and fsck). */
  entries(): Array<[CID, Entry]> {
    const out: Array<[CID, Entry]> = []
    for (const [k, e] of this.pending) out.push([cidOfKey(k), { ...e }])
    const own = this.pending.size === 0 ? undefined : (buf: Buffer, p: number): boolean => this.pending.has(cidBytesAt(buf, p))
    try {
      this.view.forEach((buf, p, loc) => out.push([cidAt(buf, p), loc]), own)
    } catch (err) {
      if (!(err instanceof CorruptObjectError)) throw err
      this.dropDamagedMidx()
      return this.entries()
    }
    return out
  }

  /**
   * Close the current pack and make it durable and visible in the background (fsync, then its
   * index), so the next pack is written while the disk catches up; flush() waits for all of them.
   */
  private async rollover(): Promise<void> {
    const cur = this.cur
    if (!cur) return
    // the pack's last writes, its last partial block and its cut to length, its fsync and its index
    // all run in the background: the next pack's writes start meanwhile, so the disk does not idle
    // between two packs while this one's writes drain
    this.cur = null
    const finished = cur.writer.finish()
    const settledFinish = finished.then(() => {}, () => {})
    this.finishing.set(cur.name, settledFinish)
    const done = (async () => {
      const idx = cur.name.slice(0, -5) + '.idx'
      try {
        try { await finished } finally { this.finishing.delete(cur.name) }
        await cur.writer.fd.sync()
        await cur.writer.fd.close()
        // the folder is fsynced once per flush for every index renamed before it, not once per pack
        this.dirDirty = true
        const bytes = encodeIndexV2(cur.entries)
        await writeFileAtomic(join(this.packsDir, idx), bytes, { syncDir: false })
        this.view.addIdx(idx, new PackIdx(cur.name, bytes))
        this.forgetPending(cur)
      } catch (err) {
        await this.abandonPack(cur, diskFull(err, this.root) as Error)
        throw err
      }
    })()
    done.catch(() => {}) // surfaced by flush()
    this.closing.push(done)
    // bound the packs in flight so a slow disk applies back-pressure
    if (this.closing.length > 2) await this.closing.shift()
  }

  /**
   * Make everything put so far durable and findable: the current pack closed, every pack and its
   * index fsynced and renamed into place, the folder fsynced. A writing handle then keeps the
   * multi-pack index current (maintainIndex); with `index: 'background'` that write runs on while the
   * caller goes on (add commits meanwhile: the per-pack indexes are the authority, the multi-pack
   * index only speeds lookups), and the next flush or close() waits for it.
   */
  async flush(opts: { index?: 'now' | 'background' } = {}): Promise<void> {
    await this.indexing
    await this.writeChain
    this.throwIfBroken()
    await this.rollover()
    const closing = this.closing.splice(0)
    try { await Promise.all(closing) } catch (err) { throw diskFull(err, this.root) }
    if (this.dirDirty) {
      this.dirDirty = false
      await fsyncDir(this.packsDir)
    }
    // a writing handle keeps the multi-pack index current (gc's handles leave it to gc)
    if (!this.writer || this.gcLock) return
    if (opts.index !== 'background') { await this.maintainIndex(); return }
    // a failure is not fatal (maintainIndex); the handle's next flush or close waits for it
    this.indexing = this.maintainIndex().then(() => {}, () => {}).finally(() => { this.indexing = undefined })
  }

  /** The multi-pack index write a `flush({ index: 'background' })` left running. */
  private indexing: Promise<void> | undefined

  /**
   * Write a new multi-pack index when MIDX_THRESHOLD per-pack indexes are not covered by one, or the
   * one there is damaged or names packs gc removed. The per-pack indexes stay the authority: a
   * failure here (a full disk) leaves the old multi-pack index, or none, and the command's objects
   * are durable and found all the same. Returns what was written, or null.
   */
  async maintainIndex(): Promise<MidxWriteResult | null> {
    await this.rescan()
    const m = this.view.midx
    const stale = this.midxDamaged || (m !== null && m.packs.some((p) => this.view.dropped.has(p)))
    const due = stale || this.view.idxs.size >= this.midxThreshold
    if (!due) return null
    let written: MidxWriteResult | null = null
    try {
      written = await writeMultiPackIndex(this.packsDir, { useBase: !this.midxDamaged, crashPoint: this.crashPoint })
    } catch {
      // not fatal: see above
    }
    await this.rescan()
    return written
  }

  async close(): Promise<void> {
    try {
      await this.flush()
    } finally {
      for (const fd of this.fds.values()) await fd.then((h) => h.close()).catch(() => {})
      this.fds.clear()
      this.view.close()
      this.midxIdent = null
      const w = this.writer
      this.writer = null
      if (w) await w.then((h) => h.release(), () => {})
    }
  }

  /**
   * Index the packs that killed writers left without an index (`kill -9`, a power cut), so their
   * objects count as stored and are not written again: each record is checked against its CID
   * (scanPack stops at the first damaged one), the pack is fsynced, then its index written. A pack
   * that may still be written is left alone: one whose name carries the pid of a live process of
   * this host, or, for a name without a pid, any pack while other writers hold locks on the store.
   * Only objects no index lists are indexed (a pack `verify --repair` took out of service stays
   * out); packs with nothing left are left to gc. Returns what was recovered.
   */
  async recoverInterrupted(): Promise<{ packs: number; objects: number; bytes: number }> {
    const out = { packs: 0, objects: 0, bytes: 0 }
    const host = this.host
    if (!host) return out // liveness and writer locks need the Host (Repo.openStore passes it)
    await this.registered() // gc cannot remove a pack while it is being indexed here
    const othersWriting = (await liveWriters(host, this.root)) > 1
    const alive = (pid: number): boolean => host.alive(pid)
    const names = new Set(await readdir(this.packsDir))
    for (const name of names) {
      if (!name.startsWith('pack-') || !name.endsWith('.pack')) continue
      if (names.has(name.slice(0, -5) + '.idx') || this.cur?.name === name) continue
      const m = /^pack-[0-9a-z]+-(\d+)-[0-9a-f]+\.pack$/.exec(name)
      if (m ? alive(Number(m[1])) : othersWriting) continue // this process, or a writer still at work
      const path = join(this.packsDir, name)
      // only objects no index lists: a pack `verify --repair` took out of service stays out
      const entries = (await scanPack(path).catch(() => ({ entries: [] as Triple[] }))).entries.filter(([k]) => !this.lookupCidBytes(k))
      if (entries.length === 0) continue
      const fd = await open(path, 'r')
      try { await fd.sync() } finally { await fd.close() }
      const idx = name.slice(0, -5) + '.idx'
      const bytes = encodeIndexV2(entries)
      await writeFileAtomic(join(this.packsDir, idx), bytes)
      this.view.addIdx(idx, new PackIdx(name, bytes))
      for (const [, , length] of entries) out.bytes += length
      out.packs++
      out.objects += entries.length
    }
    return out
  }

  /**
   * Replace damaged or missing objects with good copies (`git zoo verify --repair`). Each copy is
   * checked against its CID, then all are appended to a new pack, which is made durable and visible
   * (pack fsync, its index renamed into place); only then is every older index that listed a
   * replaced object rewritten without it (temp + fsync + rename), so afterwards each object is listed
   * by exactly one index. An interruption between the two steps leaves both listed: reads may still
   * meet the damaged copy, and running the repair again finishes the job. The damaged bytes stay in
   * their old pack, listed by no index, until gc rewrites that pack.
   */
  async replaceObjects(copies: Array<{ cid: CID; bytes: Uint8Array }>, opts: { afterPack?: () => void } = {}): Promise<void> {
    if (copies.length === 0) return
    for (const { cid, bytes } of copies) verifyBytes(cid, bytes, 'repair')
    await this.rescanIfChanged()
    const replaced = new Set(copies.map(({ cid }) => key(cid)))
    // every index listing a replaced object, including ones this handle loaded second (an object
    // listed twice after an interrupted repair)
    const before = (await readdir(this.packsDir)).filter((n) => n.endsWith('.idx'))
    for (const { cid, bytes } of copies) await this.putVerified(cid, bytes, { rewrite: true })
    await this.flush()
    opts.afterPack?.() // the good copies are durable and visible; the old indexes not yet rewritten
    let rewrote = false
    for (const idxName of before) {
      const idxPath = join(this.packsDir, idxName)
      let entries: Triple[]
      try {
        entries = parseIndex(await readFile(idxPath), idxName)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        if (!(err instanceof CorruptObjectError)) throw err
        entries = (await scanPack(join(this.packsDir, idxName.slice(0, -4) + '.pack')).catch(() => ({ entries: [] }))).entries
      }
      const kept = entries.filter(([k]) => !replaced.has(k))
      if (kept.length === entries.length) continue
      rewrote = true
      if (kept.length === 0) {
        // nothing good is left in that pack: without an index it is an interrupted write to gc
        await rm(idxPath, { force: true })
      } else {
        await writeFileAtomic(idxPath, encodeIndexV2(kept))
      }
      this.view.removeIdx(idxName)
    }
    if (rewrote) {
      await fsyncDir(this.packsDir)
      // a multi-pack index still lists the replaced objects where they were: rebuilt from the
      // per-pack indexes (not merged), or removed when that fails
      if (this.view.midx || this.midxDamaged) {
        try {
          if (!(await writeMultiPackIndex(this.packsDir, { useBase: false, crashPoint: this.crashPoint }))) await rm(join(this.packsDir, MIDX_FILE), { force: true })
        } catch {
          await rm(join(this.packsDir, MIDX_FILE), { force: true })
        }
      }
      await this.rescan()
    }
  }

  /** Forget a pack this handle has open (gc removed or replaced it). */
  async dropPack(pack: string): Promise<void> {
    const fd = this.fds.get(pack)
    if (fd) { this.fds.delete(pack); await fd.then((h) => h.close()).catch(() => {}) }
    for (const [k, e] of this.pending) if (e.pack === pack) this.pending.delete(k)
    this.view.drop(pack)
  }

  /** Remove a pack and its index (index first, so no reader sees an index without its pack). */
  async removePack(pack: string): Promise<void> {
    await this.dropPack(pack)
    await rm(join(this.packsDir, idxOfPack(pack)), { force: true })
    await rm(join(this.packsDir, pack), { force: true })
  }
}

