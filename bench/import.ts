/**
 * Import benchmark: a Model-Zoos-like directory of small models (default 5,000 models x 51
 * checkpoints of 10 KiB safetensors, a config.json and a result.json each), imported with
 * `git zoo import` in one commit. Reports checkpoints/second, peak memory, and how many files the
 * object store holds afterwards (small objects go into 64 MiB pack files, not one file each);
 * then the same import again (everything unchanged: the resume check alone).
 *
 *   node dist/bench/import.js [--models 5000] [--epochs 50] [--size 10240] [--keep]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, readdirSync, statSync, existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { encodeSafetensors } from '../src/formats/safetensors.js'

const BIN = resolve(fileURLToPath(new URL('../../bin/git-zoo.js', import.meta.url)))
function arg(name: string, dflt: number): number { const i = process.argv.indexOf(`--${name}`); return i === -1 ? dflt : Number(process.argv[i + 1]) }

function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = Math.imul(a ^ (a >>> 15), a | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296 }
}

async function generate(dir: string, models: number, epochs: number, size: number): Promise<{ files: number; bytes: number; ms: number }> {
  const t0 = performance.now()
  let files = 0, bytes = 0
  const floats = Math.max(16, Math.floor((size - 200) / 4))
  const inflight = new Set<Promise<void>>()
  const put = async (path: string, data: Uint8Array | string): Promise<void> => {
    const w: Promise<void> = writeFile(path, data).finally(() => { inflight.delete(w) })
    inflight.add(w)
    files++; bytes += typeof data === 'string' ? data.length : data.length
    if (inflight.size >= 64) await Promise.race(inflight)
  }
  for (let m = 0; m < models; m++) {
    const r = rng(m + 1)
    const seed = 1 + (m % 10), lr = [1e-4, 1e-3, 1e-2][m % 3]!
    const run = join(dir, `zoo_${['mnist', 'cifar10', 'svhn', 'usps'][m % 4]}`, `trial_${String(m).padStart(5, '0')}_seed=${seed}_lr=${lr}`)
    for (let e = 0; e <= epochs; e++) await mkdir(join(run, `checkpoint_${String(e).padStart(6, '0')}`), { recursive: true })
    const w = new Float32Array(floats).map(() => r() - 0.5)
    const history = []
    for (let e = 0; e <= epochs; e++) {
      for (let j = 0; j < w.length; j += 7) w[j]! += 0.01 * (r() - 0.5) // every checkpoint differs
      const half = Math.floor(floats / 2)
      await put(join(run, `checkpoint_${String(e).padStart(6, '0')}`, 'model.safetensors'), encodeSafetensors([
        { name: 'conv.weight', dtype: 'F32', shape: [half], data: new Uint8Array(w.buffer, 0, half * 4).slice() },
        { name: 'fc.weight', dtype: 'F32', shape: [floats - half], data: new Uint8Array(w.buffer, half * 4).slice() },
      ]))
      const acc = Math.fround(0.1 + 0.8 * (1 - Math.exp(-e / 8)) * (0.6 + 0.4 * r()))
      history.push({ epoch: e, train_loss: Math.fround(-Math.log(acc)), test_acc: acc, test_loss: Math.fround(-Math.log(acc) * 1.1) })
    }
    await put(join(run, 'config.json'), JSON.stringify({ seed, lr, dataset: run.split('/').at(-2)!.slice(4), model: 'cnn-s', optimizer: 'adam', epochs }, null, 2) + '\n')
    await put(join(run, 'result.json'), history.map((h) => JSON.stringify(h)).join('\n') + '\n')
  }
  await Promise.all(inflight)
  return { files, bytes, ms: performance.now() - t0 }
}

function countFiles(dir: string): { files: number; bytes: number } {
  let files = 0, bytes = 0
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name))
      else { files++; bytes += statSync(join(d, e.name)).size }
    }
  }
  if (existsSync(dir)) walk(dir)
  return { files, bytes }
}

function timedImport(repo: string, src: string): { report: Record<string, unknown>; ms: number; rssMb: number } {
  const t = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, BIN, 'import', src, '--prefix', 'mz', '--json'], { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 30 })
  const ms = performance.now() - t
  if (r.status !== 0) throw new Error(`import failed (${r.status}): ${r.stderr.slice(-2000)}`)
  return { report: JSON.parse(r.stdout) as Record<string, unknown>, ms, rssMb: Number(r.stderr.trim().split('\n').pop()) / 1024 }
}

const models = arg('models', 5000), epochs = arg('epochs', 50), size = arg('size', 10240)
const base = mkdtempSync(join(tmpdir(), 'zoo-import-bench-'))
const src = join(base, 'src'), repo = join(base, 'repo')
try {
  const g = await generate(src, models, epochs, size)
  console.log(`generated ${models} models x ${epochs + 1} checkpoints: ${g.files} files, ${(g.bytes / 2 ** 20).toFixed(0)} MiB in ${(g.ms / 1000).toFixed(1)} s`)
  await mkdir(repo)
  const git = (...a: string[]): string => execFileSync('git', a, { cwd: repo, encoding: 'utf8' })
  git('init', '-q', '-b', 'main'); git('config', 'user.name', 'Bench'); git('config', 'user.email', 'bench@example.invalid'); git('config', 'commit.gpgsign', 'false')
  execFileSync(process.execPath, [BIN, 'init'], { cwd: repo })
  git('commit', '-q', '-m', 'zoo')
  const first = timedImport(repo, src)
  const r = first.report as { promoted: number; checkpoints: number; files: number; bytes: number; stored_bytes: number; seconds: number; commits: string[] }
  const store = countFiles(join(repo, '.git', 'zoo'))
  const packs = readdirSync(join(repo, '.git', 'zoo', 'packs')).filter((f) => f.endsWith('.pack')).length
  console.log(`import: ${r.promoted} models, ${r.checkpoints} checkpoints, ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${(first.ms / 1000).toFixed(1)} s end to end ` +
    `(${(r.checkpoints / (first.ms / 1000)).toFixed(0)} checkpoints/s, ${(r.bytes / 2 ** 20 / (first.ms / 1000)).toFixed(1)} MiB/s), ${r.commits.length} commit, peak RSS ${first.rssMb.toFixed(0)} MB`)
  console.log(`store: ${store.files} files (${packs} packs of <= 64 MiB plus their indexes), ${(store.bytes / 2 ** 20).toFixed(0)} MiB; ${(r.stored_bytes / 2 ** 20).toFixed(0)} MiB newly stored; one file per checkpoint would have been ${r.checkpoints}`)
  const tracked = git('ls-files').split('\n').filter(Boolean).length
  console.log(`git: ${tracked} tracked files (manifest, card and config per model), .git ${(countFiles(join(repo, '.git', 'objects')).bytes / 2 ** 20).toFixed(0)} MiB`)
  const again = timedImport(repo, src)
  const a = again.report as { promoted: number; unchanged: number }
  console.log(`the same import again (resume check: sizes, then sha256 of every file): ${a.unchanged} unchanged, ${a.promoted} promoted, ${(again.ms / 1000).toFixed(1)} s, peak RSS ${again.rssMb.toFixed(0)} MB`)
} finally {
  if (!process.argv.includes('--keep')) rmSync(base, { recursive: true, force: true })
  else console.log(`kept ${base}`)
}
