/**
 * Which FastCDC parameters should be the default? For each candidate set this prints, on seeded data
 * that resembles checkpoint histories, how many bytes later versions reuse against how many objects
 * the store ends up with, and how fast the chunker runs compared with node's sha256 on the same
 * bytes in the same process. Results and the choice: spec/chunking.md.
 *
 *   npx tsx bench/chunk-sizes.ts            (~40 s on 2 cores; holds ~1.5 GB of versions in memory)
 *   npx tsx bench/chunk-sizes.ts --quick    (smaller data, for a smoke run)
 */
import { createHash } from 'node:crypto'
import { chunkStream } from '../src/chunk/chunker.js'
import { cutsOf } from '../src/chunk/fastcdc.js'
import type { CdcParams } from '../src/chunk/params.js'

const KiB = 1024
const MiB = 1024 * KiB
const QUICK = process.argv.includes('--quick')
const SCALE = QUICK ? 4 : 1
const VERSIONS = 5

const CANDIDATES: CdcParams[] = [64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, 1 * MiB, 2 * MiB, 4 * MiB].map((avg) => ({ min: avg / 4, avg, max: avg * 4 }))

/** xorshift32: every call advances the state; values in [0, 2^32). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5
    return (x >>>= 0)
  }
}

function randomBytes(next: () => number, n: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4))
  for (let i = 0; i < words.length; i++) words[i] = next()
  return new Uint8Array(words.buffer, 0, n)
}

interface Version { bytes: Uint8Array; segments: number[] }
interface Scenario { name: string; versions: Version[]; ideal: number }

/**
 * A safetensors-like float32 model (d=768, 6 layers, 8192-token embedding: ~190 MiB) and 4 successive
 * partial fine-tunes: each rewrites every value of a random 25% of the weight matrices, all norms and
 * biases, and 1% of the embedding rows; the JSON header changes too.
 */
function fineTunes(): Scenario {
  const d = 768 / (QUICK ? 2 : 1)
  const rnd = prng(1234)
  const shapes: [string, number, number][] = [['embed', 8192 / SCALE, d]]
  for (let l = 0; l < 6; l++) {
    for (const m of ['q', 'k', 'v', 'o']) shapes.push([`l${l}.attn.${m}`, d, d], [`l${l}.attn.${m}.bias`, 1, d])
    shapes.push([`l${l}.mlp.up`, d, 4 * d], [`l${l}.mlp.down`, 4 * d, d], [`l${l}.norm1`, 1, d], [`l${l}.norm2`, 1, d])
  }
  const tensors = shapes.map(([name, rows, cols]) => {
    const t = new Float32Array(rows * cols)
    for (let i = 0; i < t.length; i++) t[i] = (rnd() / 2 ** 32 - 0.5) * 0.08
    return { name, rows, cols, t }
  })
  const versions: Version[] = []
  let changed = 0
  let total = 0
  for (let v = 0; v < VERSIONS; v++) {
    if (v > 0) {
      for (const x of tensors) {
        const all = x.rows === 1 || (x.name !== 'embed' && rnd() % 4 === 0)
        const rows = all ? x.rows : x.name === 'embed' ? Math.ceil(x.rows / 100) : 0
        for (let r = 0; r < rows; r++) {
          const row = all ? r : rnd() % x.rows
          for (let c = 0; c < x.cols; c++) x.t[row * x.cols + c]! += (rnd() / 2 ** 32 - 0.5) * 1e-3
        }
        changed += Math.min(x.rows, rows) * x.cols * 4
      }
    }
    let offset = 0
    const meta: Record<string, unknown> = { __metadata__: { step: String(1000 * v).padStart(8, '0') } }
    for (const x of tensors) meta[x.name] = { dtype: 'F32', shape: [x.rows, x.cols], data_offsets: [offset, offset += x.t.byteLength] }
    const header = Buffer.from(JSON.stringify(meta))
    const prefix = Buffer.alloc(8)
    prefix.writeBigUInt64LE(BigInt(header.length))
    const parts = [prefix, header, ...tensors.map((x) => new Uint8Array(x.t.buffer.slice(0)))]
    const bytes = Buffer.concat(parts)
    if (v > 0) total += bytes.length
    versions.push({ bytes, segments: [8 + header.length, ...tensors.map((x) => x.t.byteLength)] })
  }
  return { name: 'fine-tune', versions, ideal: 1 - changed / total }
}

/** 128 MiB of random bytes and 4 successive versions, each with 16 insertions or deletions of 1-256 bytes. */
function edits(): Scenario {
  const rnd = prng(99)
  let cur = randomBytes(rnd, 128 * MiB / SCALE)
  const versions: Version[] = [{ bytes: cur, segments: [cur.length] }]
  let touched = 0
  let total = 0
  for (let v = 1; v < VERSIONS; v++) {
    for (let e = 0; e < 16; e++) {
      const at = rnd() % cur.length
      const n = 1 + (rnd() % 256)
      cur = rnd() % 2 === 0
        ? Buffer.concat([cur.subarray(0, at), randomBytes(rnd, n), cur.subarray(at)])
        : Buffer.concat([cur.subarray(0, at), cur.subarray(Math.min(cur.length, at + n))])
      touched += n
    }
    versions.push({ bytes: cur, segments: [cur.length] })
    total += cur.length
  }
  return { name: 'edits', versions, ideal: 1 - touched / total }
}

/** Bytes of versions 1.. whose chunks an earlier version already stored, and the objects stored in all. */
async function dedup(s: Scenario, p: CdcParams, useSegments: boolean, fixedSize = 0): Promise<{ reuse: number; objects: number; mean: number }> {
  const seen = new Set<string>()
  let reused = 0
  let later = 0
  let chunks = 0
  let bytes = 0
  for (const [v, ver] of s.versions.entries()) {
    const fixed = fixedSize > 0 ? ver.segments.map((_, i) => i > 0) : null
    for await (const c of chunkStream(once(ver.bytes), useSegments ? ver.segments : null, p, fixed, fixedSize || undefined)) {
      const key = createHash('sha256').update(c).digest('base64')
      chunks++
      bytes += c.length
      if (v > 0) {
        later += c.length
        if (seen.has(key)) reused += c.length
      }
      seen.add(key)
    }
  }
  return { reuse: reused / later, objects: seen.size, mean: bytes / chunks }
}

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> { yield b }
async function* pieces(b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < b.length; at += size) yield b.subarray(at, at + size)
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1]!
}
async function seconds(fn: () => unknown): Promise<number> {
  const runs: number[] = []
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint()
    await fn()
    runs.push(Number(process.hrtime.bigint() - t) / 1e9)
  }
  return median(runs)
}

const fmtSize = (n: number) => n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`
const pct = (x: number) => `${(100 * x).toFixed(1)}%`

const ft = fineTunes()
const ed = edits()
const data = ed.versions[0]!.bytes
const floats = ft.versions[0]!.bytes
const shaRandom = await seconds(() => createHash('sha256').update(data).digest())
const shaFloats = await seconds(() => createHash('sha256').update(floats).digest())
const mbps = (n: number, s: number) => (n / s / 1e6).toFixed(0)
for (const p of CANDIDATES) cutsOf(data.subarray(0, 16 * MiB), p) // warm the JIT before any timing

console.log(`data: fine-tune ${(floats.length / MiB).toFixed(0)} MiB x ${VERSIONS} versions (ideal reuse ${pct(ft.ideal)}), ` +
  `edits ${data.length / MiB} MiB x ${VERSIONS} (ideal reuse ${pct(ed.ideal)})`)
console.log(`baseline sha256: ${mbps(data.length, shaRandom)} MB/s on random bytes, ${mbps(floats.length, shaFloats)} MB/s on float32`)
console.log()
console.log('fixed-size chunks inside tensors (tensors up to 1 MiB whole, header by CDC 64 KiB / 256 KiB / 1 MiB)')
console.log('| fixed chunk | fine-tune: reuse, objects |')
console.log('|---|---|')
for (const f of [64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, 1 * MiB, 4 * MiB]) {
  const r = await dedup(ft, { min: 64 * KiB, avg: 256 * KiB, max: 1 * MiB }, true, f)
  console.log(`| ${fmtSize(f)} | ${pct(r.reuse)}, ${r.objects} |`)
}
console.log()
console.log('| min / avg / max | mean chunk | fine-tune, tensor segments: reuse, objects | fine-tune, plain CDC: reuse, objects | edits: reuse, objects | findCut MB/s (x sha256) | chunkStream, 64 KiB pieces, MB/s (x sha256) |')
console.log('|---|---|---|---|---|---|---|')
for (const p of CANDIDATES) {
  const seg = await dedup(ft, p, true)
  const plain = await dedup(ft, p, false)
  const edit = await dedup(ed, p, false)
  const tCut = await seconds(() => cutsOf(data, p))
  const tStream = await seconds(async () => { for await (const _ of chunkStream(pieces(data, 64 * KiB), null, p)) { /* drain */ } })
  console.log(`| ${fmtSize(p.min)} / ${fmtSize(p.avg)} / ${fmtSize(p.max)} | ${(edit.mean / KiB).toFixed(0)} KiB ` +
    `| ${pct(seg.reuse)}, ${seg.objects} | ${pct(plain.reuse)}, ${plain.objects} | ${pct(edit.reuse)}, ${edit.objects} ` +
    `| ${mbps(data.length, tCut)} (${(shaRandom / tCut).toFixed(2)}) | ${mbps(data.length, tStream)} (${(shaRandom / tStream).toFixed(2)}) |`)
}
