/**
 * `git zoo import --layout hf <dir>`: one Hugging Face Hub snapshot folder (a `save_pretrained`
 * folder, a `huggingface-cli download` folder, or `models--<org>--<name>/snapshots/<rev>` of the
 * Hub cache) promoted as one model version (spec/hf.md):
 *   - every file is stored as it is, at its path (weights, sharded safetensors, config.json,
 *     tokenizer files, ...), except README.md, whose text becomes the card (sealed `card_text`);
 *   - a `*.index.json` of sharded weights must name only shards the folder holds, and every tensor
 *     it maps must be in its shard's safetensors header, else the import is refused (E_MALFORMED);
 *   - lineage from the card's `base_model`: a base the zoo holds (by name, name@vN, or the Hub id
 *     a zoo model was imported from) becomes a parent with `base_model_relation` as the relation;
 *     other bases are recorded as params.hf_base_model (and given back by `export --format hf`);
 *   - license, datasets and the model-index metrics from the card; arch and the scalar settings
 *     from config.json; the Hub id and revision from the cache layout as params.hf_id / hf_revision.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises'
import { basename, join, relative, resolve, sep } from 'node:path'
import type { Repo } from '../repo.js'
import { promote, type PromoteOptions, type PromotionResult } from '../promote/promote.js'
import { parseFrontMatter, modelIndexMetrics } from '../manifest/card.js'
import { parseSafetensorsHeader, safetensorsHeaderLength } from '../formats/index.js'
import { nameFor } from './layout.js'
import type { Json, Manifest } from '../manifest/manifest.js'
import { CheckError, UsageError } from '../errors.js'

/** The Hub's base_model_relation words -> the zoo's relations. */
const FROM_HUB: Record<string, string> = { finetune: 'fine-tune', adapter: 'adapter', merge: 'merge', quantized: 'quantized' }

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      // .git, .cache, .gitattributes (the Hub manages its own), editor files: not the model's
      if (e.name.startsWith('.')) continue
      const full = join(dir, e.name)
      if (e.isDirectory()) await walk(full)
      else if (e.isFile() || e.isSymbolicLink()) out.push(relative(root, full).split(sep).join('/'))
    }
  }
  await walk(root)
  return out.sort()
}

/** The Hub id and revision of a Hub cache snapshot folder (models--org--name/snapshots/<rev>). */
export function hubCacheId(dir: string): { id: string; revision: string } | undefined {
  const m = /(?:^|[\\/])models--([^\\/]+)[\\/]snapshots[\\/]([^\\/]+)[\\/]?$/.exec(dir)
  if (!m) return undefined
  return { id: m[1]!.split('--').join('/'), revision: m[2]! }
}

/** Check a sharded checkpoint's index against the shards the folder holds. */
async function checkIndex(root: string, files: string[], index: string): Promise<void> {
  let parsed: { weight_map?: Record<string, unknown> }
  try { parsed = JSON.parse(await readFile(join(root, index), 'utf8')) as typeof parsed } catch (err) {
    throw new CheckError(`${index} is not valid JSON (${(err as Error).message}); re-download the snapshot`, 'E_MALFORMED', { path: index })
  }
  const map = parsed?.weight_map
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new CheckError(`${index} has no "weight_map" object; re-download the snapshot`, 'E_MALFORMED', { path: index })
  const dir = index.includes('/') ? index.slice(0, index.lastIndexOf('/') + 1) : ''
  const byShard = new Map<string, string[]>()
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw new CheckError(`${index}: tensor ${tensor} maps to ${JSON.stringify(shard)}, not a file name`, 'E_MALFORMED', { path: index })
    const list = byShard.get(dir + shard)
    if (list) list.push(tensor); else byShard.set(dir + shard, [tensor])
  }
  for (const [shard, tensors] of byShard) {
    if (!files.includes(shard)) throw new CheckError(`${index} names shard ${shard} (${tensors.length} tensors), which the folder does not have; download the whole snapshot (every shard) and import again`, 'E_MALFORMED', { path: index, shard })
    if (!shard.endsWith('.safetensors')) continue
    let names: Set<string>
    const fd = await open(join(root, shard), 'r')
    try {
      // the header only: shards are gigabytes
      const size = (await fd.stat()).size
      const len = Buffer.alloc(8)
      await fd.read(len, 0, 8, 0)
      const need = 8 + safetensorsHeaderLength(len)
      if (need > size) throw new Error(`its header length field says ${need - 8} bytes but the file has ${size - 8} after it`)
      const head = Buffer.alloc(need)
      await fd.read(head, 0, need, 0)
      names = new Set(parseSafetensorsHeader(head, size).tensors.map((t) => t.name))
    } catch (err) {
      throw new CheckError(`shard ${shard} is not a valid safetensors file (${(err as Error).message}); re-download it`, 'E_MALFORMED', { path: shard })
    } finally { await fd.close() }
    const missing = tensors.filter((t) => !names.has(t))
    if (missing.length) throw new CheckError(`${index} puts ${missing.length} tensor(s) in ${shard} that it does not hold (first: ${missing[0]}); the shards and the index are from different snapshots`, 'E_MALFORMED', { path: index, shard })
  }
}

export interface HfImportOptions extends Pick<PromoteOptions, 'allowDirty' | 'allowMalformed' | 'onProgress' | 'crashPoint' | 'signal'> {
  /** The model's name; default: the Hub id (cache layout) or the folder's name, under `prefix`. */
  name?: string
  prefix?: string
}

export interface HfImportResult {
  result: PromotionResult
  commit: string
  parents: Array<{ name: string; version: number; relation: string }>
  /** Bases the card names that the zoo does not hold (kept as params.hf_base_model). */
  hub_base_models: string[]
  shards: number
}

function asList(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v]
}

/** The zoo model a card's base_model names: a zoo name, name@vN, or the Hub id a version was imported from. */
async function zooBase(repo: Repo, id: string, byHubId: Map<string, Manifest>): Promise<string | undefined> {
  const hub = byHubId.get(id)
  if (hub) return `${hub.name}@v${hub.version}`
  const at = /^(.+)@v([1-9]\d*)$/.exec(id)
  const name = at ? at[1]! : id
  if (!/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/.test(name)) return undefined
  const vs = await repo.versions(name)
  if (!vs.length) return undefined
  if (at && !vs.includes(Number(at[2]))) return undefined
  return id
}

export async function importHf(repo: Repo, dirArg: string, o: HfImportOptions = {}): Promise<HfImportResult> {
  const dir = resolve(dirArg)
  let st
  try { st = await stat(dir) } catch { st = undefined }
  if (!st?.isDirectory()) throw new UsageError(`${dirArg} is not a folder; name a Hugging Face snapshot folder (config.json, *.safetensors, README.md)`, 'E_NO_FILE', { path: dir })
  const files = await listFiles(dir)
  const weights = files.filter((f) => /\.(safetensors|bin|pt|pth|onnx|gguf|h5|msgpack|ckpt)$/i.test(f))
  if (!weights.length) throw new UsageError(`${dirArg} holds no weights (*.safetensors, *.bin, *.onnx, *.gguf, ...); is it a Hugging Face model snapshot?`, 'E_NO_MODELS', { path: dir })
  const indexes = files.filter((f) => /\.index\.json$/.test(f))
  for (const idx of indexes) await checkIndex(dir, files, idx)

  const readme = files.includes('README.md') ? await readFile(join(dir, 'README.md'), 'utf8') : undefined
  const card = readme ? parseFrontMatter(readme) : { fields: {}, blocks: {}, body: '' }
  const f = card.fields
  const params: Record<string, Json> = {}
  let arch: string | undefined
  if (files.includes('config.json')) {
    let cfg: unknown
    try { cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) } catch (err) {
      throw new UsageError(`config.json in ${dirArg} is not valid JSON (${(err as Error).message})`, 'E_RUN_CONFIG', { path: join(dir, 'config.json') })
    }
    if (cfg && typeof cfg === 'object' && !Array.isArray(cfg)) {
      const c = cfg as Record<string, unknown>
      const archs = c.architectures
      arch = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : typeof c.model_type === 'string' ? c.model_type : undefined
      for (const [k, v] of Object.entries(c)) {
        if (Object.keys(params).length >= 64) break
        if (/^[A-Za-z0-9_.-]+$/.test(k) && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') && String(v).length <= 200) params[k] = v
      }
    }
  }
  const cache = hubCacheId(dir)
  if (cache) { params.hf_id = cache.id; params.hf_revision = cache.revision }

  const byHubId = new Map<string, Manifest>()
  for (const m of await repo.allManifests()) if (typeof m.params.hf_id === 'string') byHubId.set(m.params.hf_id, m)
  const relationWord = typeof f.base_model_relation === 'string' ? f.base_model_relation : undefined
  if (relationWord !== undefined && !FROM_HUB[relationWord]) throw new UsageError(`README.md: base_model_relation ${JSON.stringify(relationWord)} is not one of the Hub's (finetune, adapter, merge, quantized)`, 'E_RUN_CONFIG', { path: join(dir, 'README.md') })
  const relation = relationWord ? FROM_HUB[relationWord]! : 'fine-tune'
  const parents: Array<{ ref: string; relation: string }> = []
  const hubBases: string[] = []
  for (const id of asList(f.base_model)) {
    const ref = await zooBase(repo, id, byHubId)
    if (ref) parents.push({ ref, relation })
    else hubBases.push(id)
  }
  if (hubBases.length) params.hf_base_model = hubBases.length === 1 ? hubBases[0]! : hubBases
  if (hubBases.length && relationWord) params.hf_base_model_relation = relationWord

  const name = o.name ?? nameFor(o.prefix, cache ? cache.id : basename(dir))
  const license = typeof f.license === 'string' ? f.license : undefined
  const datasets = asList(f.datasets)
  const metrics = modelIndexMetrics(card.blocks['model-index'])
  const sources = files.filter((p) => p !== 'README.md')
  const { commit, results } = await promote(repo, [{
    name,
    files: sources.map((p) => ({ source: join(dir, p), path: p })),
    ...(arch ? { arch } : {}),
    ...(datasets[0] ? { dataset: datasets[0] } : {}),
    params,
    metrics,
    parents,
    message: `imported from the Hugging Face snapshot ${cache ? `${cache.id} (revision ${cache.revision})` : basename(dir)}`,
    ...(license ? { license } : {}),
    ...(readme !== undefined ? { cardText: readme } : {}),
  }], {
    ...(o.allowDirty !== undefined ? { allowDirty: o.allowDirty } : {}),
    ...(o.allowMalformed !== undefined ? { allowMalformed: o.allowMalformed } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.crashPoint ? { crashPoint: o.crashPoint } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    subject: `zoo: import ${name} from Hugging Face`,
  })
  const r = results[0]!
  return {
    result: r, commit, hub_base_models: hubBases,
    parents: r.manifest.parents.map((p) => ({ name: p.name, version: p.version, relation: p.relation })),
    shards: indexes.length ? new Set(weights.filter((w) => w.endsWith('.safetensors'))).size : 0,
  }
}
