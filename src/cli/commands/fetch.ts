import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { fetchFor } from '../transfer.js'

export const command: Command = {
  help: `usage: git zoo fetch [<model>[@vN]...] [--from <zoo-remote>] [--jobs <n>] [--json]

Copy into the local store the objects the named models need (default: every model version in the
working tree), only those missing, several at once. Every object is verified against its CID before
it is stored; a remote serving wrong bytes is named with the object and nothing bad is kept.
Interrupted fetches resume: what was copied is kept and skipped next time. Git is not contacted.
An object the store already holds is skipped even when damaged: \`git zoo verify --repair\` replaces those.

flags:
  --from <zoo-remote>  fetch from this zoo remote (default: the zoo's default remote)
  -j, --jobs <n>       objects in flight at once (default 8, or GIT_ZOO_JOBS)
  --json               print { remote, url, models, objects, bytes, skipped_objects, skipped_bytes }

examples:
  git zoo fetch
  git zoo fetch resnet18/cifar10@v2 --from nfs
`,
  flags: { from: { type: 'string', value: 'zoo-remote' }, jobs: { type: 'string', short: 'j', value: 'n' }, json: { type: 'bool' } },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io)
    const manifests = args.positional.length
      ? await Promise.all(args.positional.map((ref) => repo.resolve(ref)))
      : await repo.allManifests()
    const json = bool(args, 'json')
    const sync = await fetchFor(repo, manifests, io, { from: str(args, 'from'), jobs: int(args, 'jobs'), json })
    if (json) printJson(io, sync)
    return 0
  },
}
