/**
 * Import benchmark on a Model Zoos-shaped population (ModelZoos/ModelZooDataset, Ray Tune 1.x):
 * zoos/<DATASET>/<experiment>/ with the zoo's config.json and index_dict.json, and one trial folder
 * per model, NN_tune_trainable_<trial id>_<n>_<tag>_<date>/, holding params.json (the authors' keys),
 * result.json (a line per iteration, Ray's bookkeeping, -999 placeholders at iteration 0),
 * progress.csv and checkpoint_000000 ... checkpoint_000050/checkpoints: torch.save zips of the
 * small MNIST CNN (2,464 parameters). The first checkpoint is written by Debian's torch
 * (/usr/bin/python3); the others are that archive with new tensor bytes and CRCs.
 * With --companions each checkpoint folder also holds the optimizer state (a torch.save zip) and
 * Ray's .is_checkpoint and .tune_metadata, as the published zoos do.
 *
 * Reports: checkpoints/second of `git zoo import` end to end, peak RSS, the store's files; then the
 * catalog: `find` cold (no cache), warm, and in a plain `git clone` of the zoo (first find there);
 * git size: tracked files and their bytes, packed size after `git gc --aggressive`-free `git repack
 * -ad`, and the time of a plain `git clone`; then the same import again (the resume check).
 *
 *   node dist/bench/import.js [--models 5000] [--epochs 50] [--companions] [--keep] [--no-again]
 *   node dist/bench/import.js --models 50000 ...   (the whole Model Zoos dataset's size)
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, readdirSync, statSync, existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { crc32 } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { readZipLayout } from '../src/formats/zip.js'

const BIN = resolve(fileURLToPath(new URL('../../bin/git-zoo.js', import.meta.url)))
function arg(name: string, dflt: number): number { const i = process.argv.indexOf(`--${name}`); return i === -1 ? dflt : Number(process.argv[i + 1]) }
const flag = (name: string): boolean => process.argv.includes(`--${name}`)

function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = Math.imul(a ^ (a >>> 15), a | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296 }
}

/** torch.save of the Model Zoos MNIST CNN's state dict and of its Adam state, by Debian's torch. */
const TEMPLATE = String.raw`
import torch, sys, collections
torch.manual_seed(0)
sd = collections.OrderedDict()
for name, shape in [('module_list.0.weight', (8, 1, 5, 5)), ('module_list.0.bias', (8,)), ('module_list.3.weight', (6, 8, 5, 5)), ('module_list.3.bias', (6,)),
                    ('module_list.6.weight', (4, 6, 2, 2)), ('module_list.6.bias', (4,)), ('module_list.9.weight', (20, 36)), ('module_list.9.bias', (20,)),
                    ('module_list.11.weight', (10, 20)), ('module_list.11.bias', (10,))]:
    sd[name] = torch.randn(*shape)
torch.save(sd, sys.argv[1] + '/checkpoints')
opt = {'state': {i: {'step': torch.tensor(1.0), 'exp_avg': torch.zeros_like(t), 'exp_avg_sq': torch.zeros_like(t)} for i, t in enumerate(sd.values())},
       'param_groups': [{'lr': 0.0003, 'betas': (0.9, 0.999), 'eps': 1e-08, 'weight_decay': 0.0, 'amsgrad': False, 'params': list(range(len(sd)))}]}
torch.save(opt, sys.argv[1] + '/optimizer')
`

interface Template { bytes: Buffer; tensors: Array<{ offset: number; size: number; local: number; central: number }> }

/** Where each tensor's bytes and its two CRC fields sit in a stored (uncompressed) torch zip. */
async function template(path: string): Promise<Template> {
  const bytes = readFileSync(path)
  const layout = await readZipLayout(async (o, n) => bytes.subarray(o, o + n), bytes.length)
  const central = new Map<number, number>()
  for (let p = layout.centralDirectoryOffset; p < layout.centralDirectoryOffset + layout.centralDirectorySize;) {
    if (bytes.readUInt32LE(p) !== 0x02014b50) throw new Error('unexpected central directory record')
    central.set(bytes.readUInt32LE(p + 42), p + 16)
    p += 46 + bytes.readUInt16LE(p + 28) + bytes.readUInt16LE(p + 30) + bytes.readUInt16LE(p + 32)
  }
  const tensors = layout.entries.filter((e) => /\/data\/\d+$/.test(e.name)).map((e) => {
    if (e.method !== 0) throw new Error('torch wrote a compressed entry')
    return { offset: e.dataOffset, size: e.compressedSize, local: e.localHeaderOffset + 14, central: central.get(e.localHeaderOffset)! }
  })
  return { bytes, tensors }
}

/** The template with every tensor's bytes from `r` (float32 in [-0.5, 0.5)) and matching CRCs. */
function variant(t: Template, r: () => number, scale: number): Buffer {
  const out = Buffer.from(t.bytes)
  for (const x of t.tensors) {
    const f = new Float32Array(out.buffer, out.byteOffset + x.offset, x.size / 4)
    if ((out.byteOffset + x.offset) % 4 !== 0) throw new Error('unaligned tensor')
    for (let i = 0; i < f.length; i++) f[i] = (r() - 0.5) * scale
    const crc = crc32(out.subarray(x.offset, x.offset + x.size))
    out.writeUInt32LE(crc, x.local); out.writeUInt32LE(crc, x.central)
  }
  return out
}

const DATASETS: Array<[string, string]> = [['MNIST', 'tune_zoo_mnist_uniform'], ['F_MNIST', 'tune_zoo_f_mnist_uniform'], ['SVHN', 'tune_zoo_svhn_uniform'], ['USPS', 'tune_zoo_usps_uniform']]

async function generate(dir: string, models: number, epochs: number, companions: boolean): Promise<{ files: number; bytes: number; ms: number }> {
  const t0 = performance.now()
  const tdir = join(dir, '.template')
  await mkdir(tdir, { recursive: true })
  const py = spawnSync('/usr/bin/python3', ['-c', TEMPLATE, tdir], { encoding: 'utf8' })
  if (py.status !== 0) throw new Error(`the checkpoint template needs Debian's python3-torch (/usr/bin/python3): ${py.stderr}`)
  const weights = await template(join(tdir, 'checkpoints'))
  const optim = await template(join(tdir, 'optimizer'))
  let files = 0, bytes = 0
  const inflight = new Set<Promise<void>>()
  const put = async (path: string, data: Uint8Array | string): Promise<void> => {
    const w: Promise<void> = writeFile(path, data).finally(() => { inflight.delete(w) })
    inflight.add(w)
    files++; bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length
    if (inflight.size >= 64) await Promise.race(inflight)
  }
  const perZoo = Math.ceil(models / DATASETS.length)
  for (const [ds, exp] of DATASETS) {
    await mkdir(join(dir, 'zoos', ds, exp), { recursive: true })
    const cfg = { 'model::type': 'CNN', 'model::channels_in': 1, 'model::o_dim': 10, 'model::nlin': 'tanh', 'optim::optimizer': 'adam', 'optim::lr': 0.0003, seed: { grid_search: Array.from({ length: perZoo }, (_, i) => i + 1) }, 'dataset::dump': `/home/zoo/zoos/${ds}/${exp}/dataset.pt` }
    await put(join(dir, 'zoos', ds, exp, 'config.json'), JSON.stringify(cfg))
    await put(join(dir, 'zoos', ds, exp, 'index_dict.json'), JSON.stringify({ layer: [0, 3, 6, 9, 11], kernel_no: [8, 6, 4, 20, 10] }))
  }
  for (let m = 0; m < models; m++) {
    const [ds, exp] = DATASETS[m % DATASETS.length]!
    const seed = Math.floor(m / DATASETS.length) + 1
    const r = rng(m + 1)
    const nlin = ['tanh', 'relu', 'gelu', 'sigmoid'][m % 4]!
    const id = `${(0x3c5e1 + (m % DATASETS.length)).toString(16)}_${String(Math.floor(m / DATASETS.length)).padStart(5, '0')}`
    const trial = join(dir, 'zoos', ds, exp, `NN_tune_trainable_${id}_${Math.floor(m / DATASETS.length)}_seed=${seed}_2021-09-28_15-04-11`)
    for (let e = 0; e <= epochs; e++) await mkdir(join(trial, `checkpoint_${String(e).padStart(6, '0')}`), { recursive: true })
    const params = { cuda: false, 'dataset::dump': `/home/zoo/zoos/${ds}/${exp}/dataset.pt`, 'model::channels_in': 1, 'model::dropout': 0.0, 'model::init_type': 'uniform',
      'model::nlin': nlin, 'model::o_dim': 10, 'model::type': 'CNN', 'model::use_bias': true, 'optim::lr': 0.0003, 'optim::optimizer': 'adam', 'optim::wd': 0.0,
      seed, 'training::batchsize': 10, 'training::checkpoint_dir': null, 'training::epochs_train': epochs, 'training::idx_out': 500, 'training::output_epoch': 1, 'training::start_epoch': 1, 'training::val_epochs': 1 }
    await put(join(trial, 'params.json'), JSON.stringify(params, null, 2))
    const lines: string[] = [], csv: string[] = ['train_loss,train_acc,test_loss,test_acc,training_iteration']
    const ceiling = 0.6 + 0.35 * r(), tau = 3 + 10 * r()
    for (let e = 0; e <= epochs; e++) {
      const cp = join(trial, `checkpoint_${String(e).padStart(6, '0')}`)
      await put(join(cp, 'checkpoints'), variant(weights, r, 0.2))
      if (companions) {
        await put(join(cp, 'optimizer'), variant(optim, r, 0.01))
        await put(join(cp, '.is_checkpoint'), '')
        await put(join(cp, '.tune_metadata'), Buffer.from(`\x80\x04\x95iteration${e}`, 'latin1'))
      }
      const acc = 0.1 + (ceiling - 0.1) * (1 - Math.exp(-e / tau)) + 0.005 * (r() - 0.5)
      const rec = { train_loss: e === 0 ? -999 : -Math.log(acc * 1.02), train_acc: e === 0 ? -999 : acc * 1.02, test_loss: -Math.log(acc), test_acc: acc,
        time_this_iter_s: 2.1, done: e === epochs, training_iteration: e, trial_id: id, date: '2021-09-28_15-04-11', timestamp: 1632841451 + e, time_total_s: 2.1 * e, pid: 4242, hostname: 'node7' }
      lines.push(JSON.stringify(rec))
      csv.push([rec.train_loss, rec.train_acc, rec.test_loss, rec.test_acc, e].join(','))
    }
    await put(join(trial, 'result.json'), lines.join('\n') + '\n')
    await put(join(trial, 'progress.csv'), csv.join('\n') + '\n')
  }
  await Promise.all(inflight)
  rmSync(tdir, { recursive: true, force: true })
  return { files, bytes, ms: performance.now() - t0 }
}

function treeBytes(dir: string, skip = new Set<string>()): { files: number; bytes: number } {
  let files = 0, bytes = 0
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (skip.has(e.name)) continue
      if (e.isDirectory()) walk(join(d, e.name))
      else { files++; bytes += statSync(join(d, e.name)).size }
    }
  }
  if (existsSync(dir)) walk(dir)
  return { files, bytes }
}

/** Wall time, peak RSS and CPU seconds (user + system, children included: git and its hooks). */
function timed(cmd: string, args: string[], cwd: string): { ms: number; out: string; rssMb: number; cpu: number } {
  const t = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { cwd, encoding: 'utf8', maxBuffer: 1 << 30 })
  const ms = performance.now() - t
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`)
  const [rss, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number)
  return { ms, out: r.stdout, rssMb: rss! / 1024, cpu: user! + sys! }
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`

const models = arg('models', 5000), epochs = arg('epochs', 50), companions = flag('companions')
const base = mkdtempSync(join(tmpdir(), 'zoo-import-bench-'))
const src = join(base, 'src'), repo = join(base, 'repo')
try {
  const g = await generate(src, models, epochs, companions)
  console.log(`generated a Model Zoos-shaped population: ${models} Ray trials x ${epochs + 1} checkpoints${companions ? ' (with optimizer state and Ray metadata)' : ''}: ${g.files} files, ${(g.bytes / 2 ** 20).toFixed(0)} MiB in ${(g.ms / 1000).toFixed(1)} s`)
  await mkdir(repo)
  const git = (...a: string[]): string => execFileSync('git', a, { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 30 })
  git('init', '-q', '-b', 'main'); git('config', 'user.name', 'Bench'); git('config', 'user.email', 'bench@example.invalid'); git('config', 'commit.gpgsign', 'false')
  execFileSync(process.execPath, [BIN, 'init'], { cwd: repo })
  git('add', '-A'); git('commit', '-q', '-m', 'zoo')
  const first = timed(process.execPath, [BIN, 'import', src, '--prefix', 'mz', '--json'], repo)
  const r = JSON.parse(first.out) as { promoted: number; checkpoints: number; files: number; bytes: number; stored_bytes: number; commits: string[] }
  const store = treeBytes(join(repo, '.git', 'zoo'))
  console.log(`import: ${r.promoted} models, ${r.checkpoints} checkpoints, ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${(first.ms / 1000).toFixed(1)} s end to end ` +
    `(${(r.checkpoints / (first.ms / 1000)).toFixed(0)} checkpoints/s, ${(r.bytes / 2 ** 20 / (first.ms / 1000)).toFixed(1)} MiB/s), ${r.commits.length} commit(s), peak RSS ${first.rssMb.toFixed(0)} MB; ` +
    `CPU ${first.cpu.toFixed(0)} s (${(r.checkpoints / first.cpu).toFixed(0)} checkpoints per CPU-second)`)
  console.log(`store: ${store.files} files, ${(store.bytes / 2 ** 20).toFixed(0)} MiB (${(r.stored_bytes / 2 ** 20).toFixed(0)} MiB newly stored)`)

  // catalog: cold, warm, in a fresh clone
  const query = ['find', 'dataset=MNIST', 'test_acc>0.5', '--sort', '-test_acc', '--limit', '10']
  rmSync(join(repo, '.zoo', 'cache'), { recursive: true, force: true })
  const cold = timed(process.execPath, [BIN, ...query], repo)
  const warm = median(Array.from({ length: 7 }, () => timed(process.execPath, [BIN, ...query], repo).ms))
  const hist = timed(process.execPath, [BIN, 'find', 'best.test_loss<1', 'test_acc@10>0.3', '--limit', '5'], repo)
  const start = median(Array.from({ length: 5 }, () => timed(process.execPath, ['-e', '0'], repo).ms))
  console.log(`catalog: find (2 filters + sort) cold ${cold.ms.toFixed(0)} ms (peak RSS ${cold.rssMb.toFixed(0)} MB, CPU ${cold.cpu.toFixed(2)} s), warm median ${warm.toFixed(0)} ms; first find on history ${hist.ms.toFixed(0)} ms; \`node -e 0\` alone: ${start.toFixed(0)} ms`)

  // git size
  const tracked = git('ls-files', '-z').split('\0').filter(Boolean)
  const workBytes = tracked.reduce((a, p) => a + statSync(join(repo, p)).size, 0)
  const tRepack = performance.now()
  git('repack', '-adq')
  const packMs = performance.now() - tRepack
  const packed = treeBytes(join(repo, '.git', 'objects', 'pack')).bytes
  const clone = join(base, 'clone')
  const c = timed('git', ['clone', '-q', '--no-local', repo, clone], base)
  const cloneFind = timed(process.execPath, [BIN, ...query], clone)
  const cloneWarm = timed(process.execPath, [BIN, ...query], clone)
  console.log(`git: ${tracked.length} tracked files, ${mb(workBytes)} in the work tree; packed ${mb(packed)} (git repack -ad: ${(packMs / 1000).toFixed(1)} s); plain git clone ${(c.ms / 1000).toFixed(1)} s`)
  console.log(`clone: first find ${cloneFind.ms.toFixed(0)} ms, then ${cloneWarm.ms.toFixed(0)} ms`)
  rmSync(clone, { recursive: true, force: true })
  if (!flag('no-again')) {
    const again = timed(process.execPath, [BIN, 'import', src, '--prefix', 'mz', '--json'], repo)
    const a = JSON.parse(again.out) as { promoted: number; unchanged: number }
    console.log(`the same import again (resume check): ${a.unchanged} unchanged, ${a.promoted} promoted, ${(again.ms / 1000).toFixed(1)} s, peak RSS ${again.rssMb.toFixed(0)} MB`)
  }
  console.log(`load average during the run: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
} finally {
  if (!flag('keep')) rmSync(base, { recursive: true, force: true })
  else console.log(`kept ${base}`)
}
