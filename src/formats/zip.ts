/**
 * ZIP archives (PyTorch checkpoints, .npz): the central directory and local headers only. Nothing
 * is ever extracted or decompressed here. Hostile input is a FormatError: code E_ZIP for structure,
 * E_ZIP_PATH for entry names that would escape a folder if someone did extract them.
 */
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
