import { resolve } from 'node:path'
import type { Command } from '../command.js'
import { bool, str } from '../args.js'
import { printJson, Progress } from '../output.js'
import { Repo } from '../../repo.js'
import { UsageError } from '../../errors.js'
import { writeModelFiles } from '../../zoo/checkout.js'

export const command: Command = {
  help: `usage: git zoo get <model>[@vN] [--out <dir>] [--json]

Write a model version's files byte-exact from the object store. Every chunk is checked against its
CID and every file against its size and sha256 before anything is renamed into place; a damaged
or missing object writes nothing. Paths never escape the output folder and a symbolic link already
in it is never written through. <model> may also be a seal CID.

flags:
  --out <dir>           where to write (default: ./<model name with / as folders>)
  --checkpoint <epoch>  only the files of that epoch's checkpoint (trajectories)
  --json                print { name, version, seal, out, files: [{ path, size, sha256 }] }

examples:
  git zoo get resnet18/cifar10            # latest version into ./resnet18/cifar10/
  git zoo get resnet18/cifar10@v2 --out /tmp/r18
`,
  flags: { out: { type: 'string', value: 'dir' }, checkpoint: { type: 'string', value: 'epoch' }, json: { type: 'bool' } },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one model: git zoo get <model>[@vN]', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const m = await repo.resolve(args.positional[0]!)
    const outDir = resolve(io.cwd, str(args, 'out') ?? m.name)
    const cp = str(args, 'checkpoint')
    let only: ((p: string) => boolean) | undefined
    if (cp !== undefined) {
      if (!/^\d+$/.test(cp)) throw new UsageError('--checkpoint takes an epoch number', 'E_USAGE')
      const epoch = Number(cp)
      const have = [...new Set(m.files.filter((f) => f.epoch !== undefined).map((f) => f.epoch))]
      if (!have.includes(epoch)) throw new UsageError(`model ${m.name}@v${m.version} has no checkpoint for epoch ${epoch}${have.length ? ` (it has ${have.join(', ')})` : ' (it holds no trajectory)'}`, 'E_USAGE')
      only = (p) => m.files.find((f) => f.path === p)?.epoch === epoch
    }
    // a lazy clone fetches what this model needs from the zoo remote first
    const { ensureObjects } = await import('../../remote/sync.js')
    await ensureObjects(repo, [m])
    const store = await repo.openStore()
    const total = m.files.reduce((a, f) => a + f.size, 0)
    const progress = new Progress(io, 'get', total)
    let done = 0
    try {
      const files = await writeModelFiles(m, store, outDir, (n) => { done += n; progress.update(done) }, only)
      progress.done()
      if (bool(args, 'json')) printJson(io, { name: m.name, version: m.version, seal: m.seal, out: outDir, files: files.map(({ path, size, sha256 }) => ({ path, size, sha256 })) })
    } finally { await store.close() }
    return 0
  },
}
