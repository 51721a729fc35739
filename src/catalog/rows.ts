/**
 * How one manifest's facts become cells of the column set (names of columns in spec/catalog.md):
 *   name seal created parents blob                            plain strings (a row's path is its name and version)
 *   dataset arch population promoter relations pjson         dictionary strings (pjson: params neither text nor number)
 *   p:<key> (non-numeric params)                             dictionary strings
 *   version seed files size checkpoints epochs p:<key>       numbers
 *   m:<metric> (final) max:<metric> min:<metric>             numbers over history and final
 *   h:<metric>:<epoch>                                       the history, epochs 0..HISTORY_EPOCHS-1
 *   st:mtime st:size st:ino                                  the manifest file's stat (worktree mode)
 *   retired                                                  1 when the version is retired
 *   unfetched                                                1 when a history build found no checkpoint node to read
 */
import type { ColumnSet, DictColumn } from './columns.js'
import { HISTORY_EPOCHS } from './query.js'
import type { CatalogRow } from './extract.js'


export interface FileFacts { blob?: string; mtime?: number; size?: number; ino?: number }

export function paramText(v: unknown): string { return typeof v === 'string' ? v : JSON.stringify(v) }

/**
 * Per column set, until its arrays are reallocated: history arrays by metric and epoch, and the
 * numeric and string columns of params and final metrics by bare key, so a row's dozens of params
 * and metrics find their arrays without building a `p:<key>` name and hashing it each time.
 */
interface Memo {
  generation: number
  hist: Map<string, Float64Array[]>
  pnum: Map<string, Float64Array>
  pstr: Map<string, DictColumn>
  metric: Map<string, Float64Array>
}
const memos = new WeakMap<ColumnSet, Memo>()

function memoOf(cols: ColumnSet): Memo {
  let c = memos.get(cols)
  if (!c || c.generation !== cols.generation) {
    c = { generation: cols.generation, hist: new Map(), pnum: new Map(), pstr: c?.pstr ?? new Map(), metric: new Map() }
    memos.set(cols, c)
  }
  return c
}


export function putRow(cols: ColumnSet, i: number, row: CatalogRow, history: boolean, facts: FileFacts = {}): void {
  cols.setStr('name', i, row.name)
  cols.setStr('seal', i, row.seal)
  cols.setNum('version', i, row.version)
  if (row.seed !== undefined) cols.setNum('seed', i, row.seed)
  if (row.dataset !== undefined) cols.setStr('dataset', i, row.dataset)
  if (row.arch !== undefined) cols.setStr('arch', i, row.arch)
  if (row.population !== undefined) cols.setStr('population', i, row.population)
  if (row.created !== undefined) cols.setStr('created', i, row.created)
  if (row.promoter !== undefined) cols.setStr('promoter', i, row.promoter)
  if (row.retired) cols.setNum('retired', i, 1)
  if (row.unfetched) cols.setNum('unfetched', i, 1)
  cols.setNum('files', i, row.files)
  cols.setNum('size', i, row.size)
  cols.setNum('checkpoints', i, row.checkpoints)
  if (history) cols.setNum('epochs', i, row.history.length)
  // params live in their p:<key> columns; only values that are neither text nor a number (true,
  // null, lists, objects) are kept whole as JSON too, since their p: text cannot tell "true" from true
  let pjson: Record<string, unknown> | undefined
  cols.setStr('parents', i, row.parents.length === 0 ? '[]' : JSON.stringify(row.parents))
  if (row.parents.length) cols.setStr('relations', i, [...new Set(row.parents.map((p) => p.relation))].sort().join(','))
  const memo = memoOf(cols)
  for (const k in row.params) {
    const v = row.params[k]
    if (typeof v === 'number') {
      let a = memo.pnum.get(k)
      if (!a) { a = cols.column(`p:${k}`); memo.pnum.set(k, a) }
      a[i] = v
    } else {
      if (typeof v !== 'string') (pjson ??= {})[k] = v
      let a = memo.pstr.get(k)
      if (!a) { a = cols.dictColumn(`p:${k}`); memo.pstr.set(k, a) }
      a.set(i, paramText(v))
    }
  }
  if (pjson) cols.setStr('pjson', i, JSON.stringify(pjson))
  const max: Record<string, number> = {}, min: Record<string, number> = {}
  for (const k in row.metrics) {
    const v = row.metrics[k]!
    let a = memo.metric.get(k)
    if (!a) { a = cols.column(`m:${k}`); memo.metric.set(k, a) }
    a[i] = v
    if (history) { max[k] = v; min[k] = v }
  }
  for (let pos = 0; pos < row.history.length; pos++) {
    const h = row.history[pos]!
    const e = Number.isSafeInteger(h.epoch) && h.epoch! >= 0 ? h.epoch! : pos
    for (const k in h) {
      if (k === 'epoch') continue
      const v = h[k]!
      const a = max[k]; if (a === undefined || v > a) max[k] = v
      const b = min[k]; if (b === undefined || v < b) min[k] = v
      if (e >= HISTORY_EPOCHS) continue
      let arrs = memo.hist.get(k)
      if (!arrs) { arrs = []; memo.hist.set(k, arrs) }
      let col = arrs[e]
      if (!col) { col = cols.column(`h:${k}:${e}`); arrs[e] = col }
      col[i] = v
    }
  }
  if (history) {
    for (const k in max) cols.setNum(`max:${k}`, i, max[k]!)
    for (const k in min) cols.setNum(`min:${k}`, i, min[k]!)
  }
  if (facts.blob) cols.setStr('blob', i, facts.blob)
  if (facts.mtime !== undefined) cols.setNum('st:mtime', i, facts.mtime)
  if (facts.size !== undefined) cols.setNum('st:size', i, facts.size)
  if (facts.ino !== undefined) cols.setNum('st:ino', i, facts.ino)
}
