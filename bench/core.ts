/**
 * Core benchmark (not part of the test suite): add / fine-tune add / get / verify of a 1 GiB
 * safetensors-shaped checkpoint against cp+sync, openssl dgst -sha256 and git lfs (where installed),
 * all in one run. Peak memory of adding a 4 GiB file with --big.
 *
 *   npx tsx bench/core.ts [--size-mib 1024] [--big]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { writeCheckpoint, writeBaseAndFineTune, TENSOR } from './checkpoint.js'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
// every git zoo this bench runs is node's own: a find or ls would start a query server that outlives it
process.env.GIT_ZOO_SERVER = '0'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const BIN = join(ROOT, 'bin', 'git-zoo.js')
const arg = (name: string, def: number): number => { const i = process.argv.indexOf(name); return i === -1 ? def : Number(process.argv[i + 1]) }
const SIZE = arg('--size-mib', 1024) * 1024 * 1024

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26 })
}
function time(label: string, fn: () => void): number {
  const t = process.hrtime.bigint()
  fn()
  const s = Number(process.hrtime.bigint() - t) / 1e9
  console.log(`${label.padEnd(44)} ${s.toFixed(2)} s  ${(SIZE / s / 1e6).toFixed(0)} MB/s`)
  return s
}
function dropCaches(): void { spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' }) }

const work = mkdtempSync(join(tmpdir(), 'zoo-bench-'))
try {
  const repo = join(work, 'repo')
  sh('git', ['init', '-q', repo], work)
  for (const [k, v] of [['user.name', 'bench'], ['user.email', 'bench@example.invalid'], ['commit.gpgsign', 'false']]) sh('git', ['config', k!, v!], repo)
  sh(process.execPath, [BIN, 'init'], repo)
  const { base: ckpt, fineTune: ft, tensors: count, changed: nChanged } = writeBaseAndFineTune(work, SIZE)
  console.log(`checkpoint: ${(SIZE / 2 ** 20).toFixed(0)} MiB, ${count} tensors; fine-tune changes ${nChanged} tensors (${(nChanged * TENSOR / 2 ** 20).toFixed(0)} MiB)`)

  dropCaches()
  const cp = time('cp + sync', () => sh('sh', ['-c', `cp ${ckpt} ${work}/copy.bin && sync`], work))
  rmSync(join(work, 'copy.bin'))
  const ssl = time('openssl dgst -sha256', () => sh('openssl', ['dgst', '-sha256', ckpt], work))
  const add = time('git zoo add (new checkpoint)', () => sh(process.execPath, [BIN, 'add', ckpt, '--name', 'bench/base', '--json'], repo))
  let stored = 0
  const ftTime = time('git zoo add (fine-tune, 90% shared)', () => {
    stored = JSON.parse(sh(process.execPath, [BIN, 'add', ft, '--name', 'bench/ft', '--json'], repo)).stored_bytes
  })
  dropCaches()
  const get = time('git zoo get + sync', () => sh('sh', ['-c', `${process.execPath} ${BIN} get bench/base --out ${work}/out && sync`], repo))
  const verify = time('git zoo verify bench/base', () => sh(process.execPath, [BIN, 'verify', 'bench/base'], repo))
  let lfs = NaN
  if (spawnSync('git', ['lfs', 'version']).status === 0) {
    const lrepo = join(work, 'lfs')
    sh('git', ['init', '-q', lrepo], work)
    for (const [k, v] of [['user.name', 'bench'], ['user.email', 'bench@example.invalid']]) sh('git', ['config', k!, v!], lrepo)
    lfs = time('git lfs track + git add + git commit', () => sh('sh', ['-c', `git lfs install --local >/dev/null && git lfs track '*.safetensors' >/dev/null && cp ${ckpt} model.safetensors && git add .gitattributes model.safetensors && git commit -qm lfs`], lrepo))
  }
  console.log('\nratios (target in brackets)')
  console.log(`add / (cp+sync)                    ${(add / cp).toFixed(2)}  [<= 1.2]`)
  if (!Number.isNaN(lfs)) console.log(`git-lfs / add                      ${(lfs / add).toFixed(2)}  [>= 5]`)
  console.log(`fine-tune stored / changed bytes   ${(stored / (nChanged * TENSOR)).toFixed(3)}  [<= 1.1]`)
  console.log(`fine-tune add / openssl dgst       ${(ftTime / ssl).toFixed(2)}  [<= 1.0]`)
  console.log(`get / (cp+sync)                    ${(get / cp).toFixed(2)}  [<= 1.2]`)
  console.log(`verify / openssl dgst              ${(verify / ssl).toFixed(2)}  [<= 0.6]`)

  if (process.argv.includes('--big')) {
    const big = join(work, 'big.safetensors')
    writeCheckpoint(big, 4 * 1024 * 1024 * 1024, new Set(), 0)
    const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, BIN, 'add', big, '--name', 'bench/big'], { cwd: repo, encoding: 'utf8' })
    const kib = Number(r.stderr.trim().split('\n').pop())
    console.log(`peak RSS adding 4 GiB: ${(kib / 1024).toFixed(0)} MiB  [<= 256]`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}
