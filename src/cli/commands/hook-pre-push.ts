/**
 * Run by the pre-push hook on every `git push`. A push with nothing for the zoo to do (a deletion,
 * or `git zoo push` having uploaded already) answers before the store, remote and manifest code is
 * loaded, so the hook costs little more than node's start (spec/architecture.md, "Card packages").
 */
import type { Command } from '../command.js'
import { int } from '../args.js'
import type { RefUpdate } from '../../remote/sync.js'

export function parseUpdates(text: string): RefUpdate[] {
  const out: RefUpdate[] = []
  for (const line of text.split('\n')) {
    const [localRef, localSha, remoteRef, remoteSha] = line.trim().split(' ')
    if (!localRef || !localSha || !remoteRef || !remoteSha) continue
    if (!/^[0-9a-f]{40,64}$/.test(localSha) || !/^[0-9a-f]{40,64}$/.test(remoteSha)) continue
    out.push({ localRef, localSha, remoteRef, remoteSha })
  }
  return out
}

export const command: Command = {
  help: `usage: git zoo hook-pre-push <remote-name> <remote-url>   (ref updates on stdin, as git gives them)

Run by .git/hooks/pre-push: before git sends refs, upload to the zoo remote every object the
manifests of the pushed commits reference (see \`git zoo push --help\`). A failure stops the push.
\`git zoo push\` does this itself and tells the hook so through GIT_ZOO_PUSHED.

flags:
  -j, --jobs <n>   objects in flight at once (default 8, or GIT_ZOO_JOBS)
`,
  flags: { jobs: { type: 'string', short: 'j', value: 'n' } },
  async run(args, io) {
    const [remoteName = 'origin'] = args.positional
    const updates = parseUpdates(await io.stdin())
    const pending = updates.filter((u) => !/^0+$/.test(u.localSha))
    if (pending.length === 0) return 0
    const covered = new Set((io.env.GIT_ZOO_PUSHED ?? '').split(',').filter(Boolean))
    if (pending.every((u) => covered.has(u.localSha))) return 0
    const [{ Repo }, { jobs, pushObjects }, { describeSync, progressFor }] = await Promise.all([
      import('../../repo.js'), import('../../remote/sync.js'), import('../transfer.js'),
    ])
    const repo = await Repo.open(io.cwd, io)
    const progress = progressFor(io, 'zoo objects')
    try {
      const sync = await pushObjects(repo, remoteName, pending, { concurrency: jobs(int(args, 'jobs'), io.env), onProgress: progress.onProgress,
        onWait: (why) => io.err(`git zoo: ${why}\n`) })
      progress.done()
      if (sync && sync.objects > 0) io.err(describeSync('uploaded', 'to', sync))
    } finally { progress.done() }
    return 0
  },
}
