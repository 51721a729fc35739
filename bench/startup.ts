/**
 * The fixed cost of the data path's commands (issue 11): `git zoo add` of a 1 KiB file (node's
 * start, the modules, git, the commit and its pre-commit hook), `get` and `verify` of a 1 KiB model,
 * for two builds side by side: `--runs` rounds (default 10), each running every command once with
 * build A then once with build B (alternated, so a change in the machine's load falls on both).
 * Each build gets a zoo of its own, its set-up committed (as `git zoo init --sign` leaves it).
 * Prints the median and mean wall seconds and CPU seconds (user + sys of the process tree, from
 * GNU time) of each, the B/A ratios of the medians, and the load average before and after: the
 * machine may be shared, so compare the ratios.
 *
 *   npx tsx bench/startup.ts [--runs 10] [--a <build>/bin/git-zoo.js] [--b <build>/bin/git-zoo.js]
 *
 * --a and --b default to this checkout's bin/git-zoo.js (A against itself: the noise floor). Build
 * both first (`npm run build`).
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// a find or ls would start a query server that outlives the bench: none is run, and none is wanted
process.env.GIT_ZOO_SERVER = '0'
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const opt = (name: string): string | undefined => { const i = process.argv.indexOf(name); return i === -1 ? undefined : process.argv[i + 1] }
const RUNS = Math.max(1, Number(opt('--runs') ?? 10))
const BUILDS = { A: resolve(opt('--a') ?? join(ROOT, 'bin', 'git-zoo.js')), B: resolve(opt('--b') ?? join(ROOT, 'bin', 'git-zoo.js')) }

const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

function sh(script: string, cwd: string): void {
  const r = spawnSync('sh', ['-c', script], { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`failed (${r.status}): ${script}\n${r.stdout}${r.stderr}`)
}

/** Wall and CPU seconds of `node <bin> <args>` in `cwd`; throws with its output when it fails. */
function timed(bin: string, args: string[], cwd: string): { wall: number; cpu: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '@@TIME %e %U %S', process.execPath, bin, ...args], { cwd, encoding: 'utf8' })
  const line = r.stderr.split('\n').find((l) => l.startsWith('@@TIME '))
  if (r.status !== 0 || !line) throw new Error(`git zoo ${args.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`)
  const [wall, user, sys] = line.slice(7).split(' ').map(Number) as [number, number, number]
  return { wall, cpu: user + sys }
}

const work = mkdtempSync(join(tmpdir(), 'zoo-startup-'))
try {
  const tiny = join(work, 'tiny.bin')
  for (const [v, bin] of Object.entries(BUILDS)) {
    const zoo = join(work, v)
    mkdirSync(zoo)
    sh(`git init -q . && git config user.name bench && git config user.email bench@example.invalid && git config commit.gpgsign false`, zoo)
    sh(`${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} init >/dev/null 2>&1 && git commit -qm 'zoo set-up'`, zoo)
    writeFileSync(tiny, Buffer.alloc(1024, 7))
    timed(bin, ['add', tiny, '--name', 'bench/tiny'], zoo)
  }
  const times = new Map<string, Array<{ wall: number; cpu: number }>>()
  const record = (key: string, t: { wall: number; cpu: number }): void => { times.set(key, [...(times.get(key) ?? []), t]) }
  const before = load()
  for (let i = 0; i < RUNS; i++) {
    for (const [v, bin] of Object.entries(BUILDS)) {
      const zoo = join(work, v)
      const file = join(work, `t${i}.bin`)
      writeFileSync(file, Buffer.alloc(1024, i + 10))
      record(`add ${v}`, timed(bin, ['add', file, '--name', `bench/t${i}`], zoo))
      rmSync(join(work, 'out'), { recursive: true, force: true })
      record(`get ${v}`, timed(bin, ['get', 'bench/tiny', '--out', join(work, 'out')], zoo))
      record(`verify ${v}`, timed(bin, ['verify', 'bench/tiny'], zoo))
    }
  }
  const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  console.log(`A = ${BUILDS.A}\nB = ${BUILDS.B}\n${RUNS} alternated runs; load average ${before} before, ${load()} after`)
  console.log('| command (1 KiB) | A wall median / mean s | A CPU median / mean s | B wall median / mean s | B CPU median / mean s | B/A wall | B/A CPU |')
  console.log('|---|---|---|---|---|---|---|')
  for (const c of ['add', 'get', 'verify']) {
    const [a, b] = [times.get(`${c} A`)!, times.get(`${c} B`)!]
    const f = (xs: Array<{ wall: number; cpu: number }>, k: 'wall' | 'cpu'): string => `${median(xs.map((x) => x[k])).toFixed(3)} / ${mean(xs.map((x) => x[k])).toFixed(3)}`
    console.log(`| ${c} | ${f(a, 'wall')} | ${f(a, 'cpu')} | ${f(b, 'wall')} | ${f(b, 'cpu')} | ${(median(b.map((x) => x.wall)) / median(a.map((x) => x.wall))).toFixed(2)} | ${(median(b.map((x) => x.cpu)) / median(a.map((x) => x.cpu))).toFixed(2)} |`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}
