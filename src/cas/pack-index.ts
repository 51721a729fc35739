/**
 * The local store's pack indexes, read by binary search over their bytes, never expanded into one
 * object per entry (spec/format.md, "The local store"):
 *
 *   packs/pack-<id>.idx     "ZOOIDX02" | u32le count | fanout: 256 x u32le | records | sha256 of all before
 *                           record (43 bytes): key (33) | u48le offset | u32le length
 *   packs/multi-pack-index  "ZOOMIDX1" | u8 fanout bits B | 3 zero bytes | u32le pack count |
 *                           u32le pack table bytes | pack table: (u8 length, name) per pack, sorted |
 *                           records | fanout: 2^B x u32le | sha256 of all before
 *                           record (47 bytes): key (33) | u32le pack number | u48le offset | u32le length
 *
 * A key is the 32 bytes of the object's digest then a tag byte naming the CID's form: 0x55 raw +
 * sha2-256, 0x71 dag-cbor + sha2-256 (each its codec byte, as before BLAKE3), 0x1e raw + blake3
 * (the BLAKE3 multihash code): every CID the store accepts (checkCidForm) is fully named by those
 * 33 bytes, and sorting by digest spreads the records evenly over the fanout. Fanouts are cumulative counts: entry
 * i is the number of records whose digest's first byte (per-pack) or first B bits (multi-pack) is
 * at most i, so the records of one bucket lie between two fanout entries.
 *
 * A per-pack index is small (one pack of at most 64 MiB): it is read whole and its checksum checked.
 * The multi-pack index covers many packs (millions of objects): it is opened by reading its header,
 * pack table and fanout, and a lookup reads one bucket (a few dozen records) with one positioned
 * read; its checksum is checked whenever it is merged into the next one. The old "ZOOIDX01" per-pack
 * indexes stay readable (sorted in memory when read) and are rewritten as "ZOOIDX02" by the next
 * multi-pack index write.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, readdirSync, readFileSync, writeSync } from 'node:fs'
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { cidFromDigest, RAW, DAG_CBOR, SHA2_256, BLAKE3, sha256, verifyBytes } from './cid.js'
import { CorruptObjectError } from '../errors.js'
import { tempName, fsyncDir, writeFileAtomic } from './atomic.js'

export const IDX_MAGIC_V1 = Buffer.from('ZOOIDX01')
export const IDX_MAGIC = Buffer.from('ZOOIDX02')
export const MIDX_MAGIC = Buffer.from('ZOOMIDX1')
export const PACK_MAGIC = Buffer.from('ZOOPACK1')
/** The multi-pack index's file name in `packs/`. */
export const MIDX_FILE = 'multi-pack-index'
/**
 * A writing command writes a multi-pack index when it flushes and this many per-pack indexes are
 * not covered by one (each costs a binary search per lookup until then).
 */
export const MIDX_THRESHOLD = 16
export const KEY_LEN = 33
const IDX_REC = 43
const IDX_HEAD = 12 + 256 * 4
const MIDX_REC = 47
const MIDX_HEAD = 20
/** A multi-pack bucket larger than this is damage (sha2-256 digests spread evenly). */
const MAX_BUCKET = 65536

/** An index entry as the old API gives it: the CID's bytes as a latin1 string, offset, length. */
export type Triple = [string, number, number]

export interface Located { pack: string; offset: number; length: number }

/** The key tag (byte 33) of raw + blake3 CIDs; the two sha2-256 forms are tagged by their codec byte. */
export const TAG_RAW_BLAKE3 = BLAKE3

/** The key tag of the CID form (codec, multihash code), or -1 for a form the store never holds. */
export function tagOf(codec: number, hash: number): number {
  if (hash === SHA2_256) return codec === RAW || codec === DAG_CBOR ? codec : -1
  return hash === BLAKE3 && codec === RAW ? TAG_RAW_BLAKE3 : -1
}

/** The codec and multihash code a key tag stands for (a tag tagOf gives). */
function formOfTag(tag: number): [codec: number, hash: number] {
  return tag === TAG_RAW_BLAKE3 ? [RAW, BLAKE3] : [tag, SHA2_256]
}

/** The 33-byte key of a CID, or null for a CID of a form the store never holds. */
export function keyOf(cid: CID): Buffer | null {
  const mh = cid.multihash
  const tag = cid.version === 1 && mh.digest.length === 32 ? tagOf(cid.code, mh.code) : -1
  if (tag < 0) return null
  const k = Buffer.allocUnsafe(KEY_LEN)
  k.set(mh.digest, 0)
  k[32] = tag
  return k
}

/** The key tag of CID bytes at `p` in `b` (36 bytes: 0x01, codec, multihash code, 0x20, digest), or -1. */
function tagOfCidBytesAt(b: Uint8Array, p: number, len: number): number {
  if (len !== 36 || b[p] !== 1 || b[p + 3] !== 32) return -1
  return tagOf(b[p + 1]!, b[p + 2]!)
}

/** The key of a CID given as its bytes (36 for every accepted form), or null. */
export function keyOfCidBytes(b: Uint8Array): Buffer | null {
  const tag = tagOfCidBytesAt(b, 0, b.length)
  if (tag < 0) return null
  const k = Buffer.allocUnsafe(KEY_LEN)
  k.set(b.subarray(4), 0)
  k[32] = tag
  return k
}

/** The CID whose key is at `at` in `buf` (the bytes are copied). */
export function cidAt(buf: Uint8Array, at: number): CID {
  const [codec, hash] = formOfTag(buf[at + 32]!)
  return cidFromDigest(codec, buf.slice(at, at + 32), hash)
}

/** The CID's bytes (as a latin1 string, the old index API's key) of the key at `at`. */
export function cidBytesAt(buf: Buffer, at: number): string {
  const b = Buffer.allocUnsafe(36)
  const [codec, hash] = formOfTag(buf[at + 32]!)
  b[0] = 1; b[1] = codec; b[2] = hash; b[3] = 32
  buf.copy(b, 4, at, at + 32)
  return b.toString('latin1')
}

/** Compare the key at `p` in `buf` with `k`: negative, zero or positive. */
function cmpAt(buf: Buffer, p: number, k: Buffer): number {
  const a = buf.readUInt32BE(p), b = k.readUInt32BE(0)
  if (a !== b) return a < b ? -1 : 1
  return buf.compare(k, 0, KEY_LEN, p, p + KEY_LEN)
}

/** Binary search records [lo, hi) of `size` bytes from `base` for `k`: the record's position, or -1. */
function search(buf: Buffer, base: number, size: number, lo: number, hi: number, k: Buffer): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const p = base + mid * size
    const c = cmpAt(buf, p, k)
    if (c === 0) return p
    if (c < 0) lo = mid + 1; else hi = mid
  }
  return -1
}

function readU48(buf: Buffer, p: number): number { return buf.readUIntLE(p, 6) }
function writeU48(buf: Buffer, v: number, p: number): void { buf.writeUIntLE(v, p, 6) }

function damaged(name: string, why: string): never {
  throw new CorruptObjectError(`pack index ${name} is damaged (${why})`, { pack: name })
}

/** One pack's index in memory: its "ZOOIDX02" bytes, searched in place. */
export class PackIdx {
  readonly count: number
  /** Whether it was read from an old "ZOOIDX01" file (rewritten as v2 by the next multi-pack index write). */
  legacy = false
  /**
   * A bitmap of digest bits 16.. of every key (about 8 bits per record): most keys this pack does
   * not hold are refused without a search, so a lookup that misses costs little per uncovered pack.
   */
  private readonly filter: Uint8Array
  private readonly mask: number
  constructor(readonly pack: string, readonly buf: Buffer) {
    this.count = buf.readUInt32LE(8)
    const bits = Math.min(24, Math.max(10, Math.ceil(Math.log2(Math.max(1, this.count) * 8))))
    this.mask = (1 << bits) - 1
    this.filter = new Uint8Array(1 << (bits - 3))
    for (let i = 0; i < this.count; i++) {
      const p = IDX_HEAD + i * IDX_REC
      const h = ((buf[p + 2]! << 16) | (buf[p + 3]! << 8) | buf[p + 4]!) & this.mask
      this.filter[h >>> 3]! |= 1 << (h & 7)
    }
  }

  find(k: Buffer): { offset: number; length: number } | undefined {
    const h = ((k[2]! << 16) | (k[3]! << 8) | k[4]!) & this.mask
    if ((this.filter[h >>> 3]! & (1 << (h & 7))) === 0) return undefined
    const b = k[0]!
    const lo = b === 0 ? 0 : this.buf.readUInt32LE(12 + (b - 1) * 4)
    const hi = this.buf.readUInt32LE(12 + b * 4)
    const p = search(this.buf, IDX_HEAD, IDX_REC, lo, hi, k)
    return p < 0 ? undefined : { offset: readU48(this.buf, p + KEY_LEN), length: this.buf.readUInt32LE(p + KEY_LEN + 6) }
  }

  /** Position of record `i`'s key in `buf`. */
  at(i: number): number { return IDX_HEAD + i * IDX_REC }
  offsetAt(p: number): number { return readU48(this.buf, p + KEY_LEN) }
  lengthAt(p: number): number { return this.buf.readUInt32LE(p + KEY_LEN + 6) }
}

/** A ZOOIDX02 body's count and cumulative fanout written, cut to `end`, its checksum appended. */
function sealV2(body: Buffer, fan: Uint32Array, end: number, count: number): Buffer {
  body.writeUInt32LE(count, 8)
  let sum = 0
  for (let b = 0; b < 256; b++) { sum += fan[b]!; body.writeUInt32LE(sum, 12 + b * 4) }
  const used = body.subarray(0, end)
  return Buffer.concat([used, sha256(used)])
}

/** Encode a per-pack index ("ZOOIDX02") from old-style entries (CID bytes as latin1). */
export function encodeIndexV2(entries: ReadonlyArray<Triple>): Buffer {
  const keyed: Array<{ k: Buffer; offset: number; length: number }> = []
  for (const [c, offset, length] of entries) {
    const k = keyOfCidBytes(Buffer.from(c, 'latin1'))
    if (!k) throw new Error(`internal: an object of a CID form the store does not hold reached its index (${Buffer.from(c, 'latin1').toString('hex')})`)
    keyed.push({ k, offset, length })
  }
  keyed.sort((a, b) => Buffer.compare(a.k, b.k))
  const body = Buffer.alloc(IDX_HEAD + keyed.length * IDX_REC)
  IDX_MAGIC.copy(body, 0)
  let n = 0
  const fan = new Uint32Array(256)
  let p = IDX_HEAD
  for (let i = 0; i < keyed.length; i++) {
    const e = keyed[i]!
    if (i > 0 && e.k.equals(keyed[i - 1]!.k)) continue // the same object twice in one pack: one record
    e.k.copy(body, p); writeU48(body, e.offset, p + KEY_LEN); body.writeUInt32LE(e.length, p + KEY_LEN + 6)
    fan[e.k[0]!]!++
    p += IDX_REC; n++
  }
  return sealV2(body, fan, p, n)
}

/** Encode an old "ZOOIDX01" index (remote packs still use this layout; tests write old stores with it). */
export function encodeIndex(entries: ReadonlyArray<Triple>): Buffer {
  const parts: Buffer[] = [IDX_MAGIC_V1]
  const head = Buffer.alloc(4); head.writeUInt32LE(entries.length); parts.push(head)
  for (const [k, offset, length] of entries) {
    const kb = Buffer.from(k, 'latin1')
    const e = Buffer.alloc(1 + kb.length + 12)
    e[0] = kb.length; kb.copy(e, 1)
    e.writeUInt32LE(offset % 2 ** 32, 1 + kb.length)
    e.writeUInt32LE(Math.floor(offset / 2 ** 32), 5 + kb.length)
    e.writeUInt32LE(length, 9 + kb.length)
    parts.push(e)
  }
  const body = Buffer.concat(parts)
  return Buffer.concat([body, createHash('sha256').update(body).digest()])
}

function checksumOk(bytes: Buffer): boolean {
  return bytes.length >= 32 && sha256(bytes.subarray(0, bytes.length - 32)).every((b, i) => b === bytes[bytes.length - 32 + i])
}

function checkV2(bytes: Buffer, name: string): void {
  if (bytes.length < IDX_HEAD + 32) damaged(name, 'truncated')
  const count = bytes.readUInt32LE(8)
  if (IDX_HEAD + count * IDX_REC + 32 !== bytes.length) damaged(name, 'wrong length')
  let prev = 0
  for (let b = 0; b < 256; b++) {
    const f = bytes.readUInt32LE(12 + b * 4)
    if (f < prev) damaged(name, 'fanout out of order')
    prev = f
  }
  if (prev !== count) damaged(name, 'fanout does not add up')
}

/**
 * A per-pack index file's bytes, either version, checked: its "ZOOIDX02" bytes, and whether they were
 * converted from an old "ZOOIDX01" index (sorted in memory). CorruptObjectError when damaged.
 */
function checkedV2(bytes: Buffer, name: string): { buf: Buffer; legacy: boolean } {
  if (bytes.length < 8 + 4 + 32) damaged(name, 'bad header')
  const magic = bytes.subarray(0, 8)
  if (!magic.equals(IDX_MAGIC) && !magic.equals(IDX_MAGIC_V1)) damaged(name, 'bad header')
  if (!checksumOk(bytes)) damaged(name, 'checksum mismatch')
  if (magic.equals(IDX_MAGIC_V1)) return { buf: convertV1(bytes, name), legacy: true }
  checkV2(bytes, name)
  return { buf: bytes, legacy: false }
}

/**
 * Read a per-pack index file's bytes, either version, checksum checked (CorruptObjectError when
 * damaged). A "ZOOIDX01" index is sorted into "ZOOIDX02" bytes in memory (`legacy` set).
 */
export function readPackIdx(bytes: Buffer, name: string, pack: string): PackIdx {
  const { buf, legacy } = checkedV2(bytes, name)
  const idx = new PackIdx(pack, buf)
  idx.legacy = legacy
  return idx
}

/**
 * "ZOOIDX02" bytes from a checked "ZOOIDX01" index: records gathered unsorted, then sorted by a
 * radix pass on the first 16 bits of the digest and insertion within each (tiny) bucket. Entries of
 * a CID form the store never holds are left out.
 */
function convertV1(bytes: Buffer, name: string): Buffer {
  const end = bytes.length - 32
  const count = bytes.readUInt32LE(8)
  const recs = Buffer.allocUnsafe(count * IDX_REC)
  let n = 0
  let p = 12
  for (let i = 0; i < count; i++) {
    if (p + 1 > end) damaged(name, 'truncated')
    const len = bytes[p]!; p += 1
    if (p + len + 12 > end) damaged(name, 'truncated')
    const tag = tagOfCidBytesAt(bytes, p, len)
    if (tag >= 0) {
      const r = n * IDX_REC
      bytes.copy(recs, r, p + 4, p + 36); recs[r + 32] = tag
      const offset = bytes.readUInt32LE(p + 36) + bytes.readUInt32LE(p + 40) * 2 ** 32
      writeU48(recs, offset, r + KEY_LEN)
      recs.writeUInt32LE(bytes.readUInt32LE(p + 44), r + KEY_LEN + 6)
      n++
    }
    p += len + 12
  }
  if (p !== end) damaged(name, 'trailing bytes')
  const order = radixOrder(n, (i) => (recs[i * IDX_REC]! << 8) | recs[i * IDX_REC + 1]!, (a, b) => recs.compare(recs, b * IDX_REC, b * IDX_REC + KEY_LEN, a * IDX_REC, a * IDX_REC + KEY_LEN))
  const body = Buffer.alloc(IDX_HEAD + n * IDX_REC)
  IDX_MAGIC.copy(body, 0)
  const fan = new Uint32Array(256)
  let m = 0
  let q = IDX_HEAD
  for (let j = 0; j < n; j++) {
    const r = order[j]! * IDX_REC
    if (m > 0 && body.compare(recs, r, r + KEY_LEN, q - IDX_REC, q - IDX_REC + KEY_LEN) === 0) continue // listed twice: one record
    recs.copy(body, q, r, r + IDX_REC)
    fan[recs[r]!]!++
    q += IDX_REC; m++
  }
  return sealV2(body, fan, q, m)
}

/**
 * The order of `n` items sorted by a 16-bit bucket (`bucket(i)`), then by `cmp` inside a bucket
 * (insertion sort: with sha2-256 keys a bucket holds a few items).
 */
function radixOrder(n: number, bucket: (i: number) => number, cmp: (a: number, b: number) => number): Uint32Array {
  const counts = new Uint32Array(65537)
  for (let i = 0; i < n; i++) counts[bucket(i) + 1]!++
  for (let b = 1; b <= 65536; b++) counts[b]! += counts[b - 1]!
  const fill = counts.slice(0, 65536)
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[fill[bucket(i)]!++] = i
  for (let b = 0; b < 65536; b++) {
    const lo = counts[b]!, hi = counts[b + 1]!
    for (let i = lo + 1; i < hi; i++) {
      const x = order[i]!
      let k = i - 1
      while (k >= lo && cmp(order[k]!, x) > 0) { order[k + 1] = order[k]!; k-- }
      order[k + 1] = x
    }
  }
  return order
}

/**
 * An index file (either version) as old-style entries, in key order, each object once (entries of
 * a CID form the store never holds are left out); throws CorruptObjectError when damaged.
 */
export function parseIndex(bytes: Buffer, name: string): Triple[] {
  const { buf } = checkedV2(bytes, name)
  const count = buf.readUInt32LE(8)
  const out: Triple[] = []
  for (let i = 0, p = IDX_HEAD; i < count; i++, p += IDX_REC) out.push([cidBytesAt(buf, p), readU48(buf, p + KEY_LEN), buf.readUInt32LE(p + KEY_LEN + 6)])
  return out
}

/** Read a pack's records straight from the pack file (used to rebuild a lost index and by fsck). */
export async function scanPack(path: string): Promise<{ entries: Triple[], validBytes: number }> {
  return scanPackBytes(await readFile(path))
}

/** A pack's complete records, each checked against its CID, up to the first damaged one. */
export function scanPackBytes(data: Buffer): { entries: Triple[], validBytes: number } {
  const entries: Triple[] = []
  if (data.length < 8 || !data.subarray(0, 8).equals(PACK_MAGIC)) return { entries, validBytes: 0 }
  let p = 8
  while (p + 4 <= data.length) {
    const n = data.readUInt32LE(p)
    if (n > 64 || p + 4 + n + 4 > data.length) break
    const k = data.subarray(p + 4, p + 4 + n)
    const len = data.readUInt32LE(p + 4 + n)
    const start = p + 8 + n
    if (start + len > data.length) break
    try { verifyBytes(CID.decode(k), data.subarray(start, start + len)) } catch { break }
    entries.push([k.toString('latin1'), start, len])
    p = start + len
  }
  return { entries, validBytes: p }
}

/** Whether a file name in `packs/` is a per-pack index. */
export function isIdxName(name: string): boolean { return name.startsWith('pack-') && name.endsWith('.idx') }
export function packOfIdx(name: string): string { return name.slice(0, -4) + '.pack' }
export function idxOfPack(pack: string): string { return pack.slice(0, -5) + '.idx' }

const PACK_NAME = /^pack-[0-9A-Za-z_-]+\.pack$/

/**
 * A multi-pack index whose records take at most this many bytes (22,310 objects, ~5 GiB of 256 KiB
 * chunks) is read whole when it is opened and searched in memory: a get or verify of 1 GiB looks up
 * ~4,100 chunks, and one positioned read per lookup was ~4,100 system calls on the main thread.
 */
export const MIDX_RESIDENT_BYTES = 1 << 20

/**
 * The multi-pack index, read with positioned reads (its fd stays open until close()), or, when small,
 * with its records read once at open (`MIDX_RESIDENT_BYTES`).
 */
export class MultiPackIndex {
  private scratch = Buffer.allocUnsafe(64 * MIDX_REC)
  private constructor(readonly path: string, private fd: number, readonly size: number, readonly bits: number,
                      readonly packs: string[], readonly recStart: number, readonly count: number,
                      private readonly fan: Uint32Array, private readonly records: Buffer | null) {}

  /**
   * Open and check the header, pack table and fanout; CorruptObjectError when they are wrong.
   * Records of at most `residentBytes` are read at once and searched in memory.
   */
  static open(path: string, residentBytes = MIDX_RESIDENT_BYTES): MultiPackIndex {
    const fd = openSync(path, 'r')
    try {
      const st = fstatSync(fd)
      const size = st.size
      const name = MIDX_FILE
      const head = Buffer.alloc(MIDX_HEAD)
      if (size < MIDX_HEAD + 32 || readSync(fd, head, 0, MIDX_HEAD, 0) !== MIDX_HEAD || !head.subarray(0, 8).equals(MIDX_MAGIC)) damaged(name, 'bad header')
      const bits = head[8]!
      if (bits < 8 || bits > 16 || head[9] !== 0 || head[10] !== 0 || head[11] !== 0) damaged(name, 'bad header')
      const packCount = head.readUInt32LE(12), tableBytes = head.readUInt32LE(16)
      const fanBytes = 4 << bits
      if (MIDX_HEAD + tableBytes + fanBytes + 32 > size || tableBytes > packCount * 256) damaged(name, 'bad header')
      const table = Buffer.alloc(tableBytes)
      if (readSync(fd, table, 0, tableBytes, MIDX_HEAD) !== tableBytes) damaged(name, 'truncated')
      const packs: string[] = []
      let p = 0
      for (let i = 0; i < packCount; i++) {
        const n = table[p]
        if (n === undefined || p + 1 + n > tableBytes) damaged(name, 'bad pack table')
        const pack = table.subarray(p + 1, p + 1 + n).toString('latin1')
        if (!PACK_NAME.test(pack) || (i > 0 && pack <= packs[i - 1]!)) damaged(name, 'bad pack table')
        packs.push(pack)
        p += 1 + n
      }
      if (p !== tableBytes) damaged(name, 'bad pack table')
      const fanBuf = Buffer.alloc(fanBytes)
      if (readSync(fd, fanBuf, 0, fanBytes, size - 32 - fanBytes) !== fanBytes) damaged(name, 'truncated')
      const fan = new Uint32Array(1 << bits)
      const raw = new DataView(fanBuf.buffer, fanBuf.byteOffset, fanBytes)
      let prev = 0
      for (let b = 0; b < fan.length; b++) {
        const f = raw.getUint32(b * 4, true)
        if (f < prev) damaged(name, 'fanout out of order')
        fan[b] = prev = f
      }
      const recStart = MIDX_HEAD + tableBytes
      if (recStart + prev * MIDX_REC + fanBytes + 32 !== size) damaged(name, 'wrong length')
      let records: Buffer | null = null
      if (prev * MIDX_REC <= residentBytes) {
        records = Buffer.allocUnsafe(prev * MIDX_REC)
        let got = 0
        while (got < records.length) {
          const n = readSync(fd, records, got, records.length - got, recStart + got)
          if (n === 0) damaged(name, 'truncated')
          got += n
        }
      }
      return new MultiPackIndex(path, fd, size, bits, packs, recStart, prev, fan, records)
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /** Read `len` bytes at `pos` (a fresh buffer). */
  read(pos: number, len: number): Buffer {
    const b = Buffer.allocUnsafe(len)
    let got = 0
    while (got < len) {
      const n = readSync(this.fd, b, got, len - got, pos + got)
      if (n === 0) damaged(MIDX_FILE, 'truncated')
      got += n
    }
    return b
  }

  /** The object's pack and place, or undefined; CorruptObjectError when the bucket read is damaged. */
  find(k: Buffer): Located | undefined {
    const b = ((k[0]! << 8) | k[1]!) >>> (16 - this.bits)
    const lo = b === 0 ? 0 : this.fan[b - 1]!
    const n = this.fan[b]! - lo
    if (n === 0) return undefined
    if (n > MAX_BUCKET) damaged(MIDX_FILE, 'bucket too large')
    let buf: Buffer, p: number
    if (this.records) {
      buf = this.records
      p = search(buf, 0, MIDX_REC, lo, lo + n, k)
    } else {
      if (this.scratch.length < n * MIDX_REC) this.scratch = Buffer.allocUnsafe(n * MIDX_REC * 2)
      const len = n * MIDX_REC
      const got = readSync(this.fd, this.scratch, 0, len, this.recStart + lo * MIDX_REC)
      if (got !== len) damaged(MIDX_FILE, 'truncated')
      buf = this.scratch
      p = search(buf, 0, MIDX_REC, 0, n, k)
    }
    if (p < 0) return undefined
    const packNo = buf.readUInt32LE(p + KEY_LEN)
    if (packNo >= this.packs.length) damaged(MIDX_FILE, 'record names no pack')
    return { pack: this.packs[packNo]!, offset: readU48(buf, p + KEY_LEN + 4), length: buf.readUInt32LE(p + KEY_LEN + 10) }
  }

  /**
   * Every record in order, in chunks: `fn(buf, p)` per record (key at p, then u32 pack number,
   * u48 offset, u32 length). `onChunk` sees each chunk's bytes in file order (checksums).
   */
  forEach(fn: (buf: Buffer, p: number) => void, onChunk?: (bytes: Buffer) => void): void {
    const per = 22310 // records per ~1 MiB read
    const buf = Buffer.allocUnsafe(per * MIDX_REC)
    for (let i = 0; i < this.count; i += per) {
      const n = Math.min(per, this.count - i)
      const len = n * MIDX_REC
      let got = 0
      while (got < len) {
        const r = readSync(this.fd, buf, got, len - got, this.recStart + i * MIDX_REC + got)
        if (r === 0) damaged(MIDX_FILE, 'truncated')
        got += r
      }
      const chunk = buf.subarray(0, len)
      onChunk?.(chunk)
      for (let p = 0; p < len; p += MIDX_REC) fn(chunk, p)
    }
  }

  static packAt(buf: Buffer, p: number): number { return buf.readUInt32LE(p + KEY_LEN) }
  static offsetAt(buf: Buffer, p: number): number { return readU48(buf, p + KEY_LEN + 4) }
  static lengthAt(buf: Buffer, p: number): number { return buf.readUInt32LE(p + KEY_LEN + 10) }

  /** Whether the whole file matches its checksum trailer (reads it all). */
  checksumOk(): boolean {
    const h = createHash('sha256')
    const step = 1 << 20
    for (let pos = 0; pos < this.size - 32; pos += step) h.update(this.read(pos, Math.min(step, this.size - 32 - pos)))
    return h.digest().equals(this.read(this.size - 32, 32))
  }

  close(): void {
    if (this.fd >= 0) { closeSync(this.fd); this.fd = -1 }
  }
}

/**
 * What one store handle knows of the indexes: the multi-pack index (when there is a usable one),
 * the per-pack indexes it does not cover, and the packs dropped since (gc removed them). Lookups go
 * to the multi-pack index first, then to the per-pack indexes, oldest pack (smallest name) first: an
 * object listed twice (a `verify --repair` or a gc rewrite cut short) is found where it was first
 * listed, until the repair run again or gc removes the older listing. A record naming a dropped
 * pack is not an answer.
 */
export class IndexView {
  midx: MultiPackIndex | null = null
  /** The multi-pack index's packs by name (a Set for coverage checks). */
  private covered = new Set<string>()
  readonly idxs = new Map<string, PackIdx>()
  private order: PackIdx[] = []
  readonly dropped = new Set<string>()

  setMidx(m: MultiPackIndex | null): void {
    if (this.midx && this.midx !== m) this.midx.close()
    this.midx = m
    this.covered = new Set(m ? m.packs : [])
    // per-pack indexes it covers are no longer needed in memory
    if (m) for (const [name, idx] of this.idxs) if (this.covered.has(idx.pack)) this.idxs.delete(name)
    this.reorder()
  }

  /** Whether the multi-pack index covers this pack (and it was not dropped). */
  covers(pack: string): boolean { return this.covered.has(pack) && !this.dropped.has(pack) }

  addIdx(name: string, idx: PackIdx): void { this.idxs.set(name, idx); this.dropped.delete(idx.pack); this.reorder() }

  removeIdx(name: string): void { if (this.idxs.delete(name)) this.reorder() }

  drop(pack: string): void {
    this.dropped.add(pack)
    this.removeIdx(idxOfPack(pack))
  }

  private reorder(): void {
    this.order = [...this.idxs.values()].sort((a, b) => (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : 0))
  }

  /** Where the object with key `k` is, or undefined. A damaged multi-pack index throws CorruptObjectError. */
  lookup(k: Buffer): Located | undefined {
    const m = this.midx?.find(k)
    if (m && !this.dropped.has(m.pack)) return m
    for (const idx of this.order) {
      const r = idx.find(k)
      if (r) return { pack: idx.pack, offset: r.offset, length: r.length }
    }
    return undefined
  }

  /** Whether a source before per-pack index number `before` answers for `k`. */
  private answeredBefore(k: Buffer, before: number): boolean {
    const m = this.midx?.find(k)
    if (m && !this.dropped.has(m.pack)) return true
    for (let i = 0; i < before; i++) if (this.order[i]!.find(k)) return true
    return false
  }

  /**
   * Every object once, as lookups answer: the multi-pack index, then the per-pack indexes oldest
   * first, an object skipped where a source before it holds it. `skip(keyBuf, p)` may leave out
   * more (the caller's own pending objects).
   */
  forEach(fn: (buf: Buffer, p: number, loc: Located) => void, skip?: (buf: Buffer, p: number) => boolean): void {
    const key = Buffer.allocUnsafe(KEY_LEN)
    const m = this.midx
    m?.forEach((buf, p) => {
      const pack = m.packs[MultiPackIndex.packAt(buf, p)]
      if (pack === undefined) damaged(MIDX_FILE, 'record names no pack')
      if (this.dropped.has(pack)) return
      if (skip?.(buf, p)) return
      fn(buf, p, { pack, offset: MultiPackIndex.offsetAt(buf, p), length: MultiPackIndex.lengthAt(buf, p) })
    })
    for (let s = 0; s < this.order.length; s++) {
      const idx = this.order[s]!
      for (let i = 0; i < idx.count; i++) {
        const p = idx.at(i)
        if (skip?.(idx.buf, p)) continue
        idx.buf.copy(key, 0, p, p + KEY_LEN)
        if (this.answeredBefore(key, s)) continue
        fn(idx.buf, p, { pack: idx.pack, offset: idx.offsetAt(p), length: idx.lengthAt(p) })
      }
    }
  }

  close(): void { this.midx?.close(); this.midx = null }
}

/**
 * Open the multi-pack index of `packsDir` for a view, given the per-pack index names present: null
 * when there is none or it is damaged (then `damaged` is true). Packs it names whose index is gone
 * (gc removed them) are dropped in the view.
 */
export function openMidx(packsDir: string): { midx: MultiPackIndex | null; damaged: boolean } {
  try {
    return { midx: MultiPackIndex.open(join(packsDir, MIDX_FILE)), damaged: false }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { midx: null, damaged: false }
    if (err instanceof CorruptObjectError) return { midx: null, damaged: true }
    throw err
  }
}

/**
 * A synchronous, read-only view of a store's indexes (the catalog's build workers read checkpoint
 * nodes synchronously): the multi-pack index and the per-pack indexes it does not cover; a damaged
 * or vanished per-pack index is left out (its objects are not found here).
 */
export function openViewSync(packsDir: string): IndexView {
  const view = new IndexView()
  let names: string[] = []
  try { names = readdirSync(packsDir) } catch { return view }
  const present = new Set(names.filter(isIdxName))
  if (names.includes(MIDX_FILE)) {
    const { midx } = openMidx(packsDir)
    view.setMidx(midx)
    if (midx) for (const pack of midx.packs) if (!present.has(idxOfPack(pack))) view.dropped.add(pack)
  }
  for (const name of present) {
    const pack = packOfIdx(name)
    if (view.covers(pack)) continue
    try { view.addIdx(name, readPackIdx(readFileSync(join(packsDir, name)), name, pack)) } catch { /* damaged or gone */ }
  }
  return view
}

async function identity(path: string): Promise<string | null> {
  const st = await stat(path).catch(() => null)
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : null
}

export interface MidxWriteOptions {
  /** Merge the current multi-pack index (checksum checked) instead of reading every per-pack index. */
  useBase?: boolean
  /** Named crash point `midx-written` (spec/reliability.md). */
  crashPoint?: (name: string) => void | Promise<void>
}

export interface MidxWriteResult { packs: number; objects: number; rewrittenIdx: number }

/**
 * Write `packs/multi-pack-index` covering every per-pack index present: the current multi-pack index
 * (when `useBase` and it is whole; its records of packs whose index is gone are left out) merged
 * with the per-pack indexes it does not cover, or every per-pack index. An object in several packs
 * gets the record of the oldest pack (the smallest name), as lookups answer (IndexView). Old "ZOOIDX01" and damaged per-pack
 * indexes met on the way are rewritten as "ZOOIDX02" (a damaged one rebuilt from its pack) first.
 * Streamed to a temp file (fsynced), renamed into place, the folder fsynced. If a per-pack index it
 * read changed meanwhile (a concurrent `verify --repair` rewrote it), it is written again from the
 * per-pack indexes, and removed if that happens twice: a multi-pack index never answers for an
 * index it did not see. Returns null when there was nothing to write.
 */
export async function writeMultiPackIndex(packsDir: string, opts: MidxWriteOptions = {}): Promise<MidxWriteResult | null> {
  let useBase = opts.useBase ?? true
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await writeOnce(packsDir, useBase, opts.crashPoint)
    if (r === 'base-damaged') { useBase = false; continue }
    if (r === 'changed') { useBase = false; continue }
    return r
  }
  await rm(join(packsDir, MIDX_FILE), { force: true })
  await fsyncDir(packsDir)
  return null
}

async function writeOnce(packsDir: string, useBase: boolean, crashPoint?: (name: string) => void | Promise<void>): Promise<MidxWriteResult | null | 'base-damaged' | 'changed'> {
  const names = await readdir(packsDir)
  const idxNames = names.filter(isIdxName).sort()
  const present = new Set(idxNames)
  const idents = new Map<string, string | null>()
  let base: MultiPackIndex | null = null
  if (useBase && names.includes(MIDX_FILE)) base = openMidx(packsDir).midx
  try {
    const baseLive = new Set<string>() // the base's packs still present
    if (base) for (const pack of base.packs) if (present.has(idxOfPack(pack))) baseLive.add(pack)
    for (const pack of baseLive) idents.set(idxOfPack(pack), await identity(join(packsDir, idxOfPack(pack))))
    // the per-pack indexes the base does not cover, each checked; old and damaged ones rewritten
    const sources: PackIdx[] = []
    let rewrittenIdx = 0
    for (const name of idxNames) {
      const pack = packOfIdx(name)
      if (baseLive.has(pack)) continue
      const path = join(packsDir, name)
      let bytes: Buffer
      try { bytes = await readFile(path) } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw err
      }
      let idx: PackIdx
      try {
        idx = readPackIdx(bytes, name, pack)
        if (idx.legacy) { await writeFileAtomic(path, idx.buf, { syncDir: false }); rewrittenIdx++ }
      } catch (err) {
        if (!(err instanceof CorruptObjectError)) throw err
        const rebuilt = (await scanPack(join(packsDir, pack)).catch(() => ({ entries: [] as Triple[] }))).entries
        idx = new PackIdx(pack, encodeIndexV2(rebuilt))
        await writeFileAtomic(path, idx.buf, { syncDir: false })
        rewrittenIdx++
      }
      idents.set(name, await identity(path))
      sources.push(idx)
    }
    if (!base && sources.length === 0) {
      // no pack is left: a multi-pack index there names only packs that are gone
      if (names.includes(MIDX_FILE)) { await rm(join(packsDir, MIDX_FILE), { force: true }); await fsyncDir(packsDir) }
      return null
    }
    const packs = [...new Set([...baseLive, ...sources.map((s) => s.pack)])].sort()
    const packNo = new Map(packs.map((p, i) => [p, i]))
    let total = base?.count ?? 0
    for (const s of sources) total += s.count
    const bits = Math.min(16, Math.max(8, Math.ceil(Math.log2(Math.max(1, total / 32)))))
    const sorted = sortSources(sources)

    const target = join(packsDir, MIDX_FILE)
    const tmp = tempName(target)
    // written synchronously: the merge streams the base through a small buffer, so no output piles up
    const fd = openSync(tmp, 'wx', 0o444)
    let ok = false
    let count = 0
    try {
      const hash = createHash('sha256')
      const table = Buffer.concat(packs.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])))
      const head = Buffer.alloc(MIDX_HEAD)
      MIDX_MAGIC.copy(head, 0); head[8] = bits
      head.writeUInt32LE(packs.length, 12); head.writeUInt32LE(table.length, 16)
      let pos = 0
      const writeOut = (b: Buffer): void => {
        hash.update(b)
        let done = 0
        while (done < b.length) done += writeSync(fd, b, done, b.length - done, pos + done)
        pos += b.length
      }
      writeOut(Buffer.concat([head, table]))
      const out = Buffer.allocUnsafe(22310 * MIDX_REC)
      let outLen = 0
      const counts = new Uint32Array(1 << bits)
      const shift = 16 - bits
      const emit = (buf: Buffer, p: number, pack: number, offset: number, length: number): void => {
        buf.copy(out, outLen, p, p + KEY_LEN)
        out.writeUInt32LE(pack, outLen + KEY_LEN)
        writeU48(out, offset, outLen + KEY_LEN + 4)
        out.writeUInt32LE(length, outLen + KEY_LEN + 10)
        counts[((buf[p]! << 8) | buf[p + 1]!) >>> shift]!++
        count++
        outLen += MIDX_REC
        if (outLen === out.length) { writeOut(out); outLen = 0 }
      }
      // merge the sorted per-pack records (the small side, in memory) into the base's stream
      let si = 0
      const emitSource = (j: number): void => {
        const s = sources[sorted.src[j]!]!
        const p = sorted.pos[j]!
        emit(s.buf, p, packNo.get(s.pack)!, s.offsetAt(p), s.lengthAt(p))
      }
      /** Pass the sorted records whose key is the one at (buf, p): the oldest pack's position, or -1. */
      const takeEqual = (buf: Buffer, p: number): number => {
        let best = -1
        while (si < sorted.n) {
          const s = sources[sorted.src[si]!]!
          const sp = sorted.pos[si]!
          if (s.buf.compare(buf, p, p + KEY_LEN, sp, sp + KEY_LEN) !== 0) break
          if (best < 0 || s.pack < sources[sorted.src[best]!]!.pack) best = si
          si++
        }
        return best
      }
      /** Emit the sorted records before the key at (buf, p) (all of them when buf is null). */
      const emitSourcesBefore = (buf: Buffer | null, p: number): void => {
        while (si < sorted.n) {
          const s = sources[sorted.src[si]!]!
          const sp = sorted.pos[si]!
          if (buf && s.buf.compare(buf, p, p + KEY_LEN, sp, sp + KEY_LEN) >= 0) break
          emitSource(takeEqual(s.buf, sp))
        }
      }
      if (base) {
        const b = base
        const baseHash = createHash('sha256')
        baseHash.update(b.read(0, b.recStart))
        // the base's pack numbers in the new table (-1: the pack is gone)
        const renumber = new Int32Array(b.packs.length).fill(-1)
        b.packs.forEach((pk, i) => { if (baseLive.has(pk)) renumber[i] = packNo.get(pk)! })
        // the first 4 bytes of the next per-pack record's key: most base records are below it and
        // need no full comparison
        const nextHead = (): number => {
          if (si >= sorted.n) return 0x100000000
          const s = sources[sorted.src[si]!]!
          return s.buf.readUInt32BE(sorted.pos[si]!)
        }
        let head = nextHead()
        let prev = -1
        const prevKey = Buffer.allocUnsafe(KEY_LEN)
        b.forEach((buf, p) => {
          const h = buf.readUInt32BE(p)
          // records in strictly increasing key order, or the base is damaged
          if (h < prev || (h === prev && buf.compare(prevKey, 0, KEY_LEN, p, p + KEY_LEN) <= 0)) throw new BaseOrder()
          if (h !== prev) prev = h
          buf.copy(prevKey, 0, p, p + KEY_LEN)
          const num = MultiPackIndex.packAt(buf, p)
          if (num >= renumber.length) throw new BaseOrder()
          let best = -1
          if (h >= head) {
            emitSourcesBefore(buf, p)
            best = takeEqual(buf, p)
            head = nextHead()
          }
          const to = renumber[num]!
          if (best >= 0 && (to < 0 || sources[sorted.src[best]!]!.pack < b.packs[num]!)) { emitSource(best); return }
          if (to < 0) { if (best >= 0) emitSource(best); return }
          buf.copy(out, outLen, p, p + MIDX_REC)
          out.writeUInt32LE(to, outLen + KEY_LEN)
          counts[((buf[p]! << 8) | buf[p + 1]!) >>> shift]!++
          count++
          outLen += MIDX_REC
          if (outLen === out.length) { writeOut(out); outLen = 0 }
        }, (chunk) => baseHash.update(chunk))
        const fanBytes = 4 << b.bits
        baseHash.update(b.read(b.size - 32 - fanBytes, fanBytes))
        if (!baseHash.digest().equals(b.read(b.size - 32, 32))) return 'base-damaged'
      }
      emitSourcesBefore(null, 0)
      if (outLen > 0) writeOut(out.subarray(0, outLen))
      const fan = Buffer.alloc(4 << bits)
      let sum = 0
      for (let i = 0; i < counts.length; i++) { sum += counts[i]!; fan.writeUInt32LE(sum, i * 4) }
      writeOut(fan)
      const trailer = hash.digest()
      let done = 0
      while (done < 32) done += writeSync(fd, trailer, done, 32 - done, pos + done)
      fsyncSync(fd)
      ok = true
    } catch (err) {
      if (err instanceof BaseOrder || err instanceof CorruptObjectError) return 'base-damaged'
      throw err
    } finally {
      closeSync(fd)
      if (!ok) await rm(tmp, { force: true })
    }
    await crashPoint?.('midx-written')
    await rename(tmp, target)
    await fsyncDir(packsDir)
    // a per-pack index rewritten meanwhile (verify --repair): this multi-pack index may be stale
    for (const [name, id] of idents) if (await identity(join(packsDir, name)) !== id) return 'changed'
    return { packs: packs.length, objects: count, rewrittenIdx }
  } finally {
    base?.close()
  }
}

class BaseOrder extends Error {}

/** Every record of the per-pack indexes in key order: each record's source and its key's position in that source's bytes. */
function sortSources(sources: PackIdx[]): { src: Uint32Array; pos: Uint32Array; n: number } {
  let n = 0
  for (const s of sources) n += s.count
  const from = new Uint32Array(n), at = new Uint32Array(n)
  let j = 0
  for (let si = 0; si < sources.length; si++) for (let i = 0; i < sources[si]!.count; i++) { from[j] = si; at[j] = sources[si]!.at(i); j++ }
  const order = radixOrder(n, (x) => { const b = sources[from[x]!]!.buf, p = at[x]!; return (b[p]! << 8) | b[p + 1]! },
    (x, y) => sources[from[x]!]!.buf.compare(sources[from[y]!]!.buf, at[y]!, at[y]! + KEY_LEN, at[x]!, at[x]! + KEY_LEN))
  const src = new Uint32Array(n), pos = new Uint32Array(n)
  for (let k = 0; k < n; k++) { src[k] = from[order[k]!]!; pos[k] = at[order[k]!]! }
  return { src, pos, n }
}
