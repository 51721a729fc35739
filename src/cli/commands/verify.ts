import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson } from '../output.js'
import { Repo } from '../../repo.js'
import { manifestsToVerify, verifyModels, type Problem } from '../../zoo/verify.js'

export const command: Command = {
  help: `usage: git zoo verify [<model>...] [--signatures] [--json]

Re-hash every object of the named models (default: every model in the working tree): each
manifest against its seal, each node and chunk against its CID, each file's chunk tree against its
size. Every problem names the model, the file and the object; a manifest that cannot be parsed is a
problem of its model (path: the manifest, object: null) and the other models are still checked.
Exits 1 if there is any problem.

flags:
  --signatures   also check every commit that touched a sealed model: a promotion signed by an
                 allowed signer as of its parent commit (see spec/seal.md)
  --json         print { ok, problems: [{ model, path, object, problem }] }

examples:
  git zoo verify
  git zoo verify resnet18/cifar10@v2 --json
`,
  flags: { signatures: { type: 'bool' }, json: { type: 'bool' } },
  async run(args, io) {
    const repo = await Repo.open(io.cwd, io)
    const { manifests, problems: unreadable } = await manifestsToVerify(repo, args.positional)
    const store = await repo.openStore()
    const json = bool(args, 'json')
    const show = (p: Problem): void => { io.err(`${p.model}${p.path ? ` ${p.path}` : ''}${p.object ? ` ${p.object}` : ''}: ${p.problem}\n`) }
    if (!json) unreadable.forEach(show)
    const problems: Problem[] = [...unreadable]
    try {
      problems.push(...await verifyModels(manifests, store, json ? undefined : show))
    } finally { await store.close() }
    if (bool(args, 'signatures')) {
      const { verifySignatures } = await import('../../promote/signatures.js')
      const sig = await verifySignatures(repo)
      for (const p of sig) {
        problems.push(p)
        if (!json) io.err(`${p.model}${p.object ? ` ${p.object}` : ''}: ${p.problem}\n`)
      }
    }
    if (json) printJson(io, { ok: problems.length === 0, problems })
    else if (problems.length) io.err(`git zoo verify: ${problems.length} problem${problems.length === 1 ? '' : 's'}; \`git zoo fetch\` restores missing or damaged objects from a zoo remote\n`)
    return problems.length ? 1 : 0
  },
}
