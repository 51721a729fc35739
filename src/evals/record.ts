/**
 * Evaluation records (spec/eval.md, "Evaluation records"): one JSON file per (model version, ONNX
 * file, dataset) at `models/<name>/v<N>/evals/<data-sha256>[-<file-sha256 first 16>].json`, linked
 * to the model by its seal and committed as its own commit. The sealed manifest is never touched;
 * records are only ever added (never modified or removed), like the zoo itself.
 */
import { access, readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { Repo } from '../repo.js'
import { manifestDir, type Manifest } from '../manifest/manifest.js'
import type { EvalSummary } from '../manifest/card.js'
import { commitFiles } from '../zoo/commit.js'
import { FormatError, UsageError } from '../errors.js'

export const EVAL_FORMAT = 1
import { EVALS_DIR } from '../manifest/names.js'
export { EVALS_DIR }
/** Paths of evaluation records, for the pre-commit hook: name, version, data digest, file digest prefix. */
export const EVAL_PATH = /^models\/(.+)\/v([1-9][0-9]*)\/evals\/([0-9a-f]{64})(?:-([0-9a-f]{16}))?\.json$/
/** Predictions are kept in the record up to this many samples; above, only their digest. */
export const MAX_STORED_PREDICTIONS = 1_000_000

export interface EvaluationRecord {
  zoo_eval: number
  model: { name: string; version: number; seal: string; file: string; file_sha256: string }
  data: { sha256: string; source: string; n: number; x: { descr: string; shape: number[] }; y: { descr: string; shape: number[] } }
  classes: number
  output: { name: string; kind: 'logits' | 'probabilities' }
  metrics: { accuracy: number; loss?: number; top5?: number }
  /** sha256 (hex) of the predicted classes as little-endian int32, one per sample. */
  predictions_sha256: string
  /** The predicted classes, little-endian, base64 (absent above MAX_STORED_PREDICTIONS samples). */
  predictions?: { dtype: 'uint8' | 'uint16' | 'int32'; base64: string }
  runtime: { onnxruntime: string; node: string }
  evaluator: string
  created: string
}

/** A record as read back: `ok` false (with `problem`) when it does not hold up against the manifest. */
export interface Evaluation extends EvaluationRecord { path: string; ok: boolean; problem?: string }

export function evalsDir(m: { name: string; version: number }): string {
  return `${manifestDir(m.name, m.version)}/${EVALS_DIR}`
}

/** Where the record of `m`'s file `fileSha256` on data `dataSha256` lives. */
export function evalRecordPath(m: Manifest, dataSha256: string, file: { sha256: string }): string {
  const onnxFiles = m.files.filter((f) => f.format === 'onnx')
  const suffix = onnxFiles.length <= 1 ? '' : `-${file.sha256.slice(0, 16)}`
  return `${evalsDir(m)}/${dataSha256}${suffix}.json`
}

export function predictionsDigest(p: Int32Array): string {
  const le = new Uint8Array(p.length * 4)
  const dv = new DataView(le.buffer)
  for (let i = 0; i < p.length; i++) dv.setInt32(4 * i, p[i]!, true)
  return createHash('sha256').update(le).digest('hex')
}

export function encodePredictions(p: Int32Array, classes: number): EvaluationRecord['predictions'] {
  if (p.length > MAX_STORED_PREDICTIONS) return undefined
  if (classes <= 256) return { dtype: 'uint8', base64: Buffer.from(Uint8Array.from(p)).toString('base64') }
  if (classes <= 65536) {
    const b = Buffer.alloc(p.length * 2)
    for (let i = 0; i < p.length; i++) b.writeUInt16LE(p[i]!, 2 * i)
    return { dtype: 'uint16', base64: b.toString('base64') }
  }
  const b = Buffer.alloc(p.length * 4)
  for (let i = 0; i < p.length; i++) b.writeInt32LE(p[i]!, 4 * i)
  return { dtype: 'int32', base64: b.toString('base64') }
}

export function decodePredictions(r: EvaluationRecord): Int32Array | undefined {
  if (!r.predictions) return undefined
  const b = Buffer.from(r.predictions.base64, 'base64')
  const size = r.predictions.dtype === 'uint8' ? 1 : r.predictions.dtype === 'uint16' ? 2 : 4
  if (b.length !== r.data.n * size) return undefined
  const out = new Int32Array(r.data.n)
  for (let i = 0; i < out.length; i++) out[i] = size === 1 ? b[i]! : size === 2 ? b.readUInt16LE(2 * i) : b.readInt32LE(4 * i)
  return predictionsDigest(out) === r.predictions_sha256 ? out : undefined
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const HEX64 = /^[0-9a-f]{64}$/

/**
 * Parse and check a record's text (structure, digests, and that it names `m` by its seal). Throws
 * FormatError (E_EVAL_RECORD). The pre-commit hook may call this on a staged record.
 */
export function validateEvalRecord(text: string, m: Manifest, path?: string): EvaluationRecord {
  const bad = (why: string): never => { throw new FormatError(`evaluation record${path ? ` ${path}` : ''}: ${why}`, 'E_EVAL_RECORD', { path }) }
  let v: unknown
  try { v = JSON.parse(text) } catch { return bad('is not valid JSON') }
  if (!isObject(v)) return bad('is not a JSON object')
  if (v.zoo_eval !== EVAL_FORMAT) bad(`has format ${JSON.stringify(v.zoo_eval)}; this git-zoo reads ${EVAL_FORMAT}`)
  const model = v.model, data = v.data, metrics = v.metrics, output = v.output
  if (!isObject(model) || typeof model.seal !== 'string' || typeof model.file !== 'string' || typeof model.file_sha256 !== 'string') return bad('model is not { name, version, seal, file, file_sha256 }')
  if (model.seal !== m.seal || model.name !== m.name || model.version !== m.version) bad(`names ${String(model.name)}@v${String(model.version)} seal ${model.seal}, not ${m.name}@v${m.version} seal ${m.seal}`)
  const f = m.files.find((x) => x.path === model.file)
  if (!f || f.sha256 !== model.file_sha256) bad(`names file ${model.file}, which the model does not hold with that sha256`)
  if (!isObject(data) || typeof data.sha256 !== 'string' || !HEX64.test(data.sha256) || !Number.isSafeInteger(data.n) || (data.n as number) < 1) return bad('data is not { sha256, n, ... }')
  if (!isObject(metrics) || typeof metrics.accuracy !== 'number') return bad('metrics.accuracy is missing')
  for (const [k, x] of Object.entries(metrics)) if (typeof x !== 'number' || !Number.isFinite(x)) bad(`metrics.${k} is not a finite number`)
  if (!isObject(output) || typeof output.name !== 'string' || (output.kind !== 'logits' && output.kind !== 'probabilities')) bad('output is not { name, kind }')
  if (!Number.isSafeInteger(v.classes) || (v.classes as number) < 1) bad('classes is not a positive integer')
  if (typeof v.predictions_sha256 !== 'string' || !HEX64.test(v.predictions_sha256)) bad('predictions_sha256 is not 64 hex digits')
  if (typeof v.created !== 'string') bad('created is missing')
  const r = v as unknown as EvaluationRecord
  if (r.predictions !== undefined && decodePredictions(r) === undefined) bad('predictions do not decode to predictions_sha256')
  if (path) {
    const p = EVAL_PATH.exec(path)
    if (!p || p[1] !== m.name || Number(p[2]) !== m.version || p[3] !== data.sha256) bad('its path does not match its model and data digest')
  }
  return r
}

/**
 * Every evaluation record of a model version in the working tree, oldest first. Records that fail
 * their checks are returned too, with ok: false and the problem, so `show` can say so.
 */
export async function readEvaluations(repo: Repo, manifest: Manifest): Promise<Evaluation[]> {
  const dir = evalsDir(manifest)
  let names: string[]
  try { names = await readdir(join(repo.root, dir)) } catch { return [] }
  const out: Evaluation[] = []
  for (const n of names.sort()) {
    if (!n.endsWith('.json')) continue
    const path = `${dir}/${n}`
    const text = await readFile(join(repo.root, path), 'utf8')
    try {
      out.push({ ...validateEvalRecord(text, manifest, path), path, ok: true })
    } catch (err) {
      if (!(err instanceof FormatError)) throw err
      let raw: Partial<EvaluationRecord> = {}
      try { raw = JSON.parse(text) as Partial<EvaluationRecord> } catch { /* keep empty */ }
      out.push({ ...(raw as EvaluationRecord), path, ok: false, problem: err.message })
    }
  }
  return out.sort((a, b) => String(a.created).localeCompare(String(b.created)))
}

/**
 * The valid record at `path` (where `evalRecordPath` puts `m`'s record on some data), or null when
 * there is none. A file there that does not hold up is E_EVAL_RECORD: it is never overwritten.
 */
export async function recordedEvaluation(repo: Repo, m: Manifest, path: string): Promise<Evaluation | null> {
  if (!(await access(join(repo.root, path)).then(() => true, () => false))) return null
  const existing = (await readEvaluations(repo, m)).find((e) => e.path === path)
  if (existing?.ok) return existing
  throw new FormatError(`${path} exists but is not a valid evaluation record of ${m.name}@v${m.version}${existing?.problem ? ` (${existing.problem})` : ''}; remove it with git rm and run again`, 'E_EVAL_RECORD')
}

/**
 * Add a record as its own commit (only that path is committed; whatever else is staged stays
 * staged). Returns the commit. An existing record at the path is never overwritten: the caller
 * checks first. Signed when the zoo requires it (and refused before anything is written when git
 * cannot sign); on a refused commit the file is removed again and nothing is left staged.
 */
export async function commitEvaluation(repo: Repo, record: EvaluationRecord, path: string, opts: { crashPoint?: (name: string) => void | Promise<void> } = {}): Promise<string> {
  const text = JSON.stringify(record, null, 2) + '\n'
  const m = record.model
  const fmt = (x: number | undefined): string => (x === undefined ? 'n/a' : String(Math.round(x * 1e6) / 1e6))
  const message = `zoo: evaluate ${m.name}@v${m.version} on ${record.data.source}\n\n` +
    `accuracy ${fmt(record.metrics.accuracy)}, loss ${fmt(record.metrics.loss)}${record.metrics.top5 !== undefined ? `, top5 ${fmt(record.metrics.top5)}` : ''} on ${record.data.n} samples\n\n` +
    `Zoo-Model: ${m.name}@v${m.version}\nZoo-Seal: ${m.seal}\nZoo-Eval-Data: ${record.data.sha256}\n`
  return commitFiles(repo, [{ path, data: text }], { message, kind: 'evaluation', refused: 'nothing was recorded', ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}) })
}

/** A record as cards, `show` and `find` list it (src/manifest/card.ts, EvalSummary). */
export function summarizeEvaluation(e: Evaluation): EvalSummary {
  return {
    data: String(e.data?.source ?? ''), data_sha256: String(e.data?.sha256 ?? ''), n: Number(e.data?.n ?? 0),
    file: String(e.model?.file ?? ''), metrics: { ...(e.metrics ?? {}) } as Record<string, number>,
    created: String(e.created ?? ''), by: String(e.evaluator ?? ''), ok: e.ok, ...(e.problem ? { problem: e.problem } : {}),
  }
}
