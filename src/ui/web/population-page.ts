/**
 * The population: a scatter of any two fields over the models the catalog filter selects (coloured
 * by a third), and a metric's distribution over epochs across them (median, quartiles, 10-90 %).
 * Fields resolve as in `git zoo find` (metrics.<k>, best.<k>, params.<k>, seed, size, ...).
 */
import { h, section, modelHref } from './dom.js'
import { state, query, loadCatalog, refOf } from './state.js'
import { scatterPlot, linePlot } from './plots.js'
import { resolveField, Lineage, finalMetricKeys, metricKeys, paramKeys } from '../../catalog/query.js'
import { mainMetric } from '../../manifest/card.js'
import type { BrowserCatalog } from './data.js'

function fieldChoices(c: BrowserCatalog): { numeric: string[]; colour: string[] } {
  const cat = c.asCatalog()
  const metrics = metricKeys(cat)
  const params = paramKeys(cat)
  const numeric = [...finalMetricKeys(cat).map((k) => `metrics.${k}`), ...metrics.filter((k) => c.hasNum(`max:${k}`)).map((k) => `best.${k}`),
    ...params.filter((k) => c.hasNum(`p:${k}`)).map((k) => `params.${k}`), ...['seed', 'size', 'epochs', 'version'].filter((k) => c.hasNum(k))]
  const colour = ['', ...['dataset', 'arch', 'relation'].filter((k) => c.dict(k === 'relation' ? 'relations' : k)), ...params.map((k) => `params.${k}`), ...numeric]
  return { numeric, colour }
}

export async function populationPage(root: HTMLElement): Promise<void> {
  const c = await loadCatalog()
  const cat = c.asCatalog()
  const { numeric, colour } = fieldChoices(c)
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '')
  const main = mainMetric(finalMetricKeys(cat))
  const sel = (id: string, options: string[], value: string | undefined): HTMLSelectElement => {
    const s = h('select', { id }, ...options.map((o) => h('option', { value: o }, o || '(none)')))
    if (value !== undefined && options.includes(value)) s.value = value
    return s
  }
  const xSel = sel('x', numeric, params.get('x') ?? numeric.find((f) => f.startsWith('params.')) ?? numeric[1])
  const ySel = sel('y', numeric, params.get('y') ?? (main ? `metrics.${main}` : numeric[0]))
  const logX = h('input', { type: 'checkbox', id: 'log-x' }), logY = h('input', { type: 'checkbox', id: 'log-y' })
  logX.checked = params.get('logx') === '1' || (params.get('logx') === null && /(^|\.)(lr|learning_rate|weight_decay|wd)$/.test(xSel.value))
  logY.checked = params.get('logy') === '1'
  const cSel = sel('color', colour, params.get('color') ?? (c.dict('arch') ? 'arch' : c.dict('dataset') ? 'dataset' : ''))
  const histMetrics = Object.keys(c.history).sort()
  const hSel = sel('dist-metric', histMetrics, params.get('dist') ?? mainMetric(histMetrics))
  const filterNote = h('p', { class: 'muted', id: 'population-filter' })
  const scatterBox = h('div', { id: 'scatter' })
  const distBox = h('div', { id: 'distribution' })
  root.append(h('h1', {}, 'Population'), filterNote,
    section('Scatter', h('div', { class: 'toolbar' }, h('label', {}, 'x ', xSel), h('label', {}, 'y ', ySel), h('label', {}, logX, ' log x'), h('label', {}, logY, ' log y'), h('label', {}, 'colour ', cSel)), scatterBox),
    section('Distribution over epochs', histMetrics.length ? h('div', { class: 'toolbar' }, h('label', {}, 'metric ', hSel)) : h('p', { class: 'muted' }, 'No per-epoch histories in this zoo.'), distBox))

  let rows: number[] = []
  let lineage: Lineage | undefined
  const graph = (): Lineage => (lineage ??= new Lineage(cat))
  const drawScatter = (): void => {
    const fx = resolveField(cat, xSel.value, graph), fy = resolveField(cat, ySel.value, graph)
    const num = (f: ReturnType<typeof resolveField>): Float64Array => Float64Array.from(rows, (r) => { const v = f.get(r); return typeof v === 'number' ? v : NaN })
    let color: Parameters<typeof scatterPlot>[0]['color']
    if (cSel.value) {
      const fc = resolveField(cat, cSel.value, graph)
      if (fc.numeric) color = { kind: 'number', values: num(fc) }
      else {
        const names: string[] = [], codeOf = new Map<string, number>()
        const codes = Int32Array.from(rows, (r) => { const v = fc.get(r); if (v === undefined) return -1; const s = String(v); let k = codeOf.get(s); if (k === undefined) { k = names.length; names.push(s); codeOf.set(s, k) } return k })
        color = { kind: 'category', codes, names }
      }
    }
    scatterBox.replaceChildren(scatterPlot({ x: num(fx), y: num(fy), logX: logX.checked, logY: logY.checked, rows, color, xLabel: fx.name, yLabel: fy.name, label: (r) => refOf(c, r), onPick: (r) => { location.hash = modelHref(refOf(c, r)) } }))
    history.replaceState(null, '', `#/population?x=${encodeURIComponent(xSel.value)}&y=${encodeURIComponent(ySel.value)}&color=${encodeURIComponent(cSel.value)}&logx=${logX.checked ? 1 : 0}&logy=${logY.checked ? 1 : 0}&dist=${encodeURIComponent(hSel.value)}`)
  }
  const drawDistribution = async (): Promise<void> => {
    const metric = hSel.value
    if (!metric) return
    if (!c.hasHistory(metric)) { const h = await state.source.history(metric, c.id); c.addHistory(metric, h.bytes, h.epoch) }
    const epochs = c.history[metric] ?? []
    const qs = [0.1, 0.25, 0.5, 0.75, 0.9]
    const series = qs.map(() => [] as Array<number | null>)
    const buf = new Float64Array(rows.length)
    for (const e of epochs) {
      const col = c.f64(`h:${metric}:${e}`)!
      let k = 0
      for (const r of rows) { const v = col[r]!; if (!Number.isNaN(v)) buf[k++] = v }
      const vals = buf.subarray(0, k).sort() // a typed array sorts numerically, without a comparator
      qs.forEach((q, i) => series[i]!.push(vals.length ? vals[Math.min(vals.length - 1, Math.floor(q * (vals.length - 1) + 0.5))]! : null))
    }
    // epochs no selected model reached are left off the axis
    let end = epochs.length
    while (end > 1 && series[2]![end - 1] === null) end--
    for (const sr of series) sr.length = end
    distBox.replaceChildren(linePlot(epochs.slice(0, end), [
      { label: '10 %', values: series[0]!, color: '#93c5fd' }, { label: '25 %', values: series[1]!, color: '#3b82f6' },
      { label: 'median', values: series[2]!, color: '#1e3a8a' }, { label: '75 %', values: series[3]!, color: '#3b82f6' }, { label: '90 %', values: series[4]!, color: '#93c5fd' },
    ], { width: 760, height: 280, yLabel: metric, bands: [[5, 1], [4, 2]] }))
  }
  const r = await query()
  rows = r.rows
  filterNote.textContent = `${rows.length.toLocaleString('en')} model versions${state.query.text ? ` matching ${state.query.text}` : ''} (the catalog's filter applies here)`
  for (const s of [xSel, ySel, cSel, logX, logY]) s.addEventListener('change', drawScatter)
  hSel.addEventListener('change', () => { void drawDistribution() })
  let t = performance.now()
  if (numeric.length) drawScatter()
  const scatterMs = performance.now() - t
  t = performance.now()
  await drawDistribution()
  // what the page took (bench/ui.ts reads it)
  Object.assign(document.body.dataset, { scatterMs: scatterMs.toFixed(1), distributionMs: (performance.now() - t).toFixed(1) })
  document.body.dataset.ready = 'population'
}
