/**
 * The app's shared state: the catalog (loaded once per visit), the filter typed on the catalog page
 * (the population page plots the same models) and the versions picked for comparison. The query
 * itself is src/catalog/query.ts, the code behind `git zoo find` and `git zoo ls`.
 */
import { parseFilter, parseSort, runQuery, needsHistory, type Filter, type QueryResult } from '../../catalog/query.js'
import { BrowserCatalog, type Source } from './data.js'

export interface Query { text: string; sort: string; allVersions: boolean; includeRetired: boolean }

export const state = {
  source: undefined as unknown as Source,
  catalog: undefined as BrowserCatalog | undefined,
  query: { text: '', sort: '', allVersions: false, includeRetired: false } as Query,
  picked: new Set<string>(),
  /** Milliseconds of the last catalog load (fetch + parse) and of the last query. */
  loadMs: 0,
  queryMs: 0,
}

let loading: Promise<BrowserCatalog> | undefined

/** The catalog, fetched once (start() begins it while the page sets itself up). */
export function loadCatalog(): Promise<BrowserCatalog> {
  return loading ??= (async () => {
    const t0 = performance.now()
    const { json, bin } = await state.source.catalog()
    state.catalog = new BrowserCatalog(json, bin)
    state.loadMs = performance.now() - t0
    return state.catalog
  })()
}

/** Split the filter box into filters: spaces separate them, quotes ('...' or "...") keep spaces in a value. */
export function splitFilters(text: string): string[] {
  const out: string[] = []
  const re = /(?:[^\s"']+|"[^"]*"|'[^']*')+/g
  for (const m of text.matchAll(re)) out.push(m[0].replace(/(["'])(.*?)\1/g, '$2'))
  return out
}

export function parseQuery(text: string): Filter[] { return splitFilters(text).map(parseFilter) }

/** History columns a query needs and the page has not loaded (`<metric>@<epoch>` fields). */
export function historyNeeded(c: BrowserCatalog, fields: string[]): Array<{ metric: string; epoch: number }> {
  const out = new Map<string, { metric: string; epoch: number }>()
  for (const f of fields) {
    const m = /^(?:metrics\.)?(.+)@(\d+)$/.exec(f)
    if (m && needsHistory(f) && c.history[m[1]!]?.includes(Number(m[2])) && !c.hasHistory(m[1]!, Number(m[2]))) out.set(`${m[1]}@${Number(m[2])}`, { metric: m[1]!, epoch: Number(m[2]) })
  }
  return [...out.values()]
}

/** Run the query on the catalog (loading history columns first when a filter needs them). Throws a filter's usage error. */
export async function query(q: Query = state.query): Promise<QueryResult> {
  const c = await loadCatalog()
  const filters = parseQuery(q.text)
  const sort = parseSort(q.sort || undefined)
  const fields = [...filters.map((f) => f.field), ...sort.map((s) => s.field)]
  for (const { metric, epoch } of historyNeeded(c, fields)) { const h = await state.source.history(metric, c.id, epoch); c.addHistory(metric, h.bytes, h.epoch) }
  // seal and created come when named (parent= and ancestor= match seals too)
  for (const col of [...c.lazy]) {
    if (fields.includes(col) || (col === 'seal' && fields.some((f) => f === 'parent' || f === 'ancestor'))) c.addColumn(col, await state.source.column(col, c.id))
  }
  const t0 = performance.now()
  const r = runQuery(c.asCatalog(), { filters, sort, allVersions: q.allVersions, includeRetired: q.includeRetired, everyModel: filters.length === 0 })
  state.queryMs = performance.now() - t0
  return r
}

export const refOf = (c: BrowserCatalog, row: number): string => `${c.str('name', row)}@v${c.f64('version')![row]}`
