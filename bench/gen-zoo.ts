/**
 * Writes a synthetic Model-Zoos-sized zoo straight into a new git repository: manifests only (no
 * weights), each with 51 checkpoint file entries and a 51-epoch history of 6 metrics, real seals,
 * a few fine-tunes and soups for lineage. One `git fast-import` stream makes the commit; git then
 * checks the work tree out.
 *
 *   node dist/bench/gen-zoo.js <dir> [--models 50000] [--epochs 50] [--check-every 997] [--commits]
 *
 * With --slim the manifests look like the slim ones of issue 13 (per-checkpoint detail in the store,
 * not in the manifest): no history and no per-checkpoint file entries, but the final and best metrics,
 * the generating factors of a Model Zoos config (~20), the last checkpoint and its optimizer state;
 * about 2.5 KB each instead of 29 KB.
 *
 * With --commits each model is its own promotion commit (Zoo-Model, Zoo-Seal and Zoo-Code
 * trailers, one minute apart), for benchmarks that walk history (bench/git-packages.ts).
 *
 * Seals are computed with a small dag-cbor writer specialised for manifests (the general encoder
 * costs ~1 ms per manifest of this size); every --check-every'th seal is compared with
 * computeSeal() from src/manifest and the run stops on any difference.
 */
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { computeSeal, serializeManifest, type ManifestBody } from '../src/manifest/manifest.js'

// --- a dag-cbor writer for JSON values plus CID links (canonical: length-first key order, float64) ---
class Cbor {
  buf = Buffer.allocUnsafe(1 << 16)
  pos = 0
  private need(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(b, 0, 0, this.pos); this.buf = b
  }
  head(major: number, n: number): void {
    this.need(9)
    const m = major << 5
    if (n < 24) this.buf[this.pos++] = m | n
    else if (n < 0x100) { this.buf[this.pos++] = m | 24; this.buf[this.pos++] = n }
    else if (n < 0x10000) { this.buf[this.pos++] = m | 25; this.buf.writeUInt16BE(n, this.pos); this.pos += 2 }
    else if (n < 0x100000000) { this.buf[this.pos++] = m | 26; this.buf.writeUInt32BE(n, this.pos); this.pos += 4 }
    else { this.buf[this.pos++] = m | 27; this.buf.writeBigUInt64BE(BigInt(n), this.pos); this.pos += 8 }
  }
  str(s: string): void {
    const n = Buffer.byteLength(s)
    this.head(3, n); this.need(n); this.buf.write(s, this.pos, 'utf8'); this.pos += n
  }
  cid(bytes: Uint8Array): void {
    this.need(2); this.buf[this.pos++] = 0xd8; this.buf[this.pos++] = 42
    this.head(2, bytes.length + 1); this.need(bytes.length + 1); this.buf[this.pos++] = 0; this.buf.set(bytes, this.pos); this.pos += bytes.length
  }
  value(v: unknown): void {
    if (v === null) { this.need(1); this.buf[this.pos++] = 0xf6; return }
    if (v === true || v === false) { this.need(1); this.buf[this.pos++] = v ? 0xf5 : 0xf4; return }
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) { if (v >= 0) this.head(0, v); else this.head(1, -1 - v); return }
      this.need(9); this.buf[this.pos++] = 0xfb; this.buf.writeDoubleBE(v, this.pos); this.pos += 8; return
    }
    if (typeof v === 'string') { this.str(v); return }
    if (v instanceof Link) { this.cid(v.bytes); return }
    if (Array.isArray(v)) { this.head(4, v.length); for (const x of v) this.value(x); return }
    const o = v as Record<string, unknown>
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0))
    this.head(5, keys.length)
    for (const k of keys) { this.str(k); this.value(o[k]) }
  }
}
class Link { constructor(readonly bytes: Uint8Array) {} }

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
function base32(bytes: Uint8Array): string {
  let out = '', bits = 0, acc = 0
  for (const b of bytes) { acc = (acc << 8) | b; bits += 8; while (bits >= 5) { out += B32[(acc >>> (bits - 5)) & 31]; bits -= 5 } acc &= 0xff }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31]
  return out
}
/** CIDv1 bytes and string for a sha2-256 digest. */
function cid(codec: number, digest: Uint8Array): { bytes: Uint8Array; text: string } {
  const bytes = new Uint8Array(36)
  bytes.set([1, codec, 0x12, 0x20]); bytes.set(digest, 4)
  return { bytes, text: 'b' + base32(bytes) }
}

function fastSeal(m: ManifestBody, roots: Map<string, Uint8Array>, seals: Map<string, Uint8Array>): { text: string; bytes: Uint8Array } {
  const { seal: _s, ...rest } = m
  const input = { ...rest, files: m.files.map((f) => ({ ...f, root: new Link(roots.get(f.root)!) })), parents: m.parents.map((p) => ({ ...p, seal: new Link(seals.get(p.seal)!) })) }
  const e = new Cbor()
  e.value(input)
  return cid(0x71, createHash('sha256').update(e.buf.subarray(0, e.pos)).digest())
}

// --- deterministic factors ---
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const DATASETS = ['mnist', 'fashion-mnist', 'svhn', 'cifar10', 'stl10', 'eurosat', 'usps', 'tiny-imagenet']
const OPTIMIZERS = ['adam', 'sgd']
const ACTIVATIONS = ['relu', 'tanh', 'gelu', 'sigmoid']
const INITS = ['kaiming_uniform', 'kaiming_normal', 'xavier_uniform', 'uniform']
const LRS = [1e-4, 3e-4, 1e-3, 3e-3]

export interface GenOptions { models: number; epochs: number; checkEvery: number; log?: (s: string) => void; commits?: boolean; slim?: boolean }

export async function generateZoo(dir: string, o: GenOptions): Promise<{ ms: number; bytes: number; models: number }> {
  const t0 = performance.now()
  mkdirSync(dir, { recursive: true })
  if (readdirSync(dir).length) throw new Error(`${dir} is not empty`)
  const g = (...args: string[]): string => execFileSync('git', args, { cwd: dir, encoding: 'utf8' })
  g('init', '-q', '-b', 'main')
  g('config', 'user.name', 'Bench'); g('config', 'user.email', 'bench@example.invalid'); g('config', 'commit.gpgsign', 'false')
  g('config', 'core.compression', '1'); g('config', 'pack.compression', '1')
  mkdirSync(join(dir, '.zoo'))
  const fi = spawn('git', ['fast-import', '--quiet', '--done', '--depth=0'], { cwd: dir, stdio: ['pipe', 'inherit', 'inherit'] })
  const done = new Promise<number>((res) => fi.on('close', (c) => res(c ?? 1)))
  let pending: string[] = []
  let pendingBytes = 0
  const flush = async (): Promise<void> => {
    if (!pendingBytes) return
    const ok = fi.stdin.write(pending.join(''))
    pending = []; pendingBytes = 0
    if (!ok) await new Promise((r) => fi.stdin.once('drain', r))
  }
  const write = async (s: string): Promise<void> => { pending.push(s); pendingBytes += s.length; if (pendingBytes > 4 << 20) await flush() }
  const paths: string[] = []
  let mark = 0
  const blob = async (content: string): Promise<number> => {
    mark++
    await write(`blob\nmark :${mark}\ndata ${Buffer.byteLength(content)}\n${content}\n`)
    return mark
  }
  const files: Array<[number, string]> = []
  files.push([await blob('.zoo/cache/\n'), '.gitignore'])
  files.push([await blob('{\n  "remotes": {},\n  "policy": {\n    "require_signed": false\n  }\n}\n'), '.zoo/config.json'])
  files.push([await blob('{\n  "required": [],\n  "properties": {}\n}\n'), '.zoo/schema.json'])

  let when = 1704067200
  const commit = async (msg: string, entries: Array<[number, string]>): Promise<void> => {
    await write(`commit refs/heads/main\ncommitter Bench <bench@example.invalid> ${when} +0000\ndata ${Buffer.byteLength(msg)}\n${msg}`)
    for (const [m, p] of entries) await write(`M 100644 :${m} ${p}\n`)
    await write('\n')
    when += 60
  }
  if (o.commits) await commit('Set up the zoo\n', files.splice(0))

  const rnd = mulberry32(20240601)
  const roots = new Map<string, Uint8Array>()
  const sealBytes = new Map<string, Uint8Array>()
  const made: Array<{ name: string; seal: string; test_acc: number }> = []
  let bytes = 0
  const digest = (): Uint8Array => { const d = new Uint8Array(32); for (let k = 0; k < 32; k += 4) new DataView(d.buffer).setUint32(k, (rnd() * 2 ** 32) >>> 0); return d }
  const created = new Date(Date.UTC(2024, 0, 1)).getTime()
  const inflight = new Set<Promise<void>>()
  for (let i = 0; i < o.models; i++) {
    const dataset = DATASETS[i % DATASETS.length]!
    const arch = dataset === 'tiny-imagenet' ? 'resnet18' : i % 3 === 0 ? 'cnn-m' : 'cnn-s'
    const seed = 1 + Math.floor(i / DATASETS.length) % 100
    const optimizer = OPTIMIZERS[Math.floor(rnd() * 2)]!
    const activation = ACTIVATIONS[Math.floor(rnd() * 4)]!
    const init = INITS[Math.floor(rnd() * 4)]!
    const lr = LRS[Math.floor(rnd() * 4)]!
    const dropout = [0, 0.1, 0.3][Math.floor(rnd() * 3)]!
    const wd = [0, 1e-4][Math.floor(rnd() * 2)]!
    const ceiling = 0.35 + 0.6 * rnd()
    const tau = 3 + 12 * rnd()
    const history: Array<Record<string, number>> = []
    for (let e = 0; e <= o.epochs; e++) {
      const p = 1 - Math.exp(-e / tau)
      const acc = (x: number): number => Math.fround(Math.min(1, Math.max(0, 0.1 + (ceiling - 0.1) * p * x + 0.01 * (rnd() - 0.5))))
      const loss = (a: number): number => Math.fround(-Math.log(Math.max(1e-3, a)) * (0.9 + 0.2 * rnd()))
      const tr = acc(1.05), va = acc(1), te = acc(0.98)
      history.push({ epoch: e, train_loss: loss(tr), train_acc: tr, val_loss: loss(va), val_acc: va, test_loss: loss(te), test_acc: te })
    }
    const { epoch: _e, ...final } = history[history.length - 1]!
    const metrics: Record<string, number> = { ...final }
    const fileList: ManifestBody['files'] = []
    const fileEntry = (path: string, e: number, format: string, size: number): void => {
      const r = cid(0x55, digest())
      roots.set(r.text, r.bytes)
      fileList.push({ path, size, sha256: Buffer.from(digest()).toString('hex'), root: r.text, format, epoch: e })
    }
    if (o.slim) {
      // the best of each metric over the run (min for losses), and its epoch
      for (const k of Object.keys(final)) {
        const lower = k.includes('loss')
        let best = history[0]!
        for (const h of history) if (lower ? h[k]! < best[k]! : h[k]! > best[k]!) best = h
        metrics[`best_${k}`] = best[k]!
        metrics[`best_${k}_epoch`] = best.epoch!
      }
      fileEntry(`checkpoint_${String(o.epochs).padStart(6, '0')}/model.safetensors`, o.epochs, 'safetensors', 10240 + 4 * (i % 7))
      fileEntry(`checkpoint_${String(o.epochs).padStart(6, '0')}/optimizer.pt`, o.epochs, 'torch', 20480 + 8 * (i % 7))
    } else {
      for (let e = 0; e <= o.epochs; e++) fileEntry(`checkpoint_${String(e).padStart(6, '0')}/model.safetensors`, e, 'safetensors', 10240 + 4 * (i % 7))
    }
    let name = `mz/${dataset}/${arch}/seed${seed}-${optimizer}-lr${lr}-${activation}-${String(i).padStart(5, '0')}`
    const parents: ManifestBody['parents'] = []
    if (i % 500 === 499 && made.length > 10) {
      name = `mz/soups/soup-${String(i).padStart(5, '0')}`
      for (const k of [1, 2, 3]) { const p = made[made.length - k * 3]!; parents.push({ name: p.name, version: 1, seal: p.seal, relation: 'soup' }) }
    } else if (i % 50 === 49 && made.length > 0) {
      const p = made[Math.floor(rnd() * made.length)]!
      name = `${p.name}/ft-lr${lr}-${i}`
      parents.push({ name: p.name, version: 1, seal: p.seal, relation: 'fine-tune' })
    }
    const body: ManifestBody = {
      zoo: 1, name, version: 1, seed, dataset, arch,
      params: o.slim
        ? {
          optimizer, lr, activation, init, dropout, weight_decay: wd, batch_size: 32, epochs: o.epochs,
          'model::type': arch === 'resnet18' ? 'Resnet18' : 'CNN', 'model::channels_in': dataset.includes('mnist') || dataset === 'usps' ? 1 : 3,
          'model::o_dim': dataset === 'tiny-imagenet' ? 200 : 10, 'model::nlayers': arch === 'cnn-m' ? 5 : 3, 'model::kernel_size': 5,
          'model::use_bias': true, 'training::mode': 'cl', 'training::output_epoch': 1, 'training::test_epochs': 1,
          'optim::momentum': optimizer === 'sgd' ? 0.9 : 0, 'trainset::batchsize': 32, 'cuda': true,
          'dataset::dump': `/data/${dataset}/dataset.pt`, 'trial_id': `${(i * 2654435761 >>> 0).toString(16).padStart(8, '0')}_${i}`,
        }
        : { optimizer, lr, activation, init, dropout, weight_decay: wd, batch_size: 32, epochs: o.epochs },
      metrics, ...(o.slim ? {} : { history }), files: fileList, parents,
      code: { commit: '0123456789abcdef0123456789abcdef01234567', dirty: false },
      env: { node: 'v20.0.0', platform: 'linux-x64' }, promoter: 'Bench <bench@example.invalid>',
      created: new Date(created + i * 60_000).toISOString(),
    }
    const s = fastSeal(body, roots, sealBytes)
    if (o.checkEvery > 0 && i % o.checkEvery === 0) {
      const want = computeSeal(body)
      if (want !== s.text) throw new Error(`fast seal differs from computeSeal for model ${i}: ${s.text} vs ${want}`)
    }
    sealBytes.set(s.text, s.bytes)
    for (const f of fileList) roots.delete(f.root)
    const text = serializeManifest({ ...body, seal: s.text })
    bytes += text.length
    const path = `models/${name}/v1/manifest.json`
    if (o.commits) await commit(`Promote ${name}@v1\n\nZoo-Model: ${name}@v1\nZoo-Seal: ${s.text}\nZoo-Code: ${body.code!.commit}\n`, [[await blob(text), path]])
    else files.push([await blob(text), path])
    // file system metadata is slow on small VMs: keep 32 creates in flight on libuv's threads
    const w: Promise<void> = mkdir(join(dir, dirname(path)), { recursive: true }).then(() => writeFile(join(dir, path), text)).finally(() => { inflight.delete(w) })
    inflight.add(w)
    if (inflight.size >= 32) await Promise.race(inflight)
    paths.push(path)
    made.push({ name, seal: s.text, test_acc: final.test_acc! })
    if (i % 5000 === 4999) o.log?.(`  ${i + 1} manifests (${(bytes / 1e6).toFixed(0)} MB) ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
  await Promise.all(inflight)
  if (!o.commits) await commit(`synthetic zoo: ${o.models} models\n`, files)
  await write('done\n')
  await flush()
  fi.stdin.end()
  if ((await done) !== 0) throw new Error('git fast-import failed')
  o.log?.(`  fast-import done ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  // the work tree was written beside the stream; give the index the commit's entries, then their stat data
  writeFileSync(join(dir, '.gitignore'), '.zoo/cache/\n')
  writeFileSync(join(dir, '.zoo', 'config.json'), '{\n  "remotes": {},\n  "policy": {\n    "require_signed": false\n  }\n}\n')
  writeFileSync(join(dir, '.zoo', 'schema.json'), '{\n  "required": [],\n  "properties": {}\n}\n')
  g('read-tree', 'main')
  try { g('update-index', '-q', '--refresh') } catch { /* exit 1 lists files needing update; none expected */ }
  const dirty = g('status', '--porcelain', '--untracked-files=no')
  if (dirty.trim()) throw new Error(`work tree differs from the commit:\n${dirty.slice(0, 500)}`)
  return { ms: performance.now() - t0, bytes, models: o.models }
}

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? dflt : Number(args[i + 1])
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const dir = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--')))
  if (!dir) { process.stderr.write('usage: node dist/bench/gen-zoo.js <dir> [--models 50000] [--epochs 50] [--check-every 997] [--commits] [--slim]\n'); process.exit(2) }
  const r = await generateZoo(dir, { models: flag(args, 'models', 50000), epochs: flag(args, 'epochs', 50), checkEvery: flag(args, 'check-every', 997), log: (s) => process.stderr.write(s + '\n'), commits: args.includes('--commits'), slim: args.includes('--slim') })
  process.stdout.write(`generated ${r.models} manifests, ${(r.bytes / 1e6).toFixed(0)} MB, in ${(r.ms / 1000).toFixed(1)} s\n`)
}
