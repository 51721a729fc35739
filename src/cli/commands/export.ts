import { resolve } from 'node:path'
import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, Progress } from '../output.js'
import { crashPoints } from '../crash.js'
import { Repo } from '../../repo.js'
import { exportHf } from '../../zoo/export-hf.js'
import { readEvaluations, summarizeEvaluation } from '../../evals/record.js'
import { stagesByVersion } from '../../git/stages.js'
import { UsageError } from '../../errors.js'

export const command: Command = {
  help: `usage: git zoo export <model>[@vN|@<stage>] --format hf --out <dir> [--json]

Write a model version out of the zoo in another tool's layout.

  --format hf   a folder the Hugging Face Hub takes as is (\`huggingface-cli upload <repo> <dir>\`):
                the model's files exactly as stored (weights, sharded safetensors with their
                model.safetensors.index.json, config.json, tokenizer files, ...; every byte verified
                against its sealed digest), the training config snapshot, and README.md: the model
                card with the Hub's front matter (license, base_model: the Hub ids of parents that
                came from the Hub, base_model_relation in the Hub's words, datasets, tags,
                model-index with the final metrics and every recorded evaluation)

flags:
  --format <f>   hf
  --out <dir>    a new or empty folder (required)
  --json         print { name, version, seal, out, files: [{ path, size, sha256 }], card, base_model }

examples:
  git zoo export bert/imdb@prod --format hf --out /tmp/bert-imdb
  huggingface-cli upload my-org/bert-imdb /tmp/bert-imdb
`,
  interrupted: 'the folder may hold part of the export; remove it and run the same command again',
  flags: { format: { type: 'string', value: 'hf' }, out: { type: 'string', value: 'dir' }, json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one model: git zoo export <model>[@vN] --format hf --out <dir>', 'E_USAGE')
    const format = str(args, 'format')
    if (format !== 'hf') throw new UsageError(`--format takes hf${format ? `, not ${JSON.stringify(format)}` : ' (required)'}`, 'E_USAGE')
    const outArg = str(args, 'out')
    if (!outArg) throw new UsageError('--out <dir> is required: the folder to write the Hub layout into', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const m = await repo.resolve(args.positional[0]!)
    const { ensureObjects } = await import('../../remote/sync.js')
    await ensureObjects(repo, [m], { ...(io.signal ? { signal: io.signal } : {}), point: crashPoints(io) })
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
  },
}
