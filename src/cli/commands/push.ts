import type { Command, Io } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, summary } from '../output.js'
import { defaultGitRemote, describeSync, EMPTY_SYNC, gitProgressFor, progressFor } from '../transfer.js'
import { crashPoints } from '../crash.js'
import { Repo } from '../../repo.js'
import { runGit, runGitRemote, type GitResult } from '../../git/git.js'
import { CheckError, UsageError, ZooError } from '../../errors.js'
import { divergentStageMoves } from '../../promote/stages.js'
import { holdRemoteForPush, jobs, pushObjects, type RefUpdate, type SyncSummary } from '../../remote/sync.js'

/** The current branch when it has no upstream (a first push), else undefined. */
async function branchWithoutUpstream(repo: Repo): Promise<string | undefined> {
  const branch = await repo.runGit(['symbolic-ref', '--quiet', '--short', 'HEAD'])
  if (branch.code !== 0) return undefined
  const up = await repo.runGit(['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{upstream}'])
  return up.code === 0 ? undefined : branch.stdout.trim()
}

/** The ref updates `git push <args>` would make, from its dry run. */
async function plannedUpdates(repo: Repo, pushArgs: string[], env: NodeJS.ProcessEnv): Promise<RefUpdate[]> {
  const r = await runGit(repo.root, ['push', '--dry-run', '--porcelain', '--no-verify', ...pushArgs], { env })
  const updates: RefUpdate[] = []
  for (const line of r.stdout.split('\n')) {
    const parts = line.split('\t')
    if (parts.length < 2) continue
    const flag = parts[0]!.trim()
    const [from, to] = parts[1]!.split(':')
    if (!from || !to || flag === '=' || flag === '!' || flag === '-') continue
    const sha = (await repo.git(['rev-parse', '--verify', `${from}^{commit}`])).trim()
    updates.push({ localRef: from, localSha: sha, remoteRef: to, remoteSha: '0'.repeat(40) })
  }
  if (r.code !== 0 && updates.length === 0) {
    if (rejectedNonFastForward(r.stdout + r.stderr)) throw notFastForward(pushArgs)
    throw new ZooError(`\`git push ${pushArgs.join(' ')}\` would fail: ${r.stderr.trim() || r.stdout.trim()}`, 'E_GIT', { args: pushArgs })
  }
  return updates
}

/** git's words for a push refused because the remote branch has commits the local one lacks. */
function rejectedNonFastForward(text: string): boolean {
  return /\[rejected\][^\n]*\((non-fast-forward|fetch first)\)|^!\t[^\n]*\[rejected\] \((non-fast-forward|fetch first)\)/m.test(text)
}

function notFastForward(pushArgs: string[]): CheckError {
  return new CheckError(`\`git push ${pushArgs.join(' ')}\` was refused: the git remote has commits you do not have (someone pushed first); run \`git zoo pull\` to integrate them (your promotions that clash with theirs are renumbered), then \`git zoo push\` again`,
    'E_PUSH_NOT_FAST_FORWARD', { args: pushArgs })
}

export const command: Command = {
  help: `usage: git zoo push [<git-remote> [<refspec>...]] [--to <zoo-remote>] [--all] [--jobs <n>] [--json]

Upload every object that the manifests of the commits being pushed reference and the zoo remote
lacks, then push the git refs: objects first, always, so no clone ever sees a manifest whose
objects are not on the zoo remote. <git-remote> defaults to the branch's upstream remote, else
origin; refspecs are git push's. A branch without an upstream is pushed and gets one (like -u). The objects go to the zoo remote named like the git remote, else
the zoo's default remote. A plain \`git push\` does the same through the pre-push hook.
Stage tags (\`git zoo tag\`) go along (git push --follow-tags: annotated tags on the commits pushed).

When git refuses the push because the remote branch has commits you do not have (someone pushed
first), the command exits 1 (E_PUSH_NOT_FAST_FORWARD) and says to run \`git zoo pull\`: it
integrates them, promoting your clashing versions again as the next free numbers.

Manifests already on the git remote (reachable from its tracking refs) were uploaded when they
were pushed and are not checked again; --all checks every manifest of the pushed history.
Objects travel in packs of up to 64 MiB, each with its own index (spec/remotes.md, "Packs").
Ctrl-C stops it cleanly (exit 130): no ref is pushed before every object is up, and the objects
already packed are uploaded and kept, so running it again uploads only the rest.

While it runs, a push is registered on the zoo remote (a path or s3 remote: locks/push-*), so a
\`git zoo gc --remote\` never runs beside it; a push that finds a remote gc running waits for it.

flags:
  --to <zoo-remote>  upload to this zoo remote
  --all              check the objects of every manifest in the pushed history
  -j, --jobs <n>     objects in flight at once (default 8, or GIT_ZOO_JOBS)
  --json             print { git_remote, refs, remote, url, models, objects, bytes, skipped_objects, skipped_bytes }

examples:
  git zoo push
  git zoo push origin main
  git zoo push origin --to backup
`,
  interrupted: 'the objects uploaded so far are kept on the zoo remote; run the same command again to resume (check `git status` for the refs)',
  flags: { to: { type: 'string', value: 'zoo-remote' }, all: { type: 'bool' }, jobs: { type: 'string', short: 'j', value: 'n' }, json: { type: 'bool' } },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io)
    const [remoteArg, ...refspecs] = args.positional
    if (remoteArg?.startsWith('-') || refspecs.some((r) => r.startsWith('-'))) {
      throw new UsageError('git push options are not passed through; name the remote and refspecs only', 'E_USAGE')
    }
    const gitRemote = remoteArg ?? await defaultGitRemote(repo)
    const pushArgs = [gitRemote, ...refspecs]
    const setUpstream = refspecs.length === 0 ? await branchWithoutUpstream(repo) : undefined
    if (setUpstream) pushArgs.push(setUpstream)
    const concurrency = jobs(int(args, 'jobs'), io.env)
    const updates = await plannedUpdates(repo, pushArgs, io.env)
    const clash = await divergentStageMoves(repo, gitRemote)
    if (clash.length) {
      throw new CheckError(`the git remote holds other moves of ${[...new Set(clash.map((m) => `${m.name}@${m.stage}`))].join(', ')} under the tags you made (${clash.map((m) => m.tag).join(', ')}): someone moved the stage first; run \`git zoo pull\` (your moves are made again after theirs), then \`git zoo push\` again`,
        'E_PUSH_NOT_FAST_FORWARD', { tags: clash.map((m) => m.tag) })
    }
    // registered on the zoo remote until the refs are sent: a remote gc waits for this push
    const onWait = (why: string): void => io.err(`git zoo: ${why}\n`)
    const hold = await holdRemoteForPush(repo, gitRemote, str(args, 'to'), onWait)
    const point = crashPoints(io)
    let sync: SyncSummary | undefined
    try {
      const progress = progressFor(io, 'push')
      try {
        sync = await pushObjects(repo, gitRemote, updates, {
          concurrency, zooRemote: str(args, 'to'), all: bool(args, 'all'), onProgress: progress.onProgress, registered: true,
          ...(io.signal ? { signal: io.signal } : {}), point,
        })
      } finally { progress.done() }
      if (sync && !bool(args, 'json')) summary(io, describeSync('uploaded', 'to', sync))
      await point('push-after-objects') // objects are on the zoo remote, refs not yet sent (tests)
      // The hook would redo the check just made: tell it which tips are covered.
      const tips = updates.map((u) => u.localSha).sort().join(',')
      await point('push-before-refs')
      io.signal?.throwIfAborted()
      const gitBar = gitProgressFor(io)
      let r: GitResult
      try {
        r = await runGitRemote(repo.root, ['push', '--follow-tags', ...(setUpstream ? ['--set-upstream'] : []), ...pushArgs], { env: { ...io.env, GIT_ZOO_PUSHED: tips }, onProgress: gitBar.onProgress, ...(io.signal ? { signal: io.signal } : {}) })
      } finally { gitBar.done() }
      if (r.stdout) io.err(r.stdout)
      if (r.stderr) io.err(r.stderr)
      if (r.code !== 0) {
        if (rejectedNonFastForward(r.stdout + r.stderr)) throw notFastForward(pushArgs)
        throw new ZooError(`\`git push ${pushArgs.join(' ')}\` failed (exit ${r.code}); the objects are on the zoo remote, so running it again is safe`,
          'E_GIT', { args: pushArgs, code: r.code })
      }
    } finally { await hold.release() }
    if (bool(args, 'json')) {
      printJson(io, {
        git_remote: gitRemote,
        refs: updates.map((u) => ({ local: u.localRef, remote: u.remoteRef, commit: u.localSha })),
        ...(sync ?? { remote: null, url: null, models: 0, ...EMPTY_SYNC }),
      })
    }
    return 0
  },
}
