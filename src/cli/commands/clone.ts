import { basename, resolve } from 'node:path'
import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { runGitRemote, type GitResult } from '../../git/git.js'
import { UsageError, ZooError } from '../../errors.js'
import { EMPTY_SYNC, fetchFor, gitProgressFor } from '../transfer.js'
import { initZoo, hookNotes } from '../../zoo/init.js'

/** The folder git clone would pick for a URL (its last path part without .git). */
export function cloneDirName(url: string): string {
  const trimmed = url.replace(/[/\\]+$/, '').replace(/[/\\]\.git$/, '').replace(/\.git$/, '')
  const name = basename(trimmed.split(':').pop() ?? '')
  if (!name || name === '.' || name === '..') throw new UsageError(`cannot tell a folder name from ${url}; name one: git zoo clone <git-url> <dir>`, 'E_USAGE')
  return name
}

export const command: Command = {
  help: `usage: git zoo clone <git-url> [<dir>] [--lazy] [--from <zoo-remote>] [--jobs <n>] [--json]

git clone the repository, set it up as a zoo (\`git zoo init\`: hooks), then fetch from its zoo
remote (recorded in the committed .zoo/config.json) the objects of every model version checked out.
With --lazy nothing is fetched: \`git zoo get\` and \`git zoo fetch\` bring objects when needed, and
diff, eval, soup and agree fetch the objects they read (each checked against its CID); \`git zoo
verify\` counts what is not fetched yet apart (spec/teams.md).

flags:
  --lazy               fetch no objects now (recorded as \`git config zoo.lazy true\`)
  --from <zoo-remote>  fetch from this zoo remote (default: origin's namesake, else the default)
  -j, --jobs <n>       objects in flight at once (default 8, or GIT_ZOO_JOBS)
  --json               print { dir, lazy, remote, url, models, objects, bytes, skipped_objects, skipped_bytes }

examples:
  git zoo clone git@github.com:lab/zoo.git
  git zoo clone https://github.com/lab/zoo.git zoo --lazy
`,
  flags: { lazy: { type: 'bool' }, from: { type: 'string', value: 'zoo-remote' }, jobs: { type: 'string', short: 'j', value: 'n' }, json: { type: 'bool' } },
  async run(args, io) {
    const [url, dirArg, ...extra] = args.positional
    if (!url || extra.length) throw new UsageError('usage: git zoo clone <git-url> [<dir>] [--lazy]', 'E_USAGE')
    if (url.startsWith('-') || dirArg?.startsWith('-')) throw new UsageError('a git URL or folder cannot start with -', 'E_USAGE')
    const dir = resolve(io.cwd, dirArg ?? cloneDirName(url))
    const gitBar = gitProgressFor(io)
    let r: GitResult
    try {
      r = await runGitRemote(io.cwd, ['clone', '--', url, dir], { env: io.env, onProgress: gitBar.onProgress })
    } finally { gitBar.done() }
    if (r.stdout) io.err(r.stdout)
    if (r.stderr) io.err(r.stderr)
    if (r.code !== 0) throw new ZooError(`\`git clone ${url}\` failed (exit ${r.code})`, 'E_GIT', { code: r.code })
    const sub = { ...io, cwd: dir }
    const repo = await Repo.open(dir, io)
    io.err(hookNotes((await initZoo(repo)).hooks))
    const lazy = bool(args, 'lazy')
    const json = bool(args, 'json')
    let sync
    if (lazy) {
      await repo.git(['config', 'zoo.lazy', 'true'])
      sync = { remote: null, url: null, models: 0, ...EMPTY_SYNC }
    } else {
      sync = await fetchFor(repo, await repo.allManifests(), sub, { from: str(args, 'from'), gitRemote: 'origin', jobs: int(args, 'jobs'), json })
    }
    if (json) printJson(io, { dir, lazy, ...sync })
    return 0
  },
}
