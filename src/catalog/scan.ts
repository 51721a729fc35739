/**
 * The cold build's fast path: a byte scanner that reads a manifest's JSON once, left to right, and
 * writes the catalog's cells for it straight into the column set, building no objects for the
 * manifest (no JSON.parse tree, no CatalogRow). It is a complete JSON reader, not a layout matcher:
 * any whitespace, key order or escapes are read as JSON.parse reads them, and every byte is checked
 * (strings, escapes, numbers, literals, nesting, nothing after the value), so what it accepts is
 * exactly valid JSON and the cells it writes are the ones `extractRow` + `putRow` (extract.ts,
 * rows.ts) write for the same bytes.
 *
 * It declines (returns false, writing nothing) whatever it does not handle itself, and the caller
 * then takes the full path, which gives the same row or the problem to report: invalid JSON, a
 * manifest extract.ts would refuse (a missing field, a wrong type, a name that does not match the
 * path, a metric that is not a finite number), a duplicated param, a param named like an array
 * index (JSON.parse puts those first, which would change the order of `pjson`), `__proto__`, a key
 * with escapes, a name with escapes. A history build (`history` columns) always takes the full path.
 *
 * Strings are not made for the cells: a plain (ASCII, unescaped) value's bytes are copied into its
 * text column or matched by bytes in its dictionary (columns.ts); other values are decoded first.
 *
 * Numbers whose digits (without the point) form an integer below 2^53 and whose power of ten is
 * within 10^±22 are computed here exactly: one correctly rounded multiplication or division of two
 * exact doubles, the value JSON.parse gives. Any other number is handed to `Number()` on its text,
 * which rounds as JSON.parse does.
 */
import type { ColumnSet, TextColumn, DictColumn } from './columns.js'

type Bytes = Buffer & { latin1Slice(start: number, end: number): string; utf8Slice(start: number, end: number): string }

/** Thrown (one shared object: declining is not an error) when the scanner leaves a manifest to the full path. */
const DECLINE = { decline: true }

const NAME = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`))
const TWO53 = 9007199254740992

/** Top-level keys the catalog reads, as bytes. */
const K = {
  name: 1, version: 2, seal: 3, seed: 4, dataset: 5, arch: 6, population: 7, created: 8, promoter: 9,
  params: 10, metrics: 11, parents: 12, files: 13, checkpoints: 14,
} as const
const TOP = new Map<number, Array<[Uint8Array, number]>>()
for (const [k, id] of Object.entries(K)) {
  const b = Buffer.from(k, 'latin1')
  const list = TOP.get(b.length) ?? []
  list.push([b, id])
  TOP.set(b.length, list)
}

/** A param or metric key met before: its text and, per column set generation, its column arrays. */
interface Key {
  bytes: Uint8Array
  text: string
  /** Declined as a param key: an array index or __proto__ (see above). */
  odd: boolean
  /** The params object that last used it (a second use in one object is a duplicate). */
  stamp: number
  gen: number
  pnum?: Float64Array
  pstr?: DictColumn
  metric?: Float64Array
  /** `"<key>":` as JSON.stringify writes it (for pjson). */
  json?: string
}

const P_NUM = 0, P_STR = 1, P_JSON = 2
/** Slots of the top-level strings kept as byte ranges. */
const T_NAME = 0, T_SEAL = 1, T_DATASET = 2, T_ARCH = 3, T_POPULATION = 4, T_CREATED = 5, T_PROMOTER = 6

export class ManifestScanner {
  private b!: Bytes
  private p = 0
  private end = 0
  /** The last string's content range and flags (1: has escapes, 2: has bytes >= 0x80). */
  private s0 = 0
  private s1 = 0
  private sflags = 0
  private keys = new Map<number, Key[]>()
  /** Bumped per params object: a key stamped with the current value is a duplicate. */
  private stamp = 0
  // one manifest's facts, reset per scan
  /** Top-level strings (T_* slots): start, end and flags of each value's bytes; start -1 = absent. */
  private tp = new Int32Array(3 * 7).fill(-1)
  private version = NaN
  private seed: number | undefined
  private hasParams = false
  /** The params read (pN of them): key, kind, number or text (JSON text for P_JSON). */
  private pN = 0
  private pKeys: Key[] = []
  private pKind: number[] = []
  private pNum = new Float64Array(64)
  private pText: string[] = []
  /** Text params: start, end and flags of the value's bytes. */
  private pPos = new Int32Array(3 * 64)
  private hasMetrics = false
  private mN = 0
  private mKeys: Key[] = []
  private mVal = new Float64Array(64)
  /** The key met at each position of the last params / metrics object: the next manifest's usually are the same. */
  private pSlots: Key[] = []
  private mSlots: Key[] = []
  private parents: Array<{ name: string; version: number; seal: string; relation: string }> | undefined
  private files = -1
  private size = 0
  private readonly epochs = new Set<number>()
  private ckCount = NaN
  private ckFiles = NaN
  private ckBytes = NaN
  private hasCheckpoints = false
  /** The column set generation the numeric column slots (numSlots, Key.pnum, Key.metric) belong to. */
  private numGen = -1

  /** `cols` may be undefined for a scanner used only to count file lists (countFiles()). */
  constructor(private cols: ColumnSet | undefined) {}

  /** fileCounts: the list at [from, to) of `bytes`. */
  countFiles(bytes: Buffer, from: number, to: number): { files: number; size: number; checkpoints: number } | undefined {
    this.b = bytes as Bytes
    this.p = from
    this.end = to
    try {
      if (this.ws() !== 0x5b) return undefined
      this.fileList()
      if (this.ws() === 0x2c) { this.p++; if (this.ws() !== -1) return undefined } else if (this.p !== to) return undefined
    } catch { return undefined }
    return { files: this.files, size: this.size, checkpoints: this.epochs.size }
  }

  /**
   * Scan one manifest (`bytes`, at `path`) and, when it is handled, add its row with the given file
   * facts; false (nothing written) when the full path must read it.
   */
  add(path: string, bytes: Buffer, retired: boolean, facts: { blob?: string; mtime?: number; size?: number; ino?: number }): boolean {
    this.b = bytes as Bytes
    this.p = 0
    this.end = bytes.length
    this.reset()
    try {
      this.document()
    } catch {
      // DECLINE, or a nesting too deep for the stack: the full path reads it (and says what is wrong)
      return false
    }
    if (!this.valid(path)) return false
    this.write(path, retired, facts)
    return true
  }

  private reset(): void {
    this.tp.fill(-1)
    this.version = NaN
    this.seed = undefined
    this.hasParams = this.hasMetrics = this.hasCheckpoints = false
    this.pN = this.mN = 0
    this.parents = undefined
    this.files = -1
    this.size = 0
    this.epochs.clear()
    this.ckCount = this.ckFiles = this.ckBytes = NaN
  }

  // --- JSON, byte by byte ---

  /** Skip whitespace; the byte there, or -1 at the end. */
  private ws(): number {
    const b = this.b, e = this.end
    let p = this.p
    while (p < e) {
      const c = b[p]!
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++
      else { this.p = p; return c }
    }
    this.p = p
    return -1
  }

  private expect(c: number): void {
    if (this.ws() !== c) throw DECLINE
    this.p++
  }

  /** At a quote: the string's content range in s0/s1, flags in sflags; p after the closing quote. */
  private string(): void {
    const b = this.b, e = this.end
    let p = this.p + 1
    let flags = 0
    const s0 = p
    for (;;) {
      if (p >= e) throw DECLINE
      const c = b[p]!
      if (c === 0x22) break
      if (c < 0x20) throw DECLINE
      if (c === 0x5c) {
        flags |= 1
        const x = b[p + 1]
        if (x === 0x75) {
          for (let j = p + 2; j < p + 6; j++) { const h = b[j]; if (h === undefined || !isHex(h)) throw DECLINE }
          p += 6
        } else if (x === 0x22 || x === 0x5c || x === 0x2f || x === 0x62 || x === 0x66 || x === 0x6e || x === 0x72 || x === 0x74) p += 2
        else throw DECLINE
        continue
      }
      if (c >= 0x80) flags |= 2
      p++
    }
    this.s0 = s0
    this.s1 = p
    this.sflags = flags
    this.p = p + 1
  }

  /** The last string's value. */
  private text(): string { return this.decode(this.s0, this.s1, this.sflags) }

  /** The decoded value of bytes [a, z) of a string with the given flags (escapes, non-ASCII). */
  private decode(a: number, z: number, flags: number): string {
    if (flags === 0) return this.b.latin1Slice(a, z)
    if (flags === 2) return this.b.utf8Slice(a, z)
    return JSON.parse(this.b.utf8Slice(a - 1, z + 1)) as string
  }

  /** A string value (the byte at p must open it). */
  private stringValue(): string {
    if (this.ws() !== 0x22) throw DECLINE
    this.string()
    return this.text()
  }

  /** A string value whose bytes are kept (slot T_*) for writing later. */
  private stringAt(slot: number): void {
    if (this.ws() !== 0x22) throw DECLINE
    this.string()
    const tp = this.tp
    tp[slot * 3] = this.s0
    tp[slot * 3 + 1] = this.s1
    tp[slot * 3 + 2] = this.sflags
  }

  /** A number at p, as JSON.parse reads it. */
  private number(): number {
    const b = this.b
    let p = this.p
    const start = p
    let neg = false
    let c = b[p]
    if (c === 0x2d) { neg = true; c = b[++p] }
    let m = 0, scale = 0
    if (c === 0x30) c = b[++p]
    else if (c !== undefined && c >= 0x31 && c <= 0x39) {
      do { m = m * 10 + (c - 0x30); c = b[++p] } while (c !== undefined && c >= 0x30 && c <= 0x39)
    } else throw DECLINE
    if (c === 0x2e) {
      c = b[++p]
      if (c === undefined || c < 0x30 || c > 0x39) throw DECLINE
      do { m = m * 10 + (c - 0x30); scale--; c = b[++p] } while (c !== undefined && c >= 0x30 && c <= 0x39)
    }
    if (c === 0x65 || c === 0x45) {
      c = b[++p]
      let eneg = false
      if (c === 0x2b || c === 0x2d) { eneg = c === 0x2d; c = b[++p] }
      if (c === undefined || c < 0x30 || c > 0x39) throw DECLINE
      let x = 0
      do { if (x < 100000) x = x * 10 + (c - 0x30); c = b[++p] } while (c !== undefined && c >= 0x30 && c <= 0x39)
      scale += eneg ? -x : x
    }
    this.p = p
    // m is exact while below 2^53 (each step is an exact integer then); 10^0..10^22 are exact doubles
    if (m < TWO53 && scale >= -22 && scale <= 22) {
      const v = scale < 0 ? m / POW10[-scale]! : m * POW10[scale]!
      return neg ? -v : v
    }
    return Number(this.b.latin1Slice(start, p))
  }

  private literal(word: string): void {
    const b = this.b, p = this.p
    for (let j = 0; j < word.length; j++) if (b[p + j] !== word.charCodeAt(j)) throw DECLINE
    this.p = p + word.length
  }

  /** Check and pass over any value. */
  private skip(): void {
    const c = this.ws()
    if (c === 0x22) this.string()
    else if (c === 0x7b) {
      this.p++
      if (this.ws() === 0x7d) { this.p++; return }
      for (;;) {
        if (this.ws() !== 0x22) throw DECLINE
        this.string()
        this.expect(0x3a)
        this.skip()
        if (!this.more(0x7d)) return
      }
    } else if (c === 0x5b) {
      this.p++
      if (this.ws() === 0x5d) { this.p++; return }
      for (;;) {
        this.skip()
        if (!this.more(0x5d)) return
      }
    } else if (c === 0x74) this.literal('true')
    else if (c === 0x66) this.literal('false')
    else if (c === 0x6e) this.literal('null')
    else this.number()
  }

  /** After a value inside an object: true at a comma (more follows), false at the closing brace. */
  private more(close: number): boolean {
    const d = this.ws()
    this.p++
    if (d === 0x2c) return true
    if (d === close) return false
    throw DECLINE
  }

  /** The key whose bytes are the last string (interned: its text is made once per build). */
  private key(): Key {
    if (this.sflags & 1) throw DECLINE
    const b = this.b, s0 = this.s0, s1 = this.s1
    let h = s1 - s0
    for (let j = s0; j < s1; j++) h = (Math.imul(h, 31) + b[j]!) | 0
    let list = this.keys.get(h)
    if (list) {
      outer: for (const k of list) {
        const kb = k.bytes
        if (kb.length !== s1 - s0) continue
        for (let j = 0; j < kb.length; j++) if (kb[j] !== b[s0 + j]) continue outer
        return k
      }
    } else { list = []; this.keys.set(h, list) }
    const text = this.text()
    const bytes = new Uint8Array(s1 - s0)
    for (let j = 0; j < bytes.length; j++) bytes[j] = b[s0 + j]!
    const k: Key = { bytes, text, odd: /^(0|[1-9]\d*)$/.test(text) || text === '__proto__', stamp: 0, gen: -1,
      // every field set now: one hidden class for all keys keeps write()'s property reads monomorphic
      pnum: undefined, pstr: undefined, metric: undefined, json: undefined }
    list.push(k)
    return k
  }

  /** The last string as a key to compare with ASCII names ('' for other text); keys with escapes are declined. */
  private plainKey(): string {
    if (this.sflags & 1) throw DECLINE
    return this.sflags === 0 && this.s1 - this.s0 <= 8 ? this.b.latin1Slice(this.s0, this.s1) : ''
  }

  /** key(), trying first the key met at this position last time (no hashing when it is the same). */
  private keyAt(slots: Key[], j: number): Key {
    const k = slots[j]
    if (k !== undefined && this.sflags === 0) {
      const kb = k.bytes, s0 = this.s0, len = this.s1 - s0, b = this.b
      if (kb.length === len) {
        let x = 0
        while (x < len && kb[x] === b[s0 + x]) x++
        if (x === len) return k
      }
    }
    const found = this.key()
    slots[j] = found
    return found
  }

  /** The top-level key the last string names (0 for one the catalog does not read). */
  private topKey(): number {
    if (this.sflags & 1) throw DECLINE // "n\u0061me" is "name" to JSON.parse
    if (this.sflags !== 0) return 0
    const list = TOP.get(this.s1 - this.s0)
    if (!list) return 0
    const b = this.b, s0 = this.s0
    outer: for (const [kb, id] of list) {
      for (let j = 0; j < kb.length; j++) if (kb[j] !== b[s0 + j]) continue outer
      return id
    }
    return 0
  }

  private document(): void {
    this.expect(0x7b)
    if (this.ws() === 0x7d) throw DECLINE // {}: not a manifest
    for (;;) {
      if (this.ws() !== 0x22) throw DECLINE
      this.string()
      const id = this.topKey()
      this.expect(0x3a)
      switch (id) {
        case K.name: this.stringAt(T_NAME); break
        case K.seal: this.stringAt(T_SEAL); break
        case K.dataset: this.stringAt(T_DATASET); break
        case K.arch: this.stringAt(T_ARCH); break
        case K.population: this.stringAt(T_POPULATION); break
        case K.created: this.stringAt(T_CREATED); break
        case K.promoter: this.stringAt(T_PROMOTER); break
        case K.version: this.version = this.numberValue(); break
        case K.seed: this.seed = this.numberValue(); break
        case K.params: this.params(); break
        case K.metrics: this.metrics(); break
        case K.parents: this.parentList(); break
        case K.files: this.fileList(); break
        case K.checkpoints: this.checkpoints(); break
        default: this.skip()
      }
      if (!this.more(0x7d)) break
    }
    if (this.ws() !== -1) throw DECLINE
  }

  private numberValue(): number {
    const c = this.ws()
    if (c !== 0x2d && !(c >= 0x30 && c <= 0x39)) throw DECLINE
    return this.number()
  }

  private params(): void {
    this.expect(0x7b)
    // a repeated "params" key: the last one counts, as in JSON.parse
    this.hasParams = true
    this.pN = 0
    const stamp = ++this.stamp
    if (this.ws() === 0x7d) { this.p++; return }
    for (;;) {
      if (this.ws() !== 0x22) throw DECLINE
      this.string()
      const j = this.pN++
      const k = this.keyAt(this.pSlots, j)
      if (k.odd || k.stamp === stamp) throw DECLINE
      k.stamp = stamp
      this.expect(0x3a)
      const c = this.ws()
      if (j === this.pNum.length) { const g = new Float64Array(j * 2); g.set(this.pNum); this.pNum = g }
      this.pKeys[j] = k
      if (c === 0x22) {
        this.string()
        if ((j + 1) * 3 > this.pPos.length) { const g = new Int32Array(this.pPos.length * 2); g.set(this.pPos); this.pPos = g }
        this.pKind[j] = P_STR; this.pPos[j * 3] = this.s0; this.pPos[j * 3 + 1] = this.s1; this.pPos[j * 3 + 2] = this.sflags
      } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        this.pKind[j] = P_NUM; this.pNum[j] = this.number()
      } else {
        // true, false, null, a list or an object: kept as its JSON text (p:<k>) and in pjson
        const from = this.p
        this.skip()
        const json = c === 0x74 ? 'true' : c === 0x66 ? 'false' : c === 0x6e ? 'null' : JSON.stringify(JSON.parse(this.b.utf8Slice(from, this.p)))
        this.pKind[j] = P_JSON; this.pText[j] = json
      }
      if (!this.more(0x7d)) return
    }
  }

  private metrics(): void {
    this.expect(0x7b)
    this.hasMetrics = true
    this.mN = 0
    if (this.ws() === 0x7d) { this.p++; return }
    for (;;) {
      if (this.ws() !== 0x22) throw DECLINE
      this.string()
      const j = this.mN++
      const k = this.keyAt(this.mSlots, j)
      if (k.odd) throw DECLINE
      this.expect(0x3a)
      const v = this.numberValue()
      if (!Number.isFinite(v)) throw DECLINE
      if (j === this.mVal.length) { const g = new Float64Array(j * 2); g.set(this.mVal); this.mVal = g }
      this.mKeys[j] = k
      this.mVal[j] = v
      if (!this.more(0x7d)) return
    }
  }

  private parentList(): void {
    this.expect(0x5b)
    const out: Array<{ name: string; version: number; seal: string; relation: string }> = []
    this.parents = out
    if (this.ws() === 0x5d) { this.p++; return }
    for (;;) {
      this.expect(0x7b)
      let name: string | undefined, seal: string | undefined, relation: string | undefined, version = NaN
      if (this.ws() !== 0x7d) {
        for (;;) {
          if (this.ws() !== 0x22) throw DECLINE
          this.string()
          const id = this.plainKey()
          this.expect(0x3a)
          if (id === 'name') name = this.stringValue()
          else if (id === 'seal') seal = this.stringValue()
          else if (id === 'relation') relation = this.stringValue()
          else if (id === 'version') version = this.numberValue()
          else this.skip()
          if (!this.more(0x7d)) break
        }
      } else this.p++
      if (name === undefined || seal === undefined || relation === undefined || !Number.isSafeInteger(version)) throw DECLINE
      out.push({ name, version, seal, relation })
      if (!this.more(0x5d)) return
    }
  }

  /** The files list: entries counted, their numeric sizes summed and numeric epochs told apart. */
  private fileList(): void {
    this.expect(0x5b)
    let files = 0, size = 0
    const epochs = this.epochs
    epochs.clear()
    if (this.ws() === 0x5d) { this.p++; this.files = 0; this.size = 0; return }
    for (;;) {
      files++
      if (this.ws() !== 0x7b) this.skip()
      else {
        this.p++
        let fsize: number | undefined, epoch: number | undefined
        if (this.ws() !== 0x7d) {
          for (;;) {
            if (this.ws() !== 0x22) throw DECLINE
            this.string()
            if (this.sflags & 1) throw DECLINE
            const len = this.s1 - this.s0, b = this.b, s0 = this.s0
            const isSize = this.sflags === 0 && len === 4 && b[s0] === 0x73 && b[s0 + 1] === 0x69 && b[s0 + 2] === 0x7a && b[s0 + 3] === 0x65
            const isEpoch = this.sflags === 0 && len === 5 && b[s0] === 0x65 && b[s0 + 1] === 0x70 && b[s0 + 2] === 0x6f && b[s0 + 3] === 0x63 && b[s0 + 4] === 0x68
            this.expect(0x3a)
            if (isSize || isEpoch) {
              // the last occurrence counts; a value that is not a number counts as none
              const c = this.ws()
              const v = c === 0x2d || (c >= 0x30 && c <= 0x39) ? this.number() : (this.skip(), undefined)
              if (isSize) fsize = v; else epoch = v
            } else this.skip()
            if (!this.more(0x7d)) break
          }
        } else this.p++
        if (fsize !== undefined) size += fsize
        if (epoch !== undefined) epochs.add(epoch)
      }
      if (!this.more(0x5d)) break
    }
    this.files = files
    this.size = size
  }

  private checkpoints(): void {
    this.expect(0x7b)
    this.hasCheckpoints = true
    this.ckCount = this.ckFiles = this.ckBytes = NaN
    if (this.ws() === 0x7d) { this.p++; return }
    for (;;) {
      if (this.ws() !== 0x22) throw DECLINE
      this.string()
      const id = this.plainKey()
      this.expect(0x3a)
      if (id === 'count') this.ckCount = this.numberValue()
      else if (id === 'files') this.ckFiles = this.numberValue()
      else if (id === 'bytes') this.ckBytes = this.numberValue()
      else this.skip()
      if (!this.more(0x7d)) return
    }
  }

  // --- what extract.ts checks, then what rows.ts putRow writes ---

  private valid(path: string): boolean {
    const tp = this.tp, b = this.b
    // the name: plain text the path spells out (a name with escapes is left to the full path)
    const n0 = tp[T_NAME * 3]!, n1 = tp[T_NAME * 3 + 1]!
    if (n0 < 0 || tp[T_NAME * 3 + 2] !== 0) return false
    if (!Number.isSafeInteger(this.version) || this.version < 1) return false
    const len = n1 - n0
    if (path.length < 7 + len || !path.startsWith('models/')) return false
    for (let j = 0; j < len; j++) if (path.charCodeAt(7 + j) !== b[n0 + j]) return false
    if (path.slice(7 + len) !== `/v${this.version}/manifest.json` || !NAME.test(path.slice(7, 7 + len))) return false
    if (tp[T_SEAL * 3]! < 0 || !this.hasParams || !this.hasMetrics || this.parents === undefined || this.files < 0) return false
    if (this.seed !== undefined && !Number.isSafeInteger(this.seed)) return false
    if (this.hasCheckpoints && !(Number.isSafeInteger(this.ckCount) && Number.isSafeInteger(this.ckFiles) && Number.isSafeInteger(this.ckBytes))) return false
    return true
  }

  /** A string's bytes [a, z) with flags `f` into a text or dictionary cell (copied or matched as bytes when plain ASCII). */
  private put(col: TextColumn | DictColumn, row: number, a: number, z: number, f: number): void {
    if (f === 0) col.setBytes(row, this.b, a, z)
    else col.set(row, this.decode(a, z, f))
  }

  /** Whether the manifest has the top-level string of slot T_*. */
  private has(slot: number): boolean { return this.tp[slot * 3]! >= 0 }

  /** A top-level string slot (T_*) into a text or dictionary cell. */
  private putSlot(col: TextColumn | DictColumn, row: number, slot: number): void {
    const tp = this.tp
    this.put(col, row, tp[slot * 3]!, tp[slot * 3 + 1]!, tp[slot * 3 + 2]!)
  }

  /** The fixed columns by slot (C_* text and dictionary columns, N_* numeric ones for the current generation). */
  private textSlots: Array<TextColumn | undefined> = []
  private dictSlots: Array<DictColumn | undefined> = []
  private numSlots: Array<Float64Array | undefined> = []
  private textCol(slot: number, col: string): TextColumn {
    return this.textSlots[slot] ??= this.cols!.textColumn(col)
  }
  private dictCol(slot: number, col: string): DictColumn {
    return this.dictSlots[slot] ??= this.cols!.dictColumn(col)
  }
  private num(slot: number, col: string): Float64Array {
    return this.numSlots[slot] ??= this.cols!.column(col)
  }

  private write(path: string, retired: boolean, facts: { blob?: string; mtime?: number; size?: number; ino?: number }): void {
    const cols = this.cols!
    const i = cols.addRow()
    const gen = cols.generation
    if (gen !== this.numGen) { this.numSlots.length = 0; this.numGen = gen }
    this.putSlot(this.textCol(1, 'name'), i, T_NAME)
    this.putSlot(this.textCol(2, 'seal'), i, T_SEAL)
    this.num(0, 'version')[i] = this.version
    if (this.seed !== undefined) this.num(1, 'seed')[i] = this.seed
    if (this.has(T_DATASET)) this.putSlot(this.dictCol(0, 'dataset'), i, T_DATASET)
    if (this.has(T_ARCH)) this.putSlot(this.dictCol(1, 'arch'), i, T_ARCH)
    if (this.has(T_POPULATION)) this.putSlot(this.dictCol(2, 'population'), i, T_POPULATION)
    if (this.has(T_CREATED)) this.putSlot(this.textCol(3, 'created'), i, T_CREATED)
    if (this.has(T_PROMOTER)) this.putSlot(this.dictCol(4, 'promoter'), i, T_PROMOTER)
    if (retired) this.num(2, 'retired')[i] = 1
    let files = this.files, size = this.size, checkpoints = this.epochs.size
    if (this.hasCheckpoints) { files += this.ckFiles; size += this.ckBytes; checkpoints = this.ckCount }
    this.num(3, 'files')[i] = files
    this.num(4, 'size')[i] = size
    this.num(5, 'checkpoints')[i] = checkpoints
    const parents = this.parents!
    this.textCol(5, 'parents').set(i, parents.length === 0 ? '[]' : JSON.stringify(parents))
    if (parents.length) this.dictCol(3, 'relations').set(i, [...new Set(parents.map((p) => p.relation))].sort().join(','))
    let pjson = ''
    for (let j = 0; j < this.pN; j++) {
      const k = this.pKeys[j]!
      if (k.gen !== gen) { k.gen = gen; k.pnum = k.metric = undefined }
      const kind = this.pKind[j]!
      if (kind === P_NUM) (k.pnum ??= cols.column(`p:${k.text}`))[i] = this.pNum[j]!
      else if (kind === P_STR) this.put(k.pstr ??= cols.dictColumn(`p:${k.text}`), i, this.pPos[j * 3]!, this.pPos[j * 3 + 1]!, this.pPos[j * 3 + 2]!)
      else {
        (k.pstr ??= cols.dictColumn(`p:${k.text}`)).set(i, this.pText[j]!)
        pjson += (pjson ? ',' : '{') + (k.json ??= JSON.stringify(k.text) + ':') + this.pText[j]
      }
    }
    if (pjson) this.dictCol(5, 'pjson').set(i, pjson + '}')
    for (let j = 0; j < this.mN; j++) {
      const k = this.mKeys[j]!
      if (k.gen !== gen) { k.gen = gen; k.pnum = k.metric = undefined }
      (k.metric ??= cols.column(`m:${k.text}`))[i] = this.mVal[j]!
    }
    if (facts.blob) this.textCol(7, 'blob').set(i, facts.blob)
    if (facts.mtime !== undefined) this.num(6, 'st:mtime')[i] = facts.mtime
    if (facts.size !== undefined) this.num(7, 'st:size')[i] = facts.size
    if (facts.ino !== undefined) this.num(8, 'st:ino')[i] = facts.ino
  }
}

let counter: ManifestScanner | undefined

/**
 * A `files` list at bytes [from, to) of `bytes` (the list, then only whitespace and at most one
 * comma), counted as extract.ts counts a parsed one: entries, the sum of their numeric sizes, their
 * distinct numeric epochs. Undefined when those bytes are not that (the caller parses in full).
 */
export function fileCounts(bytes: Buffer, from: number, to: number): { files: number; size: number; checkpoints: number } | undefined {
  counter ??= new ManifestScanner(undefined)
  return counter.countFiles(bytes, from, to)
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}
