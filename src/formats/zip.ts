/**
 * ZIP archives (PyTorch checkpoints, .npz): the central directory and local headers only. Nothing
 * is ever extracted or decompressed here. Hostile input is a FormatError: code E_ZIP for structure,
 * E_ZIP_PATH for entry names that would escape a folder if someone did extract them.
 */
import * as zlib from 'node:zlib'
import { FormatError } from '../errors.js'
import { describeBig, readExact, safeNumber, view, type ReadAt } from './reader.js'

export interface ZipEntry {
  name: string
  /** 0 = stored, 8 = deflate, ... */
  method: number
  flags: number
  crc32: number
  compressedSize: number
  uncompressedSize: number
  localHeaderOffset: number
  /** Where the entry's (possibly compressed) bytes begin: after the local header, name and extra. */
  dataOffset: number
}

export interface ZipLayout {
  entries: ZipEntry[]
  centralDirectoryOffset: number
  centralDirectorySize: number
  zip64: boolean
}

const CODE = 'E_ZIP'
/** Implementation limits: central directories above this size or entry count are refused. */
export const ZIP_MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024
export const ZIP_MAX_ENTRIES = 1 << 20

const SIG_LOCAL = 0x04034b50
const SIG_CENTRAL = 0x02014b50
const SIG_EOCD = 0x06054b50
const SIG_ZIP64_LOCATOR = 0x07064b50
const SIG_ZIP64_EOCD = 0x06064b50

function fail(message: string, data: Record<string, unknown> = {}): never {
  throw new FormatError(`zip: ${message}`, CODE, data)
}

/** Why `name` is unsafe as an extraction path, or undefined when it is fine. */
export function hostileZipName(name: string): string | undefined {
  if (name.length === 0) return 'empty name'
  if (name.includes('\0')) return 'NUL in name'
  if (name.startsWith('/') || name.startsWith('\\')) return 'absolute path'
  if (/^[A-Za-z]:/.test(name)) return 'drive-letter path'
  if (name.split(/[/\\]/).some((part) => part === '..')) return '".." path component'
  return undefined
}

const utf8 = new TextDecoder('utf-8')

/** Reads the end records, the central directory and every local header; validates extents. */
export async function readZipLayout(read: ReadAt, size: number): Promise<ZipLayout> {
  if (size < 22) fail(`file is ${size} bytes, too short for an end of central directory record`)
  const tailLength = Math.min(size, 22 + 0xffff)
  const tailStart = size - tailLength
  const tail = await readExact(read, tailStart, tailLength)
  const tv = view(tail)
  let eocd = -1
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) <= tailLength) { eocd = i; break }
  }
  if (eocd < 0) fail('no end of central directory record')
  const eocdOffset = tailStart + eocd
  const diskNumber = tv.getUint16(eocd + 4, true)
  const cdDisk = tv.getUint16(eocd + 6, true)
  let entryCount: bigint = BigInt(tv.getUint16(eocd + 10, true))
  let cdSize: bigint = BigInt(tv.getUint32(eocd + 12, true))
  let cdOffset: bigint = BigInt(tv.getUint32(eocd + 16, true))
  if (diskNumber !== 0 || cdDisk !== 0) fail('multi-disk archives are not supported')
  let cdLimit = eocdOffset // the central directory must end before the end records
  let zip64 = false
  if (eocdOffset >= 20) {
    const loc = await readExact(read, eocdOffset - 20, 20)
    const lv = view(loc)
    if (lv.getUint32(0, true) === SIG_ZIP64_LOCATOR) {
      zip64 = true
      const recOffset = lv.getBigUint64(8, true)
      if (recOffset + 56n > BigInt(eocdOffset - 20)) fail(`zip64 end record offset ${describeBig(recOffset)} is out of range`)
      const rec = view(await readExact(read, Number(recOffset), 56))
      if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) fail('zip64 locator does not point at a zip64 end record')
      if (rec.getUint32(16, true) !== 0 || rec.getUint32(20, true) !== 0) fail('multi-disk archives are not supported')
      entryCount = rec.getBigUint64(32, true)
      cdSize = rec.getBigUint64(40, true)
      cdOffset = rec.getBigUint64(48, true)
      cdLimit = Number(recOffset)
    }
  }
  if (cdSize > BigInt(ZIP_MAX_CENTRAL_DIRECTORY)) fail(`central directory of ${describeBig(cdSize)} bytes is over the ${ZIP_MAX_CENTRAL_DIRECTORY}-byte limit`)
  if (cdOffset + cdSize > BigInt(cdLimit)) fail(`central directory [${cdOffset}, +${cdSize}) runs past its end record at ${cdLimit}`)
  if (entryCount > cdSize / 46n) fail(`${describeBig(entryCount)} entries cannot fit in a ${cdSize}-byte central directory`)
  if (entryCount > BigInt(ZIP_MAX_ENTRIES)) fail(`${entryCount} entries is over the ${ZIP_MAX_ENTRIES}-entry limit`)
  const cdStart = Number(cdOffset)
  const cd = await readExact(read, cdStart, Number(cdSize))
  const entries = parseCentralDirectory(cd, Number(entryCount), cdStart)
  await readLocalHeaders(read, entries, cdStart)
  return { entries, centralDirectoryOffset: cdStart, centralDirectorySize: cd.length, zip64 }
}

function parseCentralDirectory(cd: Uint8Array, count: number, cdStart: number): ZipEntry[] {
  const dv = view(cd)
  const entries: ZipEntry[] = []
  let p = 0
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || dv.getUint32(p, true) !== SIG_CENTRAL) fail(`central directory entry ${i} is missing or truncated`)
    const flags = dv.getUint16(p + 8, true)
    const method = dv.getUint16(p + 10, true)
    const crc32 = dv.getUint32(p + 16, true)
    let compressed: bigint = BigInt(dv.getUint32(p + 20, true))
    let uncompressed: bigint = BigInt(dv.getUint32(p + 24, true))
    const nameLen = dv.getUint16(p + 28, true)
    const extraLen = dv.getUint16(p + 30, true)
    const commentLen = dv.getUint16(p + 32, true)
    const disk = dv.getUint16(p + 34, true)
    let local: bigint = BigInt(dv.getUint32(p + 42, true))
    const end = p + 46 + nameLen + extraLen + commentLen
    if (end > cd.length) fail(`central directory entry ${i} runs past the directory`)
    const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen))
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen)
    if (uncompressed === 0xffffffffn || compressed === 0xffffffffn || local === 0xffffffffn) {
      const z = zip64Extra(extra, uncompressed === 0xffffffffn, compressed === 0xffffffffn, local === 0xffffffffn, name)
      uncompressed = z.uncompressed ?? uncompressed
      compressed = z.compressed ?? compressed
      local = z.local ?? local
    }
    if (disk !== 0 && disk !== 0xffff) fail(`entry ${JSON.stringify(name)} is on disk ${disk}`)
    const why = hostileZipName(name)
    if (why) throw new FormatError(`zip: hostile entry name ${JSON.stringify(name)}: ${why}`, 'E_ZIP_PATH', { name, reason: why })
    const localHeaderOffset = safeNumber(local, `entry ${JSON.stringify(name)} local header offset`, CODE)
    if (localHeaderOffset + 30 > cdStart) fail(`entry ${JSON.stringify(name)} local header offset ${localHeaderOffset} is out of range`)
    entries.push({
      name, method, flags, crc32,
      compressedSize: safeNumber(compressed, `entry ${JSON.stringify(name)} compressed size`, CODE),
      uncompressedSize: safeNumber(uncompressed, `entry ${JSON.stringify(name)} size`, CODE),
      localHeaderOffset, dataOffset: -1,
    })
    p = end
  }
  return entries
}

function zip64Extra(extra: Uint8Array, wantU: boolean, wantC: boolean, wantL: boolean, name: string):
    { uncompressed?: bigint; compressed?: bigint; local?: bigint } {
  const dv = view(extra)
  for (let p = 0; p + 4 <= extra.length;) {
    const id = dv.getUint16(p, true)
    const len = dv.getUint16(p + 2, true)
    if (p + 4 + len > extra.length) break
    if (id === 0x0001) {
      const out: { uncompressed?: bigint; compressed?: bigint; local?: bigint } = {}
      let q = p + 4
      const take = (): bigint => {
        if (q + 8 > p + 4 + len) fail(`entry ${JSON.stringify(name)} has a short zip64 extra field`)
        const v = dv.getBigUint64(q, true)
        q += 8
        return v
      }
      if (wantU) out.uncompressed = take()
      if (wantC) out.compressed = take()
      if (wantL) out.local = take()
      return out
    }
    p += 4 + len
  }
  return fail(`entry ${JSON.stringify(name)} needs a zip64 extra field and has none`)
}

/** Reads each local header to find where data begins; checks entries neither overlap nor escape. */
async function readLocalHeaders(read: ReadAt, entries: ZipEntry[], cdStart: number): Promise<void> {
  // Local headers are small and often close together: read them through a 64 KiB window.
  let win: Uint8Array = new Uint8Array(0)
  let winStart = 0
  for (const e of entries) {
    const off = e.localHeaderOffset
    if (off < winStart || off + 30 > winStart + win.length) {
      winStart = off
      win = await readExact(read, off, Math.min(64 * 1024, cdStart - off))
    }
    const dv = view(win)
    const at = off - winStart
    if (dv.getUint32(at, true) !== SIG_LOCAL) fail(`entry ${JSON.stringify(e.name)} has no local header at ${off}`)
    const nameLen = dv.getUint16(at + 26, true)
    const extraLen = dv.getUint16(at + 28, true)
    e.dataOffset = off + 30 + nameLen + extraLen
    if (e.dataOffset + e.compressedSize > cdStart) {
      fail(`entry ${JSON.stringify(e.name)} data [${e.dataOffset}, +${e.compressedSize}) runs into the central directory at ${cdStart}`)
    }
  }
  const byOffset = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset)
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!
    const cur = byOffset[i]!
    if (prev.dataOffset + prev.compressedSize > cur.localHeaderOffset) {
      fail(`entries ${JSON.stringify(prev.name)} and ${JSON.stringify(cur.name)} overlap`)
    }
  }
}

/**
 * Segment lengths (summing to `fileSize`, each > 0) with a boundary at the start and at the end of
 * every stored (method 0) entry's data, so each stored tensor is its own segment.
 */
export function zipSegments(entries: ZipEntry[], fileSize: number): number[] {
  const cuts = new Set<number>([0, fileSize])
  for (const e of entries) {
    if (e.method !== 0 || e.compressedSize === 0) continue
    if (e.dataOffset < 0 || e.dataOffset + e.compressedSize > fileSize) fail(`entry ${JSON.stringify(e.name)} lies outside the file`)
    cuts.add(e.dataOffset)
    cuts.add(e.dataOffset + e.compressedSize)
  }
  const sorted = [...cuts].sort((a, b) => a - b)
  const segments: number[] = []
  for (let i = 1; i < sorted.length; i++) segments.push(sorted[i]! - sorted[i - 1]!)
  return segments
}

/** Writes `bytes` at byte `position` of the output. */
export type WriteAt = (bytes: Uint8Array, position: number) => Promise<void>

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[i] = c >>> 0
  }
  return t
})()

/** CRC-32 (the zip polynomial) of `bytes` continuing from `crc`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32
  if (native) return native(bytes, crc) >>> 0
  let c = ~crc >>> 0
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

interface WrittenEntry { name: Buffer; size: number; crc: number; offset: number; zip64: boolean }

const U32_MAX = 0xffffffff
const PAD_ID = 0x4246 // 'FB': the padding extra field torch.save also uses to align tensor data

/**
 * A streaming writer of stored (uncompressed) zip archives: each entry's size is declared up front,
 * its bytes are appended in pieces (the CRC is computed on the way and written back into the local
 * header), so memory stays independent of the entry sizes. Entry data is aligned to `align` bytes
 * (as torch.save aligns storages to 64), and zip64 records are written where sizes or offsets need
 * them (`forceZip64` writes them always, for tests).
 */
export class ZipWriter {
  private pos = 0
  private readonly done: WrittenEntry[] = []
  private cur: (WrittenEntry & { written: number; local: number }) | undefined

  constructor(private readonly write: WriteAt, private readonly opts: { align?: number; forceZip64?: boolean } = {}) {}

  /** Bytes written so far: during an entry, where its next byte goes. */
  get offset(): number { return this.pos }

  private async put(bytes: Uint8Array): Promise<void> {
    await this.write(bytes, this.pos)
    this.pos += bytes.length
  }

  /** Starts a stored entry of exactly `size` bytes; returns the offset its data starts at. */
  async begin(name: string, size: number): Promise<number> {
    if (this.cur) throw new Error(`zip writer: entry ${this.cur.name.toString()} is not finished`)
    const why = hostileZipName(name)
    if (why) fail(`cannot write entry ${JSON.stringify(name)}: ${why}`)
    const nameBytes = Buffer.from(name, 'utf8')
    const zip64 = this.opts.forceZip64 === true || size >= U32_MAX
    const z64 = zip64 ? 20 : 0
    const align = this.opts.align ?? 1
    let pad = 0
    if (align > 1) {
      const dataAt = this.pos + 30 + nameBytes.length + z64
      pad = (align - (dataAt % align)) % align
      if (pad > 0 && pad < 4) pad += align
    }
    const head = Buffer.alloc(30 + nameBytes.length + z64 + pad)
    head.writeUInt32LE(SIG_LOCAL, 0)
    head.writeUInt16LE(zip64 ? 45 : 20, 4)
    head.writeUInt16LE(0x0800, 6) // names are UTF-8
    head.writeUInt16LE(0, 8)
    head.writeUInt16LE(0, 10)
    head.writeUInt16LE(0x21, 12) // 1980-01-01
    head.writeUInt32LE(0, 14) // CRC, written back in end()
    head.writeUInt32LE(zip64 ? U32_MAX : size, 18)
    head.writeUInt32LE(zip64 ? U32_MAX : size, 22)
    head.writeUInt16LE(nameBytes.length, 26)
    head.writeUInt16LE(z64 + pad, 28)
    nameBytes.copy(head, 30)
    let p = 30 + nameBytes.length
    if (zip64) {
      head.writeUInt16LE(0x0001, p); head.writeUInt16LE(16, p + 2)
      head.writeBigUInt64LE(BigInt(size), p + 4); head.writeBigUInt64LE(BigInt(size), p + 12)
      p += 20
    }
    if (pad) { head.writeUInt16LE(PAD_ID, p); head.writeUInt16LE(pad - 4, p + 2) }
    const local = this.pos
    await this.put(head)
    this.cur = { name: nameBytes, size, crc: 0, offset: local, zip64, written: 0, local }
    return this.pos
  }

  /** Appends bytes of the current entry. */
  async data(bytes: Uint8Array): Promise<void> {
    const c = this.cur
    if (!c) throw new Error('zip writer: data outside an entry')
    if (c.written + bytes.length > c.size) throw new Error(`zip writer: entry ${c.name.toString()} is longer than the ${c.size} bytes declared`)
    c.crc = crc32(bytes, c.crc)
    c.written += bytes.length
    await this.put(bytes)
  }

  /** Ends the current entry: its length must be the size declared. */
  async end(): Promise<void> {
    const c = this.cur
    if (!c) throw new Error('zip writer: end outside an entry')
    if (c.written !== c.size) throw new Error(`zip writer: entry ${c.name.toString()} got ${c.written} of the ${c.size} bytes declared`)
    const crc = Buffer.alloc(4)
    crc.writeUInt32LE(c.crc, 0)
    await this.write(crc, c.local + 14)
    this.done.push({ name: c.name, size: c.size, crc: c.crc, offset: c.offset, zip64: c.zip64 })
    this.cur = undefined
  }

  /** A whole small entry. */
  async add(name: string, bytes: Uint8Array): Promise<number> {
    const at = await this.begin(name, bytes.length)
    await this.data(bytes)
    await this.end()
    return at
  }

  /** Writes the central directory and end records; returns the archive's size. */
  async finish(): Promise<number> {
    if (this.cur) throw new Error(`zip writer: entry ${this.cur.name.toString()} is not finished`)
    const force = this.opts.forceZip64 === true
    const cdStart = this.pos
    const parts: Buffer[] = []
    for (const e of this.done) {
      const bigSize = e.zip64
      const bigOffset = force || e.offset >= U32_MAX
      const fields: bigint[] = []
      if (bigSize) fields.push(BigInt(e.size), BigInt(e.size))
      if (bigOffset) fields.push(BigInt(e.offset))
      const extraLen = fields.length ? 4 + 8 * fields.length : 0
      const h = Buffer.alloc(46 + e.name.length + extraLen)
      h.writeUInt32LE(SIG_CENTRAL, 0)
      h.writeUInt16LE(fields.length ? 45 : 20, 4)
      h.writeUInt16LE(fields.length ? 45 : 20, 6)
      h.writeUInt16LE(0x0800, 8)
      h.writeUInt16LE(0, 10)
      h.writeUInt16LE(0, 12)
      h.writeUInt16LE(0x21, 14)
      h.writeUInt32LE(e.crc, 16)
      h.writeUInt32LE(bigSize ? U32_MAX : e.size, 20)
      h.writeUInt32LE(bigSize ? U32_MAX : e.size, 24)
      h.writeUInt16LE(e.name.length, 28)
      h.writeUInt16LE(extraLen, 30)
      h.writeUInt32LE(bigOffset ? U32_MAX : e.offset, 42)
      e.name.copy(h, 46)
      if (fields.length) {
        let p = 46 + e.name.length
        h.writeUInt16LE(0x0001, p); h.writeUInt16LE(8 * fields.length, p + 2); p += 4
        for (const f of fields) { h.writeBigUInt64LE(f, p); p += 8 }
      }
      parts.push(h)
    }
    const cd = Buffer.concat(parts)
    await this.put(cd)
    const count = this.done.length
    const z64 = force || this.done.some((e) => e.zip64) || cdStart >= U32_MAX || cd.length >= U32_MAX || count >= 0xffff
    if (z64) {
      const rec = Buffer.alloc(56 + 20)
      const recAt = this.pos
      rec.writeUInt32LE(SIG_ZIP64_EOCD, 0)
      rec.writeBigUInt64LE(44n, 4)
      rec.writeUInt16LE(45, 12)
      rec.writeUInt16LE(45, 14)
      rec.writeBigUInt64LE(BigInt(count), 24)
      rec.writeBigUInt64LE(BigInt(count), 32)
      rec.writeBigUInt64LE(BigInt(cd.length), 40)
      rec.writeBigUInt64LE(BigInt(cdStart), 48)
      rec.writeUInt32LE(SIG_ZIP64_LOCATOR, 56)
      rec.writeBigUInt64LE(BigInt(recAt), 64)
      rec.writeUInt32LE(1, 72)
      await this.put(rec)
    }
    const end = Buffer.alloc(22)
    end.writeUInt32LE(SIG_EOCD, 0)
    end.writeUInt16LE(z64 ? 0xffff : count, 8)
    end.writeUInt16LE(z64 ? 0xffff : count, 10)
    end.writeUInt32LE(z64 ? U32_MAX : cd.length, 12)
    end.writeUInt32LE(z64 ? U32_MAX : cdStart, 16)
    await this.put(end)
    return this.pos
  }
}
