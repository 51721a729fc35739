/**
 * The catalog: every model version as a sortable table, filtered as you type with `git zoo find`'s
 * language. Rows are virtualised: only the rows in view exist in the page, so 50,000 models paint
 * as fast as 50.
 */
import { h, num, modelHref, compareHref } from './dom.js'
import { state, query, loadCatalog, refOf } from './state.js'
import { finalMetricKeys, type Field, type QueryResult } from '../../catalog/query.js'
import { mainMetric } from '../../manifest/card.js'
import type { BrowserCatalog } from './data.js'

const ROW = 28

interface Column { title: string; sortKey?: string; cls?: string; cell(row: number): Node | string }

function columns(c: BrowserCatalog, used: Field[]): Column[] {
  const version = c.f64('version')!
  const retired = c.retired()
  const cols: Column[] = [
    {
      title: '', cls: 'pick', cell: (r) => {
        const ref = refOf(c, r)
        const box = h('input', { type: 'checkbox', 'aria-label': `pick ${ref} to compare`, onchange: (e: Event) => { if ((e.target as HTMLInputElement).checked) state.picked.add(ref); else state.picked.delete(ref); updatePicked() } })
        box.checked = state.picked.has(ref)
        return box
      },
    },
    {
      title: 'model', sortKey: 'name', cls: 'model', cell: (r) => h('span', {},
        h('a', { href: modelHref(refOf(c, r)) }, `${c.str('name', r)}`, h('span', { class: 'ver' }, `@v${version[r]}`)),
        retired[r] ? h('span', { class: 'badge retired' }, 'retired') : null),
    },
  ]
  const shown = new Set(['name', 'version'])
  const text = (title: string, get: (r: number) => string | undefined, sortKey = title, cls?: string): void => {
    if (shown.has(title)) return
    shown.add(title)
    cols.push({ title, sortKey, ...(cls ? { cls } : {}), cell: (r) => get(r) ?? '' })
  }
  const number = (title: string, a: Float64Array | undefined, sortKey = title): void => {
    if (shown.has(title) || !a) return
    shown.add(title)
    cols.push({ title, sortKey, cls: 'num', cell: (r) => num(a[r]) })
  }
  if (c.dict('dataset')) text('dataset', (r) => c.str('dataset', r))
  if (c.dict('arch')) text('arch', (r) => c.str('arch', r))
  number('seed', c.f64('seed'))
  for (const f of used) {
    if (f.test) continue
    if (f.numeric && f.col) number(f.name, f.col)
    else text(f.name, (r) => { const v = f.get(r); return v === undefined ? undefined : typeof v === 'number' ? num(v) : v }, f.name, f.numeric ? 'num' : undefined)
  }
  const metrics = finalMetricKeys(c.asCatalog())
  const main = mainMetric(metrics)
  const ordered = main ? [main, ...metrics.filter((k) => k !== main)] : metrics
  for (const k of ordered.slice(0, 4)) number(`metrics.${k}`, c.f64(`m:${k}`))
  if (c.dict('relations')) {
    text('parents', (r) => {
      const ps = JSON.parse(c.str('parents', r) ?? '[]') as Array<{ name: string; version: number; relation: string }>
      return ps.length ? ps.map((p) => `${p.relation}: ${p.name}@v${p.version}`).join(', ') : undefined
    }, 'relation')
  }
  number('size', c.f64('size'))
  return cols
}

let updatePicked = (): void => {}

export async function catalogPage(root: HTMLElement): Promise<void> {
  const c = await loadCatalog()
  const q = state.query
  const input = h('input', { id: 'filter', type: 'search', placeholder: "filter as in git zoo find, e.g. metrics.test_acc>0.6 dataset=cifar10 name~resnet*", spellcheck: 'false', autocomplete: 'off', value: q.text })
  const status = h('div', { id: 'status', class: 'status' })
  const error = h('div', { id: 'filter-error', class: 'error', role: 'alert' })
  const all = h('input', { type: 'checkbox', id: 'all-versions' }); all.checked = q.allVersions
  const ret = h('input', { type: 'checkbox', id: 'include-retired' }); ret.checked = q.includeRetired
  const compare = h('a', { id: 'compare-picked', class: 'button', href: '#' }, 'compare picked')
  updatePicked = (): void => {
    const refs = [...state.picked]
    compare.textContent = `compare picked (${refs.length})`
    compare.setAttribute('href', refs.length >= 2 ? compareHref(refs) : '#')
    compare.classList.toggle('disabled', refs.length < 2)
  }
  updatePicked()
  const head = h('div', { class: 'thead', role: 'row' })
  const body = h('div', { class: 'tbody' })
  const spacer = h('div', { class: 'spacer' })
  const viewport = h('div', { id: 'rows', class: 'viewport', role: 'grid' }, spacer, body)
  const bad = c.problems.length ? h('p', { class: 'error', id: 'problems' }, `${c.problems.length} manifest${c.problems.length === 1 ? '' : 's'} could not be indexed (${c.problems[0]!.path}: ${c.problems[0]!.problem}); run git zoo verify`) : null
  root.append(bad ?? '',
    h('div', { class: 'toolbar' }, input,
      h('label', {}, all, ' all versions'), h('label', {}, ret, ' include retired'), compare),
    error, status, h('div', { class: 'table' }, head, viewport))

  let result: QueryResult | undefined
  let cols: Column[] = []
  let seq = 0
  const paint = (): void => {
    if (!result) return
    const rows = result.rows
    spacer.style.height = `${rows.length * ROW}px`
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW) - 5)
    const last = Math.min(rows.length, first + Math.ceil((viewport.clientHeight || 600) / ROW) + 10)
    const frag = document.createDocumentFragment()
    for (let j = first; j < last; j++) {
      const r = rows[j]!
      const tr = h('div', { class: `tr${c.retired()[r] ? ' is-retired' : ''}`, role: 'row', 'data-ref': refOf(c, r) })
      tr.style.transform = `translateY(${j * ROW}px)`
      for (const col of cols) tr.append(h('div', { class: `td ${col.cls ?? ''}` }, col.cell(r)))
      frag.append(tr)
    }
    body.replaceChildren(frag)
  }
  const header = (): void => {
    const [key, desc] = q.sort.startsWith('-') ? [q.sort.slice(1), true] : [q.sort, false]
    head.replaceChildren(...cols.map((col) => h('div', {
      class: `th ${col.cls ?? ''}${col.sortKey ? ' sortable' : ''}`, role: 'columnheader', title: col.sortKey ? `sort by ${col.sortKey}` : undefined,
      onclick: () => { if (!col.sortKey) return; q.sort = key === col.sortKey && !desc ? `-${col.sortKey}` : col.sortKey; void apply() },
    }, col.title, key === col.sortKey ? (desc ? ' ▼' : ' ▲') : '')))
  }
  const apply = async (): Promise<void> => {
    const t0 = performance.now()
    const mine = ++seq
    q.text = input.value; q.allVersions = all.checked; q.includeRetired = ret.checked
    let r: QueryResult
    try { r = await query(q) } catch (err) {
      if (mine !== seq) return
      error.textContent = (err as Error).message
      input.classList.add('invalid')
      return
    }
    if (mine !== seq) return
    error.textContent = ''
    input.classList.remove('invalid')
    result = r
    cols = columns(c, [...r.fields, ...r.sortFields])
    const widths = cols.map((col) => (col.cls === 'pick' ? '32px' : col.cls === 'model' ? 'minmax(220px, 2fr)' : 'minmax(90px, 1fr)')).join(' ')
    viewport.style.setProperty('--cols', widths); head.style.setProperty('--cols', widths)
    header()
    paint()
    status.textContent = `${r.total.toLocaleString('en')} of ${c.count.toLocaleString('en')} model versions · query ${state.queryMs.toFixed(1)} ms`
    status.dataset.total = String(r.total)
    status.dataset.queryMs = state.queryMs.toFixed(2)
    // filter to rows on screen (query + table), and the first paint since the page was opened
    status.dataset.applyMs = (performance.now() - t0).toFixed(2)
    if (!document.body.dataset.paintMs) requestAnimationFrame(() => { document.body.dataset.paintMs = performance.now().toFixed(1) })
    document.body.dataset.ready = 'catalog'
  }
  input.addEventListener('input', () => { void apply() })
  all.addEventListener('change', () => { void apply() })
  ret.addEventListener('change', () => { void apply() })
  viewport.addEventListener('scroll', () => requestAnimationFrame(paint))
  await apply()
  input.focus()
}
