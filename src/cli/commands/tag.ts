import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson } from '../output.js'
import { crashPoints } from '../crash.js'
import { Repo } from '../../repo.js'
import { setStage, deleteStage } from '../../promote/stages.js'
import { parseStageRef } from '../../git/stages.js'
import { checkModelName } from '../../manifest/names.js'
import { UsageError } from '../../errors.js'

export const command: Command = {
  help: `usage: git zoo tag <model>[@vN|@<stage>] <stage> [-m <why>] [--json]
       git zoo tag --delete <model> <stage>    (or <model>@<stage>)
       git zoo tag [<model>] [--json]           list the stages and the versions they name

Give a model version a stage name (prod, staging, candidate, ...), as MLflow aliases or Hugging
Face revisions do. From then on <model>@<stage> works wherever a model reference does (get, show,
diff, eval, --parent ...), and ls, find (stage=prod), show, lineage and log show it.
Each move is a new annotated git tag zoo-stage/<model>@<stage>/<n> on the commit that promoted
the version, signed when the zoo requires signing (policy.require_signed) or git signs commits
or tags, whose message names the tag before it: tags are never moved or removed, so the chain is
the stage's audit log (\`git zoo log <model>\` shows every move, by whom, signed or not). A stage
that already names the version is left alone. \`git zoo push\` and \`git zoo pull\` carry the tags
(plain git: \`git push --follow-tags\`, or \`git config push.followTags true\`; \`git pull\`
fetches them). See spec/stages.md.

A stage name is a lower-case letter followed by letters, digits, . _ or - (not vN).

flags:
  --delete          end the stage (recorded as a move that names no version)
  -m, --message     why the stage moves (kept in the tag)
  --json            print { name, stage, version, previous, seal, tag, signed }
                    (listing: { stages: [{ name, stage, version, seal, moves }] })

examples:
  git zoo tag resnet18/cifar10@v3 prod -m "beats v2 on the holdout"
  git zoo tag resnet18/cifar10@staging prod     # promote what staging names to prod
  git zoo get resnet18/cifar10@prod --out serve/
  git zoo tag --delete resnet18/cifar10 staging
  git zoo find stage=prod
`,
  interrupted: 'the stage was not moved unless `git zoo tag <model>` now shows it; run the same command again',
  flags: { delete: { type: 'bool' }, message: { type: 'string', short: 'm', value: 'text' }, json: { type: 'bool' } },
  async run(args, io) {
    const pos = args.positional
    const repo = await Repo.open(io.cwd, io)
    const json = bool(args, 'json')
    const message = str(args, 'message')
    if (bool(args, 'delete')) {
      let name: string, stage: string
      if (pos.length === 1 && parseStageRef(pos[0]!)) ({ name, stage } = parseStageRef(pos[0]!)!)
      else if (pos.length === 2) { name = checkModelName(pos[0]!); stage = pos[1]! }
      else throw new UsageError('name the stage to end: git zoo tag --delete <model> <stage>', 'E_USAGE')
      const r = await deleteStage(repo, name, stage, { ...(message ? { message } : {}), crashPoint: crashPoints(io) })
      if (json) printJson(io, { name: r.name, stage: r.stage, version: null, previous: r.previous ?? null, seal: r.seal, tag: r.tag, signed: r.signed })
      else io.err(`deleted stage ${r.name}@${r.stage} (was v${r.previous}) in tag ${r.tag}${r.signed ? ', signed' : ', unsigned'}\n`)
      return 0
    }
    if (pos.length <= 1 && (pos.length === 0 || !pos[0]!.includes('@'))) {
      if (message) throw new UsageError('-m is for moving a stage: git zoo tag <model>@vN <stage> -m <why>', 'E_USAGE')
      const model = pos[0] ? checkModelName(pos[0]) : undefined
      const states = (await repo.stages(model)).filter((s) => s.version !== undefined)
      if (json) {
        printJson(io, { stages: states.map((s) => ({ name: s.name, stage: s.stage, version: s.version, seal: s.seal, moves: s.moves.length })) })
        return 0
      }
      for (const s of states) io.out(`${s.name}@${s.stage}  v${s.version}  (${s.moves.length} move${s.moves.length === 1 ? '' : 's'})\n`)
      if (!states.length) io.err(`git zoo: no stages${model ? ` for ${model}` : ''}; \`git zoo tag <model>@vN <stage>\` sets one\n`)
      return 0
    }
    if (pos.length !== 2) throw new UsageError('name a version and a stage: git zoo tag <model>@vN <stage>', 'E_USAGE')
    const r = await setStage(repo, pos[0]!, pos[1]!, { ...(message ? { message } : {}), crashPoint: crashPoints(io) })
    if (json) printJson(io, { name: r.name, stage: r.stage, version: r.version, previous: r.previous ?? null, seal: r.seal, tag: r.tag, signed: r.signed })
    else if (r.tag === null) io.err(`${r.name}@${r.stage} already names v${r.version}; nothing changed\n`)
    else io.err(`${r.name}@${r.stage} -> v${r.version}${r.previous !== undefined ? ` (was v${r.previous})` : ''} in tag ${r.tag}${r.signed ? ', signed' : ', unsigned'}\n`)
    return 0
  },
}
