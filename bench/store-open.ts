/**
 * Opening the local store and looking objects up, at millions of objects (spec/performance.md,
 * "Store indexes"). Generates a synthetic store: `--objects` small objects (default 2.5 million) in
 * `--packs` packs (default 40), written as real pack records with their indexes in the old layout
 * ("ZOOIDX01", as the previous version wrote them) and, in a second folder, the new one ("ZOOIDX02"
 * per pack and a multi-pack index). Then, each in a fresh process: open the store and ask `has` for
 * `--lookups` objects (default 10,000; half of them present, half absent), and `get` 100 of them.
 * Reports wall milliseconds for the open and for the lookups, CPU seconds and RSS of each process,
 * with the load average; then, as a writing command's flush does, 12 more packs merged into the
 * multi-pack index (CPU seconds, peak RSS).
 *
 *   npm run build && node dist/bench/store-open.js [--objects N] [--packs P] [--lookups L] [--dir <folder>] [--keep]
 *   [--before <path of an older build's dist/src/cas/local.js>: also opens the old layout with it]
 *   node dist/bench/store-open.js --misses      (absent keys over 40 uncovered per-pack indexes, in process)
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { encodeIndex, encodeIndexV2, writeMultiPackIndex, IndexView, PackIdx, keyOf, PACK_MAGIC, type Triple } from '../src/cas/pack-index.js'
import { cidFromDigest, RAW, type CID } from '../src/cas/cid.js'

const SELF = fileURLToPath(import.meta.url)
const DEFAULT_IMPL = resolve(fileURLToPath(new URL('../src/cas/local.js', import.meta.url)))

function arg(name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : def
}

/** The bytes of object `i` of the synthetic store, and its CID. */
function object(i: number): { bytes: Buffer; cid: CID } {
  const bytes = Buffer.alloc(16)
  bytes.writeUInt32LE(i, 0); bytes.write('zoo-bench-object', 4, 'latin1')
  return { bytes, cid: cidFromDigest(RAW, createHash('sha256').update(bytes).digest()) }
}

function generate(dir: string, objects: number, packs: number): { old: string; fresh: string } {
  const old = join(dir, 'old'), fresh = join(dir, 'new'), extra = join(dir, 'extra')
  mkdirSync(join(old, 'packs'), { recursive: true }); mkdirSync(join(fresh, 'packs'), { recursive: true }); mkdirSync(join(extra, 'packs'), { recursive: true })
  writePacks(fresh, old, 0, packs, Math.ceil(objects / packs), objects)
  // the packs the merge step adds later (named after the others)
  writePacks(extra, null, objects, 12, Math.ceil(objects / packs))
  return { old, fresh }
}

/** `packs` packs of `per` objects from object number `from` (up to `end`): new layout in `fresh`, old in `old`. */
function writePacks(fresh: string, old: string | null, from: number, packs: number, per: number, end = Infinity): void {
  for (let p = 0; p < packs; p++) {
    const parts: Buffer[] = [PACK_MAGIC]
    let size = PACK_MAGIC.length
    const entries: Triple[] = []
    for (let i = from + p * per; i < Math.min(end, from + (p + 1) * per); i++) {
      const { bytes, cid } = object(i)
      const head = Buffer.alloc(8 + cid.bytes.length)
      head.writeUInt32LE(cid.bytes.length, 0); head.set(cid.bytes, 4); head.writeUInt32LE(bytes.length, 4 + cid.bytes.length)
      parts.push(head, bytes)
      entries.push([Buffer.from(cid.bytes).toString('latin1'), size + head.length, bytes.length])
      size += head.length + bytes.length
    }
    const name = `pack-${(1_700_000_000_000 + from + p).toString(36)}-${randomBytes(8).toString('hex')}`
    const pack = Buffer.concat(parts)
    writeFileSync(join(fresh, 'packs', `${name}.pack`), pack)
    writeFileSync(join(fresh, 'packs', `${name}.idx`), encodeIndexV2(entries))
    if (old) {
      writeFileSync(join(old, 'packs', `${name}.pack`), pack)
      writeFileSync(join(old, 'packs', `${name}.idx`), encodeIndex(entries))
    }
  }
}

/** In a child process: open, look up, get; print one JSON line. */
async function measure(store: string, impl: string, objects: number, lookups: number): Promise<void> {
  const { LocalStore } = await import(pathToFileURL(impl).href) as typeof import('../src/cas/local.js')
  const ids: CID[] = []
  for (let i = 0; i < lookups; i++) {
    const present = i % 2 === 0
    ids.push(present ? object(Math.floor(Math.random() * objects)).cid : cidFromDigest(RAW, randomBytes(32)))
  }
  const rssBefore = process.memoryUsage().rss / 2 ** 20
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const s = await LocalStore.open(store)
  const t1 = performance.now()
  const rssOpen = process.memoryUsage().rss / 2 ** 20
  let found = 0
  for (const cid of ids) if (await s.has(cid)) found++
  const t2 = performance.now()
  const rssHas = process.memoryUsage().rss / 2 ** 20
  for (let i = 0; i < 200; i += 2) await s.get(ids[i]!)
  const t3 = performance.now()
  const cpu = process.cpuUsage(cpu0)
  await s.close()
  if (found !== lookups / 2) throw new Error(`found ${found} of ${lookups / 2} present objects`)
  process.stdout.write(JSON.stringify({ open_ms: t1 - t0, has_ms: t2 - t1, get100_ms: t3 - t2, cpu_s: (cpu.user + cpu.system) / 1e6, rss_before_mb: rssBefore, rss_open_mb: rssOpen, rss_has_mb: rssHas, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }) + '\n')
}

async function main(): Promise<void> {
  const objects = Number(arg('objects', '2500000')), packs = Number(arg('packs', '40')), lookups = Number(arg('lookups', '10000'))
  const measureDir = arg('measure')
  const impl = resolve(arg('impl', DEFAULT_IMPL)!)
  if (measureDir) return measure(measureDir, impl, objects, lookups)
  if (process.argv.includes('--misses')) {
    // lookups of absent keys over 40 per-pack indexes no multi-pack index covers (a long command
    // between two multi-pack index writes): the cost of a miss per uncovered index
    const view = new IndexView()
    for (let p = 0; p < 40; p++) {
      const entries: Triple[] = []
      for (let i = 0; i < 5000; i++) entries.push([Buffer.from(object(p * 5000 + i).cid.bytes).toString('latin1'), i * 60, 16])
      view.addIdx(`pack-${p}.idx`, new PackIdx(`pack-${p}.pack`, encodeIndexV2(entries)))
    }
    const keys = Array.from({ length: 100_000 }, () => keyOf(cidFromDigest(RAW, randomBytes(32)))!)
    const cpu0 = process.cpuUsage()
    let found = 0
    for (const k of keys) if (view.lookup(k)) found++
    const cpu = process.cpuUsage(cpu0)
    process.stdout.write(`100,000 absent keys looked up over 40 uncovered per-pack indexes of 5,000 objects: ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU (${found} found; load ${loadavg()[0]!.toFixed(1)})\n`)
    return
  }
  const mergeDir = arg('merge')
  if (mergeDir) {
    // what a writing command's flush does: 12 new packs merged into the multi-pack index
    const extra = join(mergeDir, 'extra')
    for (const n of readdirSync(join(extra, 'packs'))) renameSync(join(extra, 'packs', n), join(mergeDir, 'new', 'packs', n))
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const w = await writeMultiPackIndex(join(mergeDir, 'new', 'packs'))
    const cpu = process.cpuUsage(cpu0)
    process.stdout.write(`merge of 12 new packs into the multi-pack index: ${w?.objects.toLocaleString('en')} objects in ${((performance.now() - t0) / 1000).toFixed(2)} s wall, `
      + `${((cpu.user + cpu.system) / 1e6).toFixed(2)} CPU s, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (load ${loadavg()[0]!.toFixed(1)})\n`)
    return
  }
  const genDir = arg('generate')
  if (genDir) {
    const g0 = performance.now()
    const { fresh } = generate(genDir, objects, packs)
    const g1 = performance.now()
    const cpu0 = process.cpuUsage()
    const w = await writeMultiPackIndex(join(fresh, 'packs'))
    const cpu = process.cpuUsage(cpu0)
    const g2 = performance.now()
    process.stderr.write(`store-open: ${objects.toLocaleString('en')} objects in ${packs} packs generated in ${((g1 - g0) / 1000).toFixed(1)} s; `
      + `multi-pack index of ${w?.objects.toLocaleString('en')} objects written from the ${packs} per-pack indexes in ${((g2 - g1) / 1000).toFixed(1)} s, `
      + `${((cpu.user + cpu.system) / 1e6).toFixed(2)} CPU s (load ${loadavg()[0]!.toFixed(1)})\n`)
    return
  }
  const dir = mkdtempSync(join(arg('dir', tmpdir())!, 'zoo-store-open-'))
  try {
    // generated by a child: a measuring child forked from a large parent would report the parent's
    // peak RSS as its own (Linux keeps ru_maxrss across fork and exec)
    const old = join(dir, 'old'), fresh = join(dir, 'new')
    execFileSync(process.execPath, [SELF, '--generate', dir, '--objects', String(objects), '--packs', String(packs)], { stdio: 'inherit' })
    const run = (store: string, label: string, implPath = impl): void => {
      const load = loadavg()[0]!.toFixed(1)
      const out = execFileSync(process.execPath, [SELF, '--measure', store, '--impl', implPath, '--objects', String(objects), '--lookups', String(lookups)], { encoding: 'utf8' })
      const r = JSON.parse(out) as { open_ms: number; has_ms: number; get100_ms: number; cpu_s: number; rss_before_mb: number; rss_open_mb: number; peak_rss_mb: number }
      process.stdout.write(`${label.padEnd(46)} open ${r.open_ms.toFixed(1).padStart(8)} ms | ${lookups} has ${r.has_ms.toFixed(1).padStart(8)} ms | 100 get ${r.get100_ms.toFixed(1).padStart(7)} ms | `
        + `CPU ${r.cpu_s.toFixed(2)} s | RSS before/after open ${r.rss_before_mb.toFixed(0)}/${r.rss_open_mb.toFixed(0)} MB, peak ${r.peak_rss_mb.toFixed(0)} MB | load ${load}\n`)
    }
    const before = arg('before')
    if (before) run(old, `before: old layout, ${before.length > 24 ? '...' + before.slice(-21) : before}`, resolve(before))
    run(old, `this build: old layout (ZOOIDX01 x ${packs})`)
    run(fresh, 'this build: new layout (ZOOIDX02 + midx)')
    process.stdout.write(execFileSync(process.execPath, [SELF, '--merge', dir, '--objects', String(objects), '--packs', String(packs)], { encoding: 'utf8' }))
  } finally {
    if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true })
    else process.stderr.write(`store-open: kept ${dir}\n`)
  }
}

main().catch((err: unknown) => { process.stderr.write(`store-open: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
