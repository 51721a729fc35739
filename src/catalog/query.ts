/**
 * Catalog queries: `<field><op><value>` filters, sort keys and the rows they select (grammar and
 * semantics in spec/catalog.md). Works on the columns of a CatalogFile; reads only what it needs.
 */
import type { CatalogFile } from './columns.js'
import { metricGoal } from '../manifest/card.js'
import { UsageError } from '../errors.js'

/**
 * History columns h:<metric>:<epoch> exist for epochs 0..HISTORY_EPOCHS-1 (later epochs count only
 * in max/min). Here, not in rows.ts, so that a warm query (and the browser, which runs this file)
 * loads nothing of the build.
 */
export const HISTORY_EPOCHS = 256
import type { Json, ParentRef } from './extract.js'

export type Op = '=' | '!=' | '<' | '<=' | '>' | '>=' | '~'
export interface Filter { field: string; op: Op; value: string }

const OPS: Op[] = ['!=', '<=', '>=', '=', '<', '>', '~']

export function parseFilter(text: string): Filter {
  const at = text.search(/[!<>=~]/)
  if (at <= 0) throw new UsageError(`filter ${JSON.stringify(text)} is not <field><op><value> (op one of = != < <= > >= ~), e.g. 'metrics.test_acc>0.6' (quote it: the shell reads < and >)`, 'E_USAGE')
  const op = OPS.find((o) => text.startsWith(o, at))
  if (!op) throw new UsageError(`filter ${JSON.stringify(text)}: unknown operator; use one of = != < <= > >= ~`, 'E_USAGE')
  const value = text.slice(at + op.length)
  if (value === '' && op !== '=' && op !== '!=') throw new UsageError(`filter ${JSON.stringify(text)} needs a value after ${op}`, 'E_USAGE')
  return { field: text.slice(0, at).trim(), op, value }
}

export type Cell = number | string | undefined

/** A field resolved against a catalog: how to read it per row. */
export interface Field {
  /** Canonical name (bare metric names become metrics.<k>). */
  name: string
  numeric: boolean
  get(row: number): Cell
  /** The numeric column behind the field, when it is one (fast paths). */
  col?: Float64Array
  /** The dictionary column behind the field, when it is one. */
  dict?: { codes: Uint32Array; values: string[] }
  /** Set-valued fields (relation, parent, ancestor) test rows themselves. */
  test?(row: number, op: Op, value: string): boolean
}

export function metricKeys(c: CatalogFile): string[] {
  return [...new Set(c.numColumns().filter((s) => s.startsWith('max:') || s.startsWith('m:')).map((s) => s.slice(s.indexOf(':') + 1)))].sort()
}
function hasMetric(c: CatalogFile, key: string): boolean { return c.hasNum(`m:${key}`) || c.hasNum(`max:${key}`) }

/** Whether a field needs the history columns (the catalog indexes them on first need). */
export function needsHistory(field: string): boolean {
  return /^(best|max|min)\./.test(field) || /@\d+$/.test(field) || field === 'epochs'
}
export function finalMetricKeys(c: CatalogFile): string[] {
  return c.numColumns().filter((s) => s.startsWith('m:')).map((s) => s.slice(2))
}
const paramKeyCache = new WeakMap<CatalogFile, string[]>()
export function paramKeys(c: CatalogFile): string[] {
  let keys = paramKeyCache.get(c)
  if (!keys) { keys = paramKeysOf(c); paramKeyCache.set(c, keys) }
  return keys
}
function paramKeysOf(c: CatalogFile): string[] {
  return [...new Set([...c.numColumns().filter((s) => s.startsWith('p:')).map((s) => s.slice(2)), ...c.sectionNames().filter((s) => s.startsWith('dict:p:')).map((s) => s.slice(7))])].sort()
}

const NUM_FIELDS = ['version', 'seed', 'files', 'size', 'checkpoints', 'epochs']
const STR_FIELDS = ['name', 'seal', 'dataset', 'arch', 'created', 'promoter', 'population']

function numField(c: CatalogFile, name: string, col: string): Field {
  const a = c.f64(col) ?? new Float64Array(c.count).fill(NaN)
  return { name, numeric: true, col: a, get: (i) => { const v = a[i]!; return Number.isNaN(v) ? undefined : v } }
}

function unknown(c: CatalogFile, what: string, field: string, keys: string[]): never {
  const list = keys.length ? keys.slice(0, 30).join(', ') + (keys.length > 30 ? ', ...' : '') : 'none'
  throw new UsageError(`unknown field ${JSON.stringify(field)}: no model in this zoo has ${what} (known: ${list})`, 'E_USAGE', { field, count: c.count })
}

export function resolveField(c: CatalogFile, field: string, graph: () => Lineage): Field {
  if (NUM_FIELDS.includes(field)) return numField(c, field, field)
  if (STR_FIELDS.includes(field)) {
    const dict = c.dict(field)
    return { name: field, numeric: false, get: (i) => c.str(field, i), ...(dict ? { dict } : {}) }
  }
  if (field === 'relation') {
    return {
      name: field, numeric: false, get: (i) => c.str('relations', i),
      test: (i, op, v) => {
        const rels = c.str('relations', i)?.split(',') ?? []
        if (op === '=') return v === '' ? rels.length === 0 : rels.includes(v)
        if (op === '!=') return v === '' ? rels.length > 0 : !rels.includes(v)
        if (op === '~') { const m = matcher(v); return rels.some(m) }
        throw new UsageError('relation takes =, != or ~', 'E_USAGE')
      },
    }
  }
  if (field === 'parent' || field === 'ancestor') {
    return {
      name: field, numeric: false,
      get: (i) => graph().parentsOf(i).map((p) => `${p.name}@v${p.version}`).join(',') || undefined,
      test: (i, op, v) => {
        const g = graph()
        if (op === '~') {
          const m = matcher(v)
          const refs = field === 'parent' ? g.parentsOf(i).map((p) => `${p.name}@v${p.version}`) : [...g.ancestorsOf(i)].map((r) => `${c.str('name', r)}@v${c.f64('version')![r]}`)
          return refs.some(m)
        }
        if (op !== '=' && op !== '!=') throw new UsageError(`${field} takes =, != or ~ with a model name, name@vN or seal`, 'E_USAGE')
        const hit = field === 'parent' ? g.parentsOf(i).some((p) => g.refMatches(v, p)) : g.hasAncestor(i, v)
        return op === '=' ? hit : !hit
      },
    }
  }
  let m = /^(?:metrics\.)?(.+)@(\d+)$/.exec(field)
  if (m) {
    const [, key, e] = m
    if (!hasMetric(c, key!)) unknown(c, `metric ${key}`, field, metricKeys(c))
    if (Number(e) >= HISTORY_EPOCHS) throw new UsageError(`${field}: the catalog indexes epochs 0-${HISTORY_EPOCHS - 1}; use best.${key}, max.${key} or min.${key} for later epochs`, 'E_USAGE')
    return numField(c, `${key}@${Number(e)}`, `h:${key}:${Number(e)}`)
  }
  m = /^(metrics|best|max|min|params)\.(.+)$/.exec(field)
  if (m) {
    const [, kind, key] = m as unknown as [string, string, string]
    if (kind === 'params') return paramField(c, key, field)
    if (!hasMetric(c, key)) unknown(c, `metric ${key}`, field, metricKeys(c))
    if (kind === 'metrics') return numField(c, field, `m:${key}`)
    const which = kind === 'best' ? metricGoal(key) : kind
    return numField(c, field, `${which}:${key}`)
  }
  if (hasMetric(c, field)) return numField(c, `metrics.${field}`, `m:${field}`)
  if (c.hasNum(`p:${field}`) || c.has(`dict:p:${field}`)) return paramField(c, field, `params.${field}`)
  throw new UsageError(`unknown field ${JSON.stringify(field)}; fields: name, version, seal, seed, dataset, arch, population, created, promoter, files, size, checkpoints, epochs, params.<k>, metrics.<k>, best.<k>, max.<k>, min.<k>, <metric>@<epoch>, relation, parent, ancestor, stage, eval.<metric>, eval[<data>].<metric> (metrics here: ${metricKeys(c).join(', ') || 'none'})`, 'E_USAGE', { field })
}

function paramField(c: CatalogFile, key: string, name: string): Field {
  if (!c.hasNum(`p:${key}`) && !c.has(`dict:p:${key}`)) unknown(c, `param ${key}`, name, paramKeys(c))
  const a = c.f64(`p:${key}`)
  const hasStr = c.has(`dict:p:${key}`)
  return {
    name, numeric: !hasStr,
    get: (i) => { const v = a?.[i]; if (v !== undefined && !Number.isNaN(v)) return v; return hasStr ? c.str(`p:${key}`, i) : undefined },
  }
}

/** `~`: /regex/flags, a glob when it has * or ? (whole value, case-insensitive), else a substring (case-insensitive). */
export function matcher(pattern: string): (s: string) => boolean {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern)
  if (re) {
    let r: RegExp
    try { r = new RegExp(re[1]!, re[2]) } catch (err) { throw new UsageError(`bad regular expression ${pattern}: ${(err as Error).message}`, 'E_USAGE', {}, { cause: err }) }
    return (s) => r.test(s)
  }
  if (/[*?]/.test(pattern)) {
    const r = new RegExp('^' + pattern.split('').map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('') + '$', 'is')
    return (s) => r.test(s)
  }
  const low = pattern.toLowerCase()
  return (s) => s.toLowerCase().includes(low)
}

export function compareCell(cell: Cell, op: Op, value: string, num: number | undefined, pattern?: (s: string) => boolean): boolean {
  if (value === '' && (op === '=' || op === '!=')) return (cell === undefined) === (op === '=')
  if (cell === undefined) return op === '!='
  if (op === '~') return pattern!(String(cell))
  if (typeof cell === 'number') {
    if (num === undefined) return op === '!=' ? true : op === '=' ? false : cmp(String(cell), value, op)
    return cmp(cell, num, op)
  }
  return cmp(cell, value, op)
}

function cmp<T extends number | string>(a: T, b: T, op: Op): boolean {
  switch (op) {
    case '=': return a === b
    case '!=': return a !== b
    case '<': return a < b
    case '<=': return a <= b
    case '>': return a > b
    case '>=': return a >= b
    default: return false
  }
}

/** The parent links of every row, and walks over them (cycle-safe). */
export class Lineage {
  private parents: ParentRef[][] = []
  private byKey = new Map<string, number>()
  private byName = new Map<string, number[]>()
  private bySeal = new Map<string, number>()
  private children = new Map<number, number[]>()
  constructor(private c: CatalogFile) {
    const v = c.f64('version')!
    for (let i = 0; i < c.count; i++) {
      const name = c.str('name', i)!
      this.byKey.set(`${name}@v${v[i]}`, i)
      const list = this.byName.get(name); if (list) list.push(i); else this.byName.set(name, [i])
      this.bySeal.set(c.str('seal', i)!, i)
      const ps = JSON.parse(c.str('parents', i) ?? '[]') as ParentRef[]
      this.parents.push(ps)
    }
    this.parents.forEach((ps, i) => {
      for (const p of ps) {
        const r = this.byKey.get(`${p.name}@v${p.version}`)
        if (r === undefined) continue
        const ch = this.children.get(r); if (ch) ch.push(i); else this.children.set(r, [i])
      }
    })
  }
  parentsOf(i: number): ParentRef[] { return this.parents[i] ?? [] }
  childrenOf(i: number): number[] { return this.children.get(i) ?? [] }
  /** Rows a reference names: name@vN or seal exactly, a bare name in every version. */
  rowsOf(ref: string): number[] {
    const s = this.bySeal.get(ref); if (s !== undefined) return [s]
    if (/@v\d+$/.test(ref)) { const r = this.byKey.get(ref); return r === undefined ? [] : [r] }
    return this.byName.get(ref) ?? []
  }
  refMatches(ref: string, p: ParentRef): boolean {
    if (ref === p.seal) return true
    const at = /^(.*)@v(\d+)$/.exec(ref)
    return at ? at[1] === p.name && Number(at[2]) === p.version : ref === p.name
  }
  private descCache = new Map<string, Set<number>>()
  /** Whether a row named by `ref` is a proper ancestor of row i. */
  hasAncestor(i: number, ref: string): boolean {
    let set = this.descCache.get(ref)
    if (!set) {
      set = new Set<number>()
      const queue = [...this.rowsOf(ref)]
      while (queue.length) {
        for (const ch of this.childrenOf(queue.pop()!)) if (!set.has(ch)) { set.add(ch); queue.push(ch) }
      }
      this.descCache.set(ref, set)
    }
    return set.has(i)
  }
  ancestorsOf(i: number): Set<number> {
    const out = new Set<number>()
    const queue = [i]
    while (queue.length) {
      for (const p of this.parentsOf(queue.pop()!)) {
        const r = this.byKey.get(`${p.name}@v${p.version}`)
        if (r !== undefined && !out.has(r)) { out.add(r); queue.push(r) }
      }
    }
    return out
  }
}

export interface SortKey { field: Field; desc: boolean }

/** `[-]field[,...]` (a leading - sorts descending, + or nothing ascending) as sort keys. */
export function parseSort(text: string | undefined): Array<{ field: string; desc: boolean }> {
  if (!text) return []
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => (s.startsWith('-') ? { field: s.slice(1), desc: true } : { field: s.replace(/^\+/, ''), desc: false }))
}

export interface QueryOptions {
  filters: Filter[]
  sort: Array<{ field: string; desc: boolean }>
  limit?: number
  /** Every version, not only the latest of each name (also implied by a filter on `version`). */
  allVersions?: boolean
  /** Retired versions count too: without allVersions, the latest version of each name whatever its status. */
  includeRetired?: boolean
  /** Also the latest version of a model whose every version is retired (`ls` lists every model). */
  everyModel?: boolean
  /**
   * Fields that live outside the catalog (stage, eval.<metric>: src/evals/query-fields.ts), tried
   * before the catalog's own. A filter on `stage` searches every version, as one on `version` does.
   */
  extraField?: (field: string) => Field | undefined
}

export interface QueryResult { rows: number[]; total: number; fields: Field[]; sortFields: Field[] }

/** A row predicate for one filter, with fast paths for numeric and dictionary columns. */
function predicate(field: Field, op: Op, value: string, num: number | undefined, pattern?: (s: string) => boolean): (i: number) => boolean {
  if (field.test) return (i) => field.test!(i, op, value)
  const a = field.col
  if (a && num !== undefined && op !== '~') {
    // NaN (missing) fails every comparison but !=, as the semantics ask
    switch (op) {
      case '=': return (i) => a[i] === num
      case '!=': return (i) => a[i] !== num
      case '<': return (i) => a[i]! < num
      case '<=': return (i) => a[i]! <= num
      case '>': return (i) => a[i]! > num
      case '>=': return (i) => a[i]! >= num
    }
  }
  const d = field.dict
  if (d && value !== '' && (op === '=' || op === '!=')) {
    const code = d.values.indexOf(value) + 1 // 0 when absent: matches only missing cells, which '=' must not
    if (op === '=') return code === 0 ? () => false : (i) => d.codes[i] === code
    return code === 0 ? () => true : (i) => d.codes[i] !== code
  }
  return (i) => compareCell(field.get(i), op, value, num, pattern)
}

export function runQuery(c: CatalogFile, q: QueryOptions): QueryResult {
  let lineage: Lineage | undefined
  const graph = (): Lineage => (lineage ??= new Lineage(c))
  const resolve = (name: string): Field => q.extraField?.(name) ?? resolveField(c, name, graph)
  const compiled = q.filters.map((f) => {
    const field = resolve(f.field)
    const num = f.value.trim() !== '' && Number.isFinite(Number(f.value)) ? Number(f.value) : undefined
    if (field.numeric && !field.test && num === undefined && f.op !== '~' && f.value !== '') {
      throw new UsageError(`${field.name} is a number; compare it with a number, not ${JSON.stringify(f.value)}`, 'E_USAGE')
    }
    const pattern = f.op === '~' ? matcher(f.value) : undefined
    return { field, pred: predicate(field, f.op, f.value, num, pattern) }
  })
  const sortFields = q.sort.map((s) => ({ field: resolve(s.field), desc: s.desc }))
  // the candidates: one version per name (the latest in service, or the latest at all with
  // includeRetired), or every version (retired ones only with includeRetired)
  const allVersions = q.allVersions || q.filters.some((f) => f.field === 'version' || f.field === 'stage')
  const pick = allVersions ? (q.includeRetired ? undefined : c.retired()) : q.includeRetired ? c.latest() : c.current()
  const want = allVersions ? 0 : 1
  let rows: number[] = []
  // count read once: this loop runs 50,000 times in a warm find, mostly before V8 compiles it
  const count = c.count
  if (!pick) for (let i = 0; i < count; i++) rows.push(i)
  else for (let i = 0; i < count; i++) if (pick[i] === want) rows.push(i)
  if (q.everyModel && !allVersions && !q.includeRetired && c.hasNum('retired')) {
    const latest = c.latest()
    const served = new Set(rows.map((i) => c.str('name', i)))
    for (let i = 0; i < c.count; i++) if (latest[i] === 1 && !served.has(c.str('name', i))) rows.push(i)
    rows.sort((a, b) => a - b)
  }
  for (const k of compiled) rows = rows.filter(k.pred)
  const total = rows.length
  // ties keep row order, which is by name then version (build.ts)
  const keys: SortKey[] = sortFields
  // sort keys read once per row; numbers compare as numbers (before text), missing values last
  const vals = keys.map((k) => (k.field.col ? rows.map((r) => { const v = k.field.col![r]!; return Number.isNaN(v) ? undefined : v }) : rows.map((r) => k.field.get(r))))
  const cmp = (a: number, b: number): number => {
    for (let j = 0; j < keys.length; j++) {
      const x = vals[j]![a], y = vals[j]![b]
      if (x === y) continue
      if (x === undefined) return 1
      if (y === undefined) return -1
      let d: number
      if (typeof x === 'number' && typeof y === 'number') d = x - y
      else if (typeof x === 'number') d = -1
      else if (typeof y === 'number') d = 1
      else d = x < y ? -1 : 1
      if (d !== 0) return keys[j]!.desc ? -d : d
    }
    return a - b
  }
  const n = q.limit !== undefined ? Math.min(q.limit, rows.length) : rows.length
  let order: number[]
  if (keys.length === 0) order = rows.map((_, j) => j).slice(0, n)
  else if (n <= 256 && n * 4 < rows.length) {
    // the first n of the order only (cmp is a total order, so the same rows as a full sort): a kept
    // list in order, each row compared first with its last (~1 comparison per row, not log2(rows))
    // only for short limits: each insertion moves up to n kept rows, so a long limit sorts in full
    order = []
    for (let j = 0; j < rows.length && n > 0; j++) {
      if (order.length === n && cmp(j, order[n - 1]!) >= 0) continue
      let lo = 0, hi = order.length
      while (lo < hi) { const mid = (lo + hi) >> 1; if (cmp(order[mid]!, j) <= 0) lo = mid + 1; else hi = mid }
      order.splice(lo, 0, j)
      if (order.length > n) order.pop()
    }
  } else {
    order = rows.map((_, j) => j)
    order.sort(cmp)
    order.length = n
  }
  return { rows: order.map((j) => rows[j]!), total, fields: compiled.map((k) => k.field), sortFields: sortFields.map((s) => s.field) }
}

export interface ModelSummary {
  name: string
  version: number
  seal: string
  seed?: number
  dataset?: string
  arch?: string
  population?: string
  params: Record<string, Json>
  metrics: Record<string, number>
  parents: Array<{ name: string; version: number; relation: string; seal: string }>
  created?: string
  files: number
  size: number
  checkpoints: number
  /** Values of derived fields the query filtered or sorted on (best.*, <metric>@<epoch>, ...). */
  fields?: Record<string, number | string | null>
}

/**
 * A row's generating factors, from its p:<key> columns (a number, else the text) and `pjson` (the
 * values that are neither, as JSON); keys in sorted order.
 */
export function paramsOf(c: CatalogFile, i: number): Record<string, Json> {
  const out: Record<string, Json> = {}
  for (const k of paramKeys(c)) {
    const v = c.f64(`p:${k}`)?.[i]
    if (v !== undefined && !Number.isNaN(v)) { out[k] = v; continue }
    const s = c.str(`p:${k}`, i)
    if (s !== undefined) out[k] = s
  }
  const whole = c.str('pjson', i)
  if (whole !== undefined) Object.assign(out, JSON.parse(whole) as Record<string, Json>)
  return out
}

export function summarize(c: CatalogFile, i: number, extra: Field[] = [], metricList = finalMetricKeys(c)): ModelSummary {
  const num = (col: string): number | undefined => { const v = c.f64(col)?.[i]; return v === undefined || Number.isNaN(v) ? undefined : v }
  const metrics: Record<string, number> = {}
  for (const k of metricList) { const v = num(`m:${k}`); if (v !== undefined) metrics[k] = v }
  const s: ModelSummary = {
    name: c.str('name', i)!, version: num('version')!, seal: c.str('seal', i)!,
    ...(num('seed') !== undefined ? { seed: num('seed')! } : {}),
    ...(c.str('dataset', i) !== undefined ? { dataset: c.str('dataset', i)! } : {}),
    ...(c.str('arch', i) !== undefined ? { arch: c.str('arch', i)! } : {}),
    ...(c.str('population', i) !== undefined ? { population: c.str('population', i)! } : {}),
    params: paramsOf(c, i),
    metrics,
    parents: JSON.parse(c.str('parents', i) ?? '[]') as ModelSummary['parents'],
    ...(c.str('created', i) !== undefined ? { created: c.str('created', i)! } : {}),
    files: num('files') ?? 0, size: num('size') ?? 0, checkpoints: num('checkpoints') ?? 0,
  }
  const derived = extra.filter((f) => !['name', 'version', 'seal', 'seed', 'dataset', 'arch', 'population', 'created', 'files', 'size', 'checkpoints'].includes(f.name) && !f.name.startsWith('params.') && !f.name.startsWith('metrics.'))
  if (derived.length) s.fields = Object.fromEntries(derived.map((f) => [f.name, f.get(i) ?? null]))
  return s
}
