/**
 * One evaluation, start to finish: the model's ONNX file materialised from the store, run over the
 * dataset by onnxruntime, and the evaluation record built (not yet committed).
 */
import type { Repo } from '../repo.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Store } from '../cas/store.js'
import type { Dataset } from './data.js'
import type { RunOptions } from './onnx-session.js'
import { gitIdentity } from '../zoo/commit.js'
import { encodePredictions, evalRecordPath, predictionsDigest, EVAL_FORMAT, type EvaluationRecord } from './record.js'

/** How to run the model (see RunOptions; its signal also stops writing the model out), and which file. */
export interface EvaluateOptions extends RunOptions {
  file?: string
  /** `get-file-written` as the model's files are written to its temp folder (spec/reliability.md). */
  crashPoint?: (name: string) => void | Promise<void>
}

export interface Evaluated { record: EvaluationRecord; predictions: Int32Array; path: string }

export async function evaluateModel(repo: Repo, m: Manifest, store: Store, data: Dataset, opts: EvaluateOptions = {}): Promise<Evaluated> {
  const { prepareOnnx, runClassifier } = await import('./onnx-session.js')
  const model = await prepareOnnx(m, store, { file: opts.file, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}) })
  try {
    const r = await runClassifier(model, data, opts)
    const predictions = encodePredictions(r.predictions, r.classes)
    const record: EvaluationRecord = {
      zoo_eval: EVAL_FORMAT,
      model: { name: m.name, version: m.version, seal: m.seal, file: model.file.path, file_sha256: model.file.sha256 },
      data: { sha256: data.sha256, source: data.source, n: data.n, x: data.x, y: data.y },
      classes: r.classes,
      output: { name: r.output, kind: r.output_kind },
      metrics: r.metrics,
      predictions_sha256: predictionsDigest(r.predictions),
      ...(predictions ? { predictions } : {}),
      runtime: { onnxruntime: r.runtime.onnxruntime, node: repo.host.node },
      evaluator: (await gitIdentity(repo)) ?? 'unknown',
      created: new Date().toISOString(),
    }
    return { record, predictions: r.predictions, path: evalRecordPath(m, data.sha256, model.file) }
  } finally {
    await model.cleanup()
  }
}
