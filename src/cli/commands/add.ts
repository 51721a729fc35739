import { resolve } from 'node:path'
import { readFile } from 'node:fs/promises'
import type { Command } from '../command.js'
import { crashPoints } from '../crash.js'
import { bool, int, list, str } from '../args.js'
import { printJson, Progress, humanBytes } from '../output.js'
import { Repo } from '../../repo.js'
import { promote } from '../../promote/promote.js'
import { sourcesOf } from '../../importer/sources.js'
import { readMetrics } from '../../promote/metrics.js'
import { UsageError } from '../../errors.js'
import type { Json } from '../../manifest/manifest.js'

/** `key=value` with the value read as JSON when it parses (numbers, booleans), else as a string. */
export function parseKeyValue(text: string, flag: string): [string, Json] {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new UsageError(`${flag} takes key=value, not ${JSON.stringify(text)}`, 'E_USAGE')
  const key = text.slice(0, eq)
  const raw = text.slice(eq + 1)
  if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new UsageError(`${flag} key ${JSON.stringify(key)} may hold only letters, digits, _ . -`, 'E_USAGE')
  let value: Json = raw
  if (/^(-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null)$/.test(raw)) value = JSON.parse(raw) as Json
  return [key, value]
}

export const command: Command = {
  help: `usage: git zoo add <path>... --name <model> [options]

Store the checkpoint files in the zoo's object store (chunked along tensors, deduplicated), seal a
manifest binding them to their config, seed, metrics, dataset, code revision and environment, and
commit that promotion as one git commit (signed when your git signs). Adding a name again makes
the next version; earlier versions are never touched. <path> may be files or a run directory.
Ctrl-C stops it cleanly (exit 130): nothing is committed, and what was already stored is kept, so
running the same command again resumes without writing those bytes again.
A run directory with checkpoint_<epoch>/ folders (or checkpoint-<n>/, epoch_<n>/, epoch_<n>.pt)
is a trajectory: each file records its epoch (\`git zoo get --checkpoint <epoch>\` writes one), and
its metrics file (result.json, metrics.json(l), metrics.csv, progress.csv, history.*) gives the
per-epoch history unless --metrics names another. Tensors equal across epochs are stored once.

flags:
  --name <model>            model name: lower-case segments joined by / (required)
  --config <file>           training config, copied verbatim beside the manifest
  --metrics <file>          final metrics (JSON object) or per-epoch history (JSON list, JSON lines, CSV)
  --seed <int>              the random seed
  --dataset <id>            dataset name plus version or digest, e.g. cifar10@1.0
  --arch <id>               architecture, e.g. resnet18
  --param <key>=<value>     a hyperparameter (repeatable)
  --parent <model>[=<rel>]  a parent model: name, name@vN or name@<stage> (repeatable); rel:
                            fine-tune (default), adapter, merge, soup, quantized, sparsified,
                            distilled, continued, pruned, derived
  --env <key>=<value>       an environment fact to record (repeatable)
  -m, --message <text>      why this model is promoted
  --allow-dirty             promote even if tracked code has uncommitted changes (recorded as dirty)
  --license <id>            the licence: an SPDX id (Apache-2.0, MIT) or the Hub's (apache-2.0,
                            openrail, other); default: card.license in .zoo/config.json, else other
  --card <markdown file>    the model card's text (its front matter keys are kept, the card's own
                            ones, such as license and base_model, are written by git-zoo); sealed in
                            the manifest; default: the file card.template in .zoo/config.json names
  --allow-malformed         store files whose bytes contradict their name (random bytes named
                            .safetensors) or whose known format is truncated or malformed, as opaque
                            bytes recorded as malformed; without it they are refused (exit 1)
  --json                    print { name, version, seal, commit, files, stored_bytes }

examples:
  git zoo add build/model.safetensors --name resnet18/cifar10 --config train.yaml \\
      --metrics metrics.json --seed 3 --dataset cifar10 --param lr=0.1
  git zoo add runs/ft-7/ --name vit-s/cifar100/ft-7 --parent vit-s/pretrain@v2=fine-tune
  git zoo add runs/seed3/ --name mlp/seed3   # runs/seed3/checkpoint_000000/ ... + result.json
`,
  interrupted: 'nothing was committed, run the same command again to resume',
  flags: {
    name: { type: 'string', value: 'model' },
    config: { type: 'string', value: 'file' },
    metrics: { type: 'string', value: 'file' },
    seed: { type: 'string', value: 'int' },
    dataset: { type: 'string', value: 'id' },
    arch: { type: 'string', value: 'id' },
    param: { type: 'list', value: 'key=value' },
    parent: { type: 'list', value: 'model[=relation]' },
    env: { type: 'list', value: 'key=value' },
    message: { type: 'string', short: 'm', value: 'text' },
    'allow-dirty': { type: 'bool' },
    license: { type: 'string', value: 'id' },
    card: { type: 'string', value: 'file' },
    'allow-malformed': { type: 'bool' },
    json: { type: 'bool' },
  },
  async run(args, io) {
    const name = str(args, 'name')
    if (!name) throw new UsageError('--name <model> is required, e.g. --name resnet18/cifar10', 'E_USAGE')
    if (args.positional.length === 0) throw new UsageError('name the checkpoint file(s) or run directory to add', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    // run directories: checkpoint_<epoch>/ folders (or epoch_<n>.pt files) make a trajectory, and
    // the metrics file (result.json, metrics.csv, ...) gives the per-epoch history
    const { files, runMetrics } = await sourcesOf(args.positional, io.cwd)
    const params: Record<string, Json> = {}
    for (const kv of list(args, 'param')) { const [k, v] = parseKeyValue(kv, '--param'); params[k] = v }
    const env: Record<string, string> = {}
    for (const kv of list(args, 'env')) { const [k, v] = parseKeyValue(kv, '--env'); env[k] = String(v) }
    const parents = list(args, 'parent').map((p) => {
      const eq = p.indexOf('=')
      return eq === -1 ? { ref: p, relation: 'fine-tune' } : { ref: p.slice(0, eq), relation: p.slice(eq + 1) }
    })
    const metricsFile = str(args, 'metrics') ?? runMetrics
    const metrics = metricsFile ? await readMetrics(resolve(io.cwd, metricsFile)) : undefined
    const configFile = str(args, 'config')
    const cardFile = str(args, 'card')
    let cardText: string | undefined
    if (cardFile) {
      try { cardText = await readFile(resolve(io.cwd, cardFile), 'utf8') } catch (err) {
        throw new UsageError(`cannot read --card ${cardFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 'E_NO_FILE', { path: cardFile }, { cause: err })
      }
    }
    const progress = new Progress(io, 'add', 0)
    const { commit, results } = await promote(repo, [{
      name, files,
      ...(configFile ? { configFile: resolve(io.cwd, configFile) } : {}),
      ...(metrics ? { metrics: metrics.metrics, ...(metrics.history ? { history: metrics.history } : {}) } : {}),
      ...(int(args, 'seed') !== undefined ? { seed: int(args, 'seed')! } : {}),
      ...(str(args, 'dataset') ? { dataset: str(args, 'dataset')! } : {}),
      ...(str(args, 'arch') ? { arch: str(args, 'arch')! } : {}),
      params, parents, env,
      ...(str(args, 'message') ? { message: str(args, 'message')! } : {}),
      ...(str(args, 'license') ? { license: str(args, 'license')! } : {}),
      ...(cardText !== undefined ? { cardText } : {}),
    }], {
      allowDirty: bool(args, 'allow-dirty'),
      allowMalformed: bool(args, 'allow-malformed'),
      onProgress: (done, total) => { progress.total = total; progress.update(done) },
      crashPoint: crashPoints(io),
      ...(io.signal ? { signal: io.signal } : {}),
    })
    progress.done()
    const r = results[0]!
    for (const w of r.warnings) io.err(`git zoo: warning: ${w}\n`)
    if (bool(args, 'json')) {
      printJson(io, { name: r.name, version: r.version, seal: r.seal, commit, files: r.files, stored_bytes: r.stored_bytes })
    } else if (io.tty) {
      io.err(`promoted ${r.name}@v${r.version} (${humanBytes(r.stored_bytes)} new) in ${commit.slice(0, 12)}\n`)
    }
    return 0
  },
}
