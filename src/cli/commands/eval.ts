import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { DATA_FLAGS, dataFlags } from '../data-flags.js'
import { printJson, Progress } from '../output.js'
import { Repo } from '../../repo.js'
import { CommandReader, prefetchFiles } from '../../zoo/reader.js'
import { checkSigningPolicy } from '../../zoo/commit.js'
import { commitEvaluation, evalRecordPath, recordedEvaluation, type EvaluationRecord } from '../../evals/record.js'
import { UsageError } from '../../errors.js'
import type { OutputKind } from '../../evals/metrics.js'
import { crashPoints } from '../crash.js'

export function outputKindFlag(v: string | undefined): OutputKind | 'auto' {
  if (v === undefined || v === 'auto') return 'auto'
  if (v === 'logits' || v === 'probabilities') return v
  throw new UsageError(`--outputs takes auto, logits or probabilities, not ${JSON.stringify(v)}`, 'E_USAGE')
}

function fmt(x: number | undefined): string { return x === undefined ? 'n/a' : (Math.round(x * 1e6) / 1e6).toString() }

export function describeRecord(r: EvaluationRecord): string {
  const lines = [`${r.model.name}@v${r.model.version} (${r.model.file}) on ${r.data.source}: ${r.data.n} samples, ${r.classes} classes, outputs read as ${r.output.kind}`]
  lines.push(`  accuracy  ${fmt(r.metrics.accuracy)}`)
  lines.push(`  loss      ${fmt(r.metrics.loss)}`)
  if (r.metrics.top5 !== undefined) lines.push(`  top5      ${fmt(r.metrics.top5)}`)
  return lines.join('\n') + '\n'
}

export const command: Command = {
  help: `usage: git zoo eval <model>[@vN] --data <file> [options]

Run the model's ONNX file with onnxruntime over a labelled dataset and report accuracy, mean
cross-entropy loss and (with more than 5 classes) top-5 accuracy. The result is recorded beside the
sealed model as models/<name>/v<N>/evals/<data-sha256>.json, linked to the model's seal and committed
on its own; the sealed manifest never changes. A model evaluated on the same data before is not run
again: its record is shown.

The model is written, every byte verified, into a fresh temp folder holding only its files; ONNX
external data that points outside it (.., absolute paths, symbolic links) is refused before loading.
In a lazy clone the model's objects are fetched from the zoo remotes, each checked against its CID.

Data (spec/eval.md): NumPy arrays x (float, [N, ...]) and y (integer labels, [N]) as
  <stem>.x.npy with <stem>.y.npy beside it (or --labels <file>), or
  <stem>.npz holding arrays x and y (np.savez or np.savez_compressed).

flags:
  --data <file>            the inputs: <stem>.x.npy or <stem>.npz (required)
  --labels <file>          the labels .npy, when not <stem>.y.npy
  --file <path>            which ONNX file of the model (when it has several)
  --batch-size <n>         samples per onnxruntime run (default 256; a fixed batch dimension wins)
  --input <name>           the graph input that takes x (default: the only one)
  --output <name>          the graph output holding scores (default: the first)
  --outputs <kind>         auto (default), logits or probabilities: how outputs are read for the loss
  --no-record              run and print, record nothing
  --json                   print { name, version, seal, file, data, classes, output_kind, metrics,
                           predictions_sha256, recorded, existing, path, commit }

examples:
  git zoo eval mlp/glyphs --data data/taskA-test.x.npy
  git zoo eval vit-s/cifar100/ft@v2 --data cifar100-test.npz --json
`,
  interrupted: 'nothing was recorded, and the model\'s temporary copy was removed; run the same command again',
  flags: {
    ...DATA_FLAGS,
    file: { type: 'string', value: 'path' },
    input: { type: 'string', value: 'name' },
    output: { type: 'string', value: 'name' },
    outputs: { type: 'string', value: 'kind' },
    'no-record': { type: 'bool' },
    json: { type: 'bool' },
  },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one model: git zoo eval <model>[@vN] --data <file>', 'E_USAGE')
    const { batchSize, open: openData } = dataFlags(args, io)
    const outputKind = outputKindFlag(str(args, 'outputs'))
    const repo = await Repo.open(io.cwd, io)
    const record = !bool(args, 'no-record')
    // a zoo that requires signed commits refuses an unsignable record before the evaluation runs
    if (record) await checkSigningPolicy(repo)
    const reader = new CommandReader(repo) // opened for the checkpoint node, or to run the model
    try {
      const m = await reader.complete(await repo.resolve(args.positional[0]!))
      const { chooseOnnxFile } = await import('../../evals/onnx-session.js')
      const file = chooseOnnxFile(m, str(args, 'file'))
      const data = await openData()
      const json = bool(args, 'json')
      try {
        const path = evalRecordPath(m, data.sha256, file)
        const existing = record ? await recordedEvaluation(repo, m, path) : null
        if (existing) {
          if (json) printJson(io, summary(existing, { recorded: true, existing: true, path }))
          else io.out(describeRecord(existing) + `already recorded in ${path}; not run again (use --no-record to run without recording)\n`)
          return 0
        }
        const store = await reader.store()
        let result
        try {
          await prefetchFiles(store, [file]) // a lazy clone fetches the graph ahead, several objects at once
          const { evaluateModel } = await import('../../evals/run.js')
          const rowBytes = data.rowShape.reduce((a, b) => a * b, 1) * Number(data.x.descr.slice(2)) // progress in bytes of x
          const progress = new Progress(io, 'eval', data.n * rowBytes)
          result = await evaluateModel(repo, m, store, data, {
            file: file.path, onRows: (done) => progress.update(done * rowBytes), ...(batchSize ? { batchSize } : {}), outputKind,
            ...(io.signal ? { signal: io.signal } : {}), crashPoint: crashPoints(io),
            ...(str(args, 'input') ? { input: str(args, 'input')! } : {}), ...(str(args, 'output') ? { output: str(args, 'output')! } : {}),
          })
          progress.done()
        } finally { await reader.close() } // before the record is committed
        let commit: string | undefined
        if (record) commit = await commitEvaluation(repo, result.record, result.path, { crashPoint: crashPoints(io) })
        if (json) printJson(io, summary(result.record, { recorded: record, existing: false, ...(record ? { path: result.path } : {}), ...(commit ? { commit } : {}) }))
        else io.out(describeRecord(result.record) + (commit ? `recorded in ${result.path} (commit ${commit.slice(0, 12)})\n` : ''))
        return 0
      } finally {
        await data.close()
      }
    } finally {
      await reader.close()
    }
  },
}

function summary(r: EvaluationRecord, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    name: r.model.name, version: r.model.version, seal: r.model.seal, file: r.model.file,
    data: { sha256: r.data.sha256, source: r.data.source, n: r.data.n },
    classes: r.classes, output_kind: r.output.kind, metrics: r.metrics, predictions_sha256: r.predictions_sha256,
    ...extra,
  }
}
