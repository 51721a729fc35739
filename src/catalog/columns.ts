/**
 * The catalog's columnar cache file (`.zoo/cache/catalog.bin`, layout in spec/catalog.md) and the
 * in-memory column set it is built from.
 *
 *   "ZOOCAT01" | u32 header length | u32 0 | header JSON | sections, each 8-byte aligned
 *
 * Sections (one value per model version, row order = manifest path order):
 *   f64:<col>   Float64Array, NaN = missing         (version, seed, m:<metric>, h:<metric>:<epoch>, ...)
 *   u8:latest   1 for the latest version of its name
 *   u8:current  1 for the latest version of its name that is not retired (the one in service)
 *   str:<col>   u32 offsets[count + 1] then UTF-8   (path, name, seal, pjson, parents JSON, ...)
 *   dict:<col>  u32 codes (0 = missing) + the values as a JSON list in the header's `dicts`
 * The warm path reads the header and then only the sections a query touches.
 */
import { openSync, readSync, closeSync, fstatSync } from 'node:fs'

export const CATALOG_MAGIC = 'ZOOCAT01'
/** Up to this many manifests, every query also checks the work tree (stat of each manifest and folder). */
export const WORKTREE_LIMIT = 1000
export const CATALOG_FORMAT = 6

/** String columns stored dictionary-encoded (few distinct values). */
export function isDictColumn(col: string): boolean {
  return col === 'dataset' || col === 'arch' || col === 'population' || col === 'relations' || col.startsWith('p:')
}

export interface SectionInfo { kind: 'f64' | 'f32' | 'u8' | 'str' | 'dict'; offset: number; length: number; dict?: number }

export interface CatalogHeader {
  format: number
  /** gitKey() when built. */
  key: string
  /** 'worktree': every manifest and folder under models/ was stat'ed (checked on each query); 'git': git-known changes only. */
  mode: 'worktree' | 'git'
  /** Whether history-derived columns (best/max/min, metric@epoch, epochs) were built. */
  history: boolean
  count: number
  built: string
  buildMs: number
  problems: Array<{ path: string; problem: string; blob?: string; mtime?: number; size?: number; ino?: number }>
  problemCount: number
  sections: Record<string, SectionInfo>
  /** Dictionaries of dict sections, by index. */
  dicts: string[][]
  /** Folders under models/ with their mtimes (worktree mode). */
  dirs?: Array<[string, number]>
}

/** Columns under construction: numbers in growable NaN-filled Float64Arrays, strings in arrays. */
export class ColumnSet {
  count = 0
  capacity: number
  num = new Map<string, Float64Array>()
  str = new Map<string, Array<string | undefined>>()
  /** Bumped when the numeric arrays are reallocated (cached references go stale). */
  generation = 0

  constructor(capacity = 1024) { this.capacity = Math.max(16, capacity) }

  private grow(min: number): void {
    let cap = this.capacity
    while (cap < min) cap *= 2
    if (cap === this.capacity) return
    for (const [k, a] of this.num) {
      const b = new Float64Array(cap).fill(NaN)
      b.set(a.subarray(0, Math.min(a.length, this.count)))
      this.num.set(k, b)
    }
    this.capacity = cap
    this.generation++
  }

  /** Make room for one more row and return its index. */
  addRow(): number {
    if (this.count + 1 > this.capacity) this.grow(this.count + 1)
    return this.count++
  }

  /** The array of a numeric column, created (all missing) if needed. Valid until the next grow. */
  column(col: string): Float64Array {
    let a = this.num.get(col)
    if (!a) { a = new Float64Array(this.capacity).fill(NaN); this.num.set(col, a) }
    return a
  }

  setNum(col: string, row: number, v: number): void { this.column(col)[row] = v }

  setStr(col: string, row: number, v: string | undefined): void {
    let a = this.str.get(col)
    if (!a) { a = []; this.str.set(col, a) }
    a[row] = v
  }

  getNum(col: string, row: number): number { return this.num.get(col)?.[row] ?? NaN }
  getStr(col: string, row: number): string | undefined { return this.str.get(col)?.[row] }

  /** A new set with the rows listed in `order`, in that order. */
  permute(order: ArrayLike<number>): ColumnSet {
    const out = new ColumnSet(order.length)
    out.count = order.length
    for (const [k, a] of this.num) {
      const b = new Float64Array(out.capacity).fill(NaN)
      for (let j = 0; j < order.length; j++) b[j] = a[order[j]!]!
      out.num.set(k, b)
    }
    for (const [k, a] of this.str) {
      const b: Array<string | undefined> = new Array(order.length)
      for (let j = 0; j < order.length; j++) b[j] = a[order[j]!]
      out.str.set(k, b)
    }
    return out
  }

  /** Append the rows of `other` (a worker's part). */
  append(other: ColumnSet): void {
    const base = this.count
    this.grow(base + other.count)
    this.count = base + other.count
    for (const [k, a] of other.num) {
      if (!this.num.has(k)) this.num.set(k, new Float64Array(this.capacity).fill(NaN))
      this.num.get(k)!.set(a.subarray(0, other.count), base)
    }
    for (const [k, a] of other.str) {
      let mine = this.str.get(k)
      if (!mine) { mine = []; this.str.set(k, mine) }
      for (let i = 0; i < other.count; i++) if (a[i] !== undefined) mine[base + i] = a[i]
    }
  }

  /** Plain data for postMessage (the Float64Arrays' buffers can be transferred). */
  toMessage(): { count: number; num: Array<[string, Float64Array]>; str: Array<[string, Array<string | undefined>]> } {
    return { count: this.count, num: [...this.num].map(([k, a]) => [k, a.subarray(0, this.count)]), str: [...this.str] }
  }

  static fromMessage(m: ReturnType<ColumnSet['toMessage']>): ColumnSet {
    const c = new ColumnSet(0)
    c.capacity = Math.max(m.count, 1)
    c.count = m.count
    for (const [k, a] of m.num) {
      if (a.length === c.capacity) { c.num.set(k, a); continue }
      const b = new Float64Array(c.capacity).fill(NaN); b.set(a); c.num.set(k, b)
    }
    for (const [k, a] of m.str) c.str.set(k, a)
    return c
  }
}

function align8(n: number): number { return (n + 7) & ~7 }

/** The header fields a build supplies (the rest come from the sections). */
export type HeadFields = Omit<CatalogHeader, 'sections' | 'dicts' | 'count' | 'format'>

/** A section to be written: its name, kind, byte length, and how to fill its bytes. */
type Plan = { name: string; info: Omit<SectionInfo, 'offset' | 'length'>; length: number; fill: (out: Buffer, at: number) => void }

/** u8:latest and u8:current: the latest version of each name, and the latest one in service. */
function latestPlans(n: number, nameAt: (i: number) => string, version: ArrayLike<number> | undefined, retired: ArrayLike<number> | undefined): Plan[] {
  const latest = new Uint8Array(n)
  const current = new Uint8Array(n)
  const best = new Map<string, [number, number]>()
  const inService = new Map<string, [number, number]>()
  for (let i = 0; i < n; i++) {
    const nm = nameAt(i), v = version?.[i] ?? 0
    const cur = best.get(nm)
    if (!cur || cur[1] < v) best.set(nm, [i, v])
    if (retired?.[i] === 1) continue
    const live = inService.get(nm)
    if (!live || live[1] < v) inService.set(nm, [i, v])
  }
  for (const [i] of best.values()) latest[i] = 1
  for (const [i] of inService.values()) current[i] = 1
  return [
    { name: 'u8:latest', info: { kind: 'u8' }, length: n, fill: (out, at) => out.set(latest, at) },
    { name: 'u8:current', info: { kind: 'u8' }, length: n, fill: (out, at) => out.set(current, at) },
  ]
}

/** The file's bytes: magic, header (two passes: its length depends on the offsets in it), sections. */
function assemble(plans: Plan[], head: HeadFields, n: number, dicts: string[][]): Buffer {
  let headerLen = 0
  for (;;) {
    let off = align8(16 + headerLen)
    const sections: Record<string, SectionInfo> = {}
    for (const p of plans) { sections[p.name] = { ...p.info, offset: off, length: p.length }; off = align8(off + p.length) }
    const header: CatalogHeader = { format: CATALOG_FORMAT, count: n, ...head, sections, dicts }
    const hb = Buffer.from(JSON.stringify(header), 'utf8')
    if (hb.length > headerLen) { headerLen = hb.length + 64; continue }
    const out = Buffer.alloc(off)
    out.write(CATALOG_MAGIC, 0, 'latin1')
    out.writeUInt32LE(hb.length, 8)
    hb.copy(out, 16)
    for (const p of plans) p.fill(out, sections[p.name]!.offset)
    return out
  }
}

/** Rows [from, to) of sources[src]: a piece of a composed catalog (composeCatalog). */
export interface RowRun { src: number; from: number; to: number }

/**
 * One catalog from consecutive parts of catalogs (the parts a cold build's workers encoded, or an
 * old cache's unchanged rows around the re-read ones), in the order of `runs`: numeric sections
 * copied run by run (f32 when every source stored f32), string bytes copied and offsets rebased,
 * dictionaries merged and codes renumbered, latest/current recomputed over all rows. Nothing is
 * decoded but names (for latest/current).
 */
export function composeCatalog(sources: CatalogFile[], runs: RowRun[], head: HeadFields): Buffer {
  const n = runs.reduce((a, r) => a + r.to - r.from, 0)
  const plans: Plan[] = []
  const dicts: string[][] = []
  const cols = { num: new Set<string>(), str: new Set<string>(), dict: new Set<string>() }
  for (const p of sources) {
    for (const s of p.sectionNames()) {
      const kind = s.slice(0, s.indexOf(':')), col = s.slice(s.indexOf(':') + 1)
      if (kind === 'f64' || kind === 'f32') cols.num.add(col)
      else if (kind === 'str') cols.str.add(col)
      else if (kind === 'dict') cols.dict.add(col)
    }
  }
  for (const col of [...cols.num].sort()) {
    // a column whose every value left with the rows dropped goes, as a fresh build would leave it out
    const arrays = sources.map((p) => p.f64(col))
    if (!runs.some((r) => { const a = arrays[r.src]; if (a) for (let i = r.from; i < r.to; i++) if (a[i] === a[i]) return true; return false })) continue
    const f32 = sources.every((p) => !p.has(`f64:${col}`))
    plans.push({
      name: `${f32 ? 'f32' : 'f64'}:${col}`, info: { kind: f32 ? 'f32' : 'f64' }, length: n * (f32 ? 4 : 8),
      fill: (out, at) => {
        const view = f32 ? new Float32Array(out.buffer, out.byteOffset + at, n) : new Float64Array(out.buffer, out.byteOffset + at, n)
        const arrays = sources.map((p) => (f32 ? p.f32raw(col) : p.f64(col)))
        let base = 0
        for (const r of runs) {
          const a = arrays[r.src]
          if (a) view.set(a.subarray(r.from, r.to), base)
          else view.fill(NaN, base, base + r.to - r.from)
          base += r.to - r.from
        }
      },
    })
  }
  const names = sources.map((p) => p.strings('name'))
  const nameAt: string[] = []
  for (const r of runs) for (let i = r.from; i < r.to; i++) nameAt.push(names[r.src]![i] ?? '')
  const gather = (col: string): Float64Array => {
    const a = new Float64Array(n).fill(NaN)
    const arrays = sources.map((p) => p.f64(col))
    let base = 0
    for (const r of runs) { const v = arrays[r.src]; if (v) a.set(v.subarray(r.from, r.to), base); base += r.to - r.from }
    return a
  }
  plans.push(...latestPlans(n, (i) => nameAt[i]!, gather('version'), gather('retired')))
  for (const col of [...cols.str].sort()) {
    const raws = sources.map((p) => p.strRaw(col))
    const offsets = new Uint32Array(n + 1)
    let row = 0, pos = 0
    for (const r of runs) {
      const raw = raws[r.src]
      for (let i = r.from; i < r.to; i++, row++) { if (raw) pos += raw.offsets[i + 1]! - raw.offsets[i]!; offsets[row + 1] = pos }
    }
    plans.push({
      name: `str:${col}`, info: { kind: 'str' }, length: (n + 1) * 4 + pos,
      fill: (out, at) => {
        out.set(new Uint8Array(offsets.buffer), at)
        let to = at + (n + 1) * 4
        for (const r of runs) {
          const raw = raws[r.src]
          if (!raw) continue
          const piece = raw.data.subarray(raw.offsets[r.from]!, raw.offsets[r.to]!)
          out.set(piece, to)
          to += piece.length
        }
      },
    })
  }
  for (const col of [...cols.dict].sort()) {
    const values: string[] = []
    const codeOf = new Map<string, number>()
    // codes renumbered in order of first use: values only dropped rows had are left out
    const maps = sources.map((p) => { const d = p.dict(col); return d ? { d, map: new Uint32Array(d.values.length + 1) } : undefined })
    const codes = new Uint32Array(n)
    let row = 0
    for (const r of runs) {
      const m = maps[r.src]
      if (!m) { row += r.to - r.from; continue }
      for (let i = r.from; i < r.to; i++, row++) {
        const local = m.d.codes[i]!
        if (local === 0) continue
        let c = m.map[local]!
        if (c === 0) {
          const v = m.d.values[local - 1]!
          c = codeOf.get(v) ?? 0
          if (c === 0) { values.push(v); c = values.length; codeOf.set(v, c) }
          m.map[local] = c
        }
        codes[row] = c
      }
    }
    if (values.length === 0) continue
    dicts.push(values)
    plans.push({ name: `dict:${col}`, info: { kind: 'dict', dict: dicts.length - 1 }, length: n * 4, fill: (out, at) => out.set(new Uint8Array(codes.buffer), at) })
  }
  return assemble(plans, head, n, dicts)
}

/** The catalogs of consecutive row ranges (a cold build's parts, in row order) as one. */
export function mergeCatalogs(parts: CatalogFile[], head: HeadFields): Buffer {
  return composeCatalog(parts, parts.map((p, src) => ({ src, from: 0, to: p.count })), head)
}

/**
 * Serialize column sets (concatenated in order: the parts of a build) with the header fields into
 * the cache file's bytes, writing each section straight into the one output buffer. A numeric
 * column whose every value is exactly a float32 (metrics logged from float32 tensors usually are)
 * is stored as f32: half the bytes, nothing lost.
 */
export function encodeCatalog(input: ColumnSet | ColumnSet[], head: HeadFields): Buffer {
  const parts = Array.isArray(input) ? input : [input]
  const n = parts.reduce((a, p) => a + p.count, 0)
  const plans: Plan[] = []
  const dicts: string[][] = []
  const numKeys = [...new Set(parts.flatMap((p) => [...p.num.keys()]))].sort()
  for (const k of numKeys) {
    let any = false, f32 = true
    for (const p of parts) {
      const a = p.num.get(k)
      if (!a) continue
      for (let i = 0; i < p.count; i++) {
        const v = a[i]!
        if (v === v) { any = true; if (f32 && Math.fround(v) !== v) f32 = false }
      }
    }
    if (!any) continue
    const width = f32 ? 4 : 8
    plans.push({
      name: `${f32 ? 'f32' : 'f64'}:${k}`, info: { kind: f32 ? 'f32' : 'f64' }, length: n * width,
      fill: (out, at) => {
        const view = f32 ? new Float32Array(out.buffer, out.byteOffset + at, n) : new Float64Array(out.buffer, out.byteOffset + at, n)
        let base = 0
        for (const p of parts) {
          const a = p.num.get(k)
          if (a) view.set(a.subarray(0, p.count), base)
          else view.fill(NaN, base, base + p.count)
          base += p.count
        }
      },
    })
  }
  // latest version of each name, and latest version in service (retired ones skipped)
  const nameAt: string[] = [], version = new Float64Array(n).fill(NaN), retired = new Float64Array(n).fill(NaN)
  for (let base = 0, j = 0; j < parts.length; base += parts[j]!.count, j++) {
    const p = parts[j]!, names = p.str.get('name') ?? []
    for (let i = 0; i < p.count; i++) nameAt.push(names[i]!)
    const v = p.num.get('version'), r = p.num.get('retired')
    if (v) version.set(v.subarray(0, p.count), base)
    if (r) retired.set(r.subarray(0, p.count), base)
  }
  plans.push(...latestPlans(n, (i) => nameAt[i]!, version, retired))
  const strKeys = [...new Set(parts.flatMap((p) => [...p.str.keys()]))].sort()
  for (const k of strKeys) {
    if (isDictColumn(k)) {
      const values: string[] = []
      const codeOf = new Map<string, number>()
      const codes = new Uint32Array(n)
      let row = 0
      for (const p of parts) {
        const a = p.str.get(k)
        for (let i = 0; i < p.count; i++, row++) {
          const s = a?.[i]
          if (s === undefined) continue
          let c = codeOf.get(s)
          if (c === undefined) { values.push(s); c = values.length; codeOf.set(s, c) }
          codes[row] = c
        }
      }
      if (values.length === 0) continue
      dicts.push(values)
      plans.push({ name: `dict:${k}`, info: { kind: 'dict', dict: dicts.length - 1 }, length: n * 4, fill: (out, at) => out.set(new Uint8Array(codes.buffer), at) })
    } else {
      // one UTF-8 encoding of the whole column (per-cell writes cost ~10x more at 50,000 rows);
      // when it is all ASCII, byte offsets are the string lengths
      const cells: string[] = new Array(n)
      let row = 0
      for (const p of parts) {
        const a = p.str.get(k)
        for (let i = 0; i < p.count; i++, row++) cells[row] = a?.[i] ?? ''
      }
      const joined = cells.join('')
      const bytes = Buffer.from(joined, 'utf8')
      const ascii = bytes.length === joined.length
      const offsets = new Uint32Array(n + 1)
      let pos = 0
      for (let i = 0; i < n; i++) { pos += ascii ? cells[i]!.length : Buffer.byteLength(cells[i]!); offsets[i + 1] = pos }
      plans.push({
        name: `str:${k}`, info: { kind: 'str' }, length: (n + 1) * 4 + bytes.length,
        fill: (out, at) => {
          out.set(new Uint8Array(offsets.buffer), at)
          out.set(bytes, at + (n + 1) * 4)
        },
      })
    }
  }
  return assemble(plans, head, n, dicts)
}

function parseHeader(head: Buffer, hb: Buffer, size: number): CatalogHeader {
  if (head.toString('latin1', 0, 8) !== CATALOG_MAGIC) throw new Error('magic')
  const header = JSON.parse(hb.toString('utf8')) as CatalogHeader
  if (header.format !== CATALOG_FORMAT) throw new Error('format')
  for (const s of Object.values(header.sections)) if (s.offset + s.length > size) throw new Error('truncated')
  return header
}

/** A cache file opened for reading: the header at once, sections on first use. */
export class CatalogFile {
  private cache = new Map<string, unknown>()
  private constructor(private source: number | Buffer, readonly header: CatalogHeader, readonly size: number) {}

  /** Undefined when the file is missing, damaged or of another format (it is only a cache). */
  static open(path: string): CatalogFile | undefined {
    let fd: number
    try { fd = openSync(path, 'r') } catch { return undefined }
    try {
      const size = fstatSync(fd).size
      const head = Buffer.alloc(16)
      if (readSync(fd, head, 0, 16, 0) !== 16) throw new Error('short')
      const len = head.readUInt32LE(8)
      if (16 + len > size) throw new Error('short')
      const hb = Buffer.alloc(len)
      readSync(fd, hb, 0, len, 16)
      return new CatalogFile(fd, parseHeader(head, hb, size), size)
    } catch {
      closeSync(fd)
      return undefined
    }
  }

  /** A catalog held in memory (when the cache folder cannot be written). */
  static fromBytes(bytes: Buffer): CatalogFile {
    const len = bytes.readUInt32LE(8)
    return new CatalogFile(bytes, parseHeader(bytes.subarray(0, 16), bytes.subarray(16, 16 + len), bytes.length), bytes.length)
  }

  close(): void { if (typeof this.source === 'number') try { closeSync(this.source) } catch { /* already closed */ } }

  get count(): number { return this.header.count }
  has(section: string): boolean { return section in this.header.sections }
  sectionNames(): string[] { return Object.keys(this.header.sections) }

  private read(name: string, into: Uint8Array): void {
    const s = this.header.sections[name]!
    if (typeof this.source !== 'number') { into.set(this.source.subarray(s.offset, s.offset + s.length)); return }
    let done = 0
    while (done < s.length) {
      const n = readSync(this.source, into, done, s.length - done, s.offset + done)
      if (n === 0) throw new Error(`catalog cache: section ${name} is truncated`)
      done += n
    }
  }

  /** A numeric column as float64 (stored as f64, or as f32 when that was lossless); NaN = missing. */
  f64(col: string): Float64Array | undefined {
    let v = this.cache.get(col) as Float64Array | undefined
    if (v) return v
    if (this.has(`f64:${col}`)) {
      v = new Float64Array(this.count)
      this.read(`f64:${col}`, new Uint8Array(v.buffer))
    } else if (this.has(`f32:${col}`)) {
      const f = new Float32Array(this.count)
      this.read(`f32:${col}`, new Uint8Array(f.buffer))
      // set() converts in one native pass (Float64Array.from iterates: ~10x slower at 50,000 rows)
      v = new Float64Array(this.count)
      v.set(f)
    } else return undefined
    this.cache.set(col, v)
    return v
  }

  /** A column stored as f32, as stored (for merging parts without converting); undefined otherwise. */
  f32raw(col: string): Float32Array | undefined {
    if (!this.has(`f32:${col}`)) return undefined
    let f = this.cache.get(`f32raw:${col}`) as Float32Array | undefined
    if (!f) {
      f = new Float32Array(this.count)
      this.read(`f32:${col}`, new Uint8Array(f.buffer))
      this.cache.set(`f32raw:${col}`, f)
    }
    return f
  }

  /** Every cell of a plain string column ('' for missing ones), decoded in one pass. */
  strings(col: string): string[] {
    const out: string[] = new Array(this.count)
    const s = this.strRaw(col)
    if (!s) return out.fill('')
    const text = s.data.toString('utf8', 0, s.offsets[this.count])
    const ascii = text.length === s.offsets[this.count]
    for (let i = 0; i < this.count; i++) {
      const a = s.offsets[i]!, b = s.offsets[i + 1]!
      out[i] = ascii ? text.slice(a, b) : s.data.toString('utf8', a, b)
    }
    return out
  }

  /** Names of the numeric columns (without the f64:/f32: prefix). */
  numColumns(): string[] {
    return this.sectionNames().filter((s) => s.startsWith('f64:') || s.startsWith('f32:')).map((s) => s.slice(4))
  }

  /** Whether a numeric column exists (stored as f64 or f32). */
  hasNum(col: string): boolean { return this.has(`f64:${col}`) || this.has(`f32:${col}`) }

  /** 1 for the latest version of each name, retired or not. */
  latest(): Uint8Array { return this.u8('u8:latest') }

  /** 1 for the latest version of each name that is not retired (the version a bare name means). */
  current(): Uint8Array { return this.u8('u8:current') }

  /** 1 for retired versions. */
  retired(): Uint8Array {
    let v = this.cache.get('u8:retired') as Uint8Array | undefined
    if (!v) {
      const a = this.f64('retired')
      v = new Uint8Array(this.count)
      if (a) for (let i = 0; i < this.count; i++) if (a[i] === 1) v[i] = 1
      this.cache.set('u8:retired', v)
    }
    return v
  }

  private u8(name: string): Uint8Array {
    let v = this.cache.get(name) as Uint8Array | undefined
    if (!v) { v = new Uint8Array(this.count); if (this.has(name)) this.read(name, v); this.cache.set(name, v) }
    return v
  }

  dict(col: string): { codes: Uint32Array; values: string[] } | undefined {
    const name = `dict:${col}`
    if (!this.has(name)) return undefined
    let v = this.cache.get(name) as { codes: Uint32Array; values: string[] } | undefined
    if (!v) {
      const codes = new Uint32Array(this.count)
      this.read(name, new Uint8Array(codes.buffer))
      v = { codes, values: this.header.dicts[this.header.sections[name]!.dict!]! }
      this.cache.set(name, v)
    }
    return v
  }

  /** A string section as stored: offsets[count + 1] into UTF-8 data. */
  strRaw(col: string): { offsets: Uint32Array; data: Buffer } | undefined {
    const name = `str:${col}`
    if (!this.has(name)) return undefined
    let v = this.cache.get(name) as { offsets: Uint32Array; data: Buffer } | undefined
    if (!v) {
      const s = this.header.sections[name]!
      const all = new Uint8Array(s.length)
      this.read(name, all)
      const offsets = new Uint32Array(all.buffer, 0, this.count + 1)
      v = { offsets, data: Buffer.from(all.buffer, (this.count + 1) * 4) }
      this.cache.set(name, v)
    }
    return v
  }

  /** A string cell, or undefined when the column or the value is absent (or empty). */
  str(col: string, row: number): string | undefined {
    if (isDictColumn(col)) {
      const d = this.dict(col)
      const c = d?.codes[row] ?? 0
      return c === 0 ? undefined : d!.values[c - 1]
    }
    const s = this.strRaw(col)
    if (!s) return undefined
    const a = s.offsets[row]!, b = s.offsets[row + 1]!
    return a === b ? undefined : s.data.toString('utf8', a, b)
  }
}
