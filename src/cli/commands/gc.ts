import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, humanBytes } from '../output.js'
import { Repo } from '../../repo.js'
import { UsageError } from '../../errors.js'
import { collectGarbage } from '../../zoo/gc.js'

export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d|w)?$/.exec(text)
  if (!m) throw new UsageError(`--grace takes a duration such as 0, 90s, 30m, 12h, 2d or 1w, not ${JSON.stringify(text)}`, 'E_USAGE')
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as 's' ?? 's'] ?? 1
  return Number(m[1]) * unit * 1000
}

export const DEFAULT_GRACE = '2d'

export const command: Command = {
  help: `usage: git zoo gc [--dry-run] [--grace <duration>] [--json]

Remove objects from the local store that no manifest needs: not one reachable from any ref or
reflog, not one staged in the index, not one in the working tree. Packs written more recently
than the grace period are never touched (an add in progress may still need them), nor is
anything while another git zoo command is writing to the store. Packs holding both live and dead
objects are rewritten with only the live ones.

flags:
  --dry-run            report what would be removed, remove nothing
  --grace <duration>   keep packs younger than this (default ${DEFAULT_GRACE}; 0 for none), e.g. 30m, 12h
  --json               print { removed_objects, removed_bytes, kept_objects, packs_removed, packs_rewritten, dry_run }
`,
  flags: { 'dry-run': { type: 'bool' }, grace: { type: 'string', value: 'duration' }, json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length) throw new UsageError('git zoo gc takes no arguments', 'E_USAGE')
    const graceMs = parseDuration(str(args, 'grace') ?? DEFAULT_GRACE)
    const dry = bool(args, 'dry-run')
    const repo = await Repo.open(io.cwd, io)
    const summary = await collectGarbage(repo, { graceMs, dry })
    if (bool(args, 'json')) printJson(io, summary)
    else if (dry || io.tty) io.err(`${dry ? 'would remove' : 'removed'} ${summary.removed_objects} objects (${humanBytes(summary.removed_bytes)}); kept ${summary.kept_objects}\n`)
    return 0
  },
}
