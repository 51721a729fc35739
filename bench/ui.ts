/**
 * The web app at population scale: a synthetic zoo (bench/gen-zoo.ts; default 50,000 models x 51
 * epochs of 6 metrics), `git zoo ui` serving it, Debian's chromium (playwright-core) opening the
 * catalog. Measured inside the page with performance.now():
 *   - paint: from navigation start to the first frame with the catalog's rows on screen (HTML,
 *     bundle, /api/catalog + catalog.bin fetched and decoded, the query run, visible rows built);
 *   - filter: from the input event to the rows on screen (`git zoo find`'s query code over every
 *     row, then the table), for several filters typed in the box;
 *   - population: the page with the 50,000-point scatter and a metric's distribution over epochs.
 * Each run opens a fresh page; medians of --runs runs.
 *
 *   node dist/bench/ui.js [<zoo dir>] [--models 50000] [--runs 5]
 * An existing <zoo dir> is reused. The first request builds the catalog with its history columns
 * (cold, once); it is made before the runs and reported apart.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { generateZoo } from './gen-zoo.js'
// every git zoo this bench runs is node's own: a find or ls would start a query server that outlives it
process.env.GIT_ZOO_SERVER = '0'

const BIN = resolve(fileURLToPath(new URL('../../bin/git-zoo.js', import.meta.url)))
const CHROMIUM = '/usr/bin/chromium'

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? dflt : Number(process.argv[i + 1])
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
const FILTERS = [
  'metrics.test_acc>0.6',
  'dataset=cifar10 params.lr<0.01',
  'best.val_acc>0.5 params.optimizer=adam arch~cnn*',
  'name~*seed1-*',
  'test_acc@10>0.4',
]

async function main(): Promise<void> {
  const models = arg('models', 50_000)
  const runs = arg('runs', 5)
  const given = process.argv.slice(2).find((a, i, all) => !a.startsWith('--') && !(i > 0 && all[i - 1]!.startsWith('--')))
  const dir = given ?? join(mkdtempSync(join(tmpdir(), 'zoo-bench-ui-')), 'zoo')
  if (!existsSync(join(dir, 'models'))) {
    process.stderr.write(`generating ${models} models in ${dir}...\n`)
    await generateZoo(dir, { models, epochs: 50, checkEvery: 997, log: (s) => process.stderr.write(s + '\n'), commits: false })
  }
  const child = spawn(process.execPath, [BIN, 'ui', '--port', '0', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  const url = await new Promise<string>((res, rej) => {
    child.stdout.on('data', (d: Buffer) => { out += d; try { res((JSON.parse(out) as { url: string }).url) } catch { /* more to come */ } })
    child.on('exit', (c) => rej(new Error(`git zoo ui exited ${c}`)))
  })
  try {
    let t = performance.now()
    const first = await fetch(`${url}api/catalog`)
    const json = await first.text()
    const cold = performance.now() - t
    const id = (JSON.parse(json) as { id: string }).id
    const bin = await (await fetch(`${url}api/catalog.bin?id=${id}`)).arrayBuffer()
    t = performance.now()
    await (await fetch(`${url}api/catalog`)).text()
    const warm = performance.now() - t
    console.log(`zoo: ${dir}`)
    console.log(`catalog documents: ${(json.length / 1e6).toFixed(1)} MB JSON + ${(bin.byteLength / 1e6).toFixed(1)} MB binary; first request ${cold.toFixed(0)} ms (catalog built or refreshed with history), then ${warm.toFixed(0)} ms`)
    const { chromium } = await import('playwright-core')
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
    const paint: number[] = [], population: number[] = []
    const filter = new Map<string, number[]>()
    const query = new Map<string, number[]>()
    let rows = 0
    try {
      for (let r = 0; r < runs; r++) {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
        await page.goto(url)
        await page.waitForFunction(() => document.body.dataset.paintMs, null, { timeout: 60_000 })
        paint.push(Number(await page.evaluate(() => document.body.dataset.paintMs)))
        rows = await page.locator('.tr').count()
        for (const f of FILTERS) {
          await page.locator('#filter').fill('')
          await page.waitForFunction(() => document.querySelector('#filter-error')?.textContent === '' && !document.querySelector('#filter')!.classList.contains('invalid'))
          const before = await page.locator('#status').textContent()
          await page.locator('#filter').fill(f)
          await page.waitForFunction((b) => document.querySelector('#status')?.textContent !== b, before, { timeout: 60_000 })
          const [apply, q] = await page.evaluate(() => { const s = document.querySelector('#status') as HTMLElement; return [Number(s.dataset.applyMs), Number(s.dataset.queryMs)] })
          if (!filter.has(f)) { filter.set(f, []); query.set(f, []) }
          filter.get(f)!.push(apply); query.get(f)!.push(q)
        }
        await page.locator('#filter').fill('')
        const t0 = await page.evaluate(() => performance.now())
        await page.evaluate(() => { location.hash = '#/population' })
        await page.waitForFunction(() => document.body.dataset.ready === 'population', null, { timeout: 60_000 })
        population.push(await page.evaluate(() => performance.now()) - t0)
        await page.close()
      }
    } finally { await browser.close() }
    console.log(`catalog paint (navigation -> ${rows} visible rows of ${models.toLocaleString('en')}): median ${median(paint).toFixed(0)} ms (runs: ${paint.map((x) => x.toFixed(0)).join(', ')})`)
    for (const f of FILTERS) {
      console.log(`filter ${JSON.stringify(f)}: median ${median(filter.get(f)!).toFixed(1)} ms to rows on screen, of which query ${median(query.get(f)!).toFixed(1)} ms (runs: ${filter.get(f)!.map((x) => x.toFixed(0)).join(', ')})`)
    }
    console.log(`population page (scatter of every model + distribution over epochs, history fetched): median ${median(population).toFixed(0)} ms`)
  } finally { child.kill('SIGINT') }
}

await main()
