/**
 * Catalog benchmark (issue 13): a synthetic zoo (bench/gen-zoo.ts; default 50,000 models with slim
 * ~2.5 KB manifests: final and best metrics, ~20 generating factors, the last checkpoint, no
 * history), then `git zoo find` with two filters and a sort, end to end through the CLI:
 *
 *   node -e 0                  the floor: node starting and exiting, same run
 *   CLI start                  `git zoo --help`
 *   warm                       the cache is fresh (median and min of --runs), and in-process
 *   cold                       no cache in the zoo (page cache warm)
 *   first after clone          `git clone file://<zoo>` (a real clone: packs sent and checked out),
 *                              then the first find there (no cache: a cold build)
 *   after pull                 the zoo commits 100 new, 100 changed and 100 removed manifests; the
 *                              clone pulls, then the first find (incremental: only changed blobs)
 *   `git ls`/ `git grep`       for scale: git alone listing / grepping the same manifests
 *
 *   npx tsc -p . && node dist/bench/catalog.js [<dir>] [--models 50000] [--runs 9] [--full]
 * --full generates the older 29 KB manifests (51 file entries and a 51-epoch history each) and adds
 * the history queries. An existing <dir>/zoo is reused (generating 50,000 takes a minute or two).
 * The report is printed and written to <dir>/report.txt.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, rmSync, mkdtempSync, mkdirSync, writeFileSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tmpdir, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { generateZoo } from './gen-zoo.js'
import { openCatalog } from '../src/catalog/catalog.js'
import { runQuery, parseFilter } from '../src/catalog/query.js'
// every git zoo this bench runs is node's own: a find or ls would start a query server that outlives it
process.env.GIT_ZOO_SERVER = '0'

const BIN = resolve(fileURLToPath(new URL('../../bin/git-zoo.js', import.meta.url)))

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? dflt : Number(process.argv[i + 1])
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`)
const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ')

interface Timed { ms: number; cpuMs: number; out: string; rssMb: number }

/** Run a command; wall time, CPU (user + sys of it and its children, from /usr/bin/time) and peak RSS. */
function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Timed {
  const t = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', cmd, ...args], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 30 })
  const elapsed = performance.now() - t
  if (r.status !== 0 && !(cmd === 'git' && r.status === 1)) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`)
  const [u, s, m] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number)
  return { ms: elapsed, cpuMs: (u! + s!) * 1000, out: r.stdout, rssMb: m! / 1024 }
}

function series(n: number, f: () => Timed): { wall: number; min: number; cpu: number; last: Timed } {
  const xs = Array.from({ length: n }, f)
  return { wall: median(xs.map((x) => x.ms)), min: Math.min(...xs.map((x) => x.ms)), cpu: median(xs.map((x) => x.cpuMs)), last: xs[xs.length - 1]! }
}

async function main(): Promise<void> {
  const models = arg('models', 50000)
  const runs = arg('runs', 9)
  const full = process.argv.includes('--full')
  const given = process.argv.slice(2).find((a, i, all) => !a.startsWith('--') && !(i > 0 && all[i - 1]!.startsWith('--')))
  const base = given ? resolve(given) : mkdtempSync(join(tmpdir(), 'zoo-bench-'))
  const dir = join(base, 'zoo')
  const lines: string[] = []
  const say = (s: string): void => { lines.push(s); process.stdout.write(s + '\n') }
  if (!existsSync(join(dir, '.git'))) {
    const g = await generateZoo(dir, { models, epochs: 50, checkEvery: 997, slim: !full, log: (s) => process.stderr.write(s + '\n') })
    say(`generated ${g.models} ${full ? 'full' : 'slim'} manifests (${(g.bytes / 1e6).toFixed(0)} MB of JSON) with git fast-import in ${ms(g.ms)}`)
  }
  const paths = execFileSync('git', ['ls-files', '--', ':(glob)models/**/manifest.json'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter(Boolean)
  const avg = paths.slice(0, 200).reduce((a, p) => a + statSync(join(dir, p)).size, 0) / Math.min(200, paths.length)
  say(`zoo: ${dir}, ${paths.length} manifests, ~${(avg / 1000).toFixed(1)} KB each; load average at start ${load()}`)
  const cache = join(dir, '.zoo', 'cache')
  const query = ['find', 'dataset=cifar10', 'metrics.test_acc>0.6', '--sort', '-metrics.test_acc', '--limit', '10']
  const row = (what: string, s: { wall: number; min: number; cpu: number }, extra = ''): void =>
    say(`${what.padEnd(44)} median ${ms(s.wall).padStart(7)}  min ${ms(s.min).padStart(7)}  cpu ${ms(s.cpu).padStart(7)}${extra}`)

  const node0 = series(runs, () => timed(process.execPath, ['-e', '0'], dir))
  row('node -e 0', node0)
  row('CLI start (git zoo --help)', series(runs, () => timed(process.execPath, [BIN, '--help'], dir)))

  rmSync(cache, { recursive: true, force: true })
  const cold = timed(process.execPath, [BIN, ...query], dir)
  say(`${'find, cold (no cache; page cache warm)'.padEnd(44)} ${ms(cold.ms)}, cpu ${ms(cold.cpuMs)}, peak RSS ${cold.rssMb.toFixed(0)} MB, cache ${(statSync(join(cache, 'catalog.bin')).size / 1e6).toFixed(1)} MB`)
  const warm = series(runs, () => timed(process.execPath, [BIN, ...query], dir))
  row('find, 2 filters + sort, warm', warm, `  (minus node -e 0: ${ms(warm.wall - node0.wall)} wall, ${ms(warm.cpu - node0.cpu)} cpu)`)
  const inproc: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    const o = await openCatalog({ cwd: dir, env: process.env })
    runQuery(o.file, { filters: ['dataset=cifar10', 'metrics.test_acc>0.6'].map(parseFilter), sort: [{ field: 'metrics.test_acc', desc: true }], limit: 10 })
    o.file.close()
    inproc.push(performance.now() - t)
  }
  say(`${'  of which in-process (key, open, query)'.padEnd(44)} median ${ms(median(inproc))}`)
  const lsPipe = series(Math.min(runs, 5), () => timed(process.execPath, [BIN, 'ls'], dir))
  row(`ls, piped (${lsPipe.last.out.split('\n').length - 2} lines)`, lsPipe)

  if (full) {
    const histQuery = ['find', 'best.val_loss<0.3', 'test_acc@10>0.5', '--sort', '-best.test_acc', '--limit', '10']
    const histCold = timed(process.execPath, [BIN, ...histQuery], dir)
    say(`find on history, first time (adds history): ${ms(histCold.ms)}, peak RSS ${histCold.rssMb.toFixed(0)} MB`)
    row('find on history, warm', series(runs, () => timed(process.execPath, [BIN, ...histQuery], dir)))
  }

  // git alone over the same manifests, for scale
  row('git ls-files -s (the manifests)', series(3, () => timed('git', ['ls-files', '-s', '--', ':(glob)models/**/manifest.json'], dir)))
  const grepArgs = ['grep', '-l', '--all-match', '-e', '"dataset": "cifar10"', '-e', '"seed": 3,', '--', ':(glob)models/**/manifest.json']
  row('git grep -l --all-match (dataset, seed)', series(3, () => timed('git', grepArgs, dir)))
  row('git zoo find dataset=cifar10 seed=3, warm', series(runs, () => timed(process.execPath, [BIN, 'find', 'dataset=cifar10', 'seed=3'], dir)))

  // a clone, its first find; then a pull of 100 added, 100 changed, 100 removed manifests
  const clone = join(base, 'clone')
  rmSync(clone, { recursive: true, force: true })
  const cl = timed('git', ['clone', '-q', `file://${dir}`, clone], base)
  say(`${'git clone file://'.padEnd(44)} ${ms(cl.ms)}, cpu ${ms(cl.cpuMs)}`)
  const first = timed(process.execPath, [BIN, ...query], clone)
  say(`${'first find after the clone (cold build)'.padEnd(44)} ${ms(first.ms)}, cpu ${ms(first.cpuMs)}, peak RSS ${first.rssMb.toFixed(0)} MB`)
  const again = series(runs, () => timed(process.execPath, [BIN, ...query], clone))
  row('  then warm in the clone', again)
  const stride = Math.max(3, Math.floor(paths.length / 100))
  const changed = paths.filter((_, i) => i % stride === 1).slice(0, 100)
  const removed = paths.filter((_, i) => i % stride === 2).slice(0, 100)
  const originals = new Map(changed.map((p) => [p, readFileSync(join(dir, p), 'utf8')]))
  for (const [p, text] of originals) writeFileSync(join(dir, p), text.replace(/"dataset": "[^"]*"/, '"dataset": "bench-changed"'))
  const added: string[] = []
  for (let k = 0; k < 100; k++) {
    const src = paths[k * stride]!
    const p = src.replace('/v1/manifest.json', '/v2/manifest.json')
    added.push(p)
    mkdirSync(join(dir, p, '..'), { recursive: true })
    writeFileSync(join(dir, p), readFileSync(join(dir, src), 'utf8').replace('"version": 1,', '"version": 2,').replace(/"dataset": "[^"]*"/, '"dataset": "bench-added"'))
  }
  for (const p of removed) unlinkSync(join(dir, p))
  execFileSync('git', ['add', '-A', '--', 'models'], { cwd: dir })
  execFileSync('git', ['commit', '-q', '-m', 'bench: 100 added, 100 changed, 100 removed'], { cwd: dir })
  const pull = timed('git', ['pull', '-q', '--ff-only'], clone)
  say(`${`git pull (100 added, ${changed.length} changed, ${removed.length} removed)`.padEnd(44)} ${ms(pull.ms)}, cpu ${ms(pull.cpuMs)}`)
  const afterPull = timed(process.execPath, [BIN, 'find', 'dataset~bench-', '--all-versions', '--json'], clone)
  const got = (JSON.parse(afterPull.out) as { total: number }).total
  say(`${'first find after the pull (incremental)'.padEnd(44)} ${ms(afterPull.ms)}, cpu ${ms(afterPull.cpuMs)}; sees ${got} of the ${100 + changed.length} changed and added`)
  if (got !== 100 + changed.length) throw new Error(`after the pull the catalog shows ${got} changed/added models, not ${100 + changed.length}`)
  // put the zoo back as generated, so the next run starts from the same state
  execFileSync('git', ['reset', '-q', '--hard', 'HEAD~1'], { cwd: dir })
  rmSync(clone, { recursive: true, force: true })
  say(`load average at end ${load()}`)
  writeFileSync(join(base, 'report.txt'), lines.join('\n') + '\n')
  process.stderr.write(`report: ${join(base, 'report.txt')}\n`)
}

await main()
