import { resolve } from 'node:path'
import { readFile } from 'node:fs/promises'
import type { Command } from '../command.js'
import { crashPoints } from '../crash.js'
import { bool, int, list, str } from '../args.js'
import { printJson, Progress, humanBytes, summary, warnIfUnsigned } from '../output.js'
import { Repo } from '../../repo.js'
import { promote } from '../../promote/promote.js'
import { sourcesOf } from '../../importer/sources.js'
import { readMetrics } from '../../promote/metrics.js'
import { runFolderConfig } from '../../importer/run-config.js'
import { externalCodeRevision } from '../../promote/environment.js'
import { UsageError, ZooError } from '../../errors.js'
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
commit that promotion as one git commit (signed when your git signs; \`git zoo init --sign\` sets
that up, and an unsigned promotion prints a warning saying so). Adding a name again makes the next
version; earlier versions are never touched. <path> may be files or a run directory.
Ctrl-C stops it cleanly (exit 130): nothing is committed, and what was already stored is kept, so
running the same command again resumes without writing those bytes again.
A run directory with checkpoint_<epoch>/ folders (or checkpoint-<n>/, epoch_<n>/, epoch_<n>.pt)
is a trajectory: each file records its epoch (\`git zoo get --checkpoint <epoch>\` writes one), and
its metrics file (result.json, metrics.json(l), metrics.csv, progress.csv, history.*) gives the
per-epoch history unless --metrics names another. Tensors equal across epochs are stored once.
A run directory's config (config.json, params.json or hparams.json at its top) is read the way
\`git zoo import\` reads it (spec/import.md): it becomes the model's config, and its seed, dataset,
arch and other settings (params, e.g. lr) are recorded; --config, --seed, --dataset, --arch and
--param given on the command line win.
The code revision is the zoo repository's HEAD; with --code <path> (or "code": "<path>" in
.zoo/config.json, relative to the zoo) it is that other repository's: its remote URL (origin, else
its first remote; its folder when it has none), commit, and whether tracked files are changed
(refused without --allow-dirty, then recorded as dirty with a digest of the diff).

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
  --code <path>             the repository holding the training code, when it is not this one
  --allow-dirty             promote even if tracked code has uncommitted changes (recorded as dirty)
  --license <id>            the licence: an SPDX id (Apache-2.0, MIT) or the Hub's (apache-2.0,
                            openrail, other); default: card.license in .zoo/config.json, else other
  --card <markdown file>    the model card's text (its front matter keys are kept, the card's own
                            ones, such as license and base_model, are written by git-zoo); sealed in
                            the manifest; default: the file card.template in .zoo/config.json names
  --allow-malformed         store files whose bytes contradict their name (random bytes named
                            .safetensors) or whose known format is truncated or malformed, as opaque
                            bytes recorded as malformed; without it they are refused (exit 1)
  -q, --quiet               no summary line
  --json                    print { name, version, seal, commit, signed, files, stored_bytes }

examples:
  git zoo add build/model.safetensors --name resnet18/cifar10 --config train.yaml \\
      --metrics metrics.json --seed 3 --dataset cifar10 --param lr=0.1
  git zoo add runs/ft-7/ --name vit-s/cifar100/ft-7 --parent vit-s/pretrain@v2=fine-tune
  git zoo add runs/seed3/ --name mlp/seed3   # runs/seed3/checkpoint_000000/ ... + result.json
  git zoo add build/model.safetensors --name net/a --code ../trainer   # code in another repository
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
    code: { type: 'string', value: 'path' },
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
    // served (spec/server.md): a commit that would be signed runs in node, on the asker's terminal
    if (io.declineServed) await (await import('../served.js')).declineSigning(repo, io.declineServed)
    // run directories: checkpoint_<epoch>/ folders (or epoch_<n>.pt files) make a trajectory, and
    // the metrics file (result.json, metrics.csv, ...) gives the per-epoch history
    const sources = await sourcesOf(args.positional, io.cwd)
    const { runMetrics } = sources
    let files = sources.files
    const params: Record<string, Json> = {}
    // a run folder's config.json / params.json, read as `git zoo import` reads it; flags win
    const configFlag = str(args, 'config')
    const run = configFlag === undefined ? await runFolderConfig(args.positional, io.cwd) : undefined
    if (run) {
      files = files.filter((f) => f.source !== run.file)
      Object.assign(params, run.factors.params)
    }
    for (const kv of list(args, 'param')) { const [k, v] = parseKeyValue(kv, '--param'); params[k] = v }
    const env: Record<string, string> = {}
    for (const kv of list(args, 'env')) { const [k, v] = parseKeyValue(kv, '--env'); env[k] = String(v) }
    const parents = list(args, 'parent').map((p) => {
      const eq = p.indexOf('=')
      return eq === -1 ? { ref: p, relation: 'fine-tune' } : { ref: p.slice(0, eq), relation: p.slice(eq + 1) }
    })
    const metricsFile = str(args, 'metrics') ?? runMetrics
    const metrics = metricsFile ? await readMetrics(resolve(io.cwd, metricsFile)) : undefined
    const configFile = configFlag !== undefined ? resolve(io.cwd, configFlag) : run?.file
    const seed = int(args, 'seed') ?? run?.factors.seed
    const dataset = str(args, 'dataset') ?? run?.factors.dataset
    const arch = str(args, 'arch') ?? run?.factors.arch
    // training code kept in another repository: --code, else the zoo's default in .zoo/config.json
    let codeDir = str(args, 'code') !== undefined ? resolve(io.cwd, str(args, 'code')!) : undefined
    if (codeDir === undefined) {
      const configured = (await repo.config()).code
      if (configured !== undefined) {
        if (typeof configured !== 'string' || !configured) throw new ZooError('.zoo/config.json: "code" must be the path of the repository holding the training code (relative to the zoo), e.g. "code": "../trainer"', 'E_CONFIG')
        codeDir = resolve(repo.root, configured)
      }
    }
    let code
    if (codeDir !== undefined) {
      const ext = await externalCodeRevision(codeDir, io.env, bool(args, 'allow-dirty'))
      if (ext.localOnly) io.err(`git zoo: warning: the code repository ${ext.code.repo} has no remote; its local path is recorded, which other machines cannot fetch\n`)
      code = ext.code
    }
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
      ...(configFile ? { configFile } : {}),
      ...(metrics ? { metrics: metrics.metrics, ...(metrics.history ? { history: metrics.history } : {}) } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(dataset ? { dataset } : {}),
      ...(arch ? { arch } : {}),
      params, parents, env,
      ...(str(args, 'message') ? { message: str(args, 'message')! } : {}),
      ...(str(args, 'license') ? { license: str(args, 'license')! } : {}),
      ...(cardText !== undefined ? { cardText } : {}),
    }], {
      allowDirty: bool(args, 'allow-dirty'),
      allowMalformed: bool(args, 'allow-malformed'),
      ...(code ? { code } : {}),
      onProgress: (done, total) => { progress.total = total; progress.update(done) },
      crashPoint: crashPoints(io),
      ...(io.signal ? { signal: io.signal } : {}),
    })
    progress.done()
    const r = results[0]!
    for (const w of r.warnings) io.err(`git zoo: warning: ${w}\n`)
    await warnIfUnsigned(io, repo, commit)
    if (bool(args, 'json')) {
      const { isSignedCommit } = await import('../../promote/signing.js')
      printJson(io, { name: r.name, version: r.version, seal: r.seal, commit, signed: await isSignedCommit(repo, commit), files: r.files, stored_bytes: r.stored_bytes })
    }
    summary(io, `git zoo: promoted ${r.name}@v${r.version} (${r.files.length === 1 ? '1 file' : `${r.files.length} files`}, ${humanBytes(r.stored_bytes)} new) in ${commit.slice(0, 12)}`)
    return 0
  },
}
