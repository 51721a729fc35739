/**
 * Deterministic, procedurally drawn classification datasets for the demo zoo (spec/demo.md).
 *
 * Every sample is an 8x8 grey-level "glyph" (64 float32 features in [0, 1] plus noise). A task is a
 * set of class prototypes, each the union of a few line strokes; a sample is its class prototype
 * shifted by up to one pixel, scaled by a random ink intensity, with Gaussian pixel noise on top.
 * Task A and task B share the drawing process (so features learnt on A transfer to B) but have
 * different class sets. Everything derives from one PRNG, mulberry32, so a (task, seed) pair names
 * exactly one dataset on every machine.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** mulberry32 (Tommy Ettinger, public domain): 32-bit state, returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A seeded random source: uniform, integer and standard normal draws from mulberry32. */
export class Rng {
  private readonly next: () => number
  private spare: number | undefined
  constructor(seed: number) { this.next = mulberry32(seed) }
  /** Uniform in [0, 1). */
  uniform(): number { return this.next() }
  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n) }
  /** Standard normal by the Box-Muller transform (both values of a pair are used, in order). */
  normal(): number {
    if (this.spare !== undefined) { const s = this.spare; this.spare = undefined; return s }
    const u = 1 - this.next() // (0, 1]: log stays finite
    const v = this.next()
    const r = Math.sqrt(-2 * Math.log(u))
    this.spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = a[i]!; a[i] = a[j]!; a[j] = t
    }
    return a
  }
}

/** The generating factors of one task; constants that define the demo datasets. */
export interface TaskSpec {
  name: string
  classes: number
  /** Seed of the class prototypes (which strokes make which glyph). */
  prototypeSeed: number
  strokes: number
  /** Standard deviation of the additive Gaussian pixel noise. */
  noise: number
  train: number
  val: number
  test: number
}

export const GLYPH_SIZE = 8
export const FEATURES = GLYPH_SIZE * GLYPH_SIZE
export const TASK_A: TaskSpec = { name: 'taskA', classes: 10, prototypeSeed: 0xa11ce, strokes: 3, noise: 0.25, train: 1500, val: 200, test: 200 }
export const TASK_B: TaskSpec = { name: 'taskB', classes: 6, prototypeSeed: 0xb0b, strokes: 3, noise: 0.25, train: 300, val: 150, test: 150 }

/** One split: `x` row-major [n, features], `y` class indices [n]. */
export interface Split { n: number; x: Float32Array; y: Int32Array }
export interface Dataset { name: string; features: number; classes: number; seed: number; train: Split; val: Split; test: Split }

/** Class prototypes: `classes` images of 64 pixels, each the union of `strokes` rasterised segments. */
export function prototypes(spec: TaskSpec): Float32Array[] {
  const rng = new Rng(spec.prototypeSeed)
  const out: Float32Array[] = []
  for (let c = 0; c < spec.classes; c++) {
    const img = new Float32Array(FEATURES)
    for (let s = 0; s < spec.strokes; s++) {
      // endpoints in [1, 6] so a one-pixel shift keeps the glyph on the canvas
      const x0 = 1 + rng.int(6), y0 = 1 + rng.int(6), x1 = 1 + rng.int(6), y1 = 1 + rng.int(6)
      for (let k = 0; k <= 12; k++) {
        const px = Math.round(x0 + (x1 - x0) * k / 12), py = Math.round(y0 + (y1 - y0) * k / 12)
        img[py * GLYPH_SIZE + px] = 1
      }
    }
    out.push(img)
  }
  return out
}

function drawSplit(protos: Float32Array[], spec: TaskSpec, n: number, rng: Rng): Split {
  const x = new Float32Array(n * FEATURES)
  const y = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    const c = i % spec.classes // balanced classes, order shuffled below by the trainer
    y[i] = c
    const dx = rng.int(3) - 1, dy = rng.int(3) - 1
    const ink = 0.6 + 0.4 * rng.uniform()
    const p = protos[c]!
    for (let r = 0; r < GLYPH_SIZE; r++) {
      for (let q = 0; q < GLYPH_SIZE; q++) {
        const sr = r - dy, sq = q - dx
        const v = sr >= 0 && sr < GLYPH_SIZE && sq >= 0 && sq < GLYPH_SIZE ? p[sr * GLYPH_SIZE + sq]! : 0
        x[i * FEATURES + r * GLYPH_SIZE + q] = v * ink + spec.noise * rng.normal()
      }
    }
  }
  return { n, x, y }
}

/** The dataset of `spec` drawn with `seed`; train, val and test come from one stream, in that order. */
export function makeDataset(spec: TaskSpec, seed: number): Dataset {
  const protos = prototypes(spec)
  const rng = new Rng(seed ^ spec.prototypeSeed)
  const train = drawSplit(protos, spec, spec.train, rng)
  const val = drawSplit(protos, spec, spec.val, rng)
  const test = drawSplit(protos, spec, spec.test, rng)
  return { name: spec.name, features: FEATURES, classes: spec.classes, seed, train, val, test }
}

/**
 * A numpy `.npy` v1.0 file: magic `\x93NUMPY`, version 1.0, header length (LE uint16), then a
 * Python dict literal padded with spaces and ended by `\n` so the data starts at a multiple of 64.
 */
export function encodeNpy(data: Float32Array | Int32Array | BigInt64Array, shape: number[]): Uint8Array {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '<i8'
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`
  const unpadded = 10 + header.length + 1
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n'
  const out = new Uint8Array(10 + header.length + data.byteLength)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0)
  new DataView(out.buffer).setUint16(8, header.length, true)
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i)
  const body = new DataView(out.buffer, 10 + header.length)
  if (data instanceof BigInt64Array) data.forEach((v, i) => body.setBigInt64(i * 8, v, true))
  else if (data instanceof Int32Array) data.forEach((v, i) => body.setInt32(i * 4, v, true))
  else data.forEach((v, i) => body.setFloat32(i * 4, v, true))
  return out
}

/** The `.npy` pair of a split: x float32 [n, features], y int64 [n]. */
export function splitNpy(split: Split, features: number): { x: Uint8Array; y: Uint8Array } {
  return { x: encodeNpy(split.x, [split.n, features]), y: encodeNpy(BigInt64Array.from(split.y, (v) => BigInt(v)), [split.n]) }
}
