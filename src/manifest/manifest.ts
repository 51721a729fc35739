/**
 * Manifests: the small, human-readable JSON file git tracks for each model version
 * (`models/<name>/v<N>/manifest.json`). Its `seal` is the CID of the canonical dag-cbor encoding of
 * every other field (spec/format.md, "The seal"). Unknown keys are kept and sealed too, so a newer
 * git-zoo's manifests survive an older one.
 */
import { CID } from 'multiformats/cid'
import { cidOf, DAG_CBOR, parseCid } from '../cas/cid.js'
import { encodeCanonical } from './cbor.js'
import { FormatError } from '../errors.js'
import { checkModelName, checkRelPath, MODELS_DIR } from './names.js'

/** Format of manifests that list every file (and the history) themselves. */
export const MANIFEST_FORMAT = 1
/**
 * Format of a trajectory's manifest whose checkpoint files and per-epoch history live in the store
 * as sealed dag-cbor checkpoint nodes it links to (`checkpoints`, src/manifest/checkpoints.ts).
 */
export const MANIFEST_FORMAT_NODES = 2
/** The formats this git-zoo reads. */
export const MANIFEST_FORMATS: readonly number[] = [MANIFEST_FORMAT, MANIFEST_FORMAT_NODES]
export const MANIFEST_FILE = 'manifest.json'
export { MODELS_DIR }

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface FileEntry {
  /** Path inside the model version's folder, `/`-separated, no `..`. */
  path: string
  size: number
  /** sha256 of the whole file, hex, so `sha256sum` users can check it. */
  sha256: string
  /** Root CID of the file's chunk DAG (src/manifest/node.ts). */
  root: string
  /** Format sniffed by magic bytes (src/formats/sniff.ts). */
  format: string
  /** For trajectories: the epoch this checkpoint was taken at. */
  epoch?: number
  /**
   * A checkpoint's companion that is not model weights: `optimizer` (optimizer / scheduler state) or
   * `metadata` (Ray Tune's .tune_metadata and .is_checkpoint, ...). Absent on weights files.
   */
  role?: string
  [extra: string]: Json | undefined
}

/**
 * Format 2: the link to a trajectory's checkpoint node and a summary of what it holds (checked
 * against the node whenever it is read): distinct checkpoint epochs, file entries, their bytes, and
 * the first and last epoch.
 */
export interface CheckpointsLink { node: string; count: number; files: number; bytes: number; epochs: [number, number] }

/** Format 2: the best value of each metric over the history (the minimum for losses), and its epoch. */
export type BestMap = Record<string, { value: number; epoch: number }>

export interface ParentLink { name: string; version: number; seal: string; relation: string }

export interface ManifestBody {
  zoo: number
  name: string
  version: number
  files: FileEntry[]
  /** The training config snapshot, copied verbatim beside the manifest. */
  config?: { path: string; size: number; sha256: string }
  seed?: number
  dataset?: string
  arch?: string
  params: Record<string, Json>
  metrics: Record<string, number>
  /** Per-epoch metrics, in epoch order (format 1; format 2 keeps them in the checkpoint node). */
  history?: Array<Record<string, number>>
  /** Format 2: the checkpoint node holding the per-epoch file entries and history. */
  checkpoints?: CheckpointsLink
  /** Format 2: the best value of each metric over the history. */
  best?: BestMap
  parents: ParentLink[]
  code?: { repo?: string; commit: string; dirty: boolean; diff_sha256?: string }
  env: Record<string, string>
  created: string
  promoter: string
  message?: string
  seal?: string
  [extra: string]: unknown
}

export interface Manifest extends ManifestBody { seal: string }

/** The order keys are written in; any other key follows, sorted. */
const KEY_ORDER = ['zoo', 'name', 'version', 'message', 'seed', 'dataset', 'arch', 'params', 'metrics', 'best', 'history',
  'config', 'files', 'checkpoints', 'parents', 'code', 'env', 'promoter', 'created', 'seal']

function bad(what: string, data: Record<string, unknown> = {}): never {
  throw new FormatError(`manifest: ${what}`, 'E_MANIFEST', data)
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Reject values dag-cbor cannot hold exactly (NaN, Infinity, -0 is kept as 0 by JSON anyway). */
function checkJson(v: unknown, where: string, depth = 0): void {
  if (depth > 32) bad(`${where} is nested too deeply`)
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return
  if (typeof v === 'number') { if (!Number.isFinite(v)) bad(`${where} is not a finite number`); return }
  if (Array.isArray(v)) { v.forEach((x, i) => checkJson(x, `${where}[${i}]`, depth + 1)); return }
  if (isObject(v)) { for (const [k, x] of Object.entries(v)) checkJson(x, `${where}.${k}`, depth + 1); return }
  bad(`${where} has a value JSON cannot hold`)
}

const HEX64 = /^[0-9a-f]{64}$/

/**
 * Check one file entry (of a manifest or of a checkpoint node): path, size, sha256, root, format,
 * epoch, role. `seen` holds the case-folded paths met so far (two paths may not differ only by case).
 */
export function checkFileEntry(f: unknown, seen: Set<string>, fail: (what: string) => never): void {
  if (!isObject(f)) fail('a file entry is not an object')
  if (typeof f.path !== 'string') fail('a file entry has no path')
  checkRelPath(f.path)
  const folded = f.path.toLowerCase()
  if (seen.has(folded)) fail(`file ${f.path} is listed twice (paths must differ even ignoring case)`)
  seen.add(folded)
  if (!Number.isSafeInteger(f.size) || (f.size as number) < 0) fail(`file ${f.path}: size is not a non-negative integer`)
  if (typeof f.sha256 !== 'string' || !HEX64.test(f.sha256)) fail(`file ${f.path}: sha256 is not 64 lower-case hex digits`)
  if (typeof f.root !== 'string') fail(`file ${f.path}: root is missing`)
  parseCid(f.root)
  if (typeof f.format !== 'string') fail(`file ${f.path}: format is missing`)
  if (f.epoch !== undefined && (!Number.isSafeInteger(f.epoch) || (f.epoch as number) < 0)) fail(`file ${f.path}: epoch is not a non-negative integer`)
  if (f.role !== undefined && (typeof f.role !== 'string' || f.role === '')) fail(`file ${f.path}: role is not a non-empty string`)
}

/** Validate a parsed manifest object's structure (types and invariants, not the seal). */
export function validateManifest(m: unknown): Manifest {
  if (!isObject(m)) bad('not a JSON object')
  checkJson(m, 'manifest')
  if (!MANIFEST_FORMATS.includes(m.zoo as number)) bad(`unsupported format version ${JSON.stringify(m.zoo)} (this git-zoo reads ${MANIFEST_FORMATS.join(' and ')}); upgrade git-zoo`)
  if (typeof m.name !== 'string') bad('name is missing')
  checkModelName(m.name)
  if (!Number.isSafeInteger(m.version) || (m.version as number) < 1) bad('version is not a positive integer')
  if (!Array.isArray(m.files)) bad('files is not a list')
  const seen = new Set<string>()
  for (const f of m.files as unknown[]) {
    checkFileEntry(f, seen, bad)
    if (m.zoo === MANIFEST_FORMAT_NODES && (f as FileEntry).epoch !== undefined) bad(`file ${(f as FileEntry).path}: a format ${MANIFEST_FORMAT_NODES} manifest lists checkpoint files in its checkpoint node, not in files`)
  }
  if (m.zoo === MANIFEST_FORMAT_NODES) {
    const c = m.checkpoints
    if (!isObject(c) || typeof c.node !== 'string') bad(`checkpoints is not { node, count, files, bytes, epochs } (format ${MANIFEST_FORMAT_NODES} links its checkpoint node there)`)
    if (parseCid(c.node).code !== DAG_CBOR) bad('checkpoints.node is not a dag-cbor CID')
    for (const k of ['count', 'files'] as const) if (!Number.isSafeInteger(c[k]) || (c[k] as number) < 1) bad(`checkpoints.${k} is not a positive integer`)
    if (!Number.isSafeInteger(c.bytes) || (c.bytes as number) < 0) bad('checkpoints.bytes is not a non-negative integer')
    const e = c.epochs
    if (!Array.isArray(e) || e.length !== 2 || !e.every((x) => Number.isSafeInteger(x) && (x as number) >= 0) || (e[0] as number) > (e[1] as number)) bad('checkpoints.epochs is not [first, last]')
    if (Object.keys(c).some((k) => !['node', 'count', 'files', 'bytes', 'epochs'].includes(k))) bad('checkpoints has unknown keys')
    if (m.history !== undefined) bad(`a format ${MANIFEST_FORMAT_NODES} manifest keeps its history in its checkpoint node, not in history`)
    if (m.best !== undefined) {
      if (!isObject(m.best)) bad('best is not an object')
      for (const [k, v] of Object.entries(m.best)) {
        if (!isObject(v) || typeof v.value !== 'number' || !Number.isSafeInteger(v.epoch) || Object.keys(v).length !== 2) bad(`best.${k} is not { value, epoch }`)
      }
    }
  } else {
    if (m.checkpoints !== undefined) bad(`checkpoints needs format ${MANIFEST_FORMAT_NODES} (zoo: ${MANIFEST_FORMAT_NODES})`)
    if (m.best !== undefined) bad(`best needs format ${MANIFEST_FORMAT_NODES} (zoo: ${MANIFEST_FORMAT_NODES})`)
  }
  if (m.config !== undefined) {
    const c = m.config
    if (!isObject(c) || typeof c.path !== 'string' || !Number.isSafeInteger(c.size) || typeof c.sha256 !== 'string' || !HEX64.test(c.sha256)) bad('config is not { path, size, sha256 }')
    checkRelPath(c.path as string)
  }
  if (m.seed !== undefined && !Number.isSafeInteger(m.seed)) bad('seed is not an integer')
  for (const k of ['dataset', 'arch', 'message', 'promoter', 'created'] as const) {
    if (m[k] !== undefined && typeof m[k] !== 'string') bad(`${k} is not a string`)
  }
  if (typeof m.created !== 'string' || typeof m.promoter !== 'string') bad('created and promoter are required')
  if (!isObject(m.params)) bad('params is not an object')
  if (!isObject(m.metrics)) bad('metrics is not an object')
  for (const [k, v] of Object.entries(m.metrics)) if (typeof v !== 'number') bad(`metrics.${k} is not a number`)
  if (m.history !== undefined) {
    if (!Array.isArray(m.history)) bad('history is not a list')
    for (const [i, h] of (m.history as unknown[]).entries()) {
      if (!isObject(h)) bad(`history[${i}] is not an object`)
      for (const [k, v] of Object.entries(h)) if (typeof v !== 'number') bad(`history[${i}].${k} is not a number`)
    }
  }
  if (!Array.isArray(m.parents)) bad('parents is not a list')
  for (const p of m.parents as unknown[]) {
    if (!isObject(p) || typeof p.name !== 'string' || !Number.isSafeInteger(p.version) || typeof p.seal !== 'string' || typeof p.relation !== 'string') bad('a parent is not { name, version, seal, relation }')
    parseCid(p.seal as string)
  }
  if (m.code !== undefined) {
    const c = m.code
    if (!isObject(c) || typeof c.commit !== 'string' || typeof c.dirty !== 'boolean') bad('code is not { commit, dirty }')
  }
  if (!isObject(m.env)) bad('env is not an object')
  for (const [k, v] of Object.entries(m.env)) if (typeof v !== 'string') bad(`env.${k} is not a string`)
  if (typeof m.seal !== 'string') bad('seal is missing')
  return m as unknown as Manifest
}

/**
 * What the seal covers: every field but `seal`, with file roots and parent seals as CID links so
 * the whole DAG hangs off the seal. Numbers: integral values are CBOR integers, others float64.
 */
export function sealInput(view: ManifestBody): Record<string, unknown> {
  const m = sealedOf(view)
  const { seal: _seal, ...rest } = m
  const out: Record<string, unknown> = { ...rest }
  out.files = m.files.map((f) => ({ ...f, root: CID.parse(f.root) }))
  if (m.checkpoints) out.checkpoints = { ...m.checkpoints, node: CID.parse(m.checkpoints.node) }
  out.parents = m.parents.map((p) => ({ ...p, seal: CID.parse(p.seal) }))
  return stripUndefined(out) as Record<string, unknown>
}

function stripUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripUndefined)
  if (isObject(v) && (v as { asCID?: unknown }).asCID !== v) {
    const o: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = stripUndefined(x)
    return o
  }
  return v
}

export function sealBytes(m: ManifestBody): Uint8Array {
  return encodeCanonical(sealInput(m))
}

export function computeSeal(m: ManifestBody): string {
  return cidOf(DAG_CBOR, sealBytes(m)).toString()
}

/**
 * Complete views of format 2 manifests (src/manifest/checkpoints.ts: every file and the history,
 * read from the checkpoint node) -> the sealed manifest they were made from. Sealing and
 * serializing a view work on the sealed manifest, so a view can never be written or sealed as such.
 */
const views = new WeakMap<object, ManifestBody>()

/** Register `view` as the complete view of `sealed`. */
export function registerView<T extends ManifestBody>(view: T, sealed: ManifestBody): T {
  views.set(view, sealedOf(sealed))
  return view
}

/** The sealed manifest behind a complete view (the manifest itself when it is not a view). */
export function sealedOf<T extends ManifestBody>(m: T): T {
  return (views.get(m) as T | undefined) ?? m
}

/** Whether `m` is a complete view made by expandManifest. */
export function isView(m: ManifestBody): boolean {
  return views.has(m)
}

/** Serialize: stable key order, two-space indent, trailing newline. One valid encoding per manifest. */
export function serializeManifest(view: Manifest): string {
  const m = sealedOf(view)
  const ordered: Record<string, unknown> = {}
  for (const k of KEY_ORDER) if (m[k] !== undefined) ordered[k] = m[k]
  for (const k of Object.keys(m).sort()) if (!(k in ordered) && m[k] !== undefined) ordered[k] = m[k]
  return JSON.stringify(ordered, null, 2) + '\n'
}

/** Parse manifest text; checks structure and that the seal matches the content. */
export function parseManifest(text: string, where = 'manifest'): Manifest {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new FormatError(`${where} is not valid JSON: ${(err as Error).message}`, 'E_MANIFEST', { where }, { cause: err })
  }
  let m: Manifest
  try {
    m = validateManifest(raw)
  } catch (err) {
    if (err instanceof FormatError) throw new FormatError(`${where}: ${err.message}`, err.code, { ...err.data, where }, { cause: err })
    throw err
  }
  return m
}

/** The seal the content gives, and whether it equals the recorded one. */
export function checkSeal(m: Manifest): { ok: boolean; expected: string } {
  const expected = computeSeal(m)
  return { ok: expected === m.seal, expected }
}

/** Whether a manifest file entry holds model weights (not a companion such as optimizer state). */
export function isWeightsEntry(f: FileEntry): boolean {
  return f.role === undefined
}

export function manifestDir(name: string, version: number): string {
  return `${MODELS_DIR}/${name}/v${version}`
}
export function manifestPath(name: string, version: number): string {
  return `${manifestDir(name, version)}/${MANIFEST_FILE}`
}
