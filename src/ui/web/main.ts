/**
 * The zoo in a browser (spec/ui.md): a hash router over four pages (catalog, population, model,
 * compare) and the audit log. Everything the page runs is in this bundle; it loads nothing from
 * the network but the zoo's own data.
 */
import { h, modelHref } from './dom.js'
import { openSource } from './data.js'
import { state } from './state.js'
import { catalogPage } from './catalog-page.js'
import { populationPage } from './population-page.js'
import { modelPage, signatureBadge } from './model-page.js'
import { comparePage } from './compare-page.js'

const main = document.getElementById('main')!
const nav = document.getElementById('nav')!

async function logPage(root: HTMLElement): Promise<void> {
  const entries = await state.source.log()
  root.append(h('h1', {}, 'Promotion log'), h('ol', { class: 'log' }, ...entries.map((e) => h('li', {},
    h('div', {}, h('code', {}, e.commit.slice(0, 12)), ` ${e.date} · ${e.kind} `, ...e.models.map((m) => h('a', { href: modelHref(`${m.name}@v${m.version}`) }, `${m.name}@v${m.version} `)), `· ${e.author} `, signatureBadge(e)),
    e.message || e.subject ? h('div', { class: 'muted' }, e.message || e.subject) : null))))
  document.body.dataset.ready = 'log'
}

async function route(): Promise<void> {
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''))
  const [path, qs] = [hash.split('?')[0]!, location.hash.split('?')[1] ?? '']
  document.body.dataset.ready = ''
  const page = h('div', { class: 'page' })
  main.replaceChildren(page)
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', (a.getAttribute('href') ?? '').replace(/^#\/?/, '') === path.split('/')[0])
  try {
    if (path === '' ) await catalogPage(page)
    else if (path === 'population') await populationPage(page)
    else if (path.startsWith('model/')) await modelPage(page, path.slice('model/'.length))
    else if (path === 'compare') await comparePage(page, new URLSearchParams(qs).getAll('m'))
    else if (path === 'log') await logPage(page)
    else page.append(h('p', { class: 'error' }, `No page at #/${path}.`))
  } catch (err) {
    page.append(h('p', { class: 'error', role: 'alert' }, (err as Error).message))
    document.body.dataset.ready = 'error'
  }
  window.scrollTo(0, 0)
}

async function start(): Promise<void> {
  // the catalog is wanted by most pages: fetch it while the page sets up
  state.source = await openSource(!/^#\/?(model|compare|log)/.test(location.hash))
  const info = state.source.info
  document.title = `${info.zoo} · git zoo`
  document.getElementById('zoo')!.textContent = info.zoo
  document.getElementById('mode')!.textContent = info.mode === 'static' ? `static export · git-zoo ${info.version}` : `live, read-only · git-zoo ${info.version}`
  window.addEventListener('hashchange', () => { void route() })
  await route()
}

start().catch((err: Error) => { main.replaceChildren(h('p', { class: 'error' }, `Cannot load the zoo: ${err.message}`)) })
