/**
 * Catalog benchmark: a synthetic zoo (bench/gen-zoo.ts; default 50,000 models x 51 checkpoints of
 * metrics), then `git zoo find` with two filters and a sort, cold (no cache) and warm, end to end
 * through the CLI and in-process, against `git grep` over the same manifests in the same run.
 *
 *   node dist/bench/catalog.js [<zoo dir>] [--models 50000] [--runs 7]
 * An existing <zoo dir> is reused (generation of 50,000 manifests takes a minute or two).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, rmSync, mkdtempSync, writeFileSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { generateZoo } from './gen-zoo.js'
import { openCatalog } from '../src/catalog/catalog.js'
import { runQuery, parseFilter } from '../src/catalog/query.js'

const BIN = resolve(fileURLToPath(new URL('../../bin/git-zoo.js', import.meta.url)))

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? dflt : Number(process.argv[i + 1])
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`)

function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): { ms: number; out: string; rssKb?: number } {
  const useTime = existsSync('/usr/bin/time')
  const t = performance.now()
  const r = useTime
    ? spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 30 })
    : spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 30 })
  const elapsed = performance.now() - t
  if (r.status !== 0 && !(cmd === 'git' && r.status === 1)) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`)
  const rss = useTime ? Number(r.stderr.trim().split('\n').pop()) : undefined
  return { ms: elapsed, out: r.stdout, ...(rss ? { rssKb: rss } : {}) }
}

async function main(): Promise<void> {
  const models = arg('models', 50000)
  const runs = arg('runs', 7)
  const given = process.argv.slice(2).find((a, i, all) => !a.startsWith('--') && !(i > 0 && all[i - 1]!.startsWith('--')))
  const dir = given ? resolve(given) : join(mkdtempSync(join(tmpdir(), 'zoo-bench-')), 'zoo')
  const lines: string[] = []
  const say = (s: string): void => { lines.push(s); process.stdout.write(s + '\n') }
  if (!existsSync(join(dir, '.git'))) {
    const g = await generateZoo(dir, { models, epochs: 50, checkEvery: 997, log: (s) => process.stderr.write(s + '\n') })
    say(`generated ${g.models} manifests (${(g.bytes / 1e6).toFixed(0)} MB of JSON) with git fast-import in ${ms(g.ms)} (${(g.models / (g.ms / 1000)).toFixed(0)} manifests/s)`)
  }
  const count = Number(execFileSync('git', ['ls-files', '--', ':(glob)models/**/manifest.json'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').filter(Boolean).length)
  say(`zoo: ${dir}, ${count} manifests`)
  const cache = join(dir, '.zoo', 'cache')
  const query = ['find', 'dataset=cifar10', 'metrics.test_acc>0.6', '--sort', '-metrics.test_acc', '--limit', '10']
  const histQuery = ['find', 'best.val_loss<0.3', 'test_acc@10>0.5', '--sort', '-best.test_acc', '--limit', '10']
  const start = median(Array.from({ length: runs }, () => timed(process.execPath, [BIN, '--help'], dir).ms))
  say(`CLI start (git zoo --help): ${ms(start)}`)

  rmSync(cache, { recursive: true, force: true })
  const cold = timed(process.execPath, [BIN, ...query], dir)
  say(`find, 2 filters + sort, cold (no cache; builds it without history): ${ms(cold.ms)}, peak RSS ${((cold.rssKb ?? 0) / 1024).toFixed(0)} MB, cache ${(statSync(join(cache, 'catalog.bin')).size / 1e6).toFixed(1)} MB`)
  const warm = Array.from({ length: runs }, () => timed(process.execPath, [BIN, ...query], dir).ms)
  say(`find, 2 filters + sort, warm: median ${ms(median(warm))} (min ${ms(Math.min(...warm))}) end to end`)
  const inproc: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    const o = await openCatalog({ cwd: dir, env: process.env })
    runQuery(o.file, { filters: ['dataset=cifar10', 'metrics.test_acc>0.6'].map(parseFilter), sort: [{ field: 'metrics.test_acc', desc: true }], limit: 10 })
    o.file.close()
    inproc.push(performance.now() - t)
  }
  say(`  of which in-process (key check + open + query): median ${ms(median(inproc))}`)
  const histCold = timed(process.execPath, [BIN, ...histQuery], dir)
  say(`find on history (best.*, metric@epoch), first time (adds history to the cache): ${ms(histCold.ms)}, peak RSS ${((histCold.rssKb ?? 0) / 1024).toFixed(0)} MB, cache ${(statSync(join(cache, 'catalog.bin')).size / 1e6).toFixed(1)} MB`)
  const histWarm = Array.from({ length: runs }, () => timed(process.execPath, [BIN, ...histQuery], dir).ms)
  say(`find on history, warm: median ${ms(median(histWarm))}`)
  rmSync(cache, { recursive: true, force: true })
  const coldAll = timed(process.execPath, [BIN, ...histQuery], dir)
  say(`find on history, cold (no cache; full build): ${ms(coldAll.ms)}, peak RSS ${((coldAll.rssKb ?? 0) / 1024).toFixed(0)} MB`)

  // git grep: two equality filters (it cannot compare numbers or sort), over the same manifests
  const grepArgs = ['grep', '-l', '--all-match', '-e', '"dataset": "cifar10"', '-e', '"seed": 3,', '--', ':(glob)models/**/manifest.json']
  timed('git', grepArgs, dir)
  const grep = Array.from({ length: Math.min(runs, 3) }, () => timed('git', grepArgs, dir))
  const ours = Array.from({ length: runs }, () => timed(process.execPath, [BIN, 'find', 'dataset=cifar10', 'seed=3'], dir))
  const grepHits = grep[0]!.out.split('\n').filter(Boolean).length
  const ourHits = ours[0]!.out.split('\n').filter((l) => l.startsWith('mz/')).length
  say(`git grep -l --all-match (dataset, seed) over the working tree: median ${ms(median(grep.map((g) => g.ms)))}, ${grepHits} files`)
  say(`git zoo find dataset=cifar10 seed=3 (warm): median ${ms(median(ours.map((o) => o.ms)))}, ${ourHits} models; ratio ${(median(grep.map((g) => g.ms)) / median(ours.map((o) => o.ms))).toFixed(1)}x`)

  // an edit through git (add of one manifest): incremental refresh
  const one = JSON.parse(readFileSync(join(dir, execFileSync('git', ['ls-files', '--', ':(glob)models/**/manifest.json'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n')[0]!), 'utf8')) as { name: string; version: number }
  const path = join(dir, 'models', one.name, 'v1', 'manifest.json')
  const orig = readFileSync(path, 'utf8')
  writeFileSync(path, orig.replace(/"seed": \d+,/, '"seed": 999,'))
  execFileSync('git', ['add', path], { cwd: dir })
  const inc = timed(process.execPath, [BIN, 'find', 'seed=999'], dir)
  say(`after \`git add\` of one edited manifest: ${ms(inc.ms)} (incremental: re-reads the changed blob only) -> ${inc.out.split('\n').filter((l) => l.startsWith('mz/')).length} match`)
  writeFileSync(path, orig)
  execFileSync('git', ['add', path], { cwd: dir })
  mkdirSync(join(dir, '.zoo', 'cache'), { recursive: true })
  const rep = join(dir, '.zoo', 'cache', 'bench-report.txt')
  writeFileSync(rep, lines.join('\n') + '\n')
  process.stderr.write(`report: ${rep}\n`)
}

await main()
