import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { parseModelRef } from '../../manifest/names.js'
import { readLog } from '../../promote/log.js'
import { UsageError } from '../../errors.js'

export const command: Command = {
  help: `usage: git zoo log [<model>[@vN]] [--json]

The zoo's audit log, newest first: every commit in the current branch's history that touched
models/ (promotions, retirements, evaluation records, and anything else, which
\`git zoo verify --signatures\` reports), with who made it, when, why (the commit message) and
its signature status. A signature is judged by .zoo/allowed_signers as of the commit's parent
(else git's gpg.ssh.allowedSignersFile), so a commit that adds its own key shows "unknown key".
Statuses: good, bad, unknown key, unsigned, expired, expired key, revoked, cannot check, and
"untrusted signers list" when the list itself was written by a commit that was not well signed.

flags:
  --json   print { entries: [{ commit, kind, models: [{ name, version, seal }], author, date,
           subject, message, signature: { status, letter, signer, key, judgedBy, ok } }] }

examples:
  git zoo log
  git zoo log resnet18/cifar10 --json
`,
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length > 1) throw new UsageError('name at most one model: git zoo log [<model>[@vN]]', 'E_USAGE')
    const ref = args.positional[0] ? parseModelRef(args.positional[0]) : undefined
    const repo = await Repo.open(io.cwd, io)
    const entries = await readLog(repo, ref)
    if (bool(args, 'json')) { printJson(io, { entries }); return 0 }
    for (const e of entries) {
      const what = e.models.length ? e.models.map((m) => `${m.name}@v${m.version}`).join(', ') : '(not a promotion)'
      const verb = { retirement: 'retired', promotion: 'promoted', evaluation: 'evaluated', other: 'changed models/' }[e.kind]
      const sig = e.signature.ok ? `signed, good${e.signature.signer ? ` (${e.signature.signer})` : ''}` : `signature: ${e.signature.status}${e.signature.signer ? ` (${e.signature.signer})` : ''}`
      io.out(`${e.commit.slice(0, 12)}  ${e.date}  ${verb} ${what}\n    by ${e.author}; ${sig}\n`)
      const why = e.message || (e.kind === 'other' ? e.subject : '')
      if (why) io.out(`    ${why.split('\n').join('\n    ')}\n`)
      io.out('\n')
    }
    if (!entries.length) io.err(`git zoo: no promotions${ref ? ` of ${args.positional[0]}` : ''} in this branch's history\n`)
    const unsigned = entries.filter((e) => e.signature.letter === 'N').length
    if (unsigned) io.err(`git zoo: ${unsigned === entries.length ? (unsigned === 1 ? 'it is' : 'all are') : `${unsigned} of ${entries.length} are`} unsigned; \`git zoo init --sign\` sets up signed promotions\n`)
    return 0
  },
}
