/**
 * A small multi-layer perceptron trained by mini-batch SGD (optionally with momentum and weight
 * decay) on softmax cross-entropy, in plain TypeScript. Deterministic: given the same dataset,
 * options and seed, every float of every checkpoint is the same on every run.
 *
 * Parameters follow the PyTorch `nn.Linear` convention: `layers.<i>.weight` is [out, in] row-major
 * and `layers.<i>.bias` is [out]; the last layer is the head and produces logits.
 */
import { Rng } from './data.js'
import type { Dataset, Split } from './data.js'

export type Activation = 'relu' | 'tanh' | 'sigmoid' | 'gelu'
export type Init = 'uniform' | 'normal' | 'kaiming_uniform' | 'kaiming_normal'
export const ACTIVATIONS: readonly Activation[] = ['relu', 'tanh', 'sigmoid', 'gelu']
export const INITS: readonly Init[] = ['uniform', 'normal', 'kaiming_uniform', 'kaiming_normal']

export interface MlpSpec { inputs: number; hidden: number[]; outputs: number; activation: Activation }
export interface Tensor { name: string; shape: number[]; data: Float32Array }
/** `params` holds weight then bias for each layer, in layer order. */
export interface Mlp { spec: MlpSpec; params: Tensor[] }

export interface TrainOptions {
  epochs: number
  lr: number
  /** Seed of the batch order. */
  seed: number
  batchSize?: number
  momentum?: number
  weightDecay?: number
  /** Number of leading layers whose weight and bias are never updated (layers - 1 = head only). */
  freezeLayers?: number
}

export interface EpochMetrics {
  epoch: number
  train_loss: number; train_acc: number
  val_loss: number; val_acc: number
  test_loss: number; test_acc: number
}

export interface TrainResult {
  /** checkpoints[e] is a deep copy of the parameters after epoch e; checkpoints[0] is the start. */
  checkpoints: Tensor[][]
  metrics: EpochMetrics[]
  model: Mlp
}

/**
 * erf to ~1e-12: the Maclaurin series below |x| = 2, the Laplace continued fraction of erfc (Lentz's
 * method) above. Used by the exact GELU, x * Phi(x), which ONNX expresses with its Erf operator.
 */
export function erf(x: number): number {
  const s = x < 0 ? -1 : 1
  const a = Math.abs(x)
  if (a < 2) {
    let sum = a, term = a
    for (let n = 1; n < 40; n++) {
      term *= -a * a / n
      const next = term / (2 * n + 1)
      sum += next
      if (Math.abs(next) < 1e-12) break
    }
    return s * sum * 2 / Math.sqrt(Math.PI)
  }
  // erfc continued fraction (Lentz), converges fast for a >= 2
  let f = a, c = a, d = 0
  for (let n = 1; n < 60; n++) {
    const an = n / 2
    d = a + an * d; d = 1 / d
    c = a + an / c
    const delta = c * d
    f *= delta
    if (Math.abs(delta - 1) < 1e-12) break
  }
  return s * (1 - Math.exp(-a * a) / (f * Math.sqrt(Math.PI)))
}

function act(kind: Activation, z: number): number {
  switch (kind) {
    case 'relu': return z > 0 ? z : 0
    case 'tanh': return Math.tanh(z)
    case 'sigmoid': return 1 / (1 + Math.exp(-z))
    case 'gelu': return 0.5 * z * (1 + erf(z / Math.SQRT2))
  }
}

/** d act / dz, from the pre-activation z and the activation a = act(z). */
function actGrad(kind: Activation, z: number, a: number): number {
  switch (kind) {
    case 'relu': return z > 0 ? 1 : 0
    case 'tanh': return 1 - a * a
    case 'sigmoid': return a * (1 - a)
    case 'gelu': return 0.5 * (1 + erf(z / Math.SQRT2)) + z * Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI)
  }
}

function layerSizes(spec: MlpSpec): number[] { return [spec.inputs, ...spec.hidden, spec.outputs] }

function initLayer(i: number, fanIn: number, fanOut: number, init: Init, rng: Rng): Tensor[] {
  const w = new Float32Array(fanOut * fanIn)
  const draw = {
    uniform: () => (2 * rng.uniform() - 1) / Math.sqrt(fanIn),
    normal: () => rng.normal() / Math.sqrt(fanIn),
    kaiming_uniform: () => (2 * rng.uniform() - 1) * Math.sqrt(6 / fanIn),
    kaiming_normal: () => rng.normal() * Math.sqrt(2 / fanIn),
  }[init]
  for (let k = 0; k < w.length; k++) w[k] = draw()
  return [
    { name: `layers.${i}.weight`, shape: [fanOut, fanIn], data: w },
    { name: `layers.${i}.bias`, shape: [fanOut], data: new Float32Array(fanOut) },
  ]
}

/** A fresh MLP; biases start at zero, weights as `init` says (spec/demo.md gives the formulas). */
export function initMlp(spec: MlpSpec, init: Init, seed: number): Mlp {
  const rng = new Rng(seed)
  const sizes = layerSizes(spec)
  const params: Tensor[] = []
  for (let i = 0; i + 1 < sizes.length; i++) params.push(...initLayer(i, sizes[i]!, sizes[i + 1]!, init, rng))
  return { spec, params }
}

/** A copy of `mlp` whose head is new (`outputs` classes, drawn from `seed`); the body is shared by value. */
export function replaceHead(mlp: Mlp, outputs: number, init: Init, seed: number): Mlp {
  const sizes = layerSizes(mlp.spec)
  const last = sizes.length - 2
  const head = initLayer(last, sizes[last]!, outputs, init, new Rng(seed))
  return { spec: { ...mlp.spec, outputs }, params: [...cloneParams(mlp.params.slice(0, 2 * last)), ...head] }
}

export function cloneParams(params: Tensor[]): Tensor[] {
  return params.map((t) => ({ name: t.name, shape: [...t.shape], data: Float32Array.from(t.data) }))
}

/** Activations of every layer for one sample: zs[l] pre-activation, as[l] output (as[0] = input). */
function forwardOne(mlp: Mlp, x: Float32Array, off: number, zs: Float64Array[], as: Float64Array[]): void {
  const sizes = layerSizes(mlp.spec)
  const a0 = as[0]!
  for (let k = 0; k < sizes[0]!; k++) a0[k] = x[off + k]!
  const L = sizes.length - 1
  for (let l = 0; l < L; l++) {
    const nIn = sizes[l]!, nOut = sizes[l + 1]!
    const w = mlp.params[2 * l]!.data, b = mlp.params[2 * l + 1]!.data
    const a = as[l]!, z = zs[l]!, next = as[l + 1]!
    for (let o = 0; o < nOut; o++) {
      let s = b[o]!
      const row = o * nIn
      for (let k = 0; k < nIn; k++) s += w[row + k]! * a[k]!
      z[o] = s
      next[o] = l + 1 < L ? act(mlp.spec.activation, s) : s
    }
  }
}

function buffers(mlp: Mlp): { zs: Float64Array[]; as: Float64Array[] } {
  const sizes = layerSizes(mlp.spec)
  return { zs: sizes.slice(1).map((n) => new Float64Array(n)), as: sizes.map((n) => new Float64Array(n)) }
}

/** Logits [n, outputs] for `n` samples of `x` [n, inputs], rounded to float32. */
export function forward(mlp: Mlp, x: Float32Array, n: number): Float32Array {
  const { zs, as } = buffers(mlp)
  const out = new Float32Array(n * mlp.spec.outputs)
  const logits = as[as.length - 1]!
  for (let i = 0; i < n; i++) {
    forwardOne(mlp, x, i * mlp.spec.inputs, zs, as)
    out.set(logits, i * mlp.spec.outputs)
  }
  return out
}

/** Mean softmax cross-entropy (natural log) and accuracy of given logits; argmax ties go to the lower class. */
export function lossAndAccuracy(logits: Float32Array | Float64Array, y: Int32Array, classes: number): { loss: number; acc: number } {
  let loss = 0, correct = 0
  for (let i = 0; i < y.length; i++) {
    let max = -Infinity, arg = 0
    for (let c = 0; c < classes; c++) { const v = logits[i * classes + c]!; if (v > max) { max = v; arg = c } }
    let sum = 0
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[i * classes + c]! - max)
    loss += Math.log(sum) + max - logits[i * classes + y[i]!]!
    if (arg === y[i]) correct++
  }
  return { loss: loss / y.length, acc: correct / y.length }
}

/** Loss and accuracy of `mlp` on a split, from float32 logits (what an ONNX runtime would produce). */
export function evaluate(mlp: Mlp, split: Split): { loss: number; acc: number } {
  return lossAndAccuracy(forward(mlp, split.x, split.n), split.y, mlp.spec.outputs)
}

function metricsOf(epoch: number, mlp: Mlp, data: Dataset): EpochMetrics {
  const tr = evaluate(mlp, data.train), va = evaluate(mlp, data.val), te = evaluate(mlp, data.test)
  return { epoch, train_loss: tr.loss, train_acc: tr.acc, val_loss: va.loss, val_acc: va.acc, test_loss: te.loss, test_acc: te.acc }
}

/**
 * Trains `mlp` in place for `opts.epochs` epochs on `data.train` and returns a checkpoint and the
 * metrics (recomputed on the whole train, val and test splits) before training and after each epoch.
 * Frozen layers are never written, so their tensors stay byte-identical to the starting ones.
 */
export function train(mlp: Mlp, data: Dataset, opts: TrainOptions): TrainResult {
  const sizes = layerSizes(mlp.spec)
  const L = sizes.length - 1
  const frozen = Math.min(opts.freezeLayers ?? 0, L)
  const batch = opts.batchSize ?? 32, momentum = opts.momentum ?? 0, wd = opts.weightDecay ?? 0
  const rng = new Rng(opts.seed)
  const { zs, as } = buffers(mlp)
  const grads = mlp.params.map((t) => new Float64Array(t.data.length))
  const velocity = mlp.params.map((t) => new Float64Array(t.data.length))
  const deltas = sizes.slice(1).map((n) => new Float64Array(n))
  const order = Int32Array.from({ length: data.train.n }, (_, i) => i)
  const checkpoints = [cloneParams(mlp.params)]
  const metrics = [metricsOf(0, mlp, data)]
  const C = mlp.spec.outputs

  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    rng.shuffle(order)
    for (let start = 0; start < order.length; start += batch) {
      const end = Math.min(start + batch, order.length)
      for (const g of grads) g.fill(0)
      for (let s = start; s < end; s++) {
        const i = order[s]!
        forwardOne(mlp, data.train.x, i * sizes[0]!, zs, as)
        // softmax - onehot at the head
        const logits = as[L]!, dOut = deltas[L - 1]!
        let max = -Infinity
        for (let c = 0; c < C; c++) max = Math.max(max, logits[c]!)
        let sum = 0
        for (let c = 0; c < C; c++) { dOut[c] = Math.exp(logits[c]! - max); sum += dOut[c]! }
        for (let c = 0; c < C; c++) dOut[c] = dOut[c]! / sum - (c === data.train.y[i] ? 1 : 0)
        for (let l = L - 1; l >= frozen; l--) {
          const nIn = sizes[l]!, nOut = sizes[l + 1]!
          const d = deltas[l]!, a = as[l]!, gw = grads[2 * l]!, gb = grads[2 * l + 1]!
          for (let o = 0; o < nOut; o++) {
            const dv = d[o]!
            gb[o] += dv
            const row = o * nIn
            for (let k = 0; k < nIn; k++) gw[row + k] += dv * a[k]!
          }
          if (l === frozen) break
          const w = mlp.params[2 * l]!.data, prev = deltas[l - 1]!, zPrev = zs[l - 1]!
          for (let k = 0; k < nIn; k++) {
            let s2 = 0
            for (let o = 0; o < nOut; o++) s2 += w[o * nIn + k]! * d[o]!
            prev[k] = s2 * actGrad(mlp.spec.activation, zPrev[k]!, a[k]!)
          }
        }
      }
      const scale = 1 / (end - start)
      for (let p = 2 * frozen; p < mlp.params.length; p++) {
        const w = mlp.params[p]!.data, g = grads[p]!, v = velocity[p]!
        const decay = p % 2 === 0 ? wd : 0 // no weight decay on biases
        for (let k = 0; k < w.length; k++) {
          const gk = g[k]! * scale + decay * w[k]!
          v[k] = momentum * v[k]! + gk
          w[k] = w[k]! - opts.lr * v[k]!
        }
      }
    }
    checkpoints.push(cloneParams(mlp.params))
    metrics.push(metricsOf(epoch, mlp, data))
  }
  return { checkpoints, metrics, model: mlp }
}
