/**
 * The chunker against the golden vectors in test/vectors/chunking.json (built as spec/chunking.md
 * describes) and against properties that must hold for any input.
 *
 * The vectors are regenerated only on request, never by a normal run:
 *   ZOO_WRITE_VECTORS=1 npx tsx test/chunker.test.ts
 * A change to them changes every CID `add` produces: say so loudly in the commit.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { chunkCid, cidOf, RAW } from '../src/cas/cid.js'
import { FormatError, UsageError } from '../src/errors.js'
import { chunkStream } from '../src/chunk/chunker.js'
import { cutsOf, findCut, GEAR } from '../src/chunk/fastcdc.js'
import { DEFAULT_CDC, FIXED_CHUNK, validateParams, type CdcParams } from '../src/chunk/params.js'
import { ChunkPlanner } from '../src/chunk/plan.js'

const VECTORS = new URL('./vectors/chunking.json', import.meta.url)
const SMALL: CdcParams = { min: 256, avg: 1024, max: 4096 }

// ---- the seeded input generator of spec/chunking.md ----

/** xorshift32 (13, 17, 5) from `seed`; each step emits the new state as 4 bytes little-endian. */
function xorshiftBytes(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed >>> 0
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (x >>> (8 * j)) & 0xff
  }
  return out
}

interface InputSpec { kind: 'xorshift32' | 'zeros'; seed?: number; length: number }
interface Vector {
  name: string
  input: InputSpec
  params: CdcParams
  segments: number[] | null
  /** Segments cut every `fixedSize` bytes (tensor data) when longer than max; absent: none. */
  fixed?: boolean[]
  fixedSize?: number
  /** End offset of every chunk. */
  cuts: number[]
  /** CIDv1 raw sha2-256 of each chunk (zoos with "chunk_hash": "sha2-256", and every zoo made before the key). */
  cids: string[]
  /** CIDv1 raw blake3 of each chunk (zoos with "chunk_hash": "blake3", the default of `git zoo init`). */
  blake3Cids: string[]
}

function makeInput(spec: InputSpec): Uint8Array {
  return spec.kind === 'zeros' ? new Uint8Array(spec.length) : xorshiftBytes(spec.seed!, spec.length)
}

// ---- a plain reading of spec/chunking.md, byte by byte, kept independent of src/chunk ----

function refGear(): number[] {
  return Array.from({ length: 256 }, (_, i) =>
    createHash('sha256').update('git-zoo/gear/v1').update(Uint8Array.of(i)).digest().readUInt32BE(0))
}
const REF_GEAR = refGear()

function refCuts(data: Uint8Array, p: CdcParams, segments: readonly number[] | null,
                 fixed?: readonly boolean[], fixedSize?: number): number[] {
  const bits = Math.log2(p.avg)
  const top = (n: number): number => 2 ** 32 - 2 ** (32 - n)
  const maskS = top(bits + 2)
  const maskL = top(bits - 2)
  const cuts: number[] = []
  let segStart = 0
  for (const [i, len] of (segments ?? [data.length]).entries()) {
    const segEnd = segStart + len
    if (len > 0 && (segments === null ? false : len <= p.max)) cuts.push(segEnd)
    else if (fixed?.[i]) for (let at = segStart; at < segEnd;) cuts.push(at = Math.min(segEnd, at + fixedSize!))
    else {
      let start = segStart
      while (start < segEnd) {
        let h = 0
        let cut = segEnd
        for (let x = start; x < segEnd; x++) {
          h = (h * 2 + REF_GEAR[data[x]!]!) % 2 ** 32
          const k = x - start + 1
          const mask = k < p.avg ? maskS : maskL
          if (k === p.max || (k >= p.min && (h & mask) >>> 0 === 0)) { cut = x + 1; break }
        }
        cuts.push(cut)
        start = cut
      }
    }
    segStart = segEnd
  }
  return cuts
}

// ---- helpers ----

async function* pieces(data: Uint8Array, sizes: () => number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length;) {
    const n = Math.max(1, Math.min(sizes(), data.length - at))
    yield data.slice(at, at + n) // fresh copies, as a file stream gives
    at += n
  }
}
const whole = (data: Uint8Array) => pieces(data, () => data.length)

async function collect(source: AsyncIterable<Uint8Array>, segments: readonly number[] | null,
                       p: CdcParams, fixed?: readonly boolean[], fixedSize?: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of chunkStream(source, segments, p, fixed ?? null, fixedSize ?? FIXED_CHUNK)) out.push(c)
  return out
}

/** The cuts ChunkPlanner gives when the file is fed in windows of `win` bytes, as the add pipeline does. */
function plannedCuts(data: Uint8Array, segments: readonly number[] | null, p: CdcParams, fixed: readonly boolean[] | undefined,
                     fixedSize: number | undefined, win: number): number[] {
  const plan = new ChunkPlanner(data.length, segments, fixed ?? null, p, fixedSize ?? FIXED_CHUNK)
  const ends: number[] = []
  let read = 0
  while (!plan.done) {
    const start = plan.next
    read = Math.min(data.length, Math.max(read, start) + win - (Math.max(read, start) - start))
    plan.cut(data.subarray(start, read), start, ends)
  }
  return ends
}

/**
 * The cuts of the add pipeline's two paths mixed as src/ingest/ingest.ts mixes them: chunks cut
 * without bytes (cutPlanned, laid out with a 44-byte record gap in `room` bytes) wherever the
 * planner can, windows of bytes (cut) elsewhere, a window never reading past plannedFrom().
 */
function mixedCuts(data: Uint8Array, segments: readonly number[] | null, p: CdcParams, fixed: readonly boolean[] | undefined,
                   fixedSize: number | undefined, win: number, room: number): number[] {
  const plan = new ChunkPlanner(data.length, segments, fixed ?? null, p, fixedSize ?? FIXED_CHUNK)
  const ends: number[] = []
  let read = 0
  while (!plan.done) {
    const start = plan.next
    if (read === start && plan.planned) {
      const before = ends.length
      plan.cutPlanned(room, 44, ends)
      assert.ok(ends.length > before, 'cutPlanned cuts at least one chunk when the room holds a max chunk')
      read = plan.next
      continue
    }
    read = Math.min(plan.plannedFrom() > read ? plan.plannedFrom() : data.length, Math.max(read, start) + win - (Math.max(read, start) - start))
    plan.cut(data.subarray(start, read), start, ends)
  }
  return ends
}

function endsOf(chunks: readonly Uint8Array[]): number[] {
  let at = 0
  return chunks.map((c) => (at += c.length))
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks)
}

/** A small deterministic PRNG for the property tests (not part of the spec). */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    return x % n
  }
}

// ---- vector generation (script mode) ----

const VECTOR_SPECS: Omit<Vector, 'cuts' | 'cids' | 'blake3Cids'>[] = [
  { name: 'small params, 20000 bytes', input: { kind: 'xorshift32', seed: 1, length: 20000 }, params: SMALL, segments: null },
  { name: 'small params, 100000 bytes', input: { kind: 'xorshift32', seed: 2, length: 100000 }, params: SMALL, segments: null },
  { name: 'tiny params, 30000 bytes', input: { kind: 'xorshift32', seed: 5, length: 30000 }, params: { min: 64, avg: 256, max: 1024 }, segments: null },
  { name: 'mid params, 200001 bytes', input: { kind: 'xorshift32', seed: 6, length: 200001 }, params: { min: 2048, avg: 8192, max: 32768 }, segments: null },
  { name: 'zeros: the hash never matches, every cut is at max', input: { kind: 'zeros', length: 20000 }, params: SMALL, segments: null },
  { name: 'shorter than min', input: { kind: 'xorshift32', seed: 7, length: 200 }, params: SMALL, segments: null },
  { name: 'empty', input: { kind: 'xorshift32', seed: 8, length: 0 }, params: SMALL, segments: null },
  {
    name: 'small params with segments (header, empty, exactly max, max+1, tiny, empty, rest)',
    input: { kind: 'xorshift32', seed: 4, length: 30000 }, params: SMALL,
    segments: [213, 0, 4096, 4097, 3, 0, 30000 - 213 - 4096 - 4097 - 3],
  },
  { name: 'defaults, 3 MiB', input: { kind: 'xorshift32', seed: 3, length: 3 << 20 }, params: DEFAULT_CDC, segments: null },
  {
    name: 'defaults, 3 MiB with segments (header, tiny, empty, 2 MiB cut by CDC, rest whole)',
    input: { kind: 'xorshift32', seed: 9, length: 3 << 20 }, params: DEFAULT_CDC,
    segments: [1000, 5, 0, 2 << 20, (1 << 20) - 1005],
  },
  {
    name: 'small params, fixed-size 1000-byte chunks in tensor segments (fixed over max, fixed under max, CDC, fixed of exactly 5 chunks, empty fixed, rest CDC)',
    input: { kind: 'xorshift32', seed: 11, length: 40000 }, params: SMALL,
    segments: [100, 10001, 3000, 9000, 5000, 0, 40000 - 100 - 10001 - 3000 - 9000 - 5000],
    fixed: [false, true, true, false, true, true, false], fixedSize: 1000,
  },
  {
    name: 'defaults, 5 MiB safetensors-like (header, a 2.5 MiB+3 tensor in 256 KiB chunks, a 600 KiB tensor whole, a 1 MiB+1 tensor, the rest whole)',
    input: { kind: 'xorshift32', seed: 12, length: 5 << 20 }, params: DEFAULT_CDC,
    segments: [4096, (5 << 19) + 3, 600 * 1024, (1 << 20) + 1, (5 << 20) - 4096 - (5 << 19) - 3 - 600 * 1024 - (1 << 20) - 1],
    fixed: [false, true, true, true, true], fixedSize: FIXED_CHUNK,
  },
]

async function buildVectors(): Promise<Vector[]> {
  const out: Vector[] = []
  for (const spec of VECTOR_SPECS) {
    const data = makeInput(spec.input)
    const chunks = await collect(whole(data), spec.segments, spec.params, spec.fixed, spec.fixedSize)
    out.push({ ...spec, cuts: endsOf(chunks), cids: chunks.map((c) => cidOf(RAW, c).toString()), blake3Cids: chunks.map((c) => chunkCid('blake3', c).toString()) })
  }
  return out
}

if (process.env.ZOO_WRITE_VECTORS === '1') {
  const file = {
    about: 'Golden vectors for the git-zoo chunker; how they are built: spec/chunking.md. cuts = end offset of each chunk.',
    gear: Array.from(GEAR, (g) => (g >>> 0).toString(16).padStart(8, '0')),
    vectors: await buildVectors(),
  }
  writeFileSync(VECTORS, JSON.stringify(file, null, 1) + '\n')
  console.log(`wrote ${VECTORS.pathname}`)
}

// ---- tests ----

const golden = JSON.parse(readFileSync(VECTORS, 'utf8')) as { gear: string[]; vectors: Vector[] }

test('gear table is the one spec/chunking.md derives', () => {
  assert.deepEqual(Array.from(GEAR, (g) => g >>> 0), REF_GEAR)
  assert.deepEqual(golden.gear, REF_GEAR.map((g) => g.toString(16).padStart(8, '0')))
})

test('golden vectors: boundaries and CIDs', async () => {
  assert.ok(golden.vectors.length >= 8)
  for (const v of golden.vectors) {
    const data = makeInput(v.input)
    const chunks = await collect(whole(data), v.segments, v.params, v.fixed, v.fixedSize)
    assert.deepEqual(endsOf(chunks), v.cuts, v.name)
    assert.deepEqual(chunks.map((c) => cidOf(RAW, c).toString()), v.cids, v.name)
    assert.deepEqual(chunks.map((c) => chunkCid('blake3', c).toString()), v.blake3Cids, `${v.name} (blake3)`)
    if (data.length <= 200001 || v.fixed) assert.deepEqual(refCuts(data, v.params, v.segments, v.fixed, v.fixedSize), v.cuts, `${v.name} (reference)`)
    if (v.segments === null) assert.deepEqual(cutsOf(data, v.params), v.cuts, `${v.name} (findCut)`)
    const r = rng(v.cuts.length + 1)
    const split = await collect(pieces(data, () => 1 + r(70000)), v.segments, v.params, v.fixed, v.fixedSize)
    assert.deepEqual(endsOf(split), v.cuts, `${v.name} (split input)`)
    // the add pipeline's planner, fed windows of several sizes (at least one max chunk each)
    for (const win of [v.params.max, v.params.max + 7, 3 * v.params.max + 1, 8 << 20]) {
      assert.deepEqual(plannedCuts(data, v.segments, v.params, v.fixed, v.fixedSize, win), v.cuts, `${v.name} (planner, window ${win})`)
      assert.deepEqual(mixedCuts(data, v.segments, v.params, v.fixed, v.fixedSize, win, Math.max(win, v.params.max + 44)), v.cuts, `${v.name} (planned and read cuts mixed, window ${win})`)
    }
  }
})

test('the fast scanner agrees with the byte-by-byte reading of the spec', () => {
  const r = rng(99)
  for (let i = 0; i < 20; i++) {
    const avg = 2 ** (7 + r(6))
    const p = validateParams({ min: Math.max(64, avg / 4 + r(64)), avg, max: avg * 2 + r(avg * 3) })
    const data = xorshiftBytes(1000 + i, 10000 + r(60000))
    assert.deepEqual(cutsOf(data, p), refCuts(data, p, null), JSON.stringify(p))
  }
})

test('concatenation equals the input, whatever the piece sizes (down to 1 byte)', async () => {
  const r = rng(7)
  for (const [len, maxPiece] of [[40000, 1], [50000, 3], [300000, 5000], [300000, 200000], [1, 1]] as const) {
    const data = xorshiftBytes(len + maxPiece, len)
    const chunks = await collect(pieces(data, () => 1 + r(maxPiece)), null, SMALL)
    assert.ok(chunks.every((c) => c.length > 0))
    assert.deepEqual(concat(chunks), Buffer.from(data))
  }
})

test('boundaries do not depend on how the input is split', async () => {
  const data = xorshiftBytes(11, 200000)
  const want = cutsOf(data, SMALL)
  const r = rng(12)
  for (const maxPiece of [1, 17, 256, 4095, 4097, 65536]) {
    assert.deepEqual(endsOf(await collect(pieces(data, () => 1 + r(maxPiece)), null, SMALL)), want, `pieces <= ${maxPiece}`)
  }
  const segs = [100, 5000, 0, 4096, 90000, 1, 200000 - 100 - 5000 - 4096 - 90000 - 1]
  const wantSeg = refCuts(data, SMALL, segs)
  for (const maxPiece of [1, 300, 9000]) {
    assert.deepEqual(endsOf(await collect(pieces(data, () => 1 + r(maxPiece)), segs, SMALL)), wantSeg, `segments, pieces <= ${maxPiece}`)
  }
})

test('chunks respect segment boundaries and min/max', async () => {
  const r = rng(21)
  for (let round = 0; round < 10; round++) {
    const segs = Array.from({ length: 1 + r(12) }, () => [0, 1, 255, 4096, 4097, 8192, 30000][r(7)]! + r(3))
    const total = segs.reduce((a, b) => a + b, 0)
    const data = xorshiftBytes(round + 300, total)
    const chunks = await collect(pieces(data, () => 1 + r(9000)), segs, SMALL)
    assert.deepEqual(concat(chunks), Buffer.from(data))
    const ends = new Set(endsOf(chunks))
    let segEnd = 0
    const segEnds = new Set<number>()
    for (const s of segs) { segEnd += s; segEnds.add(segEnd) }
    let start = 0
    let nextSeg = 0
    let s = 0
    for (const c of chunks) {
      while (nextSeg <= start) nextSeg += segs[s++]! // end of the segment holding `start`
      const end = start + c.length
      assert.ok(c.length > 0 && c.length <= SMALL.max, `chunk of ${c.length}`)
      assert.ok(end <= nextSeg, `chunk ${start}..${end} crosses segment end ${nextSeg}`)
      if (end !== nextSeg) assert.ok(c.length >= SMALL.min, `short chunk ${start}..${end} inside a segment`)
      start = end
    }
    for (const e of segEnds) if (e > 0) assert.ok(ends.has(e), `no cut at segment end ${e}`)
  }
})

test('a 100-byte insertion near the start of 4 MiB leaves >90% of chunks unchanged', async () => {
  const p: CdcParams = { min: 4096, avg: 16384, max: 65536 }
  const data = xorshiftBytes(31, 4 << 20)
  const edited = Buffer.concat([data.subarray(0, 5000), xorshiftBytes(32, 100), data.subarray(5000)])
  const key = (c: Uint8Array) => createHash('sha256').update(c).digest('hex')
  const before = new Set((await collect(whole(data), null, p)).map(key))
  const after = (await collect(whole(edited), null, p)).map(key)
  const kept = after.filter((k) => before.has(k)).length
  assert.ok(kept / after.length > 0.9, `${kept}/${after.length} chunks unchanged`)
})

test('segments that do not sum to the input length throw FormatError', async () => {
  const data = xorshiftBytes(41, 10000)
  for (const segs of [[5000, 4999], [5000, 5001], [3000], [10000, 0, 1], [], [-1, 10001], [0.5, 9999.5]]) {
    await assert.rejects(collect(pieces(data, () => 777), segs, SMALL), (e: unknown) => e instanceof FormatError && e.code === 'E_SEGMENTS', JSON.stringify(segs))
  }
  await assert.rejects(collect(whole(new Uint8Array(0)), [1], SMALL), FormatError)
})

test('empty input and zero-length segments yield no chunks', async () => {
  assert.deepEqual(await collect(whole(new Uint8Array(0)), null, SMALL), [])
  assert.deepEqual(await collect(whole(new Uint8Array(0)), [0, 0], SMALL), [])
  const one = await collect(whole(Uint8Array.of(7)), [0, 1, 0], SMALL)
  assert.deepEqual(one.map((c) => Array.from(c)), [[7]])
})

test('findCut: short tails end the chunk, a full window cuts by max', () => {
  const data = new Uint8Array(20000) // zeros: the hash never hits the mask, so every cut is at max
  assert.equal(findCut(data, 0, 100, SMALL), 100)
  assert.equal(findCut(data, 10, data.length, SMALL), 10 + SMALL.max)
  assert.equal(findCut(data, 0, 3000, SMALL), 3000)
})

test('validateParams rejects unusable parameters', () => {
  assert.equal(validateParams(DEFAULT_CDC), DEFAULT_CDC)
  for (const p of [{ min: 32, avg: 1024, max: 4096 }, { min: 256, avg: 1000, max: 4096 }, { min: 2048, avg: 1024, max: 4096 },
    { min: 256, avg: 1024, max: 512 }, { min: 256.5, avg: 1024, max: 4096 }, { min: 256, avg: 2 ** 30, max: 2 ** 31 }]) {
    assert.throws(() => validateParams(p), UsageError, JSON.stringify(p))
  }
})
