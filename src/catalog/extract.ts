/**
 * Manifest text -> the facts the catalog indexes. Kept free of heavy imports (no CID or CBOR code)
 * because it runs in the catalog's build workers on every manifest of a cold build.
 *
 * The file list is the largest part of a trajectory's manifest and the catalog needs only its
 * count, total size and epochs, so for manifests in the canonical layout (serializeManifest: top-level
 * keys at two spaces, one key per line) the `files` array is cut out and counted by the catalog's
 * JSON scanner (scan.ts fileCounts: checked as JSON, counted as JSON.parse would read it) instead
 * of parsed into objects.
 * Anything else is parsed in full. Seals are not recomputed here (that is `git zoo verify`'s and
 * `show`/`lineage`'s job); the catalog is a finding aid derived from the manifests.
 */

import { fileCounts } from './scan.js'

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface ParentRef { name: string; version: number; seal: string; relation: string }

export interface CatalogRow {
  path: string
  /** Set when the version is retired (a RETIRED.json beside its manifest). */
  retired?: boolean
  name: string
  version: number
  seal: string
  seed?: number
  dataset?: string
  arch?: string
  /** The zoo (population) an import took the model from (manifest `population`). */
  population?: string
  created?: string
  promoter?: string
  params: Record<string, Json>
  metrics: Record<string, number>
  /** Empty when the catalog was built without history (see build.ts). */
  history: Array<Record<string, number>>
  parents: ParentRef[]
  /** Number of files, their total size, and the number of distinct checkpoint epochs. */
  files: number
  size: number
  checkpoints: number
  /** The checkpoint node was in neither the local store nor the fetched blocks: no history was read (read.ts). */
  unfetched?: boolean
  /** Format 2: the checkpoint node link, whose history the catalog reads from the store (read.ts). */
  checkpointsLink?: { node: string; count: number; files: number; bytes: number; epochs: [number, number] }
}

const NAME = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

class Bad extends Error {}
function bad(why: string): never { throw new Bad(why) }

const NL_KEY = Buffer.from('\n  "')
/** Where the list starts in a cut `files` range (after `\n  "files": `). */
const FILES_AT = '\n  "files": '.length
const CLOSE = Buffer.from('\n}')
/** `\n  "<key>": [` as bytes, made once per key (a string needle is converted on every search). */
const markers = new Map<string, Buffer>()

/** The byte range of top-level key `key` in the canonical layout: [line start, end], and whether its value is a list. */
function cutKey(buf: Buffer, key: string): [number, number] | undefined {
  let marker = markers.get(key)
  if (!marker) { marker = Buffer.from(`\n  "${key}": [`); markers.set(key, marker) }
  const at = buf.indexOf(marker)
  if (at === -1) return undefined
  const next = buf.indexOf(NL_KEY, at + marker.length)
  const end = next === -1 ? buf.lastIndexOf(CLOSE) : next
  if (end < at) return undefined
  // the value must close the list: "]" or "]," before the next key
  let e = end - 1
  while (e > at && (buf[e] === 0x20 || buf[e] === 0x0a || buf[e] === 0x0d)) e--
  if (buf[e] === 0x2c) e--
  if (buf[e] !== 0x5d) return undefined
  return [at, end]
}

/**
 * Parse the canonical layout without the `files` list (counted by a scan of the bytes) and, unless
 * wanted, without `history`: only the rest is decoded and parsed. Undefined when the bytes are not
 * in that layout (then they are parsed in full).
 */
function fastParse(buf: Buffer, withHistory: boolean): { obj: Record<string, unknown>; files: [number, number] } | undefined {
  const files = cutKey(buf, 'files')
  if (!files) return undefined
  const cuts = [files]
  if (!withHistory) { const h = cutKey(buf, 'history'); if (h) cuts.push(h) }
  cuts.sort((a, b) => a[0] - b[0])
  const close = cuts[cuts.length - 1]![1] === buf.lastIndexOf(CLOSE)
  let rest = ''
  let pos = 0
  for (const [a, b] of cuts) { rest += buf.toString('utf8', pos, a); pos = b }
  // a removed last key leaves the comma of the value before it: drop it (any other layout fails
  // JSON.parse below and is parsed in full)
  if (close && rest.endsWith(',')) rest = rest.slice(0, -1)
  rest += buf.toString('utf8', pos)
  try {
    return { obj: JSON.parse(rest) as Record<string, unknown>, files }
  } catch { return undefined }
}

/** Extract a catalog row; throws with a reason when the manifest is not usable. */
export function extractRow(path: string, bytes: Buffer, withHistory = true): CatalogRow {
  try {
    return extract(path, bytes, withHistory)
  } catch (err) {
    if (err instanceof Bad) throw new Error(`${path}: ${err.message}`)
    if (err instanceof SyntaxError) throw new Error(`${path}: not valid JSON (${err.message})`)
    throw err
  }
}

function extract(path: string, bytes: Buffer, withHistory: boolean): CatalogRow {
  const fast = fastParse(bytes, withHistory)
  // the cut-out files list, read by the JSON scanner (checked as JSON, counted as JSON.parse reads it)
  const cut = fast ? fileCounts(bytes, fast.files[0] + FILES_AT, fast.files[1]) : undefined
  const m = (cut ? fast!.obj : JSON.parse(bytes.toString('utf8'))) as unknown
  if (!isObject(m)) bad('not a JSON object')
  let counts: { files: number; size: number; checkpoints: number }
  if (cut) counts = cut
  else {
    if (!Array.isArray(m.files)) bad('files is not a list')
    const fs = m.files as Array<Record<string, unknown>>
    counts = {
      files: fs.length,
      size: fs.reduce((a, f) => a + (typeof f?.size === 'number' ? f.size : 0), 0),
      checkpoints: new Set(fs.map((f) => f?.epoch).filter((e) => typeof e === 'number')).size,
    }
  }
  // format 2: a trajectory's checkpoint entries are in its checkpoint node; the manifest's summary counts them
  if (m.checkpoints !== undefined) {
    const c = m.checkpoints
    if (!isObject(c) || !Number.isSafeInteger(c.count) || !Number.isSafeInteger(c.files) || !Number.isSafeInteger(c.bytes)) bad('checkpoints is not { node, count, files, bytes, epochs }')
    counts = { files: counts.files + (c.files as number), size: counts.size + (c.bytes as number), checkpoints: c.count as number }
  }
  if (typeof m.name !== 'string' || !NAME.test(m.name)) bad('name is missing or invalid')
  if (!Number.isSafeInteger(m.version) || (m.version as number) < 1) bad('version is not a positive integer')
  const expect = `models/${m.name}/v${m.version}/manifest.json`
  if (path !== expect) bad(`it names ${m.name}@v${m.version}, which belongs at ${expect}`)
  if (typeof m.seal !== 'string') bad('seal is missing')
  if (!isObject(m.params)) bad('params is not an object')
  if (!isObject(m.metrics)) bad('metrics is not an object')
  // the parsed object is our own: checked in place, not copied
  const metrics = m.metrics as Record<string, number>
  for (const k in metrics) {
    const v = metrics[k]
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(`metrics.${k} is not a number`)
  }
  const history: Array<Record<string, number>> = []
  if (withHistory && m.history !== undefined) {
    if (!Array.isArray(m.history)) bad('history is not a list')
    for (const h of m.history) {
      if (!isObject(h)) bad('a history record is not an object')
      for (const v of Object.values(h)) if (typeof v !== 'number' || !Number.isFinite(v)) bad('a history value is not a number')
      history.push(h as Record<string, number>)
    }
  }
  const parents: ParentRef[] = []
  if (!Array.isArray(m.parents)) bad('parents is not a list')
  for (const p of m.parents) {
    if (!isObject(p) || typeof p.name !== 'string' || !Number.isSafeInteger(p.version) || typeof p.seal !== 'string' || typeof p.relation !== 'string') bad('a parent is not { name, version, seal, relation }')
    parents.push({ name: p.name, version: p.version as number, seal: p.seal, relation: p.relation })
  }
  const row: CatalogRow = {
    path, name: m.name, version: m.version as number, seal: m.seal,
    params: m.params as Record<string, Json>, metrics, history, parents, ...counts,
    ...(isObject(m.checkpoints) && typeof m.checkpoints.node === 'string' && Array.isArray(m.checkpoints.epochs) ? { checkpointsLink: m.checkpoints as unknown as NonNullable<CatalogRow['checkpointsLink']> } : {}),
  }
  if (m.seed !== undefined) { if (!Number.isSafeInteger(m.seed)) bad('seed is not an integer'); row.seed = m.seed as number }
  for (const k of ['dataset', 'arch', 'created', 'promoter', 'population'] as const) {
    const v = m[k]
    if (v !== undefined) { if (typeof v !== 'string') bad(`${k} is not a string`); row[k] = v }
  }
  return row
}
