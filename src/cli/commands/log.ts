import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { parseModelRef } from '../../manifest/names.js'
import { readLog, type LogEntry } from '../../promote/log.js'
import { UsageError } from '../../errors.js'
import { parseStageRef } from '../../git/stages.js'
import { judgeStageSignatures } from '../../promote/stages.js'

/** A log entry: a commit (src/promote/log.ts), or a stage move (its tag object in `commit`). */
type Entry = Omit<LogEntry, 'kind'> & {
  kind: LogEntry['kind'] | 'stage'
  /** For a stage move: the tag and what it did. */
  tag?: string
  stage?: { name: string; stage: string; action: 'set' | 'delete'; version: number | null; previous: number | null; problem: string | null }
}

export const command: Command = {
  help: `usage: git zoo log [<model>[@vN|@<stage>]] [--json]

The zoo's audit log, newest first: every commit in the current branch's history that touched
models/ (promotions, retirements, evaluation records, and anything else, which
\`git zoo verify --signatures\` reports), and every move of a stage (\`git zoo tag\`: its tags,
signed or not, judged by .zoo/allowed_signers at HEAD), with who made it, when, why (the commit or
tag message) and its signature status. <model>@<stage> shows only that stage's moves. A signature is judged by .zoo/allowed_signers as of the commit's parent
(else git's gpg.ssh.allowedSignersFile), so a commit that adds its own key shows "unknown key".
Statuses: good, bad, unknown key, unsigned, expired, expired key, revoked, cannot check, and
"untrusted signers list" when the list itself was written by a commit that was not well signed.

flags:
  --json   print { entries: [{ commit, kind, models: [{ name, version, seal }], author, date,
           subject, message, signature: { status, letter, signer, key, judgedBy, ok } }] };
           stage moves (kind "stage") add tag and stage: { name, stage, action, version,
           previous, problem }

examples:
  git zoo log
  git zoo log resnet18/cifar10 --json
  git zoo log resnet18/cifar10@prod        # every move of its prod stage
`,
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length > 1) throw new UsageError('name at most one model: git zoo log [<model>[@vN]]', 'E_USAGE')
    const stageRef = args.positional[0] ? parseStageRef(args.positional[0]) : undefined
    const ref = stageRef ? { name: stageRef.name } : args.positional[0] ? parseModelRef(args.positional[0]) : undefined
    const repo = await Repo.open(io.cwd, io)
    const entries: Entry[] = stageRef ? [] : await readLog(repo, ref)
    // stage moves, merged in by date (newest first)
    const moves = (await repo.stages(ref?.name)).filter((s) => !stageRef || s.stage === stageRef.stage).flatMap((s) => s.moves)
      .filter((mv) => ref?.version === undefined || mv.version === ref.version || mv.previousVersion === ref.version)
    if (moves.length) {
      const sigs = await judgeStageSignatures(repo, moves)
      const stageEntries: Entry[] = [...moves].sort((a, b) => Date.parse(b.date) - Date.parse(a.date) || b.n - a.n).map((mv) => {
        const sig = sigs.get(mv.object)!
        return {
          commit: mv.object, kind: 'stage' as const, tag: mv.tag,
          stage: { name: mv.name, stage: mv.stage, action: mv.action, version: mv.action === 'set' ? mv.version : null, previous: mv.action === 'set' ? mv.previousVersion ?? null : mv.version, problem: mv.problem ?? null },
          models: [{ name: mv.name, version: mv.version, seal: mv.seal || null }], author: mv.tagger, date: mv.date,
          subject: mv.action === 'set' ? `stage ${mv.name}@${mv.stage} = v${mv.version}` : `stage ${mv.name}@${mv.stage} deleted`, message: mv.message,
          signature: { letter: sig.ok ? 'G' : sig.status === 'unsigned' ? 'N' : sig.status === 'unknown key' ? 'U' : 'B', status: sig.status, signer: sig.signer, key: '', judgedBy: sig.judgedBy, ok: sig.ok },
        }
      })
      const merged: Entry[] = []
      let j = 0
      for (const e of entries) {
        while (j < stageEntries.length && Date.parse(stageEntries[j]!.date) > Date.parse(e.date)) merged.push(stageEntries[j++]!)
        merged.push(e)
      }
      merged.push(...stageEntries.slice(j))
      entries.splice(0, entries.length, ...merged)
    }
    if (bool(args, 'json')) { printJson(io, { entries }); return 0 }
    for (const e of entries) {
      if (e.kind === 'stage') {
        const st = e.stage!
        const sig = e.signature.ok ? `signed, good${e.signature.signer ? ` (${e.signature.signer})` : ''}` : `signature: ${e.signature.status}`
        const what = st.action === 'set' ? `stage ${st.name}@${st.stage} -> v${st.version}${st.previous !== null ? ` (was v${st.previous})` : ''}` : `stage ${st.name}@${st.stage} deleted (was v${st.previous})`
        io.out(`${e.commit.slice(0, 12)}  ${e.date}  ${what}\n    by ${e.author}; ${sig}; tag ${e.tag}\n`)
        if (st.problem) io.out(`    DOES NOT HOLD UP: ${st.problem}\n`)
        if (e.message) io.out(`    ${e.message.split('\n').join('\n    ')}\n`)
        io.out('\n')
        continue
      }
      const what = e.models.length ? e.models.map((m) => `${m.name}@v${m.version}`).join(', ') : '(not a promotion)'
      const verb = { retirement: 'retired', promotion: 'promoted', evaluation: 'evaluated', other: 'changed models/' }[e.kind as LogEntry['kind']]
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
