import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { buildLineage } from '../../lineage/graph.js'
import { renderDot, renderJson, renderMermaid, renderText, type LineageFormat } from '../../lineage/render.js'
import { zooSource } from '../../lineage/source.js'
import { UsageError } from '../../errors.js'
import { stagesByVersion } from '../../git/stages.js'

const FORMATS: LineageFormat[] = ['text', 'json', 'dot', 'mermaid']

export const command: Command = {
  help: `usage: git zoo lineage <model>[@vN|@<stage>] [--format text|json|dot|mermaid] [--ancestors|--descendants]

Draw the lineage of a model version: its ancestors (from the parent links sealed in the
manifests) and its descendants (every model in the zoo that names it, directly or not, as a
parent), with the relation on each edge (fine-tune, adapter, merge, soup, quantized, sparsified,
distilled, continued, pruned, derived). Every link is checked: the parent seal a child records
must be the parent manifest's seal, and each manifest must match its own seal; a mismatch is shown
and the exit code is 1. A cycle (only possible through a hand-edited manifest) is refused, naming it.
Versions that a stage names (\`git zoo tag\`) show it: [prod, staging] (json: nodes[].stages).

flags:
  --format <f>     text (default; a tree), json ({ nodes: [{ name, version, seal }],
                   edges: [{ from, to, relation }] }, from = parent, to = child, as name@vN),
                   dot (Graphviz: git zoo lineage m --format dot | dot -Tsvg > m.svg), mermaid
  --json           the same as --format json
  --ancestors      only ancestors
  --descendants    only descendants

examples:
  git zoo lineage vit-s/pretrain
  git zoo lineage vit-s/cifar100/soup@v1 --format mermaid
  git zoo lineage vit-s/pretrain --format json | jq '.edges[] | select(.relation == "fine-tune")'
`,
  flags: {
    format: { type: 'string', value: 'text|json|dot|mermaid' },
    json: { type: 'bool' },
    ancestors: { type: 'bool' },
    descendants: { type: 'bool' },
  },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one model: git zoo lineage <model>[@vN]', 'E_USAGE')
    const format = (bool(args, 'json') ? 'json' : str(args, 'format') ?? 'text') as LineageFormat
    if (!FORMATS.includes(format)) throw new UsageError(`--format takes ${FORMATS.join(', ')}, not ${JSON.stringify(format)}`, 'E_USAGE')
    if (bool(args, 'ancestors') && bool(args, 'descendants')) throw new UsageError('--ancestors and --descendants together are the default; give one or neither', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const focus = await repo.resolve(args.positional[0]!)
    const src = await zooSource(repo)
    try {
      const g = await buildLineage(focus, src, { ancestors: !bool(args, 'descendants'), descendants: !bool(args, 'ancestors') })
      const stages = stagesByVersion(await repo.stages())
      if (format === 'json') printJson(io, renderJson(g, stages))
      else io.out(format === 'dot' ? renderDot(g, stages) : format === 'mermaid' ? renderMermaid(g, stages) : renderText(g, stages))
      if (g.problems.length) {
        if (format !== 'text') for (const p of g.problems) io.err(`git zoo: ${p.model}: ${p.problem}\n`)
        io.err('git zoo: the lineage has broken links; run `git zoo verify` for details\n')
        return 1
      }
      return 0
    } finally { src.close() }
  },
}
