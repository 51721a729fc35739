import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, humanBytes } from '../output.js'
import { Repo } from '../../repo.js'
import { openReader, prefetchFiles } from '../../remote/objects.js'
import type { FileEntry, Json, Manifest } from '../../manifest/manifest.js'
import { promote } from '../../promote/promote.js'
import { FileOpener } from '../../weights/tensors.js'
import { planSoup, writeSoup, writeSoupOnnx, type SoupMember } from '../../weights/soup.js'
import { UsageError } from '../../errors.js'

function parseWeights(text: string | undefined, count: number): number[] | undefined {
  if (text === undefined) return undefined
  const parts = text.split(',')
  const ws = parts.map((p) => (/^\s*(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/.test(p) ? Number(p) : NaN))
  if (ws.some((w) => !Number.isFinite(w))) throw new UsageError(`--weights takes non-negative numbers separated by commas, not ${JSON.stringify(text)}`, 'E_USAGE')
  if (ws.length !== count) throw new UsageError(`--weights has ${ws.length} values for ${count} checkpoints`, 'E_USAGE')
  if (!(ws.reduce((a, b) => a + b, 0) > 0)) throw new UsageError('--weights must not all be zero', 'E_USAGE')
  return ws
}

/** The safetensors file of a model to put in a soup: --file, the only one, or the last epoch's. */
function soupFile(m: Manifest, file?: string): FileEntry {
  const st = m.files.filter((f) => f.format === 'safetensors')
  if (file !== undefined) {
    const f = m.files.find((x) => x.path === file)
    if (!f || f.format !== 'safetensors') throw new UsageError(`${m.name}@v${m.version} has no safetensors file ${file}`, 'E_USAGE')
    return f
  }
  if (st.length === 1) return st[0]!
  const plain = st.filter((f) => f.epoch === undefined)
  if (plain.length === 1) return plain[0]!
  const epochs = st.filter((f) => f.epoch !== undefined)
  if (epochs.length) {
    const last = Math.max(...epochs.map((f) => f.epoch!))
    const at = epochs.filter((f) => f.epoch === last)
    if (at.length === 1) return at[0]!
  }
  throw new UsageError(`${m.name}@v${m.version} has ${st.length ? `${st.length} safetensors files (${st.map((f) => f.path).slice(0, 4).join(', ')}${st.length > 4 ? ', ...' : ''}); choose one with --file` : 'no safetensors file; soups average safetensors'}`, 'E_USAGE')
}

/** The last k checkpoints (safetensors, one per epoch) of a trajectory model, oldest first. */
function lastK(m: Manifest, k: number, file?: string): FileEntry[] {
  const base = file?.split('/').pop()
  const st = m.files.filter((f) => f.format === 'safetensors' && f.epoch !== undefined && (base === undefined || f.path.split('/').pop() === base))
  const byEpoch = new Map<number, FileEntry[]>()
  for (const f of st) byEpoch.set(f.epoch!, [...(byEpoch.get(f.epoch!) ?? []), f])
  if (byEpoch.size === 0) throw new UsageError(`${m.name}@v${m.version} holds no trajectory (no safetensors files with an epoch); --last-k averages the checkpoints of one trajectory`, 'E_USAGE')
  for (const [e, fs] of byEpoch) if (fs.length > 1) throw new UsageError(`epoch ${e} of ${m.name}@v${m.version} has ${fs.length} safetensors files; choose one with --file <name>`, 'E_USAGE')
  const epochs = [...byEpoch.keys()].sort((x, y) => x - y)
  if (k < 2 || k > epochs.length) throw new UsageError(`--last-k must be between 2 and the ${epochs.length} checkpoints of ${m.name}@v${m.version}`, 'E_USAGE')
  return epochs.slice(-k).map((e) => byEpoch.get(e)![0]!)
}

export const command: Command = {
  summary: 'average compatible models (model soup, epoch averaging) into a new model',
  help: `usage: git zoo soup <model>... --name <new> [--weights w1,w2,...] [options]
       git zoo soup <model> --last-k <k> --name <new> [options]

Average the weights of compatible safetensors models element-wise (a model soup: uniform, or
weighted by --weights), or the last k checkpoints of one trajectory (epoch averaging), and promote
the result as a new model whose parents carry the relation soup. Compatible: the same tensor names,
shapes and dtypes. F32, F16, BF16 and F64 tensors are averaged (in float64, rounded once to their
dtype); other tensors (integer counters, masks) must be identical and are copied. The result has no
metrics until it is evaluated (git zoo eval).

When the first model has an ONNX file whose initializers match the soup's tensors by name, dtype
and shape, a model.onnx is written too: that graph with the averaged weights, ready for eval.
In a lazy clone the objects read are fetched from the zoo remotes, each checked against its CID.

flags:
  --name <model>        the new model's name (required)
  --weights <w,...>     one non-negative weight per checkpoint (normalised by their sum)
  --last-k <k>          epoch averaging: the last k checkpoints of the one model given
  --file <path>         which safetensors file of each model (default: the only one, or the last
                        epoch's); with --last-k, the checkpoint file's name inside each epoch
  --no-onnx             do not write model.onnx
  -m, --message <text>  why this soup is promoted
  --allow-dirty         promote even if tracked code has uncommitted changes
  --json                print { name, version, seal, commit, files, stored_bytes, soup, onnx }

examples:
  git zoo soup vit-s/ft-lr1e-4 vit-s/ft-lr3e-4 vit-s/ft-lr1e-3 --name vit-s/soup-uniform
  git zoo soup a b --weights 0.7,0.3 --name ab-soup
  git zoo soup grid/seed1 --last-k 5 --name grid/seed1-ema5
`,
  flags: {
    name: { type: 'string', value: 'model' },
    weights: { type: 'string', value: 'w1,w2,...' },
    'last-k': { type: 'string', value: 'k' },
    file: { type: 'string', value: 'path' },
    'no-onnx': { type: 'bool' },
    message: { type: 'string', short: 'm', value: 'text' },
    'allow-dirty': { type: 'bool' },
    json: { type: 'bool' },
  },
  async run(args, io) {
    const name = str(args, 'name')
    if (!name) throw new UsageError('--name <model> is required: the name of the soup', 'E_USAGE')
    const k = int(args, 'last-k')
    if (args.positional.length === 0) throw new UsageError('name the models to average', 'E_USAGE')
    if (k !== undefined && args.positional.length !== 1) throw new UsageError('--last-k averages the checkpoints of one model; name exactly one', 'E_USAGE')
    if (k === undefined && args.positional.length < 2) throw new UsageError('a soup needs at least two models (or one model with --last-k <k>)', 'E_USAGE')
    const repo = await Repo.open(io.cwd, io.env)
    const models: Manifest[] = []
    for (const ref of args.positional) models.push(await repo.resolve(ref))
    if (new Set(models.map((m) => m.seal)).size !== models.length) throw new UsageError('a model is named twice; use --weights to weigh one model more', 'E_USAGE')
    const file = str(args, 'file')
    const members: SoupMember[] = k !== undefined
      ? lastK(models[0]!, k, file).map((f) => ({ manifest: models[0]!, file: f, weight: 1, ...(f.epoch !== undefined ? { epoch: f.epoch } : {}) }))
      : models.map((m) => ({ manifest: m, file: soupFile(m, file), weight: 1 }))
    const weights = parseWeights(str(args, 'weights'), members.length)
    if (weights) weights.forEach((w, i) => { members[i]!.weight = w })
    const method = k !== undefined ? 'epoch-average' : weights ? 'weighted' : 'uniform'

    const tmp = await mkdtemp(join(tmpdir(), 'git-zoo-soup-'))
    const store = await openReader(repo)
    let onnxNote: { replaced: number; kept: number; unused: number } | { refused: string } | undefined
    const files = [{ source: join(tmp, 'model.safetensors'), path: 'model.safetensors' }]
    try {
      await prefetchFiles(store, members.map((m) => m.file)) // a lazy clone fetches every member ahead
      const opener = new FileOpener(store)
      const plan = await planSoup(members, opener)
      const where = await writeSoup(plan, members.map((m) => m.weight), files[0]!.source, { 'git-zoo': `soup/${method}` })
      if (!bool(args, 'no-onnx')) {
        const first = models[0]!
        const onnxFiles = first.files.filter((f) => f.format === 'onnx')
        if (onnxFiles.length) {
          const { chooseOnnxFile } = await import('../../evals/onnx-session.js')
          let template: FileEntry | undefined
          try { template = chooseOnnxFile(first) } catch (err) { onnxNote = { refused: (err as Error).message } }
          if (template) {
            // model soups: constants kept from the template must be the same in every member's graph
            const others = []
            if (k === undefined) {
              for (const m of models.slice(1)) {
                try { others.push({ manifest: m, file: chooseOnnxFile(m) }) } catch (err) { onnxNote = { refused: `${m.name}@v${m.version}: ${(err as Error).message}` } }
              }
            }
            if (!onnxNote) onnxNote = await writeSoupOnnx(template, first, opener, files[0]!.source, where, plan, join(tmp, 'model.onnx'), others)
            if ('replaced' in onnxNote) files.push({ source: join(tmp, 'model.onnx'), path: 'model.onnx' })
          }
        }
      }
    } finally {
      await store.close()
    }
    try {
      const same = <T>(f: (m: Manifest) => T | undefined): T | undefined => {
        const vs = models.map(f)
        return vs.every((v) => v !== undefined && v === vs[0]) ? vs[0] : undefined
      }
      const dataset = same((m) => m.dataset), arch = same((m) => m.arch)
      const soup: Record<string, Json> = {
        method,
        members: members.map((m) => ({ name: m.manifest.name, version: m.manifest.version, seal: m.manifest.seal, file: m.file.path, weight: m.weight, ...(m.epoch !== undefined ? { epoch: m.epoch } : {}) })),
      }
      const label = k !== undefined
        ? `epoch average of the last ${k} checkpoints of ${models[0]!.name}@v${models[0]!.version}`
        : `${method} soup of ${models.map((m) => `${m.name}@v${m.version}`).join(', ')}`
      const { commit, results } = await promote(repo, [{
        name, files,
        ...(dataset ? { dataset } : {}), ...(arch ? { arch } : {}),
        params: { soup_method: method, soup_size: members.length },
        parents: models.map((m) => ({ ref: `${m.name}@v${m.version}`, relation: 'soup' })),
        message: str(args, 'message') ?? label,
        extra: { soup },
      }], { allowDirty: bool(args, 'allow-dirty'), subject: `zoo: soup ${name}` })
      const r = results[0]!
      for (const w of r.warnings) io.err(`git zoo: warning: ${w}\n`)
      if (onnxNote && 'refused' in onnxNote) io.err(`git zoo: note: no model.onnx written: ${onnxNote.refused}\n`)
      if (bool(args, 'json')) {
        printJson(io, { name: r.name, version: r.version, seal: r.seal, commit, files: r.files, stored_bytes: r.stored_bytes, soup, ...(onnxNote ? { onnx: onnxNote } : {}) })
      } else {
        io.out(`promoted ${r.name}@v${r.version}: ${label} (${humanBytes(r.stored_bytes)} new) in ${commit.slice(0, 12)}\n` +
          (onnxNote && 'replaced' in onnxNote ? `model.onnx: the graph of ${models[0]!.name}@v${models[0]!.version} with ${onnxNote.replaced} initializers averaged (${onnxNote.kept} constants kept)\n` : ''))
      }
      return 0
    } finally {
      await rm(tmp, { recursive: true, force: true })
    }
  },
}
