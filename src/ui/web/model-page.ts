/** A model version's page: card, factors, metrics over epochs, evaluations, files, lineage, seal and signature, promotion log. */
import { h, section, num, bytes, modelHref, compareHref } from './dom.js'
import { state } from './state.js'
import { renderCard } from './markdown.js'
import { linePlot } from './plots.js'
import { lineageView } from './lineage-view.js'
import { assemble } from './download.js'
import { metricFacts } from '../../manifest/card.js'
import type { ModelPayload } from '../shapes.js'
import type { LogEntry } from '../../promote/log.js'

export function signatureBadge(e: LogEntry | undefined): HTMLElement {
  if (!e) return h('span', { class: 'badge' }, 'no promotion commit found')
  const s = e.signature
  return h('span', { class: `badge ${s.ok ? 'ok' : s.status === 'unsigned' ? '' : 'bad'}`, title: s.key ?? '' }, s.ok ? `signed, good${s.signer ? ` (${s.signer})` : ''}` : `signature: ${s.status}${s.signer ? ` (${s.signer})` : ''}`)
}

export function historyLines(m: ModelPayload['manifest']): { xs: number[]; keys: string[]; values: Record<string, Array<number | null>> } {
  const hist = m.history ?? []
  const xs = hist.map((r, i) => (typeof r.epoch === 'number' ? r.epoch : i))
  const keys = [...new Set(hist.flatMap((r) => Object.keys(r)))].filter((k) => k !== 'epoch')
  const values: Record<string, Array<number | null>> = {}
  for (const k of keys) values[k] = hist.map((r) => (typeof r[k] === 'number' ? r[k]! : null))
  return { xs, keys, values }
}

export async function modelPage(root: HTMLElement, ref: string): Promise<void> {
  const p = await state.source.model(ref)
  const m = p.manifest
  const key = `${m.name}@v${m.version}`
  const promotion = p.log.find((e) => e.kind === 'promotion')
  const parents = m.parents.map((x) => `${x.name}@v${x.version}`)
  root.append(h('header', { class: 'model-head' },
    h('h1', {}, m.name, h('span', { class: 'ver' }, `@v${m.version}`)),
    h('div', { class: 'badges' },
      h('span', { class: `badge ${p.sealOk ? 'ok' : 'bad'}`, id: 'seal', title: m.seal }, p.sealOk ? 'seal ok' : 'manifest does not match its seal'),
      signatureBadge(promotion),
      p.retired ? h('span', { class: 'badge retired', title: p.retired.reason }, `retired ${p.retired.retired.slice(0, 10)} by ${p.retired.retired_by}: ${p.retired.reason}`) : null),
    h('div', { class: 'actions' },
      ...m.parents.map((x) => h('a', { class: 'button', href: modelHref(`${x.name}@v${x.version}`), 'data-parent': `${x.name}@v${x.version}` }, `${x.relation} of ${x.name}@v${x.version}`)),
      parents.length ? h('a', { class: 'button', id: 'compare-parents', href: compareHref([key, ...parents]) }, `compare with parent${parents.length > 1 ? 's' : ''}`) : null,
      h('button', { class: 'button', onclick: () => { state.picked.add(key); location.hash = '#/' } }, 'pick to compare')),
    h('code', { class: 'seal' }, m.seal)))

  // metrics over epochs
  const hl = historyLines(m)
  const facts = metricFacts(m)
  const metrics = section('Metrics',
    facts.length ? h('table', {}, h('tr', {}, h('th', {}, 'metric'), h('th', {}, 'final'), h('th', {}, 'best'), h('th', {}, 'at epoch')),
      ...facts.map((f) => h('tr', {}, h('td', {}, f.key), h('td', { class: 'num' }, num(f.final)), h('td', { class: 'num' }, `${num(f.best)} (${f.goal})`), h('td', { class: 'num' }, f.bestEpoch ?? '')))) : h('p', { class: 'muted' }, 'No metrics recorded.'),
    hl.xs.length > 1 ? plotsByScale(hl) : null)

  const factors = section('Generating factors', h('table', { class: 'kv' },
    ...[['seed', m.seed], ['dataset', m.dataset], ['arch', m.arch], ...Object.entries(m.params).map(([k, v]) => [`params.${k}`, v])]
      .filter(([, v]) => v !== undefined).map(([k, v]) => h('tr', {}, h('th', {}, String(k)), h('td', {}, typeof v === 'string' ? v : JSON.stringify(v)))),
    h('tr', {}, h('th', {}, 'created'), h('td', {}, m.created)), h('tr', {}, h('th', {}, 'promoter'), h('td', {}, m.promoter)),
    m.code ? h('tr', {}, h('th', {}, 'code'), h('td', {}, `${m.code.repo ?? ''} ${m.code.commit.slice(0, 12)}${m.code.dirty ? ' (dirty)' : ''}`)) : null))

  const evals = section('Evaluations', p.evaluations.length ? h('table', { id: 'evaluations' },
    h('tr', {}, h('th', {}, 'file'), h('th', {}, 'data'), h('th', {}, 'samples'), h('th', {}, 'accuracy'), h('th', {}, 'loss'), h('th', {}, 'top-5'), h('th', {}, 'when'), h('th', {}, 'status')),
    ...p.evaluations.map((e) => h('tr', {}, h('td', {}, e.file), h('td', {}, e.data), h('td', { class: 'num' }, e.n), h('td', { class: 'num' }, num(e.metrics.accuracy)), h('td', { class: 'num' }, num(e.metrics.loss)), h('td', { class: 'num' }, num(e.metrics.top5)), h('td', {}, String(e.created).slice(0, 19)),
      h('td', {}, e.ok ? 'ok' : h('span', { class: 'error' }, e.problem ?? 'invalid'))))) : h('p', { class: 'muted' }, `No evaluations recorded (git zoo eval ${key} --data <dataset>).`))

  const files = section('Files', h('table', { id: 'files' },
    h('tr', {}, h('th', {}, 'file'), h('th', {}, 'epoch'), h('th', {}, 'format'), h('th', {}, 'size'), h('th', {}, 'sha256'), h('th', {}, '')),
    ...m.files.map((f) => h('tr', {}, h('td', {}, f.path), h('td', { class: 'num' }, f.epoch ?? ''), h('td', {}, f.format), h('td', { class: 'num' }, bytes(f.size)), h('td', {}, h('code', { class: 'sha' }, f.sha256)), h('td', {}, downloadLink(p, key, f))))))

  const card = renderCard(p.card)
  const cardBox = h('div', { class: 'markdown' })
  cardBox.innerHTML = card.html // marked output with raw HTML escaped (markdown.ts)
  const cardSection = section('Card', card.front ? h('details', {}, h('summary', {}, 'front matter'), h('pre', {}, card.front)) : null, cardBox)

  const log = section('Promotion log', p.log.length ? h('ol', { class: 'log' }, ...p.log.map((e) => h('li', {},
    h('div', {}, h('code', {}, e.commit.slice(0, 12)), ` ${e.date} · ${e.kind} · ${e.author} `, signatureBadge(e)),
    e.message || e.subject ? h('div', { class: 'muted' }, e.message || e.subject) : null))) : h('p', { class: 'muted' }, 'No commits in this branch touch this model version.'))

  root.append(h('div', { class: 'grid' },
    h('div', {}, metrics, section('Lineage', lineageView(p.lineage)), evals, files),
    h('div', {}, factors, log)), cardSection)
  document.body.dataset.ready = 'model'
}

/** One plot per group of metrics on a similar scale (accuracies apart from losses). */
function plotsByScale(hl: ReturnType<typeof historyLines>): HTMLElement {
  const groups = new Map<string, string[]>()
  for (const k of hl.keys) {
    const g = /loss|err|mse|mae|perplexity|ppl/i.test(k) ? 'loss' : /acc|f1|top/i.test(k) ? 'accuracy' : 'other'
    let l = groups.get(g); if (!l) groups.set(g, l = []); l.push(k)
  }
  const width = groups.size > 1 ? 340 : 680
  return h('div', { class: 'plots', id: 'metric-plots' }, ...[...groups].map(([g, keys]) => linePlot(hl.xs, keys.map((k) => ({ label: k, values: hl.values[k]! })), { width, height: 220, yLabel: g })))
}

function downloadLink(p: ModelPayload, key: string, f: ModelPayload['manifest']['files'][number]): HTMLElement {
  const url = state.source.fileUrl(key, f.path)
  const name = f.path.split('/').pop()!
  if (url) return h('a', { href: url, download: name, class: 'download', 'data-path': f.path }, 'download')
  const remote = state.source.info.remote
  const chunks = p.chunks?.[f.path]
  if (!remote || !chunks) return h('span', { class: 'muted', title: 'this export was made without an HTTP zoo remote' }, `git zoo get ${key}`)
  const a = h('a', { href: '#', class: 'download', 'data-path': f.path }, 'download')
  a.addEventListener('click', (ev) => {
    ev.preventDefault()
    a.textContent = 'checking…'
    assemble(remote, chunks, f.size, f.sha256, (done) => { a.textContent = `${Math.round((100 * done) / Math.max(1, f.size))}%` }).then((blob) => {
      const u = URL.createObjectURL(blob)
      const tmp = h('a', { href: u, download: name })
      document.body.append(tmp); tmp.click(); tmp.remove()
      setTimeout(() => URL.revokeObjectURL(u), 60_000)
      a.textContent = 'download (verified)'
    }, (err: Error) => { a.textContent = 'download failed'; a.title = err.message; a.classList.add('error') })
  })
  return a
}
