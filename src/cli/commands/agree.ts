import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { CommandReader } from '../../zoo/reader.js'
import type { Dataset } from '../../evals/data.js'
import { DATA_FLAGS, dataFlags } from '../data-flags.js'
import { decodePredictions, readEvaluations } from '../../evals/record.js'
import { agreement } from '../../evals/metrics.js'
import type { Manifest } from '../../manifest/manifest.js'
import type { Store } from '../../cas/store.js'
import { UsageError } from '../../errors.js'

interface Side { manifest: Manifest; predictions: Int32Array; source: 'recorded' | 'computed'; accuracy: number; file: string }

/** The model's predictions on `data`: from its evaluation record when there is one, else by running it. */
async function predictionsOf(repo: Repo, m: Manifest, data: Dataset, getStore: () => Promise<Store>, file: string | undefined, batchSize?: number, signal?: AbortSignal): Promise<Side> {
  const records = (await readEvaluations(repo, m)).filter((e) => e.ok && e.data.sha256 === data.sha256 && (file === undefined || e.model.file === file))
  const usable = records.map((r) => ({ r, p: decodePredictions(r) })).filter((x) => x.p !== undefined)
  if (usable.length === 1 || (usable.length > 1 && new Set(usable.map((u) => u.r.model.file)).size === 1)) {
    const { r, p } = usable[usable.length - 1]!
    return { manifest: m, predictions: p!, source: 'recorded', accuracy: r.metrics.accuracy, file: r.model.file }
  }
  const { evaluateModel } = await import('../../evals/run.js')
  const e = await evaluateModel(repo, m, await getStore(), data, { ...(file ? { file } : {}), ...(batchSize ? { batchSize } : {}), ...(signal ? { signal } : {}) })
  return { manifest: m, predictions: e.predictions, source: 'computed', accuracy: e.record.metrics.accuracy, file: e.record.model.file }
}

export const command: Command = {
  help: `usage: git zoo agree <model> <model> --data <file> [--json]

The hard agreement rate of two models on a labelled dataset: the fraction of samples on which their
predicted classes (argmax) are equal, as in the Model Zoos paper. Predictions come from the models'
evaluation records for the same data (see \`git zoo eval\`) when present; a model without one is run
with onnxruntime (and nothing is recorded; in a lazy clone its objects are fetched from the zoo
remotes, each checked against its CID). The data format is eval's (spec/eval.md).

flags:
  --data <file>        <stem>.x.npy (with <stem>.y.npy) or an .npz holding x and y (required)
  --labels <file>      the labels .npy, when not <stem>.y.npy
  --file <path>        which ONNX file, when a model has several (applies to both)
  --batch-size <n>     samples per onnxruntime run for models that are run
  --json               print { a, b, data: { sha256, source, n }, agree, n, rate }

examples:
  git zoo eval grid/seed1 --data data/taskA-test.x.npy && git zoo eval grid/seed2 --data data/taskA-test.x.npy
  git zoo agree grid/seed1 grid/seed2 --data data/taskA-test.x.npy
`,
  interrupted: 'the models\' temporary copies were removed; run the same command again',
  flags: {
    ...DATA_FLAGS,
    file: { type: 'string', value: 'path' },
    json: { type: 'bool' },
  },
  async run(args, io) {
    if (args.positional.length !== 2) throw new UsageError('name two models: git zoo agree <model> <model> --data <file>', 'E_USAGE')
    const { batchSize, open: openData } = dataFlags(args, io)
    const repo = await Repo.open(io.cwd, io)
    const reader = new CommandReader(repo) // opened if a checkpoint node is read or a model is run
    try {
      const ma = await reader.complete(await repo.resolve(args.positional[0]!))
      const mb = await reader.complete(await repo.resolve(args.positional[1]!))
      const data = await openData()
      try {
        const file = str(args, 'file')
        const a = await predictionsOf(repo, ma, data, () => reader.store(), file, batchSize, io.signal)
        const b = await predictionsOf(repo, mb, data, () => reader.store(), file, batchSize, io.signal)
        const r = agreement(a.predictions, b.predictions)
        const side = (s: Side) => ({ name: s.manifest.name, version: s.manifest.version, seal: s.manifest.seal, file: s.file, predictions: s.source, accuracy: s.accuracy })
        if (bool(args, 'json')) {
          printJson(io, { a: side(a), b: side(b), data: { sha256: data.sha256, source: data.source, n: data.n }, agree: r.agree, n: r.n, rate: r.rate })
        } else {
          io.out(`hard agreement ${(Math.round(r.rate * 1e6) / 1e6)} (${r.agree} of ${r.n} samples) on ${data.source}\n` +
            `  a: ${ma.name}@v${ma.version}  accuracy ${Math.round(a.accuracy * 1e6) / 1e6}  (${a.source})\n` +
            `  b: ${mb.name}@v${mb.version}  accuracy ${Math.round(b.accuracy * 1e6) / 1e6}  (${b.source})\n`)
        }
        return 0
      } finally {
        await data.close()
      }
    } finally {
      await reader.close()
    }
  },
}
