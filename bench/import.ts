/**
 * Import benchmark on a Model Zoos-shaped population (ModelZoos/ModelZooDataset, Ray Tune 1.x):
 * zoos/<DATASET>/<experiment>/ with the zoo's config.json and index_dict.json, and one trial folder
 * per model, NN_tune_trainable_<trial id>_<n>_seed=<s>_<date>/, holding params.json (the authors'
 * keys), result.json (a line per iteration, Ray's bookkeeping, -999 placeholders at iteration 0),
 * progress.csv and checkpoint_000000 ... checkpoint_000050/checkpoints: torch.save zips of the
 * small MNIST CNN (2,464 parameters, 12.6 KiB). The first checkpoint is written by Debian's torch
 * (/usr/bin/python3); every other one is that archive with new tensor bytes and their CRC-32 patched
 * in (central directory and data descriptor, as torch's writer puts them), written synchronously;
 * two of them are checked in every run (CRCs by Python's zipfile, then torch.load(weights_only=True)).
 * With --companions each checkpoint folder also holds the optimizer state (a torch.save zip) and
 * Ray's .is_checkpoint and .tune_metadata, as the published zoos do.
 *
 * Only the CLI (`git zoo import`, `git zoo find`), git and files on disk are used, so the benchmark
 * keeps working while the importer, the manifest and the catalog change.
 *
 * One import (default up to 10,000 models): 4 zoos of different datasets in one source folder, one
 * `git zoo import`, then the same import again (the resume check) unless --no-again.
 * Staged (--zoos N or --per-import K; the default above 10,000 models is --per-import 2500): one zoo
 * is generated, imported into the same git-zoo repository, its source deleted, and so on, as a lab
 * adds zoo after zoo; the resume check re-imports the last zoo. Free disk is checked before starting
 * (and before each zoo) against the plan's peak, which must also stay under --disk-budget.
 *
 * Reports: per import and overall checkpoints/s (wall and per CPU-second, with the load average),
 * peak RSS of each import, store size, disk in use; then the catalog: `find` cold (no cache), warm
 * median through node (`node bin/git-zoo.js`, GIT_ZOO_SERVER=0) and through what users run
 * (`bin/git-zoo`: the native front and the query server, in a private XDG_RUNTIME_DIR, with the
 * server's CPU per find; spec/server.md), on history, in a plain `git clone` (first find) and, staged, after a `git pull` that brings
 * the last zoo; git: the packs and loose objects the imports left, whether `git status` is clean,
 * tracked files, work-tree bytes, `git repack -ad` packed size, plain `git clone` time; `node -e 0`
 * for reference; then a summary against issue 13's targets.
 *
 *   node dist/bench/import.js [--models 5000] [--epochs 50] [--companions] [--keep] [--no-again]
 *   node dist/bench/import.js --models 50000 [--zoos 20 | --per-import 2500] [--dry-run]
 *   node dist/bench/import.js --generate-only [--models 1000]     (generation speed alone)
 *   [--dir <folder for the repository and store; default the OS temp dir>] [--disk-budget <GiB; 45>]
 *   [--src-dir <folder for the generated sources; default /dev/shm when it has room, else --dir>]
 * Ctrl-C, or SIGINT / SIGTERM to its pid, stops it after the step under way and removes its folders
 * (kept with --keep).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, readdirSync, statSync, existsSync, readFileSync, writeFileSync, statfsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { crc32 } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const BIN = resolve(fileURLToPath(new URL('../../bin/git-zoo.js', import.meta.url)))
/** What users run (package.json "bin"): the native front when built (dist/front/git-zoo), else node. */
const WRAPPER = resolve(fileURLToPath(new URL('../../bin/git-zoo', import.meta.url)))
const CLIENT = resolve(fileURLToPath(new URL('../../dist/front/git-zoo', import.meta.url)))
// the node runs below start no query server; the served find has its own (spec/server.md)
process.env.GIT_ZOO_SERVER = '0'
const GiB = 2 ** 30, MiB = 2 ** 20

// ---------------------------------------------------------------------------------------------
// command line

const USAGE = `usage: node dist/bench/import.js [--models N] [--epochs E] [--zoos N | --per-import K] [--companions]
       [--dir <folder>] [--src-dir <folder>] [--disk-budget <GiB>] [--dry-run] [--generate-only] [--keep] [--no-again]\n`
const NUMERIC = ['models', 'epochs', 'zoos', 'per-import', 'disk-budget'] as const
const FLAGS = ['companions', 'dry-run', 'generate-only', 'keep', 'no-again'] as const
interface Options { models: number; epochs: number; zoos?: number; perImport?: number; diskBudget: number; dir: string; srcDir?: string; companions: boolean; dryRun: boolean; generateOnly: boolean; keep: boolean; again: boolean }

function usage(msg: string): never { process.stderr.write(`bench/import: ${msg}\n${USAGE}`); process.exit(2) }

function parseArgs(argv: string[]): Options {
  const num: Record<string, number> = {}, flags = new Set<string>()
  let dir = tmpdir(), srcDir: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const name = a.replace(/^--/, '')
    if (a === '--dir' || a === '--src-dir') {
      if (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--')) usage(`${a} needs a folder`)
      const v = resolve(argv[++i]!)
      if (a === '--dir') dir = v; else srcDir = v
      continue
    }
    if ((NUMERIC as readonly string[]).includes(name) && a.startsWith('--')) {
      const v = Number(argv[++i])
      if (!Number.isInteger(v) || v < (name === 'epochs' ? 0 : 1)) usage(`--${name} takes a whole number${name === 'epochs' ? '' : ' above 0'}, not ${JSON.stringify(argv[i] ?? '')}`)
      num[name] = v; continue
    }
    if ((FLAGS as readonly string[]).includes(name) && a.startsWith('--')) { flags.add(name); continue }
    usage(`unknown argument ${JSON.stringify(a)}`)
  }
  if (num.zoos !== undefined && num['per-import'] !== undefined) usage('give --zoos or --per-import, not both')
  const models = num.models ?? 5000
  if (num.zoos !== undefined && num.zoos > models) usage(`--zoos ${num.zoos} is more zoos than --models ${models}`)
  return {
    models, epochs: num.epochs ?? 50, ...(num.zoos !== undefined ? { zoos: num.zoos } : {}), ...(num['per-import'] !== undefined ? { perImport: num['per-import'] } : {}),
    diskBudget: (num['disk-budget'] ?? 45) * GiB, dir, ...(srcDir ? { srcDir } : {}), companions: flags.has('companions'), dryRun: flags.has('dry-run'),
    generateOnly: flags.has('generate-only'), keep: flags.has('keep'), again: !flags.has('no-again'),
  }
}

// ---------------------------------------------------------------------------------------------
// the population: zoos, and which are imported together

interface Zoo { dataset: string; experiment: string; init: string; trialHex: string; models: number; first: number }

const DATASETS: Array<[string, string]> = [['MNIST', 'mnist'], ['F_MNIST', 'f_mnist'], ['SVHN', 'svhn'], ['USPS', 'usps']]
// the Model Zoos generators' initialisation / variation axes, one experiment folder each
const KINDS = ['uniform', 'kaiming_uniform', 'normal', 'kaiming_normal', 'seed', 'hyp_10_uniform', 'hyp_10_kaiming']
const AUTO_STAGED_ABOVE = 10_000, AUTO_PER_IMPORT = 2_500

/** Zoos in import order, grouped by import: one group of 4 zoos (one import), or one zoo per import. */
function planZoos(o: Options): { stages: Zoo[][]; note?: string } {
  let count: number, staged: boolean, note: string | undefined
  if (o.zoos !== undefined) { count = o.zoos; staged = count > 1 }
  else if (o.perImport !== undefined) { count = Math.ceil(o.models / o.perImport); staged = count > 1 }
  else if (o.models > AUTO_STAGED_ABOVE && !o.generateOnly) { count = Math.ceil(o.models / AUTO_PER_IMPORT); staged = true; note = `more than ${AUTO_STAGED_ABOVE.toLocaleString('en')} models: staged, ${AUTO_PER_IMPORT.toLocaleString('en')} per zoo and import (--zoos / --per-import choose otherwise)` }
  else { count = Math.min(DATASETS.length, o.models); staged = false }
  const zoos: Zoo[] = []
  let first = 0
  for (let i = 0; i < count; i++) {
    const n = Math.floor(o.models / count) + (i < o.models % count ? 1 : 0)
    const [dataset, slug] = DATASETS[i % DATASETS.length]!
    const round = Math.floor(i / DATASETS.length)
    const kind = KINDS[round % KINDS.length]! + (round >= KINDS.length ? `_${Math.floor(round / KINDS.length) + 1}` : '')
    const init = kind.includes('kaiming') ? (kind.includes('normal') ? 'kaiming_normal' : 'kaiming_uniform') : kind.includes('normal') ? 'normal' : 'uniform'
    zoos.push({ dataset, experiment: `tune_zoo_${slug}_${kind}`, init, trialHex: (0x3c5e1 + i * 0x1f3).toString(16).slice(-5), models: n, first })
    first += n
  }
  return { stages: staged ? zoos.map((z) => [z]) : [zoos], ...(note ? { note } : {}) }
}

// ---------------------------------------------------------------------------------------------
// torch.save templates and their variants

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
/**
 * Checks each file named on the command line: every zip entry's CRC-32 against the central directory
 * (zipfile's testzip) and against its data descriptor, then torch.load(weights_only=True) (which does
 * not check CRCs); prints the tensor count and a checksum of the values.
 */
const CHECK = String.raw`
import torch, sys, zipfile, struct, zlib
for p in sys.argv[1:]:
    z = zipfile.ZipFile(p)
    bad = z.testzip()
    if bad: sys.exit(p + ': bad CRC-32 for ' + bad)
    raw = open(p, 'rb').read()
    for i in z.infolist():
        if i.flag_bits & 8:
            o = i.header_offset
            n, e = struct.unpack('<HH', raw[o + 26:o + 30])
            d = o + 30 + n + e + i.compress_size
            if raw[d:d + 4] == b'PK\x07\x08': d += 4
            if struct.unpack('<I', raw[d:d + 4])[0] != zlib.crc32(raw[o + 30 + n + e:o + 30 + n + e + i.compress_size]): sys.exit(p + ': data descriptor CRC-32 differs for ' + i.filename)
    sd = torch.load(p, weights_only=True)
    print(len(sd), float(sum(t.double().abs().sum() for t in sd.values())))
`
// sizes of Debian torch 1.13's files above, for --dry-run (a real run uses the template's own)
const EST_CKPT_BYTES = 12_919, EST_OPTIM_BYTES = 27_403

/** A torch.save zip whose float32 tensor entries get new bytes: where each entry's data and its CRC fields are. */
class TorchZip {
  readonly buf: Buffer
  private readonly slots: Array<{ data: Uint32Array; start: number; end: number; crcAt: number[] }> = []

  constructor(bytes: Buffer, what: string) {
    this.buf = Buffer.alloc(bytes.length)
    bytes.copy(this.buf)
    const b = this.buf
    let eocd = -1
    for (let p = b.length - 22; p >= Math.max(0, b.length - 22 - 0xffff); p--) if (b.readUInt32LE(p) === 0x06054b50) { eocd = p; break }
    if (eocd < 0) throw new Error(`${what}: no zip end record`)
    const count = b.readUInt16LE(eocd + 10), cdOffset = b.readUInt32LE(eocd + 16)
    if (cdOffset === 0xffffffff || count === 0xffff) throw new Error(`${what}: zip64 central directory (not expected in a small torch.save file)`)
    for (let i = 0, p = cdOffset; i < count; i++) {
      if (b.readUInt32LE(p) !== 0x02014b50) throw new Error(`${what}: bad central directory record`)
      const flags = b.readUInt16LE(p + 8), method = b.readUInt16LE(p + 10), size = b.readUInt32LE(p + 20)
      const nameLen = b.readUInt16LE(p + 28), extraLen = b.readUInt16LE(p + 30), commentLen = b.readUInt16LE(p + 32), local = b.readUInt32LE(p + 42)
      const name = b.toString('utf8', p + 46, p + 46 + nameLen)
      if (/\/data\/\d+$/.test(name)) {
        if (method !== 0 || size !== b.readUInt32LE(p + 24)) throw new Error(`${what}: ${name} is compressed`)
        if (b.readUInt32LE(local) !== 0x04034b50) throw new Error(`${what}: bad local header for ${name}`)
        const start = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28)
        if (start % 4 !== 0 || size % 4 !== 0) throw new Error(`${what}: ${name} is not 4-byte aligned`)
        const crcAt = [p + 16]
        if (flags & 8) { // data descriptor after the data (torch's writer): [signature] crc, sizes
          const d = start + size
          crcAt.push(b.readUInt32LE(d) === 0x08074b50 ? d + 4 : d)
        } else crcAt.push(local + 14)
        this.slots.push({ data: new Uint32Array(b.buffer, b.byteOffset + start, size / 4), start, end: start + size, crcAt })
      }
      p += 46 + nameLen + extraLen + commentLen
    }
    if (!this.slots.length) throw new Error(`${what}: no tensor entries`)
  }

  /**
   * New float32 values from the xorshift32 state `s` (sign and mantissa random, magnitude in [1/64, 1/4)),
   * CRCs patched; returns the next state. The buffer is reused: write it before the next call.
   */
  fill(s: number): number {
    for (const t of this.slots) {
      const d = t.data
      for (let i = 0; i < d.length; i++) {
        s ^= s << 13; s ^= s >>> 17; s ^= s << 5
        d[i] = (s & 0x807fffff) | ((0x79 + ((s >>> 23) & 3)) << 23)
      }
      const crc = crc32(this.buf.subarray(t.start, t.end))
      for (const at of t.crcAt) this.buf.writeUInt32LE(crc, at)
    }
    return s
  }
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = Math.imul(a ^ (a >>> 15), a | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296 }
}

interface Gen { files: number; dirs: number; bytes: number; disk: number; ms: number; cpu: number }
const blocks = (n: number): number => Math.ceil(n / 4096) * 4096
const NLIN = ['tanh', 'relu', 'gelu', 'sigmoid']

/** Writes zoo `z` under `root` (root/zoos/<DATASET>/<experiment>/...), synchronously. */
function generateZoo(root: string, z: Zoo, epochs: number, weights: TorchZip, optim: TorchZip | undefined): Gen {
  const t0 = performance.now(), c0 = process.cpuUsage()
  let files = 0, dirs = 0, bytes = 0, disk = 0
  const put = (path: string, data: Uint8Array | string): void => {
    writeFileSync(path, data)
    const n = typeof data === 'string' ? Buffer.byteLength(data) : data.length
    files++; bytes += n; disk += blocks(n)
  }
  const dir = (path: string): void => { mkdirSync(path); dirs++; disk += 4096 }
  const zooDir = join(root, 'zoos', z.dataset, z.experiment)
  mkdirSync(zooDir, { recursive: true })
  const dump = `/home/zoo/zoos/${z.dataset}/${z.experiment}/dataset.pt`
  put(join(zooDir, 'config.json'), JSON.stringify({ 'model::type': 'CNN', 'model::channels_in': 1, 'model::o_dim': 10, 'model::nlin': { grid_search: NLIN }, 'model::init_type': z.init, 'optim::optimizer': 'adam', 'optim::lr': 0.0003,
    seed: { grid_search: Array.from({ length: Math.ceil(z.models / NLIN.length) }, (_, i) => i + 1) }, 'training::epochs_train': epochs, 'dataset::dump': dump }))
  put(join(zooDir, 'index_dict.json'), JSON.stringify({ layer: [0, 3, 6, 9, 11], kernel_no: [8, 6, 4, 20, 10] }))
  const cpNames = Array.from({ length: epochs + 1 }, (_, e) => `/checkpoint_${String(e).padStart(6, '0')}`)
  for (let k = 0; k < z.models; k++) {
    const m = z.first + k
    const r = mulberry(m + 1)
    let s = (Math.imul(m + 1, 0x9e3779b1) ^ 0x5bd1e995) | 1
    const seed = Math.floor(k / NLIN.length) + 1, nlin = NLIN[k % NLIN.length]!
    const id = `${z.trialHex}_${String(k).padStart(5, '0')}`
    const trial = `${zooDir}/NN_tune_trainable_${id}_${k}_model::nlin=${nlin},seed=${seed}_2021-09-28_15-04-11`
    dir(trial)
    const params = { cuda: false, 'dataset::dump': dump, 'model::channels_in': 1, 'model::dropout': 0.0, 'model::init_type': z.init,
      'model::nlin': nlin, 'model::o_dim': 10, 'model::type': 'CNN', 'model::use_bias': true, 'optim::lr': 0.0003, 'optim::optimizer': 'adam', 'optim::wd': 0.0,
      seed, 'training::batchsize': 10, 'training::checkpoint_dir': null, 'training::epochs_train': epochs, 'training::idx_out': 500, 'training::output_epoch': 1, 'training::start_epoch': 1, 'training::val_epochs': 1 }
    put(`${trial}/params.json`, JSON.stringify(params, null, 2))
    let lines = '', csv = 'train_loss,train_acc,test_loss,test_acc,training_iteration\n'
    const ceiling = 0.6 + 0.35 * r(), tau = 3 + 10 * r()
    for (let e = 0; e <= epochs; e++) {
      const cp = trial + cpNames[e]!
      dir(cp)
      s = weights.fill(s)
      put(`${cp}/checkpoints`, weights.buf)
      if (optim) {
        s = optim.fill(s)
        put(`${cp}/optimizer`, optim.buf)
        put(`${cp}/.is_checkpoint`, '')
        put(`${cp}/.tune_metadata`, Buffer.from(`\x80\x04\x95iteration${e}`, 'latin1'))
      }
      // a line of Ray's result.json (number formatting as JSON.stringify's) and of progress.csv
      const acc = 0.1 + (ceiling - 0.1) * (1 - Math.exp(-e / tau)) + 0.005 * (r() - 0.5)
      const trainLoss = e === 0 ? -999 : -Math.log(acc * 1.02), trainAcc = e === 0 ? -999 : acc * 1.02, testLoss = -Math.log(acc)
      lines += `{"train_loss":${trainLoss},"train_acc":${trainAcc},"test_loss":${testLoss},"test_acc":${acc},"time_this_iter_s":2.1,"done":${e === epochs},` +
        `"training_iteration":${e},"trial_id":"${id}","date":"2021-09-28_15-04-11","timestamp":${1632841451 + e},"time_total_s":${2.1 * e},"pid":4242,"hostname":"node7"}\n`
      csv += `${trainLoss},${trainAcc},${testLoss},${acc},${e}\n`
    }
    put(`${trial}/result.json`, lines)
    put(`${trial}/progress.csv`, csv)
  }
  const c = process.cpuUsage(c0)
  return { files, dirs, bytes, disk, ms: performance.now() - t0, cpu: (c.user + c.system) / 1e6 }
}

// ---------------------------------------------------------------------------------------------
// measuring

/** Wall time, peak RSS and CPU seconds (user + system, children included: git and its hooks). */
function timed(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): { ms: number; out: string; rssMb: number; cpu: number } {
  const t = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { cwd, env, encoding: 'utf8', maxBuffer: 1 << 30 })
  const ms = performance.now() - t
  if (r.error) throw new Error(`could not run /usr/bin/time (apt-get install time): ${r.error.message}`)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`)
  const [rss, user, sys] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number)
  return { ms, out: r.stdout, rssMb: rss! / 1024, cpu: user! + sys! }
}
function treeBytes(dir: string): { files: number; bytes: number } {
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
/** Bytes of disk blocks in use under `path` (du), 0 when it does not exist. */
function diskUse(path: string): number {
  if (!existsSync(path)) return 0
  const r = spawnSync('du', ['-s', '-B1', path], { encoding: 'utf8' })
  return Number(r.stdout.split('\t')[0]) || 0
}
function freeDisk(path: string): number { const s = statfsSync(path); return s.bavail * s.bsize }
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
const mb = (n: number): string => `${(n / 1e6).toLocaleString('en', { maximumFractionDigits: 1, minimumFractionDigits: 1 })} MB`
const gib = (n: number): string => `${(n / GiB).toFixed(1)} GiB`
const sizeOf = (n: number): string => (n >= GiB ? gib(n) : `${(n / MiB).toFixed(0)} MiB`)
const int = (n: number): string => Math.round(n).toLocaleString('en')
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const msOrS = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`)

// ---------------------------------------------------------------------------------------------
// the disk plan

// git per model before per-checkpoint entries leave the manifest (spec/import.md: 35 KB of work tree
// and 21 KB packed per model; loose objects before a repack, the repack's second pack, the catalog
// cache): generous, and replaced by the measured growth once the first import is done
const EST_GIT_PER_MODEL = 100_000, EST_CLONE_PER_MODEL = 60_000
const MARGIN = 2 * GiB

interface Plan { zooSource: number; store: number; git: number; clone: number; peak: number }
function diskPlan(stages: Zoo[][], epochs: number, ckptBytes: number, optimBytes: number, gitPerModel: number, clonePerModel: number): Plan {
  const models = stages.flat().reduce((a, z) => a + z.models, 0)
  const perCkpt = ckptBytes + optimBytes + (optimBytes ? 16 : 0)
  const perCkptDisk = blocks(ckptBytes) + 4096 + (optimBytes ? blocks(optimBytes) + 4096 : 0) // file(s) + the checkpoint folder (Ray's two small files add ~1 block)
  const perModelDisk = 4096 + (epochs + 1) * perCkptDisk + 3 * 4096 + (epochs + 1) * 400
  const zooSource = Math.max(...stages.map((st) => st.reduce((a, z) => a + z.models, 0))) * perModelDisk
  const store = models * (epochs + 1) * perCkpt * 1.02
  const git = models * gitPerModel, clone = models * clonePerModel
  return { zooSource, store, git, clone, peak: store + zooSource + git + clone }
}

// ---------------------------------------------------------------------------------------------
// where the sources go

const TMPFS_MAGIC = 0x01021994
const isTmpfs = (path: string): boolean => statfsSync(path).type === TMPFS_MAGIC
const memAvailable = (): number => Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024

/**
 * The generated sources go to tmpfs (/dev/shm) when it holds one import's source with memory to
 * spare: creating a file or folder on this VM's ext4 costs ~0.3 ms of kernel CPU (the generator then
 * writes ~2,000 files/s), on tmpfs ~15 us. The importer reads them from the page cache either way,
 * as it would just after writing them to disk; its store and git repository are on disk (--dir).
 */
function sourceFolder(o: Options, zooSource: number): { dir: string; why: string } {
  if (o.srcDir) return { dir: o.srcDir, why: `--src-dir ${o.srcDir}${isTmpfs(o.srcDir) ? ' (tmpfs)' : ''}` }
  if (existsSync('/dev/shm') && isTmpfs('/dev/shm') && freeDisk('/dev/shm') >= zooSource + GiB && memAvailable() >= zooSource + 4 * GiB) return { dir: '/dev/shm', why: 'tmpfs /dev/shm' }
  return { dir: o.dir, why: `${o.dir} (/dev/shm missing or without ${gib(zooSource + 4 * GiB)} of memory to spare)` }
}
const sameFs = (a: string, b: string): boolean => statSync(a).dev === statSync(b).dev

// ---------------------------------------------------------------------------------------------

const say = (s: string): void => { process.stdout.write(s + '\n') }
const progress = (s: string): void => { process.stderr.write(s + '\n') }
const removeTree = (path: string): number => {
  const t = performance.now()
  const r = spawnSync('rm', ['-rf', path], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`rm -rf ${path} failed: ${r.stderr}`)
  return performance.now() - t
}

/** Lets the event loop turn, so that a SIGINT / SIGTERM sent while a synchronous step ran is handled now. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2))
  const { stages, note } = planZoos(o)
  const allZoos = stages.flat()
  const staged = stages.length > 1
  const totalCkpts = o.models * (o.epochs + 1)
  if (note) progress(`bench/import: ${note}`)
  mkdirSync(o.dir, { recursive: true })
  if (o.srcDir) mkdirSync(o.srcDir, { recursive: true })

  // the plan, and whether the disk (and memory) hold it
  const plan = diskPlan(o.generateOnly ? [allZoos] : stages, o.epochs, EST_CKPT_BYTES, o.companions ? EST_OPTIM_BYTES : 0, o.generateOnly ? 0 : EST_GIT_PER_MODEL, o.generateOnly ? 0 : EST_CLONE_PER_MODEL)
  const where = sourceFolder(o, plan.zooSource)
  const srcOnDisk = sameFs(where.dir, o.dir)
  const need = (o.generateOnly ? 0 : plan.peak - plan.zooSource) + (srcOnDisk ? plan.zooSource : 0) // what goes on the disk of --dir
  const free = freeDisk(o.dir), srcFree = freeDisk(where.dir)
  if (o.dryRun) {
    say(`plan: ${int(o.models)} models x ${o.epochs + 1} checkpoints = ${int(totalCkpts)} checkpoints${o.companions ? ' (with optimizer state and Ray metadata)' : ''}, ` +
      `${allZoos.length} zoo(s), ${stages.length} import(s)${staged ? ` of ${int(Math.min(...allZoos.map((z) => z.models)))}-${int(Math.max(...allZoos.map((z) => z.models)))} models` : ''}`)
    for (const [i, st] of stages.entries()) {
      if (i >= 3 && i < stages.length - 2) { if (i === 3) say(`  ... ${stages.length - 5} more`); continue }
      say(`  import ${i + 1}: ${st.map((z) => `zoos/${z.dataset}/${z.experiment} (${int(z.models)} models, trial ids ${z.trialHex}_*)`).join(', ')}`)
    }
    say(`source: ${gib(plan.zooSource)} at most at a time (${staged ? 'one zoo, deleted once imported' : 'the whole population'}) on ${where.why}, ${gib(srcFree)} free there`)
    if (!o.generateOnly) {
      say(`disk at ${o.dir}: store ~${gib(plan.store)}, git ~${gib(plan.git)} and a clone ~${gib(plan.clone)} (at ${int(EST_GIT_PER_MODEL / 1000)} + ${int(EST_CLONE_PER_MODEL / 1000)} KB per model; ` +
        `re-projected from each import)${srcOnDisk ? ', plus the source' : ''}: peak ~${gib(need)}; budget ${gib(o.diskBudget)}; ${gib(free)} free`)
    }
    say(`time at the targets: generation ${secs(totalCkpts * (o.companions ? 4 : 1) / 20_000 * 1000)} at 20,000 files/s${o.generateOnly ? '' : `, imports ${secs(totalCkpts / 5_000 * 1000)} at 5,000 checkpoints/s`}`)
  }
  const fixed = need - (srcOnDisk ? plan.zooSource : 0) // store, git and the clone: what smaller zoos do not change
  const problem = need > o.diskBudget
    ? `the plan needs ~${gib(need)} of disk at its peak, over the budget of ${gib(o.diskBudget)}: ` + (fixed > o.diskBudget
      ? `the store, git and a clone alone take ~${gib(fixed)}; use fewer models${o.companions ? ' or leave out --companions' : ''}, or raise --disk-budget`
      : `import in more, smaller zoos (--per-import K), put the source elsewhere (--src-dir), or raise --disk-budget`)
    : need + MARGIN > free
      ? `the plan needs ~${gib(need)} of disk at its peak (+ ${gib(MARGIN)} to spare), but ${o.dir} has ${gib(free)} free: free some space, or run with --dir <folder on a bigger disk>`
      : !srcOnDisk && plan.zooSource + GiB > srcFree
        ? `the source needs ~${gib(plan.zooSource)} at ${where.dir} (+ 1 GiB to spare), which has ${gib(srcFree)} free: use --src-dir <folder>, or smaller zoos (--per-import K)`
        : undefined
  if (problem) { process.stderr.write(`bench/import: ${problem}\n`); return 1 }
  if (o.dryRun) { say('fits: run the same command without --dry-run'); return 0 }

  const base = mkdtempSync(join(o.dir, 'zoo-import-bench-'))
  const srcBase = where.dir === o.dir ? base : mkdtempSync(join(where.dir, 'zoo-import-bench-src-'))
  const src = join(srcBase, 'src'), repo = join(base, 'repo'), tdir = join(base, 'template')
  const cleanup = (): void => {
    if (o.keep) { progress(`kept ${base}${srcBase !== base ? ` and ${srcBase}` : ''}`); return }
    rmSync(base, { recursive: true, force: true })
    if (srcBase !== base) rmSync(srcBase, { recursive: true, force: true })
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { progress(`bench/import: ${sig}: stopping${o.keep ? '' : `, removing ${base}`}`); cleanup(); process.exit(130) })
  try {
    mkdirSync(tdir)
    mkdirSync(src, { recursive: true })
    const py = spawnSync('/usr/bin/python3', ['-c', TEMPLATE, tdir], { encoding: 'utf8' })
    if (py.status !== 0) throw new Error(`the checkpoint template needs Debian's python3-torch (/usr/bin/python3): ${py.stderr}`)
    const weights = new TorchZip(readFileSync(join(tdir, 'checkpoints')), 'torch.save of the CNN')
    const optim = o.companions ? new TorchZip(readFileSync(join(tdir, 'optimizer')), 'torch.save of the Adam state') : undefined
    let checked = false
    /** torch.load(weights_only=True) of the first and last checkpoint of the first model generated. */
    const checkWithTorch = (z: Zoo): void => {
      if (checked) return
      checked = true
      const zooDir = join(src, 'zoos', z.dataset, z.experiment)
      const trial = readdirSync(zooDir).filter((n) => n.startsWith('NN_tune_trainable_')).sort()[0]!
      const files = [0, o.epochs].map((e) => join(zooDir, trial, `checkpoint_${String(e).padStart(6, '0')}`, 'checkpoints'))
      const r = spawnSync('/usr/bin/python3', ['-c', CHECK, ...files], { encoding: 'utf8' })
      const sums = r.stdout.trim().split('\n').map((l) => l.split(' '))
      if (r.status !== 0 || sums.length !== 2 || sums.some((x) => x[0] !== '10') || (o.epochs > 0 && sums[0]![1] === sums[1]![1])) {
        throw new Error(`the generated checkpoints are not valid zips that Debian's torch reads back as 10 distinct tensors (${files.join(', ')}): ${r.stderr.slice(-1500) || r.stdout}`)
      }
    }
    const add = (a: Gen, b: Gen): Gen => ({ files: a.files + b.files, dirs: a.dirs + b.dirs, bytes: a.bytes + b.bytes, disk: a.disk + b.disk, ms: a.ms + b.ms, cpu: a.cpu + b.cpu })
    let gen: Gen = { files: 0, dirs: 0, bytes: 0, disk: 0, ms: 0, cpu: 0 }

    if (o.generateOnly) {
      for (const z of allZoos) { gen = add(gen, generateZoo(src, z, o.epochs, weights, optim)); await tick() }
      checkWithTorch(allZoos[0]!)
      const rm = o.keep ? 0 : removeTree(src)
      say(`generated ${int(o.models)} Ray trials x ${o.epochs + 1} checkpoints in ${allZoos.length} zoos on ${where.why}: ${int(gen.files)} files and ${int(gen.dirs)} folders, ${(gen.bytes / MiB).toFixed(0)} MiB ` +
        `in ${secs(gen.ms)}: ${int(gen.files / (gen.ms / 1000))} files/s wall, ${int(gen.files / gen.cpu)} per CPU-second (${gen.cpu.toFixed(1)} CPU-s); ` +
        `torch.load(weights_only=True) reads them back;${o.keep ? '' : ` rm -rf ${secs(rm)};`} load average ${loadavg()}`)
      return 0
    }

    // the repository
    mkdirSync(repo)
    const git = (...a: string[]): string => execFileSync('git', a, { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 30 })
    git('init', '-q', '-b', 'main'); git('config', 'user.name', 'Bench'); git('config', 'user.email', 'bench@example.invalid'); git('config', 'commit.gpgsign', 'false')
    execFileSync(process.execPath, [BIN, 'init'], { cwd: repo, stdio: 'pipe' })
    git('add', '-A'); git('commit', '-q', '-m', 'zoo')
    const repoStart = diskUse(repo)

    say(`population: ${int(o.models)} Model Zoos-shaped Ray trials x ${o.epochs + 1} torch.save checkpoints (${(weights.buf.length / 1024).toFixed(1)} KiB)${o.companions ? ' with optimizer state and Ray metadata' : ''}, ` +
      `${allZoos.length} zoos, ${stages.length} import(s); source on ${where.why}, repository and store under ${o.dir}; load average ${loadavg()}`)
    interface Row { models: number; ckpts: number; ms: number; cpu: number; rssMb: number; load1: number }
    const rows: Row[] = []
    let rmMs = 0, peakDisk = 0, modelsDone = 0, beforeLast = '', repoDisk = repoStart
    const storeBytes = (): number => treeBytes(join(repo, '.git', 'zoo')).bytes
    for (const [i, st] of stages.entries()) {
      const stModels = st.reduce((a, z) => a + z.models, 0)
      // keep to the disk plan, projected from what the imports so far took
      if (i > 0) {
        const perModel = Math.max((repoDisk - storeBytes() - repoStart) / modelsDone, 1)
        const rest = diskPlan(stages.slice(i), o.epochs, weights.buf.length, optim ? optim.buf.length : 0, perModel, 0)
        const more = rest.peak - (srcOnDisk ? 0 : rest.zooSource) + o.models * perModel // the rest of the store and git, a zoo's source, the clone of it all
        const freeNow = freeDisk(base)
        if (repoDisk + more > o.diskBudget || more + MARGIN > freeNow) {
          throw new Error(`stopping before import ${i + 1} of ${stages.length}: the rest needs ~${gib(more)} more disk (peak ~${gib(repoDisk + more)} in all, budget ${gib(o.diskBudget)}) and ${gib(freeNow)} is free; ` +
            'rerun with fewer models or --dir on a bigger disk')
        }
      }
      let stageDisk = 0
      for (const z of st) {
        const g = generateZoo(src, z, o.epochs, weights, optim)
        stageDisk += g.disk
        gen = add(gen, g)
        if (staged) progress(`  generated zoos/${z.dataset}/${z.experiment}: ${int(g.files)} files in ${secs(g.ms)} (${int(g.files / (g.ms / 1000))} files/s)`)
        await tick()
      }
      checkWithTorch(st[0]!)
      if (i === stages.length - 1) beforeLast = git('rev-parse', 'HEAD').trim()
      const imp = timed(process.execPath, [BIN, 'import', src, '--prefix', 'mz', '--json'], repo)
      const r = JSON.parse(imp.out) as { promoted?: number; checkpoints?: number; commits?: string[] }
      const ckpts = r.checkpoints ?? stModels * (o.epochs + 1)
      if (r.promoted !== undefined && r.promoted !== stModels) throw new Error(`import ${i + 1} promoted ${r.promoted} models, not ${stModels}`)
      const load = loadavg()
      rows.push({ models: stModels, ckpts, ms: imp.ms, cpu: imp.cpu, rssMb: imp.rssMb, load1: Number(load.split(' ')[0]) })
      modelsDone += stModels
      const store = storeBytes()
      repoDisk = diskUse(repo)
      const inUse = repoDisk + (srcOnDisk ? stageDisk : 0) // with the source still there: this import's peak
      peakDisk = Math.max(peakDisk, inUse)
      const label = staged ? `import ${String(i + 1).padStart(String(stages.length).length)}/${stages.length} ${st[0]!.dataset}/${st[0]!.experiment}` : 'import'
      say(`${label}: ${int(stModels)} models, ${int(ckpts)} checkpoints in ${secs(imp.ms)}: ${int(ckpts / (imp.ms / 1000))} checkpoints/s wall, ` +
        `${int(ckpts / imp.cpu)} per CPU-second (${imp.cpu.toFixed(1)} CPU-s), peak RSS ${imp.rssMb.toFixed(0)} MB, ${r.commits?.length ?? '?'} commit(s); store ${sizeOf(store)}, disk in use ${sizeOf(inUse)}; load average ${load}`)
      if (staged && i < stages.length - 1) rmMs += removeTree(join(src, 'zoos'))
      await tick()
    }

    // overall
    const impMs = rows.reduce((a, r) => a + r.ms, 0), impCpu = rows.reduce((a, r) => a + r.cpu, 0)
    const store = treeBytes(join(repo, '.git', 'zoo'))
    say(`generation: ${int(gen.files)} files, ${(gen.bytes / MiB).toFixed(0)} MiB in ${secs(gen.ms)} (${int(gen.files / (gen.ms / 1000))} files/s wall, ${int(gen.files / gen.cpu)} per CPU-second)` +
      `${staged ? `; deleting the imported sources took ${secs(rmMs)}` : ''}`)
    say(`imports: ${int(totalCkpts)} checkpoints in ${secs(impMs)}: ${int(totalCkpts / (impMs / 1000))} checkpoints/s wall, ${int(totalCkpts / impCpu)} per CPU-second (${impCpu.toFixed(0)} CPU-s); ` +
      `peak RSS ${Math.max(...rows.map((r) => r.rssMb)).toFixed(0)} MB (largest import), load average ${Math.min(...rows.map((r) => r.load1))}-${Math.max(...rows.map((r) => r.load1))} after them; store ${store.files} files, ${sizeOf(store.bytes)} for ${sizeOf(totalCkpts * weights.buf.length + (optim ? totalCkpts * optim.buf.length : 0))} of checkpoints`)
    if (staged) {
      const perCpu = (r: Row): number => r.ckpts / r.cpu
      const half = Math.max(1, Math.floor(rows.length / 2))
      const mean = (rs: Row[]): number => rs.reduce((a, r) => a + perCpu(r), 0) / rs.length
      say(`imports as the zoo grows: first ${int(perCpu(rows[0]!))}, last ${int(perCpu(rows[rows.length - 1]!))} checkpoints per CPU-second; ` +
        `mean of the first ${half} ${int(mean(rows.slice(0, half)))}, of the last ${rows.length - half} ${int(mean(rows.slice(half)))}`)
    }

    // after the imports each measurement stands alone: one that fails (a command changed under the
    // benchmark) is reported and the others still run
    const failed: string[] = []
    function step<T>(name: string, fn: () => T): T | undefined {
      try { return fn() } catch (e) { failed.push(name); say(`${name}: FAILED: ${(e as Error).message.split('\n').slice(0, 6).join(' / ')}`); return undefined }
    }
    const query = ['find', 'dataset=MNIST', 'test_acc>0.5', '--sort', '-test_acc', '--limit', '10']
    const find = (cwd: string, via?: NodeJS.ProcessEnv): { ms: number; out: string; rssMb: number; cpu: number } => {
      const r = via ? timed(WRAPPER, query, cwd, via) : timed(process.execPath, [BIN, ...query], cwd)
      if (!r.out.trim()) throw new Error(`git zoo ${query.join(' ')} printed nothing in ${cwd}: the population has MNIST models with test_acc > 0.5`)
      return r
    }
    const start = median(Array.from({ length: 5 }, () => timed(process.execPath, ['-e', '0'], repo).ms))

    // catalog: cold, warm, on history
    const cat = step('catalog', () => {
      rmSync(join(repo, '.zoo', 'cache'), { recursive: true, force: true })
      const cold = find(repo)
      const warm = median(Array.from({ length: 7 }, () => find(repo).ms))
      const hist = timed(process.execPath, [BIN, 'find', 'best.test_loss<1', 'test_acc@10>0.3', '--limit', '5'], repo)
      say(`catalog: find (2 filters + sort) cold ${msOrS(cold.ms)} (peak RSS ${cold.rssMb.toFixed(0)} MB, CPU ${cold.cpu.toFixed(2)} s), warm median ${msOrS(warm)} (node bin/git-zoo.js); ` +
        `first find on history ${msOrS(hist.ms)}; \`node -e 0\` alone: ${msOrS(start)}`)
      return { warm }
    })
    // the user's path: bin/git-zoo, the native front and the query server (spec/server.md)
    const served = !cat ? undefined : step('served find', () => servedFind(repo, find, join(base, 'xdg')))

    await tick()
    // git size, a plain clone, a pull
    const size = step('git', () => {
      const tracked = git('ls-files', '-z').split('\0').filter(Boolean)
      const workBytes = tracked.reduce((a, p) => a + statSync(join(repo, p)).size, 0)
      // what the imports left: git's packs and loose objects before the repack below
      const objects = Object.fromEntries(git('count-objects', '-v').trim().split('\n').map((l) => l.split(': ')))
      say(`git objects after the imports: ${objects.packs} pack(s), ${objects['in-pack']} objects packed, ${objects.count} loose; \`git status\` ${git('status', '--porcelain').trim() === '' ? 'clean' : 'NOT clean'}`)
      const t = performance.now()
      git('repack', '-adq')
      const packMs = performance.now() - t
      const packed = treeBytes(join(repo, '.git', 'objects', 'pack')).bytes
      say(`git: ${int(tracked.length)} tracked files, ${mb(workBytes)} in the work tree; packed ${mb(packed)} (git repack -ad: ${secs(packMs)})`)
      return { workBytes, packed }
    })
    await tick()
    const clone = join(base, 'clone')
    const cl = step('clone', () => {
      const c = timed('git', ['clone', '-q', '--no-local', repo, clone], base)
      peakDisk = Math.max(peakDisk, diskUse(base))
      const first = step('clone: find', () => find(clone).ms)
      const then = first === undefined ? undefined : step('clone: find again', () => find(clone).ms)
      say(`clone: plain git clone ${secs(c.ms)}; first find ${first === undefined ? '-' : msOrS(first)}, then ${then === undefined ? '-' : msOrS(then)}`)
      return { ms: c.ms, first }
    })
    await tick()
    const pull = !staged || !cl ? undefined : step('pull', () => {
      // the clone as it was before the last zoo, its catalog up to date; then the pull that brings that zoo
      execFileSync('git', ['reset', '-q', '--hard', beforeLast], { cwd: clone })
      find(clone)
      const p = timed('git', ['pull', '-q', '--ff-only', 'origin', 'main'], clone)
      const f = find(clone)
      const models = stages[stages.length - 1]!.reduce((a, z) => a + z.models, 0)
      say(`pull: git pull of the last zoo (${int(models)} models) into the clone ${secs(p.ms)}; first find after it ${msOrS(f.ms)}`)
      return { find: f.ms }
    })
    rmSync(clone, { recursive: true, force: true })

    await tick()
    // the resume check: the last import again, everything unchanged
    if (o.again) {
      step('resume check', () => {
        const again = timed(process.execPath, [BIN, 'import', src, '--prefix', 'mz', '--json'], repo)
        const a = JSON.parse(again.out) as { promoted: number; unchanged: number }
        say(`the ${staged ? 'last ' : ''}import again (resume check): ${a.unchanged} unchanged, ${a.promoted} promoted, ${secs(again.ms)}, peak RSS ${again.rssMb.toFixed(0)} MB`)
        if (a.promoted !== 0) throw new Error(`${a.promoted} models were promoted again`)
      })
    }
    if (!o.keep) removeTree(join(src, 'zoos'))
    say(`disk: peak ${sizeOf(peakDisk)} in use by the benchmark under ${o.dir} (budget ${gib(o.diskBudget)}); load average at the end ${loadavg()}`)

    // against issue 13's targets
    const at50k = (x: number): number => x * 50_000 / o.models
    const scaled = o.models !== 50_000
    const rate = totalCkpts / (impMs / 1000)
    type Target = [string, string, string, boolean | undefined]
    const targets: Target[] = [
      ['import >= 5,000 checkpoints/s', `${int(rate)}/s wall, ${int(totalCkpts / impCpu)} per CPU-s`, '', rate >= 5000],
      ['packed git <= 100 MB at 50,000 models', size ? mb(size.packed) : 'failed', size && scaled ? `${mb(at50k(size.packed))} (linear)` : '', size && at50k(size.packed) <= 100e6],
      ['work tree <= 300 MB at 50,000 models', size ? mb(size.workBytes) : 'failed', size && scaled ? `${mb(at50k(size.workBytes))} (linear)` : '', size && at50k(size.workBytes) <= 300e6],
      ['plain git clone <= 10 s', cl ? secs(cl.ms) : 'failed', '', cl && cl.ms <= 10_000],
      ['first find in a clone <= 1 s', cl?.first !== undefined ? msOrS(cl.first) : 'failed', '', cl?.first !== undefined ? cl.first <= 1000 : undefined],
      ...(staged ? [['first find after a pull <= 1 s', pull ? msOrS(pull.find) : 'failed', '', pull && pull.find <= 1000] as Target] : []),
      served
        ? ['warm find <= 50 ms', `${msOrS(served.ms)} via bin/git-zoo and the query server (node bin/git-zoo.js: ${cat ? msOrS(cat.warm) : 'failed'}; node -e 0: ${msOrS(start)})`, '', served.ms <= 50]
        : ['warm find <= 50 ms', cat ? `${msOrS(cat.warm)} in node, no native front (node -e 0: ${msOrS(start)})` : 'failed', '', cat && cat.warm <= 50],
    ]
    say('')
    say(`| issue 13 target | ${int(o.models)} models | at 50,000 models | |`)
    say('|---|---|---|---|')
    for (const [t, v, x, ok] of targets) say(`| ${t} | ${v} | ${x || (scaled ? '(as measured)' : '')} | ${ok === undefined ? 'failed' : ok ? 'met' : '**NOT met**'} |`)
    if (scaled) say(`(verdicts on git sizes use their linear extrapolation to 50,000 models; clone and find times are as measured at ${int(o.models)} models)`)
    if (failed.length) { say(`failed: ${failed.join(', ')}`); return 1 }
    return 0
  } finally {
    cleanup()
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (undefined when it is gone). */
function cpuOf(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const after = f.slice(f.lastIndexOf(')') + 2).split(' ')
    const tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100
    return (Number(after[11]) + Number(after[12])) / tck
  } catch { return undefined }
}

/**
 * Warm find as users run it: bin/git-zoo with the native front built, in a private XDG_RUNTIME_DIR.
 * One run that node answers (it starts the query server), one served run that loads the command,
 * then the median of 7 served runs; the server's CPU per find comes from /proc. The server is
 * stopped after. Undefined (and said) when no client is built.
 */
function servedFind(repo: string, find: (cwd: string, via?: NodeJS.ProcessEnv) => { ms: number; cpu: number }, xdg: string): { ms: number; cpu: number; serverCpu: number | undefined } | undefined {
  if (!existsSync(CLIENT)) { say('served find: no native front (dist/front/git-zoo was not built: no C compiler); users run node'); return undefined }
  mkdirSync(xdg, { mode: 0o700 })
  const env = { ...process.env, XDG_RUNTIME_DIR: xdg, GIT_ZOO_SERVER: '1' }
  const status = (): { running: boolean; pid: number; served: number } => JSON.parse(execFileSync(process.execPath, [BIN, 'server', 'status', '--json'], { env, encoding: 'utf8' })) as { running: boolean; pid: number; served: number }
  try {
    find(repo, env) // node answers and starts the server
    const end = Date.now() + 30_000
    let st = status()
    while (!st.running) {
      if (Date.now() > end) throw new Error('the query server did not answer within 30 s of the find that starts it')
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
      st = status()
    }
    find(repo, env) // the server's first request loads the command
    const cpu0 = cpuOf(st.pid)
    const runs = Array.from({ length: 7 }, () => find(repo, env))
    const cpu1 = cpuOf(st.pid)
    const after = status()
    if (!after.running || after.pid !== st.pid || after.served !== st.served + 8) throw new Error(`the server answered ${after.served - st.served} of 8 finds (node answered the others)`)
    const ms = median(runs.map((r) => r.ms))
    const serverCpu = cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) / runs.length : undefined
    say(`served find (bin/git-zoo: native front, query server ${st.pid}): warm median ${msOrS(ms)}; CPU per find: client ${(runs.reduce((a, r) => a + r.cpu, 0) / runs.length * 1000).toFixed(1)} ms, ` +
      `server ${serverCpu === undefined ? '?' : `${(serverCpu * 1000).toFixed(1)} ms`} (/proc, 10 ms ticks over ${runs.length} finds); load average ${loadavg()}`)
    return { ms, cpu: runs.reduce((a, r) => a + r.cpu, 0) / runs.length, serverCpu }
  } finally {
    spawnSync(process.execPath, [BIN, 'server', 'stop'], { env, stdio: 'ignore' })
  }
}

try {
  process.exitCode = await main()
} catch (e) {
  process.stderr.write(`bench/import: ${(e as Error).message}\n`)
  process.exitCode = 1
}
