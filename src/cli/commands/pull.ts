import { join } from 'node:path'
import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, summary } from '../output.js'
import { crashPoints } from '../crash.js'
import { Repo } from '../../repo.js'
import { runGitRemote, type GitResult } from '../../git/git.js'
import { PROJECT_ROOT } from '../../version.js'
import { UsageError, ZooError } from '../../errors.js'
import { isLazy } from '../../remote/lazy.js'
import { EMPTY_SYNC, defaultGitRemote, fetchFor, gitProgressFor } from '../transfer.js'
import { sh } from '../../promote/precommit.js'
import { integrateStages, type ReplayedMove } from '../../promote/stages.js'
import { abortPull, checkNotInProgress, continuePull, editTodo, integrate, pullMode, replayCommit, type IntegrateHooks, type IntegrateResult, type PullMode } from '../../promote/integrate.js'

export const command: Command = {
  help: `usage: git zoo pull [<git-remote> [<branch>]] [--rebase | --no-rebase | --ff-only] [--from <zoo-remote>] [--jobs <n>] [--json]
       git zoo pull --continue | --abort [--json]

Fetch the branch's upstream (or <branch> of <git-remote>) and integrate it, then copy into the
local store the objects of every model version in the working tree that are missing (see
\`git zoo fetch\`). In a clone made with --lazy, objects are left for \`git zoo get\` to fetch when
it needs them. Stage moves (\`git zoo tag\`) made here and on the remote under the same number
are reconciled: the remote's stand, yours are made again after them (spec/stages.md). Ctrl-C
stops it cleanly (exit 130); the objects fetched so far are kept, so running it again fetches
only the rest.

When your unpushed promotions claim versions the upstream promoted too (two people ran
\`git zoo add --name silero/vad\` and both got v3), yours are promoted again on top as the next free
versions: re-sealed, signed again through your git (commit.gpgsign, gpg.format, user.signingkey),
with their evaluation records, retirements, fine-tunes of them and commit messages carried along.
You are told \`silero/vad@v3 is now @v4\`. Everything else is rebased (default) or merged as git
would; promotions of different models never clash. Rules: spec/teams.md, "Pull integration".

If git stops on a conflict outside models/, resolve it (edit, \`git add\`) and run
\`git zoo pull --continue\`. If a plain \`git pull\` stopped on a conflict over models/,
\`git zoo pull --continue\` resolves it the same way: the upstream's versions stay, yours are
promoted again on top.

flags:
  --rebase             replay your local commits on top of the upstream (the default, unless git's
                       pull.rebase=false or pull.ff=only says otherwise)
  --no-rebase          merge the upstream instead; clashing local promotions are renumbered first
  --ff-only            only fast-forward; refuse (exit 1) when the histories diverged
  --continue           finish an integration (or a plain git pull) that stopped on a conflict
  --abort              go back to where the pull began
  --from <zoo-remote>  fetch objects from this zoo remote (default: the one named like the git
                       remote, else the zoo's default remote)
  -j, --jobs <n>       objects in flight at once (default 8, or GIT_ZOO_JOBS)
  --json               print { git_remote, action, renumbered: [{ name, from, to, seal, old_seal }],
                       stages_replayed: [{ name, stage, action, version, was, tag }],
                       lazy, remote, url, models, objects, bytes, skipped_objects, skipped_bytes }
                       (action: up-to-date, fast-forward, rebase or merge; --abort prints { aborted })
internal (run by the rebase this command starts):
  --replay <commit>    promote one local commit's versions again on top of HEAD
  --edit-todo <file>   git's sequence editor: turn local zoo commits into replay steps

examples:
  git zoo pull
  git zoo pull --no-rebase
  git zoo pull origin main --from nfs
  git pull --rebase; git zoo pull --continue   # after git stopped on models/<name>/v3
`,
  interrupted: 'the objects fetched so far are kept; run `git zoo pull` again to resume (if git stopped in the middle of a rebase or merge, `git zoo pull --continue` or `--abort` first)',
  flags: {
    rebase: { type: 'bool' }, 'no-rebase': { type: 'bool' }, 'ff-only': { type: 'bool' },
    continue: { type: 'bool' }, abort: { type: 'bool' },
    replay: { type: 'string', value: 'commit' }, 'edit-todo': { type: 'string', value: 'file' },
    from: { type: 'string', value: 'zoo-remote' }, jobs: { type: 'string', short: 'j', value: 'n' }, json: { type: 'bool' },
  },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io)
    // how git runs this program again from the rebase (replay steps, sequence editor), as the hooks do
    const bin = sh(join(PROJECT_ROOT, 'bin', 'git-zoo.js'))
    const replay = str(args, 'replay')
    if (replay !== undefined) {
      await replayCommit(repo, replay, { onNote: io.err, crashPoint: crashPoints(io) })
      return 0
    }
    const todo = str(args, 'edit-todo')
    if (todo !== undefined) {
      await editTodo(repo, todo, bin)
      return 0
    }
    const json = bool(args, 'json')
    const hooks: IntegrateHooks = { bin, onGitOutput: io.err }
    const modes = (['rebase', 'no-rebase', 'ff-only'] as const).filter((m) => bool(args, m))
    const ops = (['continue', 'abort'] as const).filter((m) => bool(args, m))
    if (modes.length + ops.length > 1) throw new UsageError(`--${[...modes, ...ops].join(' and --')} cannot be given together`, 'E_USAGE')
    if (ops.length && args.positional.length) throw new UsageError(`--${ops[0]} takes no remote or branch`, 'E_USAGE')
    if (args.positional.some((a) => a.startsWith('-')) || args.positional.length > 2) {
      throw new UsageError('name at most a git remote and a branch; of git pull\'s options only --rebase, --no-rebase and --ff-only are taken', 'E_USAGE')
    }
    if (bool(args, 'abort')) {
      const r = await abortPull(repo, hooks)
      if (json) printJson(io, { aborted: r.aborted })
      else io.err(`git zoo: pull abandoned; back where it began\n`)
      return 0
    }
    let result: IntegrateResult
    let gitRemote: string
    let replayed: ReplayedMove[] = []
    if (bool(args, 'continue')) {
      gitRemote = await defaultGitRemote(repo)
      result = await continuePull(repo, hooks)
    } else {
      gitRemote = args.positional[0] ?? await defaultGitRemote(repo)
      const branch = args.positional[1]
      const flag: PullMode | undefined = modes[0] === 'no-rebase' ? 'merge' : modes[0]
      const mode = await pullMode(repo, flag)
      await checkNotInProgress(repo)
      const gitBar = gitProgressFor(io)
      let f: GitResult
      try {
        f = await runGitRemote(repo.root, ['fetch', gitRemote, ...(branch ? [branch] : [])], { env: io.env, onProgress: gitBar.onProgress, ...(io.signal ? { signal: io.signal } : {}) })
      } finally { gitBar.done() }
      if (f.stdout) io.err(f.stdout)
      if (f.stderr) io.err(f.stderr)
      if (f.code !== 0) throw new ZooError(`\`git fetch ${gitRemote}${branch ? ` ${branch}` : ''}\` failed (exit ${f.code}); nothing was changed`, 'E_GIT', { code: f.code })
      const spec = branch ? 'FETCH_HEAD' : '@{upstream}'
      const up = await repo.runGit(['rev-parse', '--verify', '-q', `${spec}^{commit}`])
      if (up.code !== 0) {
        throw new UsageError(`the current branch has no upstream to pull from; name the branch (\`git zoo pull ${gitRemote} <branch>\`) or set one (\`git branch --set-upstream-to=${gitRemote}/<branch>\`)`, 'E_PULL_NO_UPSTREAM', {})
      }
      result = await integrate(repo, up.stdout.trim(), mode, hooks)
      // stage moves made here and on the remote alike: theirs stand, ours are made again on top
      const renamed = new Map(result.renumbered.map((r) => [r.old_seal, r.seal]))
      replayed = await integrateStages(repo, gitRemote, {}, renamed)
      for (const mv of replayed) {
        if (!json) io.err(`git zoo: stage ${mv.name}@${mv.stage} was moved on ${gitRemote} too; your move (${mv.was}) ${mv.tag ? `was made again after theirs as ${mv.tag}` : 'was no longer needed'}\n`)
      }
    }
    if (!json) {
      for (const r of result.renumbered) io.err(`git zoo: ${r.name}@v${r.from} is now @v${r.to}\n`)
    }
    await crashPoints(io)('pull-after-git')
    io.signal?.throwIfAborted()
    const lazy = await isLazy(repo)
    const sync = lazy
      ? { remote: null, url: null, models: 0, ...EMPTY_SYNC }
      : await fetchFor(repo, await repo.allManifests(), io, { from: str(args, 'from'), gitRemote, jobs: int(args, 'jobs'), json })
    if (json) {
      printJson(io, {
        git_remote: gitRemote, action: result.action,
        renumbered: result.renumbered.map((r) => ({ name: r.name, from: r.from, to: r.to, seal: r.seal, old_seal: r.old_seal })),
        stages_replayed: replayed.map((mv) => ({ name: mv.name, stage: mv.stage, action: mv.action, version: mv.version ?? null, was: mv.was, tag: mv.tag })),
        lazy, ...sync,
      })
    } else if (result.action === 'up-to-date') {
      summary(io, 'git zoo: already up to date')
    }
    return 0
  },
}
