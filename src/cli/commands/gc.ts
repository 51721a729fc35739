import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, humanBytes, summary as printSummary } from '../output.js'
import { crashPoints } from '../crash.js'
import { Repo } from '../../repo.js'
import { UsageError } from '../../errors.js'
import { collectGarbage, type GcSummary } from '../../zoo/gc.js'
import { collectRemoteGarbage, REMOTE_DEFAULT_GRACE, type RemoteGcSummary } from '../../remote/retention.js'

export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d|w)?$/.exec(text)
  if (!m) throw new UsageError(`--grace takes a duration such as 0, 90s, 30m, 12h, 2d or 1w, not ${JSON.stringify(text)}`, 'E_USAGE')
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as 's' ?? 's'] ?? 1
  return Number(m[1]) * unit * 1000
}

export const DEFAULT_GRACE = '2d'

function plural(n: number, one: string, many = `${one}s`): string { return `${n} ${n === 1 ? one : many}` }

function localLine(s: GcSummary): string {
  const parts = [plural(s.removed_objects, 'object')]
  if (s.orphan_packs_removed) parts.push(plural(s.orphan_packs_removed, 'orphaned partial pack'))
  if (s.temp_files_removed) parts.push(plural(s.temp_files_removed, 'temp file'))
  return `gc: ${s.dry_run ? 'would free' : 'freed'} ${humanBytes(s.freed_bytes)} (${parts.join(', ')}); kept ${plural(s.kept_objects, 'object')}\n`
}

function remoteLine(s: RemoteGcSummary): string {
  const young = s.young_objects ? `, ${plural(s.young_objects, 'unreferenced object')} younger than the grace period` : ''
  const missing = s.missing_roots ? `; ${plural(s.missing_roots, 'file')} of live manifests found nowhere (run \`git zoo verify\`)` : ''
  return `gc --remote ${s.remote}: ${s.dry_run ? 'would free' : 'freed'} ${humanBytes(s.freed_bytes)} (${plural(s.removed_objects, 'object')}); `
    + `kept ${plural(s.live_objects, 'live object')}${young}${missing}\n`
}

export const command: Command = {
  help: `usage: git zoo gc [--dry-run] [--grace <duration>] [--json]
       git zoo gc --remote <zoo-remote> [--git-remote <name>] [--dry-run] [--grace <duration>] [--json]

Remove objects from the local store that no manifest needs: not one reachable from any ref or
reflog, not one staged in the index, not one in the working tree. Packs written more recently
than the grace period are never touched, and gc does not run while any git zoo command is writing
to the store (add, import, soup, fetch, pull, clone, get, eval...: it stops with E_LOCKED; run it
again later). Packs holding both live and dead objects are rewritten with only the live ones;
packs and temp files left by interrupted commands are removed and counted in the bytes freed.
A store shared by several repositories (zoo.store, GIT_ZOO_STORE) keeps what any of them needs:
each repository records itself in <store>/repos/ when it uses the store, and gc reads them all.

With --remote, remove from that zoo remote (a path or s3 remote; an http remote is read-only) the
objects that no branch or tag of the git remote of the same name (or --git-remote) needs, after
fetching its refs; local refs, the index and the working tree count as live too. Objects younger
than the grace period are kept (a push uploads objects before its refs), default ${REMOTE_DEFAULT_GRACE}: on a packed
remote, whatever is in a pack younger than that. Packs whose objects are all dead are removed,
packs a quarter or more dead are rewritten without them, and small packs (one per small push)
are merged into full ones (spec/remotes.md). A remote gc
never runs beside another one or beside a push (locks on the remote: E_REMOTE_LOCKED; pushes wait
for gc). See spec/teams.md.

A one-line summary goes to stderr: gc: freed 64.0 MiB (12 objects, 1 orphaned partial pack).

flags:
  --dry-run              report what would be removed, remove nothing
  --grace <duration>     keep what is younger than this (default ${DEFAULT_GRACE}, with --remote ${REMOTE_DEFAULT_GRACE}; 0 for none), e.g. 30m, 12h
  --remote <zoo-remote>  collect garbage on this zoo remote instead of the local store
  --git-remote <name>    with --remote: the git remote whose refs say what is live
  --json                 print { freed_bytes, removed_objects, removed_bytes, kept_objects, packs_removed,
                         packs_rewritten, orphan_packs_removed, orphan_bytes, temp_files_removed, missing_roots, dry_run };
                         with --remote { remote, url, git_remote, listed_objects, live_objects, removed_objects,
                         freed_bytes, young_objects, young_bytes, temp_files_removed, packs_removed, packs_rewritten,
                         missing_roots, grace_ms, dry_run }

examples:
  git zoo gc --grace 0
  git zoo gc --remote origin --dry-run
  git zoo gc --remote backup --git-remote origin --grace 14d
`,
  flags: {
    'dry-run': { type: 'bool' }, grace: { type: 'string', value: 'duration' }, json: { type: 'bool' },
    remote: { type: 'string', value: 'zoo-remote' }, 'git-remote': { type: 'string', value: 'name' },
  },
  async run(args, io) {
    if (args.positional.length) throw new UsageError('git zoo gc takes no arguments', 'E_USAGE')
    const remote = str(args, 'remote')
    if (str(args, 'git-remote') !== undefined && remote === undefined) throw new UsageError('--git-remote goes with --remote <zoo-remote>', 'E_USAGE')
    const graceMs = parseDuration(str(args, 'grace') ?? (remote !== undefined ? REMOTE_DEFAULT_GRACE : DEFAULT_GRACE))
    const dry = bool(args, 'dry-run')
    const repo = await Repo.open(io.cwd, io)
    if (remote !== undefined) {
      const summary = await collectRemoteGarbage(repo, { remote, gitRemote: str(args, 'git-remote'), graceMs, dry, crashPoint: crashPoints(io) })
      if (bool(args, 'json')) printJson(io, summary)
      else printSummary(io, remoteLine(summary))
      return 0
    }
    const summary = await collectGarbage(repo, { graceMs, dry, crashPoint: crashPoints(io) })
    if (bool(args, 'json')) printJson(io, summary)
    else printSummary(io, localLine(summary))
    return 0
  },
}
