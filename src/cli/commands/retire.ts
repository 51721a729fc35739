import { crashPoints } from '../crash.js'
import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, summary } from '../output.js'
import { Repo } from '../../repo.js'
import { retire } from '../../promote/retire.js'
import { UsageError } from '../../errors.js'

export const command: Command = {
  help: `usage: git zoo retire <model>@v<N> --reason <text> [--json]

Take a sealed model version out of service, on the record. Sealed versions are never edited or
deleted: retiring adds models/<name>/v<N>/RETIRED.json (who, when, why, and the seal it retires)
in a commit of its own, with the trailers Zoo-Retire and Zoo-Seal, signed when the zoo requires
signed promotions. The manifest, the weights and the lineage stay. From then on a bare model name
(\`git zoo get <model>\`, --parent, ...) means the latest version in service, \`find\` and \`ls\` skip
the version unless --include-retired is given, and \`git zoo show\` says who retired it, when and
why; \`git zoo get <model>@v<N>\` still writes it (with a warning). A retirement is final. <model>
may also be a seal CID.

flags:
  --reason <text>   why it is retired (required)
  --json            print { name, version, seal, commit, reason, retired_by, retired }

examples:
  git zoo retire resnet18/cifar10@v2 --reason "trained on the leaked test split"
  git zoo log resnet18/cifar10       # shows the retirement beside the promotions
`,
  // short steps that write files atomically or commit: on a signal they finish, or roll back when a git child was stopped
  interrupted: 'the version was not retired (nothing was committed); run the same command again',
  flags: { reason: { type: 'string', value: 'text' }, json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one version: git zoo retire <model>@v<N> --reason <text>', 'E_USAGE')
    const reason = str(args, 'reason')
    if (reason === undefined) throw new UsageError('--reason <text> is required: a retirement records why', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const { commit, retirement: r } = await retire(repo, args.positional[0]!, reason, { crashPoint: crashPoints(io) })
    if (bool(args, 'json')) printJson(io, { name: r.name, version: r.version, seal: r.seal, commit, reason: r.reason, retired_by: r.retired_by, retired: r.retired })
    else summary(io, `git zoo: retired ${r.name}@v${r.version} in ${commit.slice(0, 12)}`)
    return 0
  },
}
