import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, humanBytes, warnIfUnsigned } from '../output.js'
import { Repo } from '../../repo.js'
import { promoteSoup } from '../../promote/soup.js'
import { UsageError } from '../../errors.js'
import { crashPoints } from '../crash.js'

/** `--weights w1,w2,...`: non-negative numbers (their count and sum are checked against the members). */
function parseWeights(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined
  const parts = text.split(',')
  const ws = parts.map((p) => (/^\s*(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/.test(p) ? Number(p) : NaN))
  if (ws.some((w) => !Number.isFinite(w))) throw new UsageError(`--weights takes non-negative numbers separated by commas, not ${JSON.stringify(text)}`, 'E_USAGE')
  return ws
}

export const command: Command = {
  help: `usage: git zoo soup <model>... --name <new> [--weights w1,w2,...] [options]
       git zoo soup <model> --last-k <k> --name <new> [options]

Average the weights of compatible models element-wise (a model soup: uniform, or weighted by
--weights), or the last k checkpoints of one trajectory (epoch averaging), and promote the result as
a new model whose parents carry the relation soup. Members are safetensors files or torch.save
checkpoints (read by a restricted reader: nothing in them is run). Compatible: the same tensor names,
shapes and dtypes. F32, F16, BF16 and F64 tensors are averaged (in float64, rounded once to their
dtype); other tensors (integer counters, masks) must be identical in a model soup and are copied; in
epoch averaging they are the newest checkpoint's. The result is written in the first member's format:
model.safetensors, or model.pt, a torch.save zip of the first member's object (its state dict, or
checkpoint dict, with the tensors averaged) that torch.load(path, weights_only=True) reads. The
result has no metrics until it is evaluated (git zoo eval).

When the first model has an ONNX file whose initializers match the soup's tensors by name, dtype
and shape, a model.onnx is written too: that graph with the averaged weights, ready for eval.

flags:
  --name <model>        the new model's name (required)
  --weights <w,...>     one non-negative weight per checkpoint (normalised by their sum)
  --last-k <k>          epoch averaging: the last k checkpoints of the one model given
  --file <path>         which weights file of each model (default: the only one, or the last
                        epoch's; optimizer files are not weights); with --last-k, the checkpoint
                        file's name inside each epoch
  --no-onnx             do not write model.onnx
  -m, --message <text>  why this soup is promoted
  --allow-dirty         promote even if tracked code has uncommitted changes
  --json                print { name, version, seal, commit, files, stored_bytes, soup, onnx }

examples:
  git zoo soup vit-s/ft-lr1e-4 vit-s/ft-lr3e-4 vit-s/ft-lr1e-3 --name vit-s/soup-uniform
  git zoo soup a b --weights 0.7,0.3 --name ab-soup
  git zoo soup grid/seed1 --last-k 5 --name grid/seed1-ema5
  git zoo soup modelzoo/cifar10/trial-07 --last-k 3 --name modelzoo/cifar10/trial-07-avg3
`,
  interrupted: 'nothing was committed, run the same command again',
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
    const weights = parseWeights(str(args, 'weights'))
    const repo = await Repo.open(io.cwd, io)
    const { commit, result: r, soup, label, onnx: onnxNote, first } = await promoteSoup(repo, {
      name, refs: args.positional,
      ...(weights ? { weights } : {}), ...(k !== undefined ? { lastK: k } : {}), ...(str(args, 'file') !== undefined ? { file: str(args, 'file')! } : {}),
      onnx: !bool(args, 'no-onnx'), ...(str(args, 'message') !== undefined ? { message: str(args, 'message')! } : {}), allowDirty: bool(args, 'allow-dirty'),
      ...(io.signal ? { signal: io.signal } : {}), crashPoint: crashPoints(io),
    })
    for (const w of r.warnings) io.err(`git zoo: warning: ${w}\n`)
    await warnIfUnsigned(io, repo, commit)
    if (onnxNote && 'refused' in onnxNote) io.err(`git zoo: note: no model.onnx written: ${onnxNote.refused}\n`)
    if (bool(args, 'json')) {
      printJson(io, { name: r.name, version: r.version, seal: r.seal, commit, files: r.files, stored_bytes: r.stored_bytes, soup, ...(onnxNote ? { onnx: onnxNote } : {}) })
    } else {
      io.out(`promoted ${r.name}@v${r.version}: ${label} (${humanBytes(r.stored_bytes)} new) in ${commit.slice(0, 12)}\n` +
        (onnxNote && 'replaced' in onnxNote ? `model.onnx: the graph of ${first.name}@v${first.version} with ${onnxNote.replaced} initializers averaged (${onnxNote.kept} constants kept)\n` : ''))
    }
    return 0
  },
}
