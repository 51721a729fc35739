/**
 * Classification metrics over a model's outputs, accumulated batch by batch (spec/eval.md,
 * "Metrics"): accuracy (argmax, ties to the lower class), mean cross-entropy (natural log) and
 * top-5 accuracy when there are more than 5 classes. Outputs are logits unless every row is a
 * probability vector (entries in [0, 1], summing to 1 within PROB_TOLERANCE), as after a Softmax.
 */
import { UsageError } from '../errors.js'

export const PROB_TOLERANCE = 1e-3
/** Probabilities are clipped to [PROB_EPS, 1] before the log, so a confident mistake costs ~27.6, not infinity. */
export const PROB_EPS = 1e-12

export type OutputKind = 'logits' | 'probabilities'

export interface ClassificationResult {
  n: number
  classes: number
  output_kind: OutputKind
  metrics: { accuracy: number; loss?: number; top5?: number }
  predictions: Int32Array
}

export class ClassificationMetrics {
  readonly predictions: Int32Array
  private seen = 0
  private correct = 0
  private top5 = 0
  private ceLogits = 0
  private ceProbs = 0
  private allProbabilities = true

  constructor(readonly n: number, readonly classes: number) {
    if (classes < 1) throw new UsageError('the model has no output classes', 'E_EVAL_OUTPUT')
    this.predictions = new Int32Array(n)
  }

  /** `outputs` holds `rows` rows of `classes` values; `labels` the rows' labels. */
  add(outputs: Float32Array, rows: number, labels: Int32Array): void {
    const c = this.classes
    for (let r = 0; r < rows; r++) {
      const y = labels[r]!
      if (y >= c) throw new UsageError(`sample ${this.seen} has label ${y} but the model has ${c} output classes`, 'E_BAD_DATA', { sample: this.seen, label: y, classes: c })
      const base = r * c
      let best = 0
      let bestV = -Infinity
      let max = -Infinity
      let sum = 0
      let probRow = true
      for (let j = 0; j < c; j++) {
        const v = outputs[base + j]!
        if (v > bestV) { bestV = v; best = j } // NaN never wins; ties keep the lower class
        if (v > max) max = v
        sum += v
        if (!(v >= -1e-6 && v <= 1 + 1e-6)) probRow = false
      }
      if (Math.abs(sum - 1) > PROB_TOLERANCE) probRow = false
      if (!probRow) this.allProbabilities = false
      this.predictions[this.seen] = best
      if (best === y) this.correct++
      const vy = outputs[base + y]!
      if (c > 5) {
        let rank = 0
        for (let j = 0; j < c && rank < 5; j++) {
          const v = outputs[base + j]!
          if (v > vy || (v === vy && j < y)) rank++
        }
        if (rank < 5 && !Number.isNaN(vy)) this.top5++
      }
      // both readings of the row; the kind is decided once every row has been seen
      let se = 0
      for (let j = 0; j < c; j++) se += Math.exp(outputs[base + j]! - max)
      this.ceLogits += max + Math.log(se) - vy
      this.ceProbs += -Math.log(Math.min(1, Math.max(PROB_EPS, vy)))
      this.seen++
    }
  }

  result(kind: OutputKind | 'auto' = 'auto'): ClassificationResult {
    if (this.seen !== this.n) throw new Error(`metrics saw ${this.seen} of ${this.n} samples`)
    const outputKind: OutputKind = kind === 'auto' ? (this.allProbabilities && this.n > 0 ? 'probabilities' : 'logits') : kind
    const loss = (outputKind === 'logits' ? this.ceLogits : this.ceProbs) / this.n
    return {
      n: this.n,
      classes: this.classes,
      output_kind: outputKind,
      metrics: {
        accuracy: this.n ? this.correct / this.n : 0,
        ...(Number.isFinite(loss) ? { loss } : {}),
        ...(this.classes > 5 ? { top5: this.n ? this.top5 / this.n : 0 } : {}),
      },
      predictions: this.predictions,
    }
  }
}

/** Hard agreement (Model Zoos, seed 001): the fraction of samples whose predicted classes are equal. */
export function agreement(a: Int32Array, b: Int32Array): { agree: number; n: number; rate: number } {
  if (a.length !== b.length) throw new Error(`prediction lists differ in length (${a.length} vs ${b.length})`)
  let k = 0
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) k++
  return { agree: k, n: a.length, rate: a.length ? k / a.length : 0 }
}
