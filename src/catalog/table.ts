/** Plain-text output of catalog results: an aligned table, one model version per line. */
import type { CatalogFile } from './columns.js'
import { finalMetricKeys, type Field, type Cell } from './query.js'
import { fmt, mainMetric } from '../manifest/card.js'

function cellText(v: Cell): string {
  if (v === undefined) return '-'
  return typeof v === 'number' ? fmt(v) : v
}

/** Columns: model, dataset, arch, seed, the fields a query used, then the main metric if not shown yet. */
export function renderTable(c: CatalogFile, rows: number[], used: Field[], opts: { total?: number; maxWidth?: number } = {}): string {
  const version = c.f64('version')!
  const seed = c.f64('seed')
  const columns: Array<{ title: string; get: (i: number) => string; right?: boolean }> = [
    { title: 'MODEL', get: (i) => `${c.str('name', i)}@v${version[i]}` },
  ]
  const shown = new Set(['name', 'version'])
  const add = (title: string, get: (i: number) => Cell, numeric: boolean): void => {
    if (shown.has(title)) return
    shown.add(title)
    columns.push({ title, get: (i) => cellText(get(i)), right: numeric })
  }
  if (c.has('dict:dataset')) add('dataset', (i) => c.str('dataset', i), false)
  if (c.has('dict:arch')) add('arch', (i) => c.str('arch', i), false)
  if (seed) add('seed', (i) => (Number.isNaN(seed[i]!) ? undefined : seed[i]), true)
  for (const f of used) add(f.name, f.get, f.numeric)
  const main = mainMetric(finalMetricKeys(c))
  if (main && !shown.has(`metrics.${main}`)) {
    const a = c.f64(`m:${main}`)!
    add(`metrics.${main}`, (i) => (Number.isNaN(a[i]!) ? undefined : a[i]), true)
  }
  if (c.has('dict:relations')) {
    add('parents', (i) => {
      const ps = JSON.parse(c.str('parents', i) ?? '[]') as Array<{ name: string; version: number; relation: string }>
      return ps.length ? ps.map((p) => `${p.relation}:${p.name}@v${p.version}`).join(' ') : undefined
    }, false)
  }
  const cells = rows.map((r) => columns.map((col) => col.get(r)))
  const widths = columns.map((col, j) => Math.min(opts.maxWidth ?? 60, Math.max(col.title.length, ...cells.map((row) => row[j]!.length))))
  const line = (vals: string[]): string => vals.map((v, j) => {
    const w = widths[j]!
    const t = v.length > w ? v.slice(0, w - 1) + '…' : v
    return columns[j]!.right ? t.padStart(w) : t.padEnd(w)
  }).join('  ').trimEnd()
  const out = [line(columns.map((col) => col.title)), ...cells.map(line)]
  if (opts.total !== undefined && opts.total > rows.length) out.push(`(${rows.length} of ${opts.total} shown; use --limit to see more)`)
  return out.join('\n') + '\n'
}
