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
export const CATALOG_FORMAT = 7

/** String columns stored dictionary-encoded (few distinct values). */
export function isDictColumn(col: string): boolean {
  return col === 'dataset' || col === 'arch' || col === 'population' || col === 'relations' || col === 'promoter' || col === 'pjson' || col.startsWith('p:')
}

/** `values`: for a dict section, how many distinct values its `dv:` section holds. */
export interface SectionInfo { kind: 'f64' | 'f32' | 'u8' | 'str' | 'dict' | 'dv'; offset: number; length: number; values?: number }

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
  /** Folders under models/ with their mtimes (worktree mode). */
  dirs?: Array<[string, number]>
}

/**
 * A string column under construction, held as the cache file stores it: UTF-8 bytes and row offsets
 * (no JS string per cell, so a cold build leaves the garbage collector nothing to copy per row).
 * Rows are written in increasing order (the last row may be written again); rows never written are
 * empty, which the file does not tell apart from missing.
 */
export class TextColumn {
  offsets: Uint32Array
  data: Buffer
  /** offsets[0..rows] are final. */
  rows = 0

  constructor(capacity: number) {
    this.offsets = new Uint32Array(capacity + 1)
    this.data = Buffer.allocUnsafe(Math.max(256, capacity * 16))
  }

  /** Make room for `bytes` more bytes at `row`, padding skipped rows as empty; the byte position. */
  private at(row: number, bytes: number): number {
    if (row < this.rows) {
      if (row !== this.rows - 1) throw new Error(`catalog column written out of order (row ${row} after ${this.rows - 1})`)
      this.rows = row // write the last row again
    }
    if (row + 2 > this.offsets.length) {
      const o = new Uint32Array(Math.max(row + 2, this.offsets.length * 2))
      o.set(this.offsets.subarray(0, this.rows + 1))
      this.offsets = o
    }
    const end = this.offsets[this.rows]!
    for (let r = this.rows; r < row; r++) this.offsets[r + 1] = end
    this.rows = row
    if (end + bytes > this.data.length) {
      const d = Buffer.allocUnsafe(Math.max(end + bytes, this.data.length * 2))
      this.data.copy(d, 0, 0, end)
      this.data = d
    }
    return end
  }

  /** The cell at `row`: bytes [a, b) of `src`, which must be the value's UTF-8. */
  setBytes(row: number, src: Uint8Array, a: number, b: number): void {
    const len = b - a
    const at = this.at(row, len)
    const d = this.data
    if (len > 64) d.set(src.subarray(a, b), at)
    else for (let j = 0; j < len; j++) d[at + j] = src[a + j]!
    this.offsets[row + 1] = at + len
    this.rows = row + 1
  }

  set(row: number, v: string): void {
    const n = v.length
    let at = this.at(row, n)
    const d = this.data
    let j = 0
    for (; j < n; j++) { const c = v.charCodeAt(j); if (c >= 0x80) break; d[at + j] = c }
    if (j < n) {
      // not ASCII: encode the whole value
      const bytes = Buffer.byteLength(v)
      at = this.at(row, bytes)
      this.data.write(v, at, 'utf8')
      this.offsets[row + 1] = at + bytes
    } else this.offsets[row + 1] = at + n
    this.rows = row + 1
  }

  get(row: number): string | undefined {
    if (row >= this.rows) return undefined
    const a = this.offsets[row]!, b = this.offsets[row + 1]!
    return a === b ? undefined : this.data.toString('utf8', a, b)
  }

  /** Offsets for `count` rows (rows never written are empty) and the bytes. */
  finish(count: number): { offsets: Uint32Array; data: Buffer } {
    const offsets = new Uint32Array(count + 1)
    offsets.set(this.offsets.subarray(0, Math.min(this.rows, count) + 1))
    const end = this.offsets[Math.min(this.rows, count)]!
    for (let r = this.rows; r < count; r++) offsets[r + 1] = end
    return { offsets, data: this.data.subarray(0, end) }
  }
}

/**
 * The distinct values of a dictionary column, as the cache file stores them (a `dv:` section: u32
 * offsets[count + 1], then UTF-8), found by their bytes: a value met before costs a hash and a
 * compare, no string. Codes are 1-based in order of first use.
 */
export class ValueTable {
  offsets = new Uint32Array(64)
  data = Buffer.allocUnsafe(1024)
  count = 0
  private byHash = new Map<number, number | number[]>()
  private decoded: Array<string | undefined> = []

  private find(h: number, src: ArrayLike<number>, a: number, b: number): number {
    const hit = this.byHash.get(h)
    if (hit === undefined) return 0
    const len = b - a, d = this.data, o = this.offsets
    const same = (c: number): boolean => {
      const at = o[c - 1]!
      if (o[c]! - at !== len) return false
      for (let j = 0; j < len; j++) if (d[at + j] !== src[a + j]) return false
      return true
    }
    if (typeof hit === 'number') return same(hit) ? hit : 0
    for (const c of hit) if (same(c)) return c
    return 0
  }

  private add(h: number, src: ArrayLike<number>, a: number, b: number): number {
    const len = b - a
    const at = this.offsets[this.count]!
    if (this.count + 2 > this.offsets.length) { const o = new Uint32Array(this.offsets.length * 2); o.set(this.offsets); this.offsets = o }
    if (at + len > this.data.length) { const d = Buffer.allocUnsafe(Math.max(at + len, this.data.length * 2)); this.data.copy(d, 0, 0, at); this.data = d }
    for (let j = 0; j < len; j++) this.data[at + j] = src[a + j]!
    const c = ++this.count
    this.offsets[c] = at + len
    const hit = this.byHash.get(h)
    if (hit === undefined) this.byHash.set(h, c)
    else if (typeof hit === 'number') this.byHash.set(h, [hit, c])
    else hit.push(c)
    return c
  }

  /** The code of the value whose UTF-8 is bytes [a, b) of `src` (added when new). */
  intern(src: ArrayLike<number>, a: number, b: number): number {
    let h = b - a
    for (let j = a; j < b; j++) h = (Math.imul(h, 31) + src[j]!) | 0
    return this.find(h, src, a, b) || this.add(h, src, a, b)
  }

  internString(v: string): number {
    // an ASCII value is its char codes: hashed and compared as they are (no bytes made unless new)
    let h = v.length
    for (let j = 0; j < v.length; j++) {
      const c = v.charCodeAt(j)
      if (c >= 0x80) { const bytes = Buffer.from(v, 'utf8'); return this.intern(bytes, 0, bytes.length) }
      h = (Math.imul(h, 31) + c) | 0
    }
    const codes = { length: v.length, at: (j: number): number => v.charCodeAt(j) }
    const found = this.findCodes(h, codes)
    if (found) return found
    const bytes = asciiCodes(v)
    return this.add(h, bytes, 0, bytes.length)
  }

  private findCodes(h: number, v: { length: number; at: (j: number) => number }): number {
    const hit = this.byHash.get(h)
    if (hit === undefined) return 0
    const d = this.data, o = this.offsets
    const same = (c: number): boolean => {
      const at = o[c - 1]!
      if (o[c]! - at !== v.length) return false
      for (let j = 0; j < v.length; j++) if (d[at + j] !== v.at(j)) return false
      return true
    }
    if (typeof hit === 'number') return same(hit) ? hit : 0
    for (const c of hit) if (same(c)) return c
    return 0
  }

  value(code: number): string {
    let v = this.decoded[code]
    if (v === undefined) { v = this.data.toString('utf8', this.offsets[code - 1], this.offsets[code]); this.decoded[code] = v }
    return v
  }

  /** The `dv:` section's bytes. */
  section(): { offsets: Uint32Array; data: Buffer } {
    return { offsets: this.offsets.subarray(0, this.count + 1), data: this.data.subarray(0, this.offsets[this.count]) }
  }

  static fromSection(offsets: Uint32Array, data: Uint8Array): ValueTable {
    const t = new ValueTable()
    for (let c = 1; c < offsets.length; c++) t.intern(data, offsets[c - 1]!, offsets[c]!)
    return t
  }
}

/** A string's char codes where they are its UTF-8 bytes (ASCII). */
function asciiCodes(v: string): Uint8Array {
  const out = new Uint8Array(v.length)
  for (let j = 0; j < v.length; j++) out[j] = v.charCodeAt(j)
  return out
}

/** A dictionary column under construction: a code per row (0 = missing) and the table of values. */
export class DictColumn {
  codes: Uint32Array
  table = new ValueTable()

  constructor(capacity: number) { this.codes = new Uint32Array(Math.max(16, capacity)) }

  private room(row: number): void {
    if (row < this.codes.length) return
    const c = new Uint32Array(Math.max(row + 1, this.codes.length * 2))
    c.set(this.codes)
    this.codes = c
  }

  set(row: number, v: string): void {
    this.room(row)
    this.codes[row] = this.table.internString(v)
  }

  /** The cell at `row`: bytes [a, b) of `src`, the value's UTF-8. */
  setBytes(row: number, src: Uint8Array, a: number, b: number): void {
    this.room(row)
    this.codes[row] = this.table.intern(src, a, b)
  }

  get(row: number): string | undefined {
    const c = row < this.codes.length ? this.codes[row]! : 0
    return c === 0 ? undefined : this.table.value(c)
  }
}

/** Columns under construction: numbers in growable NaN-filled Float64Arrays, strings as text or dictionary columns. */
export class ColumnSet {
  count = 0
  capacity: number
  num = new Map<string, Float64Array>()
  text = new Map<string, TextColumn>()
  dict = new Map<string, DictColumn>()
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

  textColumn(col: string): TextColumn {
    let t = this.text.get(col)
    if (!t) { t = new TextColumn(this.capacity); this.text.set(col, t) }
    return t
  }

  dictColumn(col: string): DictColumn {
    let d = this.dict.get(col)
    if (!d) { d = new DictColumn(this.capacity); this.dict.set(col, d) }
    return d
  }

  setStr(col: string, row: number, v: string | undefined): void {
    if (v === undefined) return
    if (isDictColumn(col)) this.dictColumn(col).set(row, v)
    else this.textColumn(col).set(row, v)
  }

  getNum(col: string, row: number): number { return this.num.get(col)?.[row] ?? NaN }
  getStr(col: string, row: number): string | undefined {
    return isDictColumn(col) ? this.dict.get(col)?.get(row) : this.text.get(col)?.get(row)
  }

  /** Names of the string columns (text and dictionary). */
  strKeys(): string[] { return [...this.text.keys(), ...this.dict.keys()] }

  /** A new set with the rows listed in `order`, in that order. */
  permute(order: ArrayLike<number>): ColumnSet {
    const out = new ColumnSet(order.length)
    out.count = order.length
    for (const [k, a] of this.num) {
      const b = new Float64Array(out.capacity).fill(NaN)
      for (let j = 0; j < order.length; j++) b[j] = a[order[j]!]!
      out.num.set(k, b)
    }
    for (const k of this.strKeys()) {
      for (let j = 0; j < order.length; j++) out.setStr(k, j, this.getStr(k, order[j]!))
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
    for (const k of other.strKeys()) {
      for (let i = 0; i < other.count; i++) this.setStr(k, base + i, other.getStr(k, i))
    }
  }

  /** Plain data for postMessage (the typed arrays' buffers can be transferred). */
  toMessage(): ColumnMessage {
    return {
      count: this.count,
      num: [...this.num].map(([k, a]) => [k, a.subarray(0, this.count)]),
      text: [...this.text].map(([k, t]) => { const f = t.finish(this.count); return [k, f.offsets, new Uint8Array(f.data.buffer, f.data.byteOffset, f.data.byteLength)] }),
      dict: [...this.dict].map(([k, d]) => { const v = d.table.section(); return [k, d.codes.slice(0, this.count), v.offsets.slice(), new Uint8Array(v.data)] }),
    }
  }

  /** The buffers toMessage's message can transfer. */
  static transferable(m: ColumnMessage): ArrayBuffer[] {
    const out = new Set<ArrayBuffer>()
    for (const [, a] of m.num) out.add(a.buffer as ArrayBuffer)
    for (const [, o, d] of m.text) { out.add(o.buffer as ArrayBuffer); out.add(d.buffer as ArrayBuffer) }
    for (const [, c, o, d] of m.dict) { out.add(c.buffer as ArrayBuffer); out.add(o.buffer as ArrayBuffer); out.add(d.buffer as ArrayBuffer) }
    return [...out]
  }

  static fromMessage(m: ColumnMessage): ColumnSet {
    const c = new ColumnSet(0)
    c.capacity = Math.max(m.count, 1)
    c.count = m.count
    for (const [k, a] of m.num) {
      if (a.length === c.capacity) { c.num.set(k, a); continue }
      const b = new Float64Array(c.capacity).fill(NaN); b.set(a); c.num.set(k, b)
    }
    for (const [k, offsets, data] of m.text) {
      const t = new TextColumn(0)
      t.offsets = offsets
      t.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      t.rows = m.count
      c.text.set(k, t)
    }
    for (const [k, codes, offsets, data] of m.dict) {
      const d = new DictColumn(1)
      d.table = ValueTable.fromSection(offsets, data)
      d.codes = codes
      c.dict.set(k, d)
    }
    return c
  }
}

export interface ColumnMessage {
  count: number
  num: Array<[string, Float64Array]>
  text: Array<[string, Uint32Array, Uint8Array]>
  dict: Array<[string, Uint32Array, Uint32Array, Uint8Array]>
}

function align8(n: number): number { return (n + 7) & ~7 }

/** The header fields a build supplies (the rest come from the sections). */
export type HeadFields = Omit<CatalogHeader, 'sections' | 'count' | 'format'>

/**
 * Where a row's manifest is: a manifest is indexed only at its own path (extract.ts refuses one
 * that names another model or version), so the cache stores no path column.
 */
export function manifestPathOf(name: string, version: number): string { return `models/${name}/v${version}/manifest.json` }

/** The header of a part of a build (merged by mergeCatalogs, which writes the real one). */
export const PART_HEAD = (history: boolean): HeadFields => ({ key: '', mode: 'git', history, built: '', buildMs: 0, problems: [], problemCount: 0 })

/** A section to be written: its name, kind, byte length, and how to fill its bytes. */
type Plan = { name: string; info: Omit<SectionInfo, 'offset' | 'length'>; length: number; fill: (out: Buffer, at: number) => void }

/** Names as stored: offsets[n + 1] into UTF-8 bytes (a `str:name` section or a text column). */
interface RawNames { offsets: Uint32Array; data: Uint8Array }

/** Joined cells as one run of bytes. */
function rawText(t: JoinedText): RawNames {
  return { offsets: t.offsets, data: t.pieces.length === 1 ? t.pieces[0]! : Buffer.concat(t.pieces) }
}

/** -1, 0, 1: name i against name j, by their bytes (names are ASCII: byte order is string order). */
function compareNames(names: RawNames, i: number, j: number): number {
  const o = names.offsets, d = names.data
  const a = o[i]!, la = o[i + 1]! - a, b = o[j]!, lb = o[j + 1]! - b
  const len = Math.min(la, lb)
  for (let k = 0; k < len; k++) { const x = d[a + k]!, y = d[b + k]!; if (x !== y) return x < y ? -1 : 1 }
  return la === lb ? 0 : la < lb ? -1 : 1
}

/**
 * u8:latest and u8:current: the latest version of each name, and the latest one in service. Rows
 * come sorted by name then version, so each name's rows are one run and its latest is the run's
 * last row: found by comparing neighbours' bytes, no name decoded. Rows in any other order (not
 * written by this code) are handled by a map of the decoded names.
 */
function latestPlans(n: number, names: RawNames, version: ArrayLike<number> | undefined, retired: ArrayLike<number> | undefined): Plan[] {
  const latest = new Uint8Array(n)
  const current = new Uint8Array(n)
  let sorted = true
  for (let i = 0; i + 1 < n && sorted; i++) {
    const c = compareNames(names, i, i + 1)
    if (c > 0 || (c === 0 && !((version?.[i] ?? 0) < (version?.[i + 1] ?? 0)))) sorted = false
  }
  if (sorted) {
    let live = -1
    for (let i = 0; i < n; i++) {
      if (retired?.[i] !== 1) live = i
      if (i + 1 === n || compareNames(names, i, i + 1) !== 0) {
        latest[i] = 1
        if (live >= 0) current[live] = 1
        live = -1
      }
    }
  } else {
    const text = Buffer.from(names.data.buffer, names.data.byteOffset, names.data.byteLength)
    const best = new Map<string, [number, number]>()
    const inService = new Map<string, [number, number]>()
    for (let i = 0; i < n; i++) {
      const nm = text.toString('utf8', names.offsets[i], names.offsets[i + 1]), v = version?.[i] ?? 0
      const cur = best.get(nm)
      if (!cur || cur[1] < v) best.set(nm, [i, v])
      if (retired?.[i] === 1) continue
      const live = inService.get(nm)
      if (!live || live[1] < v) inService.set(nm, [i, v])
    }
    for (const [i] of best.values()) latest[i] = 1
    for (const [i] of inService.values()) current[i] = 1
  }
  return [
    { name: 'u8:latest', info: { kind: 'u8' }, length: n, fill: (out, at) => out.set(latest, at) },
    { name: 'u8:current', info: { kind: 'u8' }, length: n, fill: (out, at) => out.set(current, at) },
  ]
}

/** A dictionary column's two sections: `dict:` codes (n of them) and `dv:` its values. */
function dictPlans(col: string, n: number, codes: Uint32Array, values: { offsets: Uint32Array; data: Uint8Array }): Plan[] {
  const m = values.offsets.length - 1
  return [
    { name: `dict:${col}`, info: { kind: 'dict', values: m }, length: n * 4, fill: (out, at) => out.set(new Uint8Array(codes.buffer, codes.byteOffset, n * 4), at) },
    {
      name: `dv:${col}`, info: { kind: 'dv' }, length: (m + 1) * 4 + values.data.length,
      fill: (out, at) => {
        out.set(new Uint8Array(values.offsets.buffer, values.offsets.byteOffset, (m + 1) * 4), at)
        out.set(values.data, at + (m + 1) * 4)
      },
    },
  ]
}

/** A text column over consecutive row ranges of its sources: offsets rebased for all n rows, the byte pieces in order. */
interface JoinedText { offsets: Uint32Array; pieces: Uint8Array[]; bytes: number }

/** Rows [from, to) of each range's cells (none where `raw` is undefined), one after another. */
function joinText(n: number, ranges: Array<{ raw: RawNames | undefined; from: number; to: number }>): JoinedText {
  const offsets = new Uint32Array(n + 1)
  const pieces: Uint8Array[] = []
  let row = 0, pos = 0
  for (const { raw, from, to } of ranges) {
    if (!raw) { offsets.fill(pos, row + 1, row + 1 + to - from); row += to - from; continue }
    pieces.push(raw.data.subarray(raw.offsets[from]!, raw.offsets[to]!))
    for (let i = from; i < to; i++, row++) { pos += raw.offsets[i + 1]! - raw.offsets[i]!; offsets[row + 1] = pos }
  }
  return { offsets, pieces, bytes: pos }
}

/** A `str:` section of joined cells. */
function textPlan(col: string, n: number, t: JoinedText): Plan {
  return {
    name: `str:${col}`, info: { kind: 'str' }, length: (n + 1) * 4 + t.bytes,
    fill: (out, at) => {
      out.set(new Uint8Array(t.offsets.buffer), at)
      let to = at + (n + 1) * 4
      for (const piece of t.pieces) { out.set(piece, to); to += piece.length }
    },
  }
}

/** The file's bytes: magic, header (two passes: its length depends on the offsets in it), sections. */
function assemble(plans: Plan[], head: HeadFields, n: number): Buffer {
  let headerLen = 0
  for (;;) {
    let off = align8(16 + headerLen)
    const sections: Record<string, SectionInfo> = {}
    for (const p of plans) { sections[p.name] = { ...p.info, offset: off, length: p.length }; off = align8(off + p.length) }
    const header: CatalogHeader = { format: CATALOG_FORMAT, count: n, ...head, sections }
    const hb = Buffer.from(JSON.stringify(header), 'utf8')
    if (hb.length > headerLen) { headerLen = hb.length + 64; continue }
    // not zero-filled first (sections cover nearly all of it): the gaps are zeroed below
    const out = Buffer.allocUnsafe(off)
    out.write(CATALOG_MAGIC, 0, 'latin1')
    out.writeUInt32LE(hb.length, 8)
    out.writeUInt32LE(0, 12)
    hb.copy(out, 16)
    let gap = 16 + hb.length
    for (const p of plans) {
      const at = sections[p.name]!.offset
      out.fill(0, gap, at)
      p.fill(out, at)
      gap = at + p.length
    }
    out.fill(0, gap, off)
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
  const whole = n === sources.reduce((a, p) => a + p.count, 0) && runs.every((r, j) => runs.findIndex((x) => x.src === r.src) === j)
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
    // a column whose every value left with the rows dropped goes, as a fresh build would leave it
    // out (when every row of every source is kept, a stored column has a value: nothing to look at)
    if (!whole) {
      const arrays = sources.map((p) => p.f64(col))
      if (!runs.some((r) => { const a = arrays[r.src]; if (a) for (let i = r.from; i < r.to; i++) if (a[i] === a[i]) return true; return false })) continue
    }
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
  // text columns joined once each (the names also serve latest/current)
  const texts = new Map<string, JoinedText>()
  const textOf = (col: string): JoinedText => {
    let t = texts.get(col)
    if (!t) {
      const raws = sources.map((p) => p.strRaw(col))
      texts.set(col, t = joinText(n, runs.map((r) => ({ raw: raws[r.src], from: r.from, to: r.to }))))
    }
    return t
  }
  const gather = (col: string): Float64Array => {
    const a = new Float64Array(n).fill(NaN)
    const arrays = sources.map((p) => p.f64(col))
    let base = 0
    for (const r of runs) { const v = arrays[r.src]; if (v) a.set(v.subarray(r.from, r.to), base); base += r.to - r.from }
    return a
  }
  plans.push(...latestPlans(n, rawText(textOf('name')), gather('version'), gather('retired')))
  for (const col of [...cols.str].sort()) plans.push(textPlan(col, n, textOf(col)))
  for (const col of [...cols.dict].sort()) {
    // codes renumbered in order of first use (values only dropped rows had are left out), values
    // matched by their bytes: no value is decoded
    const table = new ValueTable()
    const maps = sources.map((p) => { const d = p.dictRaw(col); return d ? { d, map: new Uint32Array(d.offsets.length) } : undefined })
    const codes = new Uint32Array(n)
    let row = 0
    for (const r of runs) {
      const m = maps[r.src]
      if (!m) { row += r.to - r.from; continue }
      for (let i = r.from; i < r.to; i++, row++) {
        const local = m.d.codes[i]!
        if (local === 0) continue
        let c = m.map[local]!
        if (c === 0) { c = table.intern(m.d.data, m.d.offsets[local - 1]!, m.d.offsets[local]!); m.map[local] = c }
        codes[row] = c
      }
    }
    if (table.count === 0) continue
    plans.push(...dictPlans(col, n, codes, table.section()))
  }
  return assemble(plans, head, n)
}

/** The catalogs of consecutive row ranges (a cold build's parts, in row order) as one. */
export function mergeCatalogs(parts: CatalogFile[], head: HeadFields): Buffer {
  return composeCatalog(parts, parts.map((p, src) => ({ src, from: 0, to: p.count })), head)
}

/** u8:latest and u8:current over column sets holding consecutive rows, given their joined names. */
function latestOf(parts: ColumnSet[], n: number, names: JoinedText): Plan[] {
  const version = new Float64Array(n).fill(NaN), retired = new Float64Array(n).fill(NaN)
  for (let base = 0, j = 0; j < parts.length; base += parts[j]!.count, j++) {
    const p = parts[j]!
    const v = p.num.get('version'), r = p.num.get('retired')
    if (v) version.set(v.subarray(0, p.count), base)
    if (r) retired.set(r.subarray(0, p.count), base)
  }
  return latestPlans(n, rawText(names), version, retired)
}

/**
 * Serialize column sets (concatenated in order: the parts of a build) with the header fields into
 * the cache file's bytes, writing each section straight into the one output buffer. A numeric
 * column whose every value is exactly a float32 (metrics logged from float32 tensors usually are)
 * is stored as f32: half the bytes, nothing lost.
 */
export function encodeCatalog(input: ColumnSet | ColumnSet[], head: HeadFields, opts: { part?: boolean } = {}): Buffer {
  const parts = Array.isArray(input) ? input : [input]
  const n = parts.reduce((a, p) => a + p.count, 0)
  const plans: Plan[] = []
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
  // text columns joined once each (the names also serve latest/current)
  const texts = new Map<string, JoinedText>()
  const textOf = (k: string): JoinedText => {
    let t = texts.get(k)
    if (!t) texts.set(k, t = joinText(n, parts.map((p) => ({ raw: p.text.get(k)?.finish(p.count), from: 0, to: p.count }))))
    return t
  }
  // latest version of each name, and latest version in service (retired ones skipped); not for a
  // part of a build (`part`), whose merge recomputes them over all rows
  if (!opts.part) plans.push(...latestOf(parts, n, textOf('name')))
  const strKeys = [...new Set(parts.flatMap((p) => p.strKeys()))].sort()
  for (const k of strKeys) {
    if (isDictColumn(k)) {
      const cols = parts.map((p) => p.dict.get(k))
      const one = parts.length === 1 ? cols[0] : undefined
      if (one) {
        // one part: its codes and values as they are
        if (one.table.count > 0) plans.push(...dictPlans(k, n, one.codes, one.table.section()))
        continue
      }
      const table = new ValueTable()
      const codes = new Uint32Array(n)
      let row = 0
      for (let j = 0; j < parts.length; j++) {
        const d = cols[j], count = parts[j]!.count
        if (!d) { row += count; continue }
        const v = d.table.section()
        const map = new Uint32Array(d.table.count + 1)
        for (let i = 0; i < count; i++, row++) {
          const local = i < d.codes.length ? d.codes[i]! : 0
          if (local === 0) continue
          let c = map[local]!
          if (c === 0) { c = table.intern(v.data, v.offsets[local - 1]!, v.offsets[local]!); map[local] = c }
          codes[row] = c
        }
      }
      if (table.count > 0) plans.push(...dictPlans(k, n, codes, table.section()))
    } else {
      // the parts' bytes as they are, offsets rebased
      plans.push(textPlan(k, n, textOf(k)))
    }
  }
  return assemble(plans, head, n)
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

  /** Every row's manifest path (manifestPathOf its name and version). */
  paths(): string[] {
    const names = this.strings('name'), v = this.f64('version')
    return names.map((nm, i) => manifestPathOf(nm, v ? v[i]! : NaN))
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

  /** Rows whose history build found no checkpoint node to read (a lazy clone before a fetch; spec/catalog.md). */
  unfetched(): number[] {
    const a = this.f64('unfetched')
    const out: number[] = []
    if (a) for (let i = 0; i < this.count; i++) if (a[i] === 1) out.push(i)
    return out
  }

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

  /** A dictionary column: codes (0 = missing) and its values, decoded on first use. */
  dict(col: string): { codes: Uint32Array; values: string[] } | undefined {
    const name = `dict:${col}`
    let v = this.cache.get(name) as { codes: Uint32Array; values: string[] } | undefined
    if (v) return v
    const raw = this.dictRaw(col)
    if (!raw) return undefined
    const m = raw.offsets.length - 1
    const values: string[] = new Array(m)
    const text = raw.data.toString('latin1', 0, raw.offsets[m])
    const ascii = !/[^\x00-\x7f]/.test(text)
    for (let c = 0; c < m; c++) {
      const a = raw.offsets[c]!, b = raw.offsets[c + 1]!
      values[c] = ascii ? text.slice(a, b) : raw.data.toString('utf8', a, b)
    }
    v = { codes: raw.codes, values }
    this.cache.set(name, v)
    return v
  }

  /** A dictionary column as stored: codes, and the values' offsets and UTF-8 bytes (the `dv:` section). */
  dictRaw(col: string): { codes: Uint32Array; offsets: Uint32Array; data: Buffer } | undefined {
    const name = `dict:${col}`
    if (!this.has(name)) return undefined
    let v = this.cache.get(`raw:${name}`) as { codes: Uint32Array; offsets: Uint32Array; data: Buffer } | undefined
    if (!v) {
      const codes = new Uint32Array(this.count)
      this.read(name, new Uint8Array(codes.buffer))
      const m = this.header.sections[name]!.values ?? 0
      const s = this.header.sections[`dv:${col}`]
      const all = new Uint8Array(s?.length ?? (m + 1) * 4)
      if (s) this.read(`dv:${col}`, all)
      v = { codes, offsets: new Uint32Array(all.buffer, 0, m + 1), data: Buffer.from(all.buffer, (m + 1) * 4) }
      this.cache.set(`raw:${name}`, v)
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
    const name = `str:${col}`
    if (!this.has(name)) return undefined
    // the first cells of a column a query shows (a --limit 10 table: ten names) are read one by one;
    // from the 64th on, the whole section is read once
    if (!this.cache.has(name) && typeof this.source === 'number') {
      const used = (this.cellReads.get(col) ?? 0) + 1
      this.cellReads.set(col, used)
      if (used <= 64) return this.cell(name, row)
    }
    const s = this.strRaw(col)!
    const a = s.offsets[row]!, b = s.offsets[row + 1]!
    return a === b ? undefined : s.data.toString('utf8', a, b)
  }

  private cellReads = new Map<string, number>()

  /** One cell of a str section read from the file: its two offsets, then its bytes. */
  private cell(name: string, row: number): string | undefined {
    const s = this.header.sections[name]!
    if (row < 0 || row >= this.count) return undefined
    const fd = this.source as number
    const o = Buffer.allocUnsafe(8)
    if (readSync(fd, o, 0, 8, s.offset + row * 4) !== 8) throw new Error(`catalog cache: section ${name} is truncated`)
    const a = o.readUInt32LE(0), b = o.readUInt32LE(4)
    if (a === b) return undefined
    const data = (this.count + 1) * 4
    if (b < a || data + b > s.length) throw new Error(`catalog cache: section ${name} is damaged`)
    const bytes = Buffer.allocUnsafe(b - a)
    let done = 0
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, s.offset + data + a + done)
      if (n === 0) throw new Error(`catalog cache: section ${name} is truncated`)
      done += n
    }
    return bytes.toString('utf8')
  }
}
