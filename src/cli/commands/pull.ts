import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { runGitRemote, type GitResult } from '../../git/git.js'
import { UsageError, ZooError } from '../../errors.js'
import { isLazy } from '../../remote/sync.js'
import { EMPTY_SYNC, defaultGitRemote, fetchFor, gitProgressFor } from '../transfer.js'

export const command: Command = {
  help: `usage: git zoo pull [<git-remote> [<branch>]] [--from <zoo-remote>] [--jobs <n>] [--json]

Run \`git pull\`, then copy into the local store the objects of every model version in the working
tree that are missing (see \`git zoo fetch\`). In a clone made with --lazy, objects are left for
\`git zoo get\` to fetch when it needs them.

flags:
  --from <zoo-remote>  fetch objects from this zoo remote (default: the one named like the git
                       remote, else the zoo's default remote)
  -j, --jobs <n>       objects in flight at once (default 8, or GIT_ZOO_JOBS)
  --json               print { git_remote, lazy, remote, url, models, objects, bytes, skipped_objects, skipped_bytes }

examples:
  git zoo pull
  git zoo pull origin main --from nfs
`,
  flags: { from: { type: 'string', value: 'zoo-remote' }, jobs: { type: 'string', short: 'j', value: 'n' }, json: { type: 'bool' } },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io)
    if (args.positional.some((a) => a.startsWith('-')) || args.positional.length > 2) {
      throw new UsageError('name at most a git remote and a branch; git pull options are not passed through', 'E_USAGE')
    }
    const gitRemote = args.positional[0] ?? await defaultGitRemote(repo)
    const gitBar = gitProgressFor(io)
    let r: GitResult
    try {
      r = await runGitRemote(repo.root, ['pull', ...args.positional], { env: io.env, onProgress: gitBar.onProgress })
    } finally { gitBar.done() }
    if (r.stdout) io.err(r.stdout)
    if (r.stderr) io.err(r.stderr)
    if (r.code !== 0) throw new ZooError(`\`git pull ${args.positional.join(' ')}\` failed (exit ${r.code}); no objects were fetched`, 'E_GIT', { code: r.code })
    const json = bool(args, 'json')
    const lazy = await isLazy(repo)
    const sync = lazy
      ? { remote: null, url: null, models: 0, ...EMPTY_SYNC }
      : await fetchFor(repo, await repo.allManifests(), io, { from: str(args, 'from'), gitRemote, jobs: int(args, 'jobs'), json })
    if (json) printJson(io, { git_remote: gitRemote, lazy, ...sync })
    return 0
  },
}
