/** Two or more model versions side by side: curves overlaid, the factors that differ, metrics, and `git zoo diff`'s weight summary. */
import { h, section, num, bytes, modelHref } from './dom.js'
import { state } from './state.js'
import { linePlot, PALETTE } from './plots.js'
import { historyLines } from './model-page.js'
import { mainMetric } from '../../manifest/card.js'
import type { ModelPayload, DiffPayload } from '../shapes.js'

const show = (v: unknown): string => (v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v))

export async function comparePage(root: HTMLElement, refs: string[]): Promise<void> {
  if (refs.length < 2) { root.append(h('p', { class: 'error' }, 'Pick two or more models to compare (tick them in the catalog).')); return }
  const models = await Promise.all(refs.map((r) => state.source.model(r)))
  const keys = models.map((p) => `${p.manifest.name}@v${p.manifest.version}`)
  root.append(h('h1', {}, 'Compare'), h('div', { class: 'legend big' }, ...keys.map((k, i) => h('a', { href: modelHref(k) }, h('i', { style: `background:${PALETTE[i % PALETTE.length]}` }), k))))

  // curves: one metric at a time, every model's history overlaid
  const lines = models.map((p) => historyLines(p.manifest))
  const metricKeys = [...new Set(lines.flatMap((l) => l.keys))]
  const pick = h('select', { id: 'compare-metric' }, ...metricKeys.map((k) => h('option', { value: k }, k)))
  pick.value = mainMetric(metricKeys) ?? metricKeys[0] ?? ''
  const plotBox = h('div', {})
  const drawCurves = (): void => {
    const k = pick.value
    const xs = [...new Set(lines.flatMap((l) => l.xs))].sort((a, b) => a - b)
    plotBox.replaceChildren(linePlot(xs, lines.map((l, i) => {
      const at = new Map(l.xs.map((x, j) => [x, l.values[k]?.[j] ?? null]))
      return { label: keys[i]!, values: xs.map((x) => at.get(x) ?? null), color: PALETTE[i % PALETTE.length]! }
    }), { width: 900, height: 300, yLabel: k }))
  }
  pick.addEventListener('change', drawCurves)
  drawCurves()
  root.append(section('Curves', metricKeys.length ? h('label', {}, 'metric ', pick) : h('p', { class: 'muted' }, 'No per-epoch history recorded.'), plotBox))

  // factors: every key any of them has; the differing ones first, the same ones folded away
  const facts = models.map((p) => factorsOf(p.manifest))
  const all = [...new Set(facts.flatMap((f) => Object.keys(f)))].sort()
  const differs = all.filter((k) => new Set(facts.map((f) => show(f[k]))).size > 1)
  const same = all.filter((k) => !differs.includes(k))
  const row = (k: string): HTMLElement => h('tr', {}, h('th', {}, k), ...facts.map((f) => h('td', {}, show(f[k]))))
  const headRow = h('tr', {}, h('th', {}, ''), ...keys.map((k) => h('th', {}, k)))
  root.append(section('Factors that differ', differs.length ? h('table', { id: 'factor-diff' }, headRow, ...differs.map(row)) : h('p', { class: 'muted' }, 'All generating factors are the same.'),
    same.length ? h('details', {}, h('summary', {}, `${same.length} the same`), h('table', {}, ...same.map(row))) : null))

  const metricNames = [...new Set(models.flatMap((p) => Object.keys(p.manifest.metrics)))].sort()
  root.append(section('Final metrics', h('table', {}, headRow.cloneNode(true), ...metricNames.map((k) => h('tr', {}, h('th', {}, k), ...models.map((p) => h('td', { class: 'num' }, num(p.manifest.metrics[k]))))))))

  const weights = section('Weights (git zoo diff)')
  root.append(weights)
  if (!state.source.diff) {
    weights.append(h('p', { class: 'muted' }, `A static export cannot read weights; run git zoo diff ${keys[0]} ${keys[1]}.`))
  } else {
    const box = h('div', { id: 'weight-diff' }, h('p', { class: 'muted' }, 'comparing weights…'))
    weights.append(box)
    const diffs = await Promise.all(keys.slice(1).map((k) => state.source.diff!(keys[0]!, k).catch((err: Error) => err)))
    box.replaceChildren(...diffs.map((d, i) => (d instanceof Error ? h('p', { class: 'error' }, `${keys[0]} vs ${keys[i + 1]}: ${d.message}`) : diffView(d))))
  }
  document.body.dataset.ready = 'compare'
}

function factorsOf(m: ModelPayload['manifest']): Record<string, unknown> {
  const out: Record<string, unknown> = { seed: m.seed, dataset: m.dataset, arch: m.arch }
  for (const [k, v] of Object.entries(m.params)) out[`params.${k}`] = v
  out.parents = m.parents.map((p) => `${p.relation}: ${p.name}@v${p.version}`).join(', ') || undefined
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k]
  return out
}

function diffView(d: DiffPayload): HTMLElement {
  const s = d.storage
  return h('div', { class: 'diff' },
    h('h3', {}, `${d.a.name}@v${d.a.version} → ${d.b.name}@v${d.b.version}`),
    h('p', {}, `files: ${d.files.same.length} same, ${d.files.changed.length} changed, ${d.files.only_a.length} only in a, ${d.files.only_b.length} only in b · storage shared: ${s.shared.objects} objects (${bytes(s.shared.bytes)}) of ${s.a.objects} / ${s.b.objects}`),
    d.weights.length ? h('table', {}, h('tr', {}, h('th', {}, 'file'), h('th', {}, 'tensors compared'), h('th', {}, 'identical'), h('th', {}, 'L2'), h('th', {}, 'cosine'), h('th', {}, 'note')),
      ...d.weights.map((w) => h('tr', {}, h('td', {}, w.a_file === w.b_file ? w.a_file : `${w.a_file} ↔ ${w.b_file}`),
        h('td', { class: 'num' }, w.inspectable ? w.summary.compared : ''), h('td', { class: 'num' }, w.inspectable ? `${w.summary.identical} (${bytes(w.summary.identical_bytes)})` : ''),
        h('td', { class: 'num' }, w.inspectable ? num(w.summary.l2) : ''), h('td', { class: 'num' }, w.inspectable ? num(w.summary.cosine) : ''),
        h('td', {}, w.reason ?? [w.missing.length ? `${w.missing.length} missing in b` : '', w.extra.length ? `${w.extra.length} extra in b` : '', w.mismatched.length ? `${w.mismatched.length} shape/dtype mismatches` : ''].filter(Boolean).join('; '))))) : h('p', { class: 'muted' }, 'No matching safetensors or ONNX files to compare.'))
}
