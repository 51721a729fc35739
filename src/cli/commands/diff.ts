import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, humanBytes } from '../output.js'
import { Repo } from '../../repo.js'
import { CommandReader } from '../../zoo/reader.js'
import { manifestDir, type Manifest } from '../../manifest/manifest.js'
import { diffMetadata, type FieldChange } from '../../weights/metadata-diff.js'
import { diffFiles, pairFiles, storageShare, type FileWeightDiff } from '../../weights/diff.js'
import { FileOpener } from '../../weights/tensors.js'
import { UsageError } from '../../errors.js'

async function configText(repo: Repo, m: Manifest): Promise<string | undefined> {
  if (!m.config) return undefined
  try { return await readFile(join(repo.root, manifestDir(m.name, m.version), m.config.path), 'utf8') } catch { return undefined }
}

const num = (x: number | null | undefined, digits = 6): string => (x === null || x === undefined ? 'n/a' : Number(x.toPrecision(digits)).toString())
const val = (v: unknown): string => (v === undefined ? '(absent)' : typeof v === 'string' ? v : JSON.stringify(v))

function changeLines(cs: FieldChange[], indent = '  '): string[] {
  return cs.map((c) => `${indent}${c.key}: ${val(c.a)} -> ${val(c.b)}`)
}

function weightLines(w: FileWeightDiff, all: boolean): string[] {
  const head = w.a_file === w.b_file ? w.a_file : `${w.a_file} <-> ${w.b_file}`
  if (!w.inspectable) {
    const lines = [`  ${head} (${w.format}): ${w.reason}`]
    if (w.entries) lines.push(`    zip entries: ${w.entries.identical} of ${w.entries.matched} matched entries hold identical bytes; ${w.entries.only_a} only in a, ${w.entries.only_b} only in b`)
    if (w.pickle) lines.push(`    static pickle scan: a ${w.pickle.a.ok ? 'passed' : 'refused'}, b ${w.pickle.b.ok ? 'passed' : 'refused'} (nothing was unpickled)`)
    return lines
  }
  const s = w.summary
  const lines = [`  ${head} (${w.format}): ${s.compared} tensors compared, ${s.identical} identical (${humanBytes(s.identical_bytes)}); L2 ${num(s.l2)}, cosine ${num(s.cosine)}`]
  for (const t of w.tensors) {
    if (!all && t.identical) continue
    lines.push(`    ${t.identical ? '=' : '~'} ${t.name} ${t.dtype}[${t.shape.join(',')}]` + (t.identical ? ` identical (${t.by})` : `  L2 ${num(t.l2)}  cosine ${num(t.cosine)}  max|a-b| ${num(t.max_abs)}`))
  }
  if (w.missing.length) lines.push(`    missing in b: ${w.missing.join(', ')}`)
  if (w.extra.length) lines.push(`    extra in b: ${w.extra.join(', ')}`)
  for (const x of w.mismatched) lines.push(`    ! ${x.name}: a ${x.a.dtype}[${x.a.shape.join(',')}], b ${x.b.dtype}[${x.b.shape.join(',')}] (not compared)`)
  for (const x of w.skipped) lines.push(`    - ${x.name}: ${x.reason}`)
  return lines
}

export const command: Command = {
  help: `usage: git zoo diff <model> <model> [--json]

Compare two model versions: generating factors (seed, dataset, arch, params), metrics, the config
snapshot (key by key when both are JSON), files and ONNX signatures; then the weights of matching
safetensors, torch.save and ONNX files, tensor by tensor (matched by name; same shape and dtype): L2
distance, cosine similarity, max |a - b|, and whether the bytes are identical (equal chunk CIDs prove
it without reading anything). Also the storage the two models share: objects (chunks and nodes) and
bytes.

Files are paired by path; trajectories by their path inside the checkpoint, at each model's last
epoch unless --epoch is given; a lone weights file on each side pairs with the other (a safetensors
file with a torch.save file too). Companion files (optimizer state) are not paired. torch.save files
are read by a restricted reader of data.pkl (an allow-list of globals, nothing is run; tensors are
named by their key path: conv1.weight, or state_dict.conv1.weight in a checkpoint dict); a file it
refuses is reported as not inspectable, with a static scan of its pickle and which zip entries hold
identical bytes. Formulas: spec/eval.md. In a lazy clone the objects read are fetched from the zoo
remotes, each checked against its CID.

flags:
  --file <path>     compare only this file (same path in both models)
  --epoch <n>       for trajectories: compare the checkpoints of epoch n
  --all-tensors     list identical tensors too (text output; --json always lists all)
  --fast            do not read identical tensors (the overall cosine is then omitted)
  --json            print { a, b, factors, metrics, config, files, onnx, parents, weights, storage }

examples:
  git zoo diff vit-s/pretrain@v1 vit-s/ft-head-lr0.1
  git zoo diff grid/seed1 grid/seed2 --json | jq '.weights[0].summary'
`,
  flags: {
    file: { type: 'string', value: 'path' },
    epoch: { type: 'string', value: 'n' },
    'all-tensors': { type: 'bool' },
    fast: { type: 'bool' },
    json: { type: 'bool' },
  },
  async run(args, io) {
    if (args.positional.length !== 2) throw new UsageError('name two models: git zoo diff <model> <model>', 'E_USAGE')
    const epoch = int(args, 'epoch')
    const repo = await Repo.open(io.cwd, io)
    const reader = new CommandReader(repo)
    try {
      // complete views: a trajectory's checkpoint files are in its checkpoint node
      const a = await reader.complete(await repo.resolve(args.positional[0]!))
      const b = await reader.complete(await repo.resolve(args.positional[1]!))
      const meta = diffMetadata(a, b, { a: await configText(repo, a), b: await configText(repo, b) })
      const store = await reader.store()
      const oa = new FileOpener(store), ob = new FileOpener(store)
      const pairs = pairFiles(a, b, { ...(epoch !== undefined ? { epoch } : {}), ...(str(args, 'file') ? { file: str(args, 'file')! } : {}) })
      if (str(args, 'file') && pairs.length === 0) throw new UsageError(`${str(args, 'file')} is not a weights file of both models`, 'E_USAGE')
      const weights: FileWeightDiff[] = []
      for (const [fa, fb] of pairs) weights.push(await diffFiles(a, fa, b, fb, oa, ob, { fast: bool(args, 'fast') }))
      const storage = await storageShare(a, b, oa, ob)
      const id = (m: Manifest) => ({ name: m.name, version: m.version, seal: m.seal })
      if (bool(args, 'json')) {
        printJson(io, { a: id(a), b: id(b), ...meta, weights, storage })
        return 0
      }
      const out: string[] = [`a: ${a.name}@v${a.version} ${a.seal}`, `b: ${b.name}@v${b.version} ${b.seal}`, '']
      out.push(meta.factors.length ? 'factors:' : 'factors: same', ...changeLines(meta.factors))
      out.push(meta.metrics.length ? 'metrics:' : 'metrics: same', ...meta.metrics.map((m) => `  ${m.key}: ${num(m.a)} -> ${num(m.b)}${m.delta !== undefined ? ` (${m.delta >= 0 ? '+' : ''}${num(m.delta)})` : ''}`))
      out.push(`config: ${meta.config.same ? 'same' : 'differs'}`, ...changeLines(meta.config.changes ?? []))
      const f = meta.files
      out.push(`files: ${f.same.length} same, ${f.changed.length} changed, ${f.only_a.length} only in a, ${f.only_b.length} only in b`)
      for (const p of f.changed) out.push(`  ~ ${p}`)
      for (const p of f.only_a) out.push(`  - ${p}`)
      for (const p of f.only_b) out.push(`  + ${p}`)
      for (const o of meta.onnx) out.push(`onnx signature of ${o.path}:`, ...changeLines(o.changes))
      if (meta.parents.a.join() !== meta.parents.b.join()) out.push(`parents: a: ${meta.parents.a.join('; ') || 'none'}; b: ${meta.parents.b.join('; ') || 'none'}`)
      out.push(weights.length ? 'weights:' : 'weights: no matching tensor files')
      for (const w of weights) out.push(...weightLines(w, bool(args, 'all-tensors')))
      out.push(`storage: ${storage.shared.objects} objects (${humanBytes(storage.shared.bytes)}) shared; a has ${storage.a.objects} (${humanBytes(storage.a.bytes)}), b has ${storage.b.objects} (${humanBytes(storage.b.bytes)})`)
      io.out(out.join('\n') + '\n')
      return 0
    } finally {
      await reader.close()
    }
  },
}
