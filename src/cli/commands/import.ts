import { resolve } from 'node:path'
import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, Progress, humanBytes, summary, warnIfUnsigned } from '../output.js'
import { Repo } from '../../repo.js'
import { importZoo } from '../../importer/import.js'
import { LAYOUTS, type Layout } from '../../importer/layout.js'
import { UsageError } from '../../errors.js'
import { crashPoints } from '../crash.js'
import { importHf } from '../../importer/hf.js'
import type { Parsed } from '../args.js'
import type { Io } from '../command.js'

/** `import --layout hf`: one Hugging Face snapshot folder as one model version (src/importer/hf.ts). */
async function importHfRun(args: Parsed, io: Io): Promise<number> {
  if (bool(args, 'dry-run') || str(args, 'batch')) throw new UsageError('--dry-run and --batch do not apply to --layout hf (one snapshot is one model)', 'E_USAGE')
  const repo = await Repo.open(io.cwd, io)
  const progress = new Progress(io, 'import', 0)
  const prefix = str(args, 'prefix')?.replace(/^\/+|\/+$/g, '')
  const r = await importHf(repo, resolve(io.cwd, args.positional[0]!), {
    ...(str(args, 'name') ? { name: str(args, 'name')! } : {}),
    ...(prefix ? { prefix } : {}),
    allowDirty: bool(args, 'allow-dirty'),
    allowMalformed: bool(args, 'allow-malformed'),
    onProgress: (done, total) => { progress.total = total; progress.update(done) },
    crashPoint: crashPoints(io),
    ...(io.signal ? { signal: io.signal } : {}),
  })
  progress.done()
  for (const w of r.result.warnings) io.err(`git zoo: warning: ${w}\n`)
  if (bool(args, 'json')) {
    printJson(io, { layout: 'hf', name: r.result.name, version: r.result.version, seal: r.result.seal, commit: r.commit, files: r.result.files, stored_bytes: r.result.stored_bytes, parents: r.parents, hub_base_models: r.hub_base_models })
  } else {
    io.err(`git zoo: imported ${r.result.name}@v${r.result.version} from a Hugging Face snapshot (${r.result.files.length} files, ${humanBytes(r.result.stored_bytes)} newly stored${r.parents.length ? `; ${r.parents.map((p) => `${p.relation} of ${p.name}@v${p.version}`).join(', ')}` : ''}${r.hub_base_models.length ? `; base model${r.hub_base_models.length > 1 ? 's' : ''} not in this zoo: ${r.hub_base_models.join(', ')}` : ''}) in ${r.commit.slice(0, 12)}\n`)
  }
  return 0
}

export const command: Command = {
  help: `usage: git zoo import <dir> [--layout model-zoos|vit|generic|auto] [--prefix <name>] [--batch <n>] [--dry-run] [--json]
       git zoo import --layout hf <snapshot dir> [--name <model>] [--prefix <name>] [--allow-malformed] [--json]

Promote every model found in <dir> as one commit: checkpoints stored (deduplicated: tensors equal
across epochs or models are stored once), a sealed manifest and model card per model, lineage from
the folder nesting. Each model folder's config.json / params.json gives the seed, dataset, arch and
params; its result.json (or metrics.json(l), metrics.csv, progress.csv) the per-epoch history.

layouts (spec/import.md):
  model-zoos  <dir>/.../<model>/checkpoint_<epoch>/..., params.json or config.json, result.json
  vit         <dir>/pretraining/<model>/... and <dir>/finetuning/<pretrained>/<model>/...: each
              fine-tune becomes a child (relation fine-tune) of pretraining/<pretrained>
  generic     any folder with checkpoint folders or weight files (.safetensors .onnx .pt .bin
              .gguf .npy ...) is a model; a model folder inside another is its fine-tune
  auto        (default) vit if pretraining/ or finetuning/ exist, else model-zoos if checkpoint
              folders exist, else generic
  hf          <dir> is one Hugging Face Hub snapshot (save_pretrained, huggingface-cli download,
              or the cache's models--<org>--<name>/snapshots/<rev>): one model version, its files
              as they are (sharded safetensors checked against model.safetensors.index.json),
              README.md as its card (license, datasets, model-index metrics), lineage from the
              card's base_model (a zoo model, or recorded as params.hf_base_model); spec/hf.md
Factors are read as the published zoos' authors write them: "dataset::name", else the dataset a
"dataset::dump" path names (zoos/CIFAR10/.../dataset.pt is CIFAR10); "model::type"; "seed" (not
"model::head::seed"). A config key "parent" (a folder relative to <dir>, or a zoo model name) and
"relation" override the nesting; without either, "training::init_checkpoint_path" (Model Zoos'
sparsified twins: relation sparsified) or "pretraining::model" (fine-tune) names the parent,
found by folder, Ray trial id or name prefix. Ray's -999 placeholders are no metric values.
Optimizer state and Ray metadata in a checkpoint folder are kept with it, marked as not weights.
A zoo's config.json / index_dict.json / readme.md beside its models go to zoos/<name>/, and each
manifest names its "population"; a population member is committed without a README.md card
(\`git zoo show <model> --card\` renders it). Model names are the folder paths (lower-cased; other
characters become -), under --prefix when given.

Resumable: a model the zoo already holds with identical content (same name, file paths, sizes,
sha256 and config) is skipped, so running the same import again after an interruption promotes
only what is missing; an import that was killed leaves no commit, and objects it already stored are
not stored again. A commit holds at most 250 models (parents first; --batch <n> chooses n), so a
long import keeps its progress and its memory stays flat however many models it imports. Ctrl-C
stops it cleanly (exit 130): the commit in progress is not made, stored objects are kept.

flags:
  --layout <l>     model-zoos, vit, generic or auto (default)
  --prefix <name>  put every model under this name, e.g. --prefix zoos/mnist
  --batch <n>      one commit per n models (default 250; each commit is one promotion)
  --name <model>   (hf) the model's name; default: the Hub id or the folder name, under --prefix
  --allow-malformed  (hf) store malformed files as opaque bytes instead of refusing them
  --dry-run        list what would be promoted, store nothing
  --allow-dirty    promote even if tracked code has uncommitted changes (recorded as dirty)
  --json           print { layout, populations, models: [{ name, version, seal, status }],
                   promoted, unchanged, commits, checkpoints, files, bytes, stored_bytes, seconds }

examples:
  git zoo import ~/zoos/mnist-uniform --prefix mz/mnist-uniform
  git zoo import ./vit-zoo --layout vit --prefix vit
  git zoo import runs/ --dry-run --json | jq '.models[].name'
`,
  interrupted: 'the models of the commit in progress were not committed (earlier --batch commits stay); run the same command again to resume',
  flags: {
    layout: { type: 'string', value: 'layout' },
    prefix: { type: 'string', value: 'name' },
    batch: { type: 'string', value: 'n' },
    'dry-run': { type: 'bool' },
    'allow-dirty': { type: 'bool' },
    name: { type: 'string', value: 'model' },
    'allow-malformed': { type: 'bool' },
    json: { type: 'bool' },
  },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one directory: git zoo import <dir>', 'E_USAGE')
    const layout = str(args, 'layout') ?? 'auto'
    if (layout === 'hf') return importHfRun(args, io)
    if (str(args, 'name') || bool(args, 'allow-malformed')) throw new UsageError('--name and --allow-malformed go with --layout hf', 'E_USAGE')
    if (!(LAYOUTS as readonly string[]).includes(layout)) throw new UsageError(`--layout takes ${LAYOUTS.join(', ')}, not ${JSON.stringify(layout)}`, 'E_USAGE')
    const prefix = str(args, 'prefix')?.replace(/^\/+|\/+$/g, '')
    const repo = await Repo.open(io.cwd, io)
    const progress = new Progress(io, 'import', 0)
    const batch = int(args, 'batch')
    const r = await importZoo(repo, resolve(io.cwd, args.positional[0]!), {
      layout: layout as Layout | 'auto',
      ...(prefix ? { prefix } : {}),
      ...(batch !== undefined ? { batch } : {}),
      allowDirty: bool(args, 'allow-dirty'),
      dryRun: bool(args, 'dry-run'),
      onPhase: (t) => { if (io.tty) { progress.done(); io.err(`git zoo: ${t}`) } },
      onProgress: (done, total) => { progress.total = total; progress.update(done) },
      crashPoint: crashPoints(io),
      ...(io.signal ? { signal: io.signal } : {}),
    })
    progress.done()
    for (const c of r.commits) await warnIfUnsigned(io, repo, c)
    if (bool(args, 'json')) printJson(io, r)
    else {
      const rate = r.seconds > 0 ? Math.round(r.checkpoints / r.seconds) : 0
      if (bool(args, 'dry-run')) for (const m of r.models) io.out(`${m.status === 'unchanged' ? 'unchanged' : 'would promote'}  ${m.name}${m.parent ? `  (child of ${m.parent})` : ''}\n`)
      summary(io, `git zoo: ${bool(args, 'dry-run') ? 'would import' : 'imported'} ${r.promoted || r.models.filter((m) => m.status === 'planned').length} model(s) (${r.unchanged} unchanged) from a ${r.layout} layout: ` +
        `${r.checkpoints} checkpoints, ${r.files} files, ${humanBytes(r.bytes)} read, ${humanBytes(r.stored_bytes)} newly stored, ` +
        `${r.seconds.toFixed(1)} s (${rate} checkpoints/s)${r.commits.length ? ` in ${r.commits.length} commit(s) ${r.commits.map((c) => c.slice(0, 12)).join(' ')}` : ''}\n`)
    }
    return 0
  },
}
