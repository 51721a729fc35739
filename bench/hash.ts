/**
 * What a chunk digest costs (spec/native.md): CPU seconds per GiB and GB/s of one thread for
 * - the native BLAKE3 (dist/native/blake3.node), each variant this CPU runs, on 256 KiB ranges of a
 *   64 MiB buffer (hashRanges, as the store hashes tensor chunks) and on 1 MiB buffers (hash);
 * - the JS BLAKE3 (@noble/hashes) and node's crypto sha256 on the same 256 KiB ranges;
 * - `b3sum --num-threads 1` and `openssl dgst -sha256` of a 1 GiB file (in the page cache; their
 *   user CPU, and user + sys, from /usr/bin/time),
 * with ratios, all in one run. CPU time is what counts on a shared machine; the load average is printed.
 *
 *   npm run build && npx tsx bench/hash.ts            (~30 s)
 *   npx tsx bench/hash.ts --quick                    (smaller, a smoke run)
 *   npx tsx bench/hash.ts --json                     (one JSON document on stdout)
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { loadavg, tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { blake3 as noble } from '@noble/hashes/blake3'
import { blake3Native } from '../src/cas/blake3.js'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const QUICK = process.argv.includes('--quick')
const JSON_OUT = process.argv.includes('--json')
const FILE_BYTES = QUICK ? 64 * MiB : GiB
const MIN_CPU = QUICK ? 0.1 : 0.6 // seconds of CPU per measurement (repeats until reached)

interface Row { name: string; cpuPerGiB: number; gbPerS: number; note?: string }
const rows: Row[] = []
const log = (s: string): void => { process.stderr.write(s + '\n') }

/** Runs `pass` (hashing `bytes` bytes each time) until MIN_CPU seconds of this thread's CPU, after one warm-up. */
function measure(name: string, bytes: number, pass: () => void, minCpu = MIN_CPU): Row {
  pass()
  let n = 0
  const c0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  let cpu = 0
  do {
    pass()
    n++
    const c = process.cpuUsage(c0)
    cpu = (c.user + c.system) / 1e6
  } while (cpu < minCpu)
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const row = { name, cpuPerGiB: cpu / (n * bytes / GiB), gbPerS: n * bytes / wall / 1e9 }
  rows.push(row)
  log(`${name.padEnd(44)} ${row.cpuPerGiB.toFixed(3)} cpu-s/GiB  ${row.gbPerS.toFixed(2)} GB/s`)
  return row
}

const RANGES_BYTES = 64 * MiB
const src = new Uint8Array(new SharedArrayBuffer(RANGES_BYTES))
for (let o = 0; o < src.length; o += 64 * KiB) randomFillSync(src, o, 64 * KiB)
const RANGE = 256 * KiB
const offs = Array.from({ length: RANGES_BYTES / RANGE }, (_, i) => i * RANGE)
const lens = offs.map(() => RANGE)
const out = new Uint8Array(32 * offs.length)

log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${cpus()[0]?.model ?? 'unknown CPU'}; node ${process.version}`)
const native = blake3Native()
if (!native) log('native blake3: not built (npm run build with a C compiler); only the JS and external figures follow')
const variants = native ? native.variants() : []
for (const v of variants) measure(`native ${v}, 256 KiB ranges`, RANGES_BYTES, () => native!.hashRanges(src, offs, lens, out, 0, v))
for (const v of variants) {
  const MB1 = src.subarray(0, 16 * MiB)
  measure(`native ${v}, 1 MiB buffers`, MB1.length, () => { for (let o = 0; o < MB1.length; o += MiB) native!.hash(MB1.subarray(o, o + MiB), v) })
}
const small = src.subarray(0, QUICK ? 4 * MiB : 16 * MiB)
measure('@noble/hashes blake3, 256 KiB ranges', small.length, () => { for (let o = 0; o < small.length; o += RANGE) noble(small.subarray(o, o + RANGE)) })
measure('node crypto sha256, 256 KiB ranges', RANGES_BYTES, () => { for (const o of offs) createHash('sha256').update(src.subarray(o, o + RANGE)).digest() })

// the external programs on one file in the page cache
const dir = mkdtempSync(join(tmpdir(), 'zoo-hash-bench-'))
try {
  const file = join(dir, 'data.bin')
  const fd = openSync(file, 'w')
  for (let o = 0; o < FILE_BYTES; o += RANGES_BYTES) writeSync(fd, src, 0, Math.min(RANGES_BYTES, FILE_BYTES - o))
  closeSync(fd)
  const hasTime = spawnSync('/usr/bin/time', ['-f', '%U', 'true'], { stdio: 'ignore' }).status === 0
  for (const [name, cmd, args] of [['b3sum --num-threads 1', 'b3sum', ['--num-threads', '1', file]], ['openssl dgst -sha256', 'openssl', ['dgst', '-sha256', file]]] as const) {
    if (spawnSync(cmd, ['--version'], { stdio: 'ignore' }).error) { log(`${name}: not installed`); continue }
    if (!hasTime) { log(`${name}: /usr/bin/time is missing (CPU time of a child)`); continue }
    spawnSync(cmd, args as unknown as string[], { stdio: 'ignore' }) // into the page cache
    let best = { user: Infinity, sys: 0, wall: 0 }
    for (let i = 0; i < 3; i++) {
      const r = spawnSync('/usr/bin/time', ['-f', '%U %S %e', cmd, ...args], { encoding: 'utf8' })
      const [user, sys, wall] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number) as [number, number, number]
      if (user < best.user) best = { user, sys, wall }
    }
    const gib = FILE_BYTES / GiB
    const row = { name: `${name}, ${FILE_BYTES / MiB} MiB file`, cpuPerGiB: best.user / gib, gbPerS: FILE_BYTES / best.wall / 1e9, note: `user only; user+sys ${((best.user + best.sys) / gib).toFixed(3)} s/GiB` }
    rows.push(row)
    log(`${row.name.padEnd(44)} ${row.cpuPerGiB.toFixed(3)} cpu-s/GiB  ${row.gbPerS.toFixed(2)} GB/s  (${row.note}; best of 3)`)
  }
} finally { rmSync(dir, { recursive: true, force: true }) }

const find = (prefix: string): Row | undefined => rows.find((r) => r.name.startsWith(prefix))
const ratios: Record<string, number> = {}
const best = native ? find(`native ${native.variant}, 256 KiB`) : undefined
const b3sum = find('b3sum')
const sha = find('node crypto sha256')
if (best && b3sum) ratios[`native ${native!.variant} 256 KiB / b3sum (per byte, CPU)`] = best.cpuPerGiB / b3sum.cpuPerGiB
if (best && sha) ratios[`node sha256 / native ${native!.variant} 256 KiB`] = sha.cpuPerGiB / best.cpuPerGiB
if (best) ratios[`@noble / native ${native!.variant} 256 KiB`] = find('@noble')!.cpuPerGiB / best.cpuPerGiB
const openssl = find('openssl')
if (openssl && b3sum) ratios['openssl sha256 / b3sum'] = openssl.cpuPerGiB / b3sum.cpuPerGiB
log('')
for (const [k, v] of Object.entries(ratios)) log(`${k.padEnd(50)} ${v.toFixed(2)}`)
log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
if (JSON_OUT) process.stdout.write(JSON.stringify({ loadavg: loadavg(), node: process.version, rows, ratios }, null, 2) + '\n')
