import { relative, resolve } from 'node:path'
import type { Command } from '../command.js'
import { bool, list, nearest, str } from '../args.js'
import { printJson, Progress, summary, humanBytes } from '../output.js'
import { Repo, chunkHashOf } from '../../repo.js'
import { UsageError } from '../../errors.js'
import { writeModelFiles, startWriteWorkers } from '../../zoo/checkout.js'
import { objectsMissing } from '../../remote/lazy.js'
import { crashPoints } from '../crash.js'
import { ignoreOutput } from '../../zoo/init.js'

export const command: Command = {
  help: `usage: git zoo get <model>[@vN] [--out <dir>] [--file <path>]... [--json]

Write a model version's files byte-exact from the object store. Every chunk is checked against its
CID and every file against its size and sha256 before anything is renamed into place; a damaged
or missing object writes nothing. Paths never escape the output folder and a symbolic link already
in it is never written through. <model> may also be a seal CID.

Without --out the files go to ./<model name, / as folders>. What get writes inside the work tree
is added to .git/info/exclude (this clone only; the folder, or each file when the folder is the top
of the work tree or holds tracked files), so \`git add .\` never picks the weights up (the
pre-commit hook would refuse them); the summary says so. The folder written (with --file: each
file) is printed on stdout, one path a line, as \`hf download\` does, so scripts can use
\`cd "$(git zoo get <model>)"\`. A one-line summary goes to stderr (-q silences it).

Without @vN, the latest version in service: retired versions are skipped, and a model whose every
version is retired is refused (name the version to get it anyway; a warning says it is retired).
Ctrl-C stops it cleanly (exit 130) and removes its temporary files; temporary files that a killed
get left beside its targets are removed by the next get.
Models of 16 MiB and more are written with direct I/O where the filesystem takes it (O_DIRECT: the
bytes skip the page cache, whose copy is most of the cost of writing them, so the next program to
read them reads the disk); GIT_ZOO_DIRECT_IO=0 writes them through the page cache.

flags:
  --out <dir>           where to write (default: ./<model name with / as folders>)
  --file <path>         only this file of the model, as its manifest names it (repeatable);
                        written to <out>/<path>
  --checkpoint <epoch>  only the files of that epoch's checkpoint (trajectories)
  -q, --quiet           no summary line
  --json                print { name, version, seal, out, files: [{ path, size, sha256, target }] }

examples:
  git zoo get resnet18/cifar10            # latest version in service into ./resnet18/cifar10/
  git zoo get resnet18/cifar10@v2 --out /tmp/r18
  git zoo get resnet18/cifar10 --file model.safetensors --out .
`,
  interrupted: 'no file was written, run the same command again',
  flags: {
    out: { type: 'string', value: 'dir' }, file: { type: 'list', value: 'path' },
    checkpoint: { type: 'string', value: 'epoch' }, json: { type: 'bool' },
  },
  async run(args, io) {
    if (args.positional.length !== 1) throw new UsageError('name one model: git zoo get <model>[@vN]', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io)
    const sealed = await repo.resolve(args.positional[0]!)
    // served (spec/server.md): what get would fetch from the zoo remotes runs in node, with the asker's credentials
    if (io.declineServed) await (await import('../served.js')).declineFetching(repo, sealed, io.declineServed)
    // every file of a trajectory, its checkpoint node read (a lazy clone fetches it); the reader and
    // the remotes behind it are loaded only for a trajectory
    const m = sealed.checkpoints ? await (await import('../../zoo/reader.js')).completeManifest(repo, sealed) : sealed
    const retired = await repo.retirement(m.name, m.version)
    if (retired) io.err(`git zoo: warning: ${m.name}@v${m.version} is retired (${retired.retired} by ${retired.retired_by}: ${retired.reason})\n`)
    const out = str(args, 'out')
    const outDir = resolve(io.cwd, out ?? m.name)
    const filters: Array<(p: string) => boolean> = []
    const wanted = list(args, 'file')
    if (wanted.length) {
      const have = new Set(m.files.map((f) => f.path))
      for (const w of wanted) {
        if (have.has(w)) continue
        const near = nearest(w, [...have])
        throw new UsageError(`${m.name}@v${m.version} has no file ${JSON.stringify(w)}; ${near ? `did you mean ${JSON.stringify(near)}? ` : ''}\`git zoo show ${m.name}@v${m.version}\` lists its files`, 'E_USAGE', { file: w })
      }
      const set = new Set(wanted)
      filters.push((p) => set.has(p))
    }
    const cp = str(args, 'checkpoint')
    if (cp !== undefined) {
      if (!/^\d+$/.test(cp)) throw new UsageError('--checkpoint takes an epoch number', 'E_USAGE')
      const epoch = Number(cp)
      const have = [...new Set(m.files.filter((f) => f.epoch !== undefined).map((f) => f.epoch))]
      if (!have.includes(epoch)) throw new UsageError(`model ${m.name}@v${m.version} has no checkpoint for epoch ${epoch}${have.length ? ` (it has ${have.join(', ')})` : ' (it holds no trajectory)'}`, 'E_USAGE')
      filters.push((p) => m.files.find((f) => f.path === p)?.epoch === epoch)
    }
    const only = filters.length ? (p: string) => filters.every((f) => f(p)) : undefined
    if (only && !m.files.some((f) => only(f.path))) throw new UsageError(`no file of ${m.name}@v${m.version} is both named by --file and in checkpoint ${cp}`, 'E_USAGE')
    // the hashing workers boot while the store opens and the file nodes are read
    const workers = startWriteWorkers(m, chunkHashOf(await repo.config().catch(() => ({}))))
    let handed = false
    let store: Awaited<ReturnType<Repo['openStore']>>
    try { store = await repo.openStore() } catch (err) { await workers?.pool.close(); throw err }
    try {
      // a lazy clone fetches what this model needs from the zoo remote first (the remotes are loaded
      // only when something is missing)
      if (await objectsMissing([m], store)) {
        const { ensureObjects } = await import('../../remote/sync.js')
        await ensureObjects(repo, [sealed], { ...(io.signal ? { signal: io.signal } : {}), point: crashPoints(io) })
      }
      const total = m.files.filter((f) => !only || only(f.path)).reduce((a, f) => a + f.size, 0)
      const progress = new Progress(io, 'get', total)
      let done = 0
      handed = true
      const files = await writeModelFiles(m, store, outDir, {
        workers,
        onBytes: (n) => { done += n; progress.update(done) },
        ...(only ? { only } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
        crashPoint: crashPoints(io),
        owner: io.host,
        // GIT_ZOO_DIRECT_IO=0: written through the page cache (src/cas/append-write.ts)
        directIO: io.env.GIT_ZOO_DIRECT_IO !== '0',
      })
      progress.done()
      const ignored = await ignoreOutput(repo, outDir, files.map((f) => f.target))
      if (bool(args, 'json')) {
        printJson(io, { name: m.name, version: m.version, seal: m.seal, out: outDir, files: files.map(({ path, size, sha256, target }) => ({ path, size, sha256, target })) })
      } else {
        io.out(wanted.length ? files.map((f) => `${f.target}\n`).join('') : `${outDir}\n`)
        const shown = relative(io.cwd, outDir) || '.'
        const bytes = files.reduce((a, f) => a + f.size, 0)
        summary(io, `git zoo: wrote ${m.name}@v${m.version} (${files.length === 1 ? '1 file' : `${files.length} files`}, ${humanBytes(bytes)}, every byte verified) to ${shown.startsWith('..') ? outDir : shown}${ignored.result === 'ignored' ? `; git ignores ${ignored.patterns.length === 1 ? ignored.patterns[0] : `${ignored.patterns.length} paths`} now (.git/info/exclude)` : ''}`)
      }
    } finally {
      await store.close()
      if (!handed) await workers?.pool.close()
    }
    return 0
  },
}
