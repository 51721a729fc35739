/**
 * Running a zoo model with onnxruntime-node (loaded only here, lazily). The model is written, every
 * byte verified, into a fresh temp folder holding only manifest files: the ONNX file and the
 * external-data files it names. External data that would leave that folder (`..`, absolute paths,
 * symbolic links) or that names a file the model does not have is refused before onnxruntime sees
 * the model. spec/eval.md.
 */
import { mkdtemp, rm, lstat, realpath } from 'node:fs/promises'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, posix, sep } from 'node:path'
import type { FileEntry, Manifest } from '../manifest/manifest.js'
import type { Store } from '../cas/store.js'
import { writeModelFiles } from '../zoo/checkout.js'
import { readOnnxLayout, type OnnxLayout } from '../onnx/inspect.js'
import { externalPathProblem } from '../weights/tensors.js'
import { ClassificationMetrics, type ClassificationResult, type OutputKind } from './metrics.js'
import type { Dataset } from './data.js'
import { CheckError, UsageError, ZooError, errorMessage } from '../errors.js'

export interface PreparedModel {
  dir: string
  onnxPath: string
  file: FileEntry
  layout: OnnxLayout
  /** Manifest paths written into `dir` (the ONNX file first). */
  written: string[]
  cleanup(): Promise<void>
}

/** The ONNX file of a model to evaluate: `path` if given, else the only one (the last epoch's if several have epochs). */
export function chooseOnnxFile(m: Manifest, path?: string): FileEntry {
  const onnx = m.files.filter((f) => f.format === 'onnx')
  if (path !== undefined) {
    const f = m.files.find((x) => x.path === path)
    if (!f) throw new UsageError(`model ${m.name}@v${m.version} has no file ${path}`, 'E_USAGE')
    if (f.format !== 'onnx') throw new UsageError(`${path} of ${m.name}@v${m.version} is ${f.format}, not ONNX`, 'E_NO_ONNX')
    return f
  }
  if (onnx.length === 0) {
    throw new UsageError(`model ${m.name}@v${m.version} has no ONNX file (it holds ${[...new Set(m.files.map((f) => f.format))].join(', ')}); eval runs ONNX models: add an exported model.onnx`, 'E_NO_ONNX')
  }
  if (onnx.length === 1) return onnx[0]!
  const withEpoch = onnx.filter((f) => f.epoch !== undefined)
  if (withEpoch.length === onnx.length) {
    const last = Math.max(...withEpoch.map((f) => f.epoch!))
    const atLast = withEpoch.filter((f) => f.epoch === last)
    if (atLast.length === 1) return atLast[0]!
  }
  throw new UsageError(`model ${m.name}@v${m.version} has ${onnx.length} ONNX files (${onnx.map((f) => f.path).join(', ')}); choose one with --file <path>`, 'E_USAGE')
}

/** Write the model's ONNX file and its external data into a new temp folder, refusing escapes. */
export async function prepareOnnx(m: Manifest, store: Store, opts: { file?: string; tmpRoot?: string; signal?: AbortSignal; crashPoint?: (name: string) => void | Promise<void> } = {}): Promise<PreparedModel> {
  const file = chooseOnnxFile(m, opts.file)
  const dir = await mkdtemp(join(opts.tmpRoot ?? tmpdir(), 'git-zoo-eval-'))
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true })
  try {
    await writeModelFiles(m, store, dir, { only: (p) => p === file.path, ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}) })
    const onnxPath = join(dir, ...file.path.split('/'))
    const fd = await open(onnxPath, 'r')
    let layout: OnnxLayout
    try {
      const { size } = await fd.stat()
      layout = await readOnnxLayout(async (o, l) => { const b = Buffer.alloc(l); const { bytesRead } = await fd.read(b, 0, l, o); return b.subarray(0, bytesRead) }, size)
    } finally { await fd.close() }
    const base = posix.dirname(file.path)
    const needed = new Set<string>()
    for (const t of layout.initializers) {
      if (!t.external) continue
      const loc = t.external.location
      const why = externalPathProblem(loc)
      if (why) {
        throw new CheckError(`refusing to load ${m.name}@v${m.version}:${file.path}: initializer ${JSON.stringify(t.name)} takes its data from ${JSON.stringify(loc)} (${why}); external data must be a file of the model in the ONNX file's folder or below`, 'E_ONNX_EXTERNAL', { model: m.name, location: loc })
      }
      const path = posix.normalize(base === '.' ? loc : `${base}/${loc}`)
      if (!m.files.some((f) => f.path === path)) {
        throw new CheckError(`refusing to load ${m.name}@v${m.version}:${file.path}: initializer ${JSON.stringify(t.name)} takes its data from ${loc}, which is not a file of the model`, 'E_ONNX_EXTERNAL', { model: m.name, location: loc })
      }
      needed.add(path)
    }
    needed.delete(file.path)
    if (needed.size) await writeModelFiles(m, store, dir, { only: (p) => needed.has(p), ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}) })
    // the folder is ours and fresh, so nothing in it should be a link; check anyway before loading
    const real = await realpath(dir)
    for (const p of [file.path, ...needed]) {
      let cur = dir
      for (const seg of p.split('/')) {
        cur = join(cur, seg)
        if ((await lstat(cur)).isSymbolicLink()) throw new CheckError(`refusing to load: ${p} is a symbolic link`, 'E_ONNX_EXTERNAL')
      }
      const rp = await realpath(join(dir, ...p.split('/')))
      if (!rp.startsWith(real + sep)) throw new CheckError(`refusing to load: ${p} resolves outside the model folder`, 'E_ONNX_EXTERNAL')
    }
    return { dir, onnxPath, file, layout, written: [file.path, ...needed], cleanup }
  } catch (err) {
    await cleanup()
    throw err
  }
}

export interface RunOptions {
  batchSize?: number
  /** Graph input and output names; default the only input and the first output. */
  input?: string
  output?: string
  outputKind?: OutputKind | 'auto'
  onRows?: (done: number, total: number) => void
  /** Checked between batches: an abort throws its reason (the caller removes the model folder). */
  signal?: AbortSignal
}

export interface RunResult extends ClassificationResult {
  input: string
  output: string
  runtime: { onnxruntime: string }
}

type Ort = typeof import('onnxruntime-node')

async function loadOrt(): Promise<Ort> {
  try {
    return await import('onnxruntime-node')
  } catch (err) {
    throw new ZooError(`could not load onnxruntime-node (${errorMessage(err)}); reinstall git-zoo's dependencies with npm install`, 'E_ORT_MISSING', {}, { cause: err })
  }
}

export async function ortVersion(): Promise<string> {
  try {
    const { createRequire } = await import('node:module')
    const req = createRequire(import.meta.url)
    return (req('onnxruntime-node/package.json') as { version: string }).version
  } catch { return 'unknown' }
}

/** Run a classifier over a dataset; returns metrics and the argmax predictions. */
export async function runClassifier(model: PreparedModel, data: Dataset, opts: RunOptions = {}): Promise<RunResult> {
  const ort = await loadOrt()
  let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>
  try {
    session = await ort.InferenceSession.create(model.onnxPath, { intraOpNumThreads: 2, interOpNumThreads: 1 })
  } catch (err) {
    throw new ZooError(`onnxruntime could not load ${model.file.path}: ${errorMessage(err)}`, 'E_ORT_LOAD', { path: model.file.path }, { cause: err })
  }
  try {
    const inputs = session.inputNames
    const input = opts.input ?? (inputs.length === 1 ? inputs[0]! : undefined)
    if (!input || !inputs.includes(input)) throw new UsageError(`the model has inputs ${inputs.join(', ')}; name the one that takes x with --input`, 'E_USAGE')
    const output = opts.output ?? session.outputNames[0]!
    if (!session.outputNames.includes(output)) throw new UsageError(`the model has no output ${output} (it has ${session.outputNames.join(', ')})`, 'E_USAGE')
    const meta = session.inputMetadata.find((v) => v.name === input)
    let fixedBatch: number | undefined
    if (meta && meta.isTensor) {
      if (meta.type !== 'float32') throw new UsageError(`input ${input} takes ${meta.type}; eval feeds float32`, 'E_EVAL_INPUT')
      const shape = meta.shape
      if (shape.length !== data.rowShape.length + 1) {
        throw new UsageError(`input ${input} has shape [${shape.join(', ')}] but x rows have shape [${data.rowShape.join(', ')}] (x is ${data.x.shape.join('x')})`, 'E_EVAL_INPUT')
      }
      shape.slice(1).forEach((d, i) => {
        if (typeof d === 'number' && d >= 0 && d !== data.rowShape[i]) {
          throw new UsageError(`input ${input} has shape [${shape.join(', ')}] but x rows have shape [${data.rowShape.join(', ')}]`, 'E_EVAL_INPUT')
        }
      })
      if (typeof shape[0] === 'number' && shape[0] > 0) fixedBatch = shape[0]
    }
    const batch = fixedBatch ?? Math.max(1, opts.batchSize ?? 256)
    const rowSize = data.rowShape.reduce((a, b) => a * b, 1)
    let metrics: ClassificationMetrics | undefined
    for (let start = 0; start < data.n; start += batch) {
      opts.signal?.throwIfAborted()
      const rows = Math.min(batch, data.n - start)
      let x = await data.readRows(start, rows)
      const fed = fixedBatch ?? rows
      if (fed !== rows) { const padded = new Float32Array(fed * rowSize); padded.set(x); x = padded }
      const result = await session.run({ [input]: new ort.Tensor('float32', x, [fed, ...data.rowShape]) }, [output])
      const out = result[output]!
      if (out.type !== 'float32' && out.type !== 'float64' && out.type !== 'float16') throw new UsageError(`output ${output} is ${out.type}; eval reads float scores (logits or probabilities)`, 'E_EVAL_OUTPUT')
      const dims = out.dims
      if (dims[0] !== fed) throw new UsageError(`output ${output} has shape [${dims.join(', ')}]; its first dimension must be the batch (${fed})`, 'E_EVAL_OUTPUT')
      const classes = dims.slice(1).reduce((a, b) => a * b, 1)
      metrics ??= new ClassificationMetrics(data.n, classes)
      if (classes !== metrics.classes) throw new UsageError(`output ${output} changed from ${metrics.classes} to ${classes} classes between batches`, 'E_EVAL_OUTPUT')
      const values = out.data instanceof Float32Array ? out.data : Float32Array.from(out.data as ArrayLike<number>)
      metrics.add(values.subarray(0, rows * classes), rows, data.labels.subarray(start, start + rows))
      opts.onRows?.(start + rows, data.n)
    }
    metrics ??= new ClassificationMetrics(0, 1)
    return { ...metrics.result(opts.outputKind ?? 'auto'), input, output, runtime: { onnxruntime: await ortVersion() } }
  } finally {
    await session.release().catch(() => {})
  }
}
