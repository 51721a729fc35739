import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, summary } from '../output.js'
import { crashPoints } from '../crash.js'
import { Repo } from '../../repo.js'
import { UsageError } from '../../errors.js'
import { isLazy } from '../../remote/lazy.js'
import { manifestsToVerify, verifyModels, type Problem } from '../../zoo/verify.js'
import type { Repaired, Unrepaired } from '../../zoo/repair.js'

const line = (p: Problem): string => `${p.model}${p.path ? ` ${p.path}` : ''}${p.object ? ` ${p.object}` : ''}: ${p.problem}\n`
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

export const command: Command = {
  help: `usage: git zoo verify [<model>...] [--repair [--from <zoo-remote>]] [--signatures] [--json]

Re-hash every object of the named models (default: every model in the working tree): each
manifest against its seal, each node and chunk against its CID, each file's chunk tree against its
size. Every problem names the model, the file and the object; a manifest that cannot be parsed is a
problem of its model (path: the manifest, object: null) and the other models are still checked.
Exits 1 if there is any problem.

In a lazy clone (git zoo clone --lazy) objects not fetched yet are not problems: they are counted
apart (not_fetched) and fetched when a command reads them; what is present is checked.

With --repair, every damaged or missing object is replaced by a good copy from the zoo remotes (the
default remote first, then the others; each copy checked against its CID before it is stored). The
damaged bytes are kept for inspection in <store>/bad/<cid> (the store is .git/zoo unless
zoo.store or GIT_ZOO_STORE says otherwise). A remote that holds bad bytes too is named and nothing
bad is stored. Exits 0 only when nothing damaged is left.

flags:
  --repair             replace damaged or missing objects from the zoo remotes (see above)
  --from <zoo-remote>  with --repair: take copies from this zoo remote only
  --signatures         also check every commit that touched a sealed model: a promotion signed by an
                       allowed signer as of its parent commit (see spec/seal.md); and every stage
                       move (git zoo tag): its tag chain, its seal, a good signature by an allowed
                       signer (see spec/stages.md)
  -q, --quiet          no summary line when there is no problem
  --json               print { ok, problems: [{ model, path, object, problem }] }; in a lazy clone
                       also not_fetched: [{ model, path, object }]; with --repair also repaired:
                       [{ object, problem, models, from, url, moved_to }] and unrepaired:
                       [{ object, problem, models, reason }]

examples:
  git zoo verify
  git zoo verify resnet18/cifar10@v2 --json
  git zoo verify --repair --from backup
`,
  interrupted: 'not every object was checked, run the same command again',
  flags: { repair: { type: 'bool' }, from: { type: 'string', value: 'zoo-remote' }, signatures: { type: 'bool' }, json: { type: 'bool' } },
  async run(args, io) {
    const repair = bool(args, 'repair')
    const from = str(args, 'from')
    if (from !== undefined && !repair) throw new UsageError('--from <zoo-remote> goes with --repair: git zoo verify --repair --from <zoo-remote>', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const { manifests, problems: unreadable } = await manifestsToVerify(repo, args.positional)
    const json = bool(args, 'json')
    if (!json) for (const p of unreadable) io.err(line(p))
    const lazy = await isLazy(repo)
    let problems: Problem[]
    let notFetched: Problem[]
    let repaired: Repaired[] | undefined
    let unrepaired: Unrepaired[] | undefined
    if (repair) {
      const { repairModels } = await import('../../zoo/repair.js')
      const r = await repairModels(repo, manifests, {
        lazy, ...(from !== undefined ? { from } : {}), crashPoint: crashPoints(io), ...(io.signal ? { signal: io.signal } : {}),
        onRepaired: json ? undefined : (x) => io.err(`repaired ${x.object} (${x.models.join(', ')}; was ${x.problem}) from ${x.from} (${x.url})`
          + `${x.moved_to ? `; the damaged bytes are kept in ${x.moved_to}` : ''}\n`),
      })
      ;({ problems, notFetched, repaired, unrepaired } = r)
      if (!json) for (const u of unrepaired) io.err(`not repaired: ${u.models.join(', ')}${u.object ? ` ${u.object}` : ''}: ${u.problem}: ${u.reason}\n`)
    } else {
      const store = await repo.openStore()
      try {
        ({ problems, notFetched } = await verifyModels(manifests, store, {
          lazy, onProblem: json ? undefined : (p) => io.err(line(p)), crashPoint: crashPoints(io), ...(io.signal ? { signal: io.signal } : {}),
        }))
      } finally { await store.close() }
    }
    problems.unshift(...unreadable)
    if (bool(args, 'signatures')) {
      const { verifySignatures } = await import('../../promote/signatures.js')
      const { stageProblems } = await import('../../promote/stages.js')
      // the signature checks do not take the signal: an interruption during them stops here
      const found = [...await verifySignatures(repo), ...await stageProblems(repo)]
      io.signal?.throwIfAborted()
      for (const p of found) {
        problems.push(p)
        if (!json) io.err(line(p))
      }
    }
    const notFetchedList = notFetched.map(({ model, path, object }) => ({ model, path, object }))
    if (json) {
      printJson(io, { ok: problems.length === 0, problems, ...(lazy ? { not_fetched: notFetchedList } : {}), ...(repaired ? { repaired, unrepaired } : {}) })
    } else {
      const parts: string[] = []
      if (repaired) parts.push(`repaired ${plural(repaired.length, 'object')}`)
      parts.push(problems.length ? plural(problems.length, 'problem') + (repaired ? ' left' : '') : 'no problems')
      if (notFetched.length) parts.push(`${plural(notFetched.length, 'object')} not fetched yet (a lazy clone fetches them when read; \`git zoo fetch\` fetches them all)`)
      const hint = problems.length && !repaired ? '; `git zoo verify --repair` replaces damaged or missing objects with good copies from the zoo remotes' : ''
      // the summary: -q silences it when all is well; a failure is always said
      const text = `git zoo verify: ${parts.join('; ')}${hint}`
      if (problems.length) io.err(`${text}\n`)
      else summary(io, text)
    }
    return problems.length ? 1 : 0
  },
}
