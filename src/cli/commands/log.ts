import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { parseModelRef } from '../../manifest/names.js'
import { historyFacts, signatureStatuses, trailersOf, type Signature } from '../../promote/signatures.js'
import { parseModelPath } from '../../promote/precommit.js'
import { UsageError } from '../../errors.js'

interface Entry {
  commit: string
  kind: 'promotion' | 'retirement' | 'evaluation' | 'other'
  models: Array<{ name: string; version: number; seal: string | null }>
  author: string
  date: string
  subject: string
  message: string
  signature: Signature
}

const FORMAT = '%H%x00%P%x00%an <%ae>%x00%aI%x00%s%x00%b%x1e'

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
    const entries: Entry[] = []
    if ((await repo.runGit(['rev-parse', '--verify', '-q', 'HEAD'])).code === 0) {
      const scope = ref ? `models/${ref.name}/` : 'models/'
      const text = await repo.git(['log', `--format=${FORMAT}`, 'HEAD', '--', scope])
      const raw = text.split('\x1e').map((r) => r.replace(/^\n/, '')).filter((r) => r.includes('\0')).map((r) => {
        const [commit, parents, author, date, subject, body] = r.split('\0')
        return { commit: commit!, parent: parents ? parents.split(' ')[0]! : null, author: author!, date: date!, subject: subject!, body: body ?? '' }
      })
      const trailers = await trailersOf(repo, raw.map((r) => r.commit))
      const sigs = await signatureStatuses(repo, raw.map((r) => ({ sha: r.commit, parent: r.parent })), await historyFacts(repo, 'HEAD'))
      for (const r of raw) {
        const t = trailers.get(r.commit)!
        let models = [...t.models].map(([label, seal]) => ({ ...parseModelRef(label), seal: seal || null }))
        const retired = [...t.retires].map(([label, seal]) => ({ ...parseModelRef(label), seal: seal || null }))
        if (t.batch !== undefined && models.length === 0) models = await addedIn(repo, r.commit)
        const all = [...models, ...retired].map((m) => ({ name: m.name, version: m.version ?? 0, seal: m.seal }))
        // `models/a/` also holds model a/b: keep only the entries about this model (and version)
        if (ref && all.length && !all.some((m) => m.name === ref.name && (ref.version === undefined || m.version === ref.version))) continue
        if (ref?.version !== undefined && !all.length) continue
        entries.push({
          commit: r.commit,
          kind: t.evalData.size && models.length ? 'evaluation' : retired.length && !models.length ? 'retirement' : models.length ? 'promotion' : 'other',
          models: all, author: r.author, date: r.date, subject: r.subject,
          message: withoutTrailers(r.body),
          signature: sigs.get(r.commit)!,
        })
      }
    }
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

async function addedIn(repo: Repo, sha: string): Promise<Array<{ name: string; version: number; seal: null }>> {
  const text = await repo.git(['diff-tree', '-r', '--root', '--no-renames', '--name-only', '--diff-filter=A', '-z', sha, '--', 'models/'])
  const out: Array<{ name: string; version: number; seal: null }> = []
  for (const p of text.split('\0')) {
    const mp = parseModelPath(p)
    if (mp && mp !== 'outside' && mp.rest === 'manifest.json') out.push({ name: mp.name, version: mp.version, seal: null })
  }
  return out
}

/** The body without its last paragraph when that paragraph is all trailers. */
function withoutTrailers(body: string): string {
  const paras = body.trim().split(/\n\s*\n/)
  const last = paras[paras.length - 1] ?? ''
  if (last && last.split('\n').every((l) => /^[A-Za-z0-9-]+: /.test(l))) paras.pop()
  return paras.join('\n\n').trim()
}
