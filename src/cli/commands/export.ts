import { resolve } from 'node:path'
import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, humanBytes } from '../output.js'
import { Repo } from '../../repo.js'
import { openReader, prefetchFiles, completeManifest } from '../../zoo/reader.js'
import { expandManifest } from '../../manifest/checkpoints.js'
import { openCatalog } from '../../catalog/catalog.js'
import { needsHistory, parseFilter, runQuery } from '../../catalog/query.js'
import { exportPopulation, parseEpochs, parseSplit } from '../../weights/population.js'
import type { Manifest } from '../../manifest/manifest.js'
import { UsageError } from '../../errors.js'
import { crashPoints } from '../crash.js'
import { Progress } from '../output.js'
import { exportHf } from '../../zoo/export-hf.js'
import { readEvaluations, summarizeEvaluation } from '../../evals/record.js'
import { stagesByVersion } from '../../git/stages.js'
import type { Parsed } from '../args.js'
import type { Io } from '../command.js'

/** `export <model> --format hf`: one version as a folder the Hugging Face Hub takes (src/zoo/export-hf.ts). */
async function exportHfRun(args: Parsed, io: Io): Promise<number> {
  if (args.positional.length !== 1) throw new UsageError('name one model: git zoo export <model>[@vN] --format hf --out <dir>', 'E_USAGE')
  const format = str(args, 'format')
  if (format !== 'hf') throw new UsageError(`--format takes hf, not ${JSON.stringify(format)}`, 'E_USAGE')
  for (const f of ['split', 'seed', 'epochs', 'file', 'tensors', 'all-versions', 'include-retired']) {
    if (args.flags[f] !== undefined) throw new UsageError(`--${f} goes with --population, not --format hf`, 'E_USAGE')
  }
  const outArg = str(args, 'out')
  if (!outArg) throw new UsageError('--out <dir> is required: the folder to write the Hub layout into', 'E_USAGE')
  const repo = await Repo.open(io.cwd, io)
  const sealed = await repo.resolve(args.positional[0]!)
  const m = await completeManifest(repo, sealed)
  const { ensureObjects } = await import('../../remote/sync.js')
  await ensureObjects(repo, [sealed], { ...(io.signal ? { signal: io.signal } : {}), point: crashPoints(io) })
  const evaluations = (await readEvaluations(repo, m)).map(summarizeEvaluation)
  const stages = stagesByVersion(await repo.stages(m.name)).get(`${m.name}@v${m.version}`) ?? []
  const store = await repo.openStore()
  const progress = new Progress(io, 'export', m.files.reduce((a, f) => a + f.size, 0))
  let done = 0
  try {
    const r = await exportHf(repo, m, store, resolve(io.cwd, outArg), { evaluations, stages }, {
      onBytes: (n) => { done += n; progress.update(done) },
      ...(io.signal ? { signal: io.signal } : {}),
      crashPoint: crashPoints(io),
      owner: io.host,
    })
    progress.done()
    if (bool(args, 'json')) {
      printJson(io, { name: m.name, version: m.version, seal: m.seal, out: r.out, files: r.files.map(({ path, size, sha256 }) => ({ path, size, sha256 })), card: r.card || null, base_model: r.base_model })
    } else io.err(`exported ${m.name}@v${m.version} to ${r.out} (${r.files.length} file${r.files.length === 1 ? '' : 's'}${r.card ? ' and README.md' : ''}) for the Hugging Face Hub\n`)
  } finally { await store.close() }
  return 0
}

export const command: Command = {
  help: `usage: git zoo export --population [<filter>...] --out <dir> [--split 70/15/15] [--seed <n>]
                       [--epochs <list>] [--file <name>] [--tensors <prefix>] [--json]
       git zoo export <model>[@vN|@<stage>] --format hf --out <dir> [--json]

Export a population of models as a weight-space dataset: every checkpoint of the models the filters
select (the filter language of \`git zoo find\`; no filter: every model) becomes one float32 row
holding the model's float tensors flattened in a fixed order (the first model's file order). Writes:

  <dir>/train.npz, val.npz, test.npz   arrays w [rows, width] float32, model [rows] int64 (an index
                                       into models.json), epoch [rows] int64 (-1: no epoch)
  <dir>/models.json                    per model: name, version, seal, split, dataset, arch, seed,
                                       factors (params), metrics, epochs
  <dir>/index.json                     per tensor: name, shape, offset (in a row), dtype

Models are split, never checkpoints: all rows of a model are in one file. The split depends only on
--seed and the models' names and versions. Models whose tensors differ in names or shapes are
refused, naming them. Tensors that are not floats (counters, masks) are left out. Weights are read
from safetensors files and torch.save checkpoints (companion optimizer files are not weights).
Memory stays bounded whatever the population's size. Format: spec/export.md.

With --format hf, one model version becomes a folder the Hugging Face Hub takes as is
(\`huggingface-cli upload <repo> <dir>\`): the model's files exactly as stored (weights, sharded
safetensors with their model.safetensors.index.json, config.json, tokenizer files, ...; every byte
verified against its sealed digest), the training config snapshot, and README.md: the model card
with the Hub's front matter (license, base_model: the Hub ids of parents that came from the Hub,
base_model_relation in the Hub's words, datasets, tags, model-index with the final metrics and
every recorded evaluation). Format: spec/hf.md.

flags:
  --population          export a population's weights
  --format hf           export one model version for the Hugging Face Hub
  --out <dir>           the output folder (new or empty; required)
  --split <a/b/c>       relative sizes of train/val/test (default 70/15/15)
  --seed <n>            the seed of the split (default 0)
  --epochs <list>       only these epochs of each trajectory, e.g. 0,10,40-50 (each model needs all)
  --file <name>         the weights file's name inside each checkpoint, when there are several
  --tensors <prefix>    only tensors whose name starts with <prefix>, e.g. state_dict. when a
                        checkpoint dict also holds optimizer state (torch names: spec/formats.md)
  --all-versions        every version in service, not only the latest of each model
  --include-retired     retired versions count too
  --json                print { out, models, rows, split_models, width, tensors, excluded, bytes }
                        (--format hf: { name, version, seal, out, files: [{ path, size, sha256 }],
                        card, base_model })

examples:
  git zoo export --population dataset=cifar10 --out zoo-cifar10 --seed 1
  git zoo export --population 'arch=cnn-s' 'test_acc>0.5' --out ds --split 80/10/10 --epochs 0,25,50
  git zoo export bert/imdb@prod --format hf --out /tmp/bert-imdb
`,
  interrupted: 'nothing was written, run the same command again',
  flags: {
    population: { type: 'bool' },
    format: { type: 'string', value: 'hf' },
    out: { type: 'string', value: 'dir' },
    split: { type: 'string', value: 'a/b/c' },
    seed: { type: 'string', value: 'n' },
    epochs: { type: 'string', value: 'list' },
    file: { type: 'string', value: 'name' },
    tensors: { type: 'string', value: 'prefix' },
    'all-versions': { type: 'bool' },
    'include-retired': { type: 'bool' },
    json: { type: 'bool' },
  },
  async run(args, io) {
    if (str(args, 'format') !== undefined && !bool(args, 'population')) return exportHfRun(args, io)
    if (str(args, 'format') !== undefined) throw new UsageError('--format and --population do not go together: --population writes a dataset, --format hf one model', 'E_USAGE')
    if (!bool(args, 'population')) throw new UsageError('say what to export: --population writes the weights of the selected models as a dataset; <model> --format hf writes one model for the Hugging Face Hub', 'E_USAGE')
    const out = str(args, 'out')
    if (!out) throw new UsageError('--out <dir> is required: the folder the dataset is written to', 'E_USAGE')
    const split = parseSplit(str(args, 'split') ?? '70/15/15')
    const seed = int(args, 'seed') ?? 0
    const epochs = str(args, 'epochs') !== undefined ? parseEpochs(str(args, 'epochs')!) : undefined
    const filters = args.positional.map(parseFilter)
    const repo = await Repo.open(io.cwd, io)
    const opened = await openCatalog({ cwd: io.cwd, env: io.env, refresh: false, history: filters.some((f) => needsHistory(f.field)) })
    const refs: string[] = []
    try {
      const c = opened.file
      const q = runQuery(c, { filters, sort: [], allVersions: bool(args, 'all-versions'), includeRetired: bool(args, 'include-retired') })
      for (const r of q.rows) refs.push(`${c.str('name', r)}@v${c.f64('version')![r]}`)
    } finally { opened.file.close() }
    const models: Manifest[] = []
    const store = await openReader(repo)
    try {
      // complete views: a trajectory's checkpoint files are in its checkpoint node
      for (const ref of refs) models.push(await expandManifest(await repo.resolve(ref), store))
      const r = await exportPopulation(models, store, {
        out: resolve(io.cwd, out), split, seed, ...(epochs ? { epochs } : {}), ...(str(args, 'file') !== undefined ? { file: str(args, 'file')! } : {}),
        ...(str(args, 'tensors') !== undefined ? { tensors: str(args, 'tensors')! } : {}),
        prefetch: (files) => prefetchFiles(store, files),
        ...(io.tty ? { progress: (done: number, total: number) => { if (done === total || done % 64 === 0) io.err(`\rexport: ${done}/${total} checkpoints${done === total ? '\n' : ''}`) } } : {}),
        ...(io.signal ? { signal: io.signal } : {}), crashPoint: crashPoints(io),
      })
      if (r.excluded.length) io.err(`git zoo: note: ${r.excluded.length} tensor${r.excluded.length === 1 ? ' is' : 's are'} not float and left out: ${r.excluded.slice(0, 4).map((e) => `${e.name} (${e.dtype})`).join(', ')}${r.excluded.length > 4 ? ', ...' : ''}\n`)
      if (bool(args, 'json')) printJson(io, r)
      else io.out(`exported ${r.models} models (${r.split_models.train}/${r.split_models.val}/${r.split_models.test}), ${r.rows.train + r.rows.val + r.rows.test} checkpoints of ${r.width} weights (${r.tensors} tensors) to ${out} (${humanBytes(r.bytes)})\n`)
      return 0
    } finally {
      await store.close()
    }
  },
}
