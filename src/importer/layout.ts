/**
 * Finding the models in a directory to import, by layout (spec/import.md):
 *   model-zoos  any folder holding checkpoint_<epoch>/ folders is a model (Model Zoos / Ray Tune:
 *               params.json or config.json, result.json, progress.csv beside them)
 *   vit         pretraining/<model>/ and finetuning/<pretrained>/<model>/; the nesting makes each
 *               fine-tune a child (relation fine-tune) of pretraining/<pretrained>; model folders
 *               elsewhere in the tree are found as in model-zoos
 *   generic     any folder holding checkpoints or weight files is a model; a model folder nested
 *               inside another model folder is its fine-tune
 *   auto        vit when pretraining/ or finetuning/ exist, else model-zoos when checkpoint folders
 *               exist, else generic
 * In every layout a config's `parent` key (a folder relative to the import root, or a model name
 * already in the zoo) and `relation` key override the nesting.
 */
import { readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { createHash } from 'node:crypto'
import { isCheckpointEntry } from './run.js'
import { modelNameProblem } from '../manifest/names.js'
import { UsageError } from '../errors.js'

export type Layout = 'model-zoos' | 'vit' | 'generic'
export const LAYOUTS = ['model-zoos', 'vit', 'generic', 'auto'] as const

const WEIGHT_EXT = /\.(safetensors|onnx|pt|pth|bin|ckpt|gguf|npy|npz|h5|keras|msgpack|pkl|tflite)$/i

export interface FoundModel {
  /** Absolute folder. */
  dir: string
  /** Folder relative to the import root, '/'-separated. */
  rel: string
  name: string
  /** The model folder this one nests in (generic) or was pre-trained as (vit), relative to the root. */
  nestedIn?: string
  /** Folders of nested models, skipped when collecting this model's files. */
  nested: string[]
}

interface Entry { name: string; dir: boolean }

async function list(dir: string): Promise<Entry[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).map((e) => ({ name: e.name, dir: e.isDirectory() }))
}

function isModelDir(entries: Entry[], layout: Layout): boolean {
  if (entries.some((e) => isCheckpointEntry(e.name, e.dir))) return true
  return layout === 'generic' && entries.some((e) => !e.dir && WEIGHT_EXT.test(e.name))
}

/** A model name from a folder path: lower-case, other characters as '-', long names shortened with a digest. */
export function nameFor(prefix: string | undefined, rel: string): string {
  const segs = [...(prefix ? prefix.split('/') : []), ...rel.split('/')].filter(Boolean).map((seg) => {
    let s = seg.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/\.{2,}/g, '.').replace(/-{2,}/g, '-').replace(/^[^a-z0-9]+/, '').replace(/[-.]+$/, '')
    if (s === '') s = 'x'
    if (/^v\d+$/.test(s)) s = `${s}_`
    return s
  })
  let name = segs.join('/')
  if (name.length > 200) {
    const digest = createHash('sha256').update(rel).digest('hex').slice(0, 10)
    const head = segs.slice(0, -1).join('/')
    const room = 200 - head.length - (head ? 1 : 0) - 11
    if (room < 8) throw new UsageError(`cannot make a model name of ${rel}: it is too deep; use a shorter --prefix`, 'E_BAD_NAME', { rel })
    name = `${head ? head + '/' : ''}${segs[segs.length - 1]!.slice(0, room).replace(/[-.]+$/, '')}-${digest}`
  }
  const why = modelNameProblem(name)
  if (why) throw new UsageError(`cannot make a model name of ${rel} (${name}: ${why}); rename the folder or pass --prefix`, 'E_BAD_NAME', { rel })
  return name
}

export async function detectLayout(root: string): Promise<Layout> {
  const top = await list(root)
  if (top.some((e) => e.dir && (e.name === 'pretraining' || e.name === 'finetuning'))) return 'vit'
  let found = false
  const walk = async (d: string, depth: number): Promise<void> => {
    if (found || depth > 6) return
    const es = await list(d)
    if (es.some((e) => e.dir && isCheckpointEntry(e.name, true))) { found = true; return }
    for (const e of es) if (e.dir) await walk(join(d, e.name), depth + 1)
  }
  await walk(root, 0)
  return found ? 'model-zoos' : 'generic'
}

export async function scanModels(root: string, layout: Layout, prefix?: string): Promise<FoundModel[]> {
  const found: FoundModel[] = []
  const walk = async (d: string, enclosing: FoundModel | undefined, depth: number): Promise<void> => {
    if (depth > 32) return
    const es = await list(d)
    let here = enclosing
    if (d !== root && isModelDir(es, layout)) {
      const rel = relative(root, d).split('\\').join('/')
      here = { dir: d, rel, name: '', nested: [], ...(layout === 'generic' && enclosing ? { nestedIn: enclosing.rel } : {}) }
      enclosing?.nested.push(d)
      found.push(here)
      // a model folder is not descended into for more models, except in the generic layout
      if (layout !== 'generic') return
    }
    for (const e of es) if (e.dir && !isCheckpointEntry(e.name, true)) await walk(join(d, e.name), here, depth + 1)
  }
  await walk(root, undefined, 0)
  if (layout === 'vit') {
    for (const m of found) {
      const parts = m.rel.split('/')
      if (parts[0] === 'finetuning' && parts.length >= 3) m.nestedIn = `pretraining/${parts[1]}`
    }
  }
  found.sort((a, b) => (a.rel < b.rel ? -1 : 1))
  const byName = new Map<string, string>()
  for (const m of found) {
    m.name = nameFor(prefix, m.rel)
    const other = byName.get(m.name)
    if (other) throw new UsageError(`folders ${other} and ${m.rel} would both be model ${m.name}; rename one`, 'E_BAD_NAME', { name: m.name })
    byName.set(m.name, m.rel)
  }
  return found
}
