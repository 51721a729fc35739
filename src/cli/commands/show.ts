import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { checkSeal } from '../../manifest/manifest.js'
import { renderTerminalCard, renderModelCard, metricFacts, curve } from '../../manifest/card.js'
import { zooSource } from '../../lineage/source.js'
import { UsageError, ZooError } from '../../errors.js'
import { completeManifest } from '../../zoo/reader.js'
import { readEvaluations, summarizeEvaluation } from '../../evals/record.js'
import { stagesByVersion } from '../../git/stages.js'

export const command: Command = {
  help: `usage: git zoo show <model>[@vN|@<stage>] [--json | --card]

Print a model version's card: identity and seal (checked), generating factors, metrics (final, best
and the epoch of the best), a small plot of the main metric over epochs, files, parents and
children, and how to get it. The same facts as the model card (--card; the README.md beside a
manifest, except for members of an imported population, which have none). A retired
version says so: when, by whom and why (its RETIRED.json). The stages that name the version
(\`git zoo tag\`) and every evaluation recorded for it (\`git zoo eval\`: the data's name and
digest, metrics, when and by whom) are listed too. <model> without @vN is the latest version in
service (retired versions are skipped). A trajectory's checkpoint files and per-epoch history are
read from its checkpoint node in the object store (spec/format.md; a lazy clone fetches it).


flags:
  --files   list every file with its size, format and whole sha256 (default: the first and last three)
  --card    print the model card as Markdown: the README.md git zoo writes beside a manifest
            (Hugging Face front matter: datasets, tags, license, model-index), rendered now, so it
            lists the evaluations recorded since; a member of an imported population has no
            README.md in git and this is its card (spec/catalog.md, "Model cards")
  --json    print the manifest with { seal_ok, retired, stages, evaluations, metric_summary,
            curve, children } added (retired: { reason, retired_by, retired } or null;
            evaluations: [{ data, data_sha256, n, file, metrics, created, by, ok, problem? }])

examples:
  git zoo show resnet18/cifar10
  git zoo show vit-s/cifar100/ft-lr3e-4-s2@v2 --json | jq .metrics
  git zoo show resnet18/cifar10@prod --json | jq '.evaluations[].metrics'
  git zoo show resnet18/cifar10 --card > card.md
`,
  flags: { json: { type: 'bool' }, files: { type: 'bool' }, card: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one model: git zoo show <model>[@vN]', 'E_USAGE')
    const card = bool(args, 'card')
    if (card && (bool(args, 'json') || bool(args, 'files'))) throw new UsageError('--card prints the Markdown card alone; leave out --json and --files', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const sealed = await repo.resolve(args.positional[0]!)
    const sealOk = checkSeal(sealed).ok
    // a trajectory's checkpoint files and history are in its checkpoint node (a lazy clone fetches
    // it); when no copy can be read the card says what the manifest itself holds
    let m = sealed
    try { m = await completeManifest(repo, sealed) } catch (err) {
      if (!(err instanceof ZooError) || sealed.checkpoints === undefined) throw err
      io.err(`git zoo: warning: the checkpoint node of ${sealed.name}@v${sealed.version} cannot be read (${(err as Error).message}); showing what its manifest holds\n`)
    }
    const r = await repo.retirement(m.name, m.version)
    const retired = r ? { reason: r.reason, retired_by: r.retired_by, retired: r.retired } : null
    let children: Array<{ name: string; version: number; relation: string }> = []
    // the Markdown card does not list children (a committed card could not know them)
    if (!card) {
      const src = await zooSource(repo)
      try {
        for (const c of await src.children(m.name, m.version)) {
          const cm = await src.read(c.name, c.version)
          for (const p of cm?.parents ?? []) if (p.name === m.name && p.version === m.version) children.push({ name: c.name, version: c.version, relation: p.relation })
        }
      } finally { src.close() }
    }
    children = children.sort((a, b) => (a.name < b.name ? -1 : 1))
    const stages = stagesByVersion(await repo.stages(m.name)).get(`${m.name}@v${m.version}`) ?? []
    const evaluations = (await readEvaluations(repo, m)).map(summarizeEvaluation)
    if (card) {
      io.out(renderModelCard(m, { evaluations, stages }))
    } else if (bool(args, 'json')) {
      printJson(io, { ...m, seal_ok: sealOk, retired, stages, evaluations, metric_summary: metricFacts(m), curve: curve(m) ?? null, children })
    } else {
      io.out(renderTerminalCard(m, { sealOk, children, retired, stages, evaluations, width: Number(io.env.COLUMNS) || 80, allFiles: bool(args, 'files') }))
    }
    if (!sealOk) io.err(`git zoo: ${m.name}@v${m.version}: the manifest does not match its seal; run \`git zoo verify\`\n`)
    return sealOk ? 0 : 1
  },
}
