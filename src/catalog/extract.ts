/**
 * Manifest text -> the facts the catalog indexes. Kept free of heavy imports (no CID or CBOR code)
 * because it runs in the catalog's build workers on every manifest of a cold build.
 *
 * The file list is the largest part of a trajectory's manifest and the catalog needs only its
 * count, total size and epochs, so for manifests in the canonical layout (serializeManifest: top-level
 * keys at two spaces, one key per line) the `files` array is counted with a scan instead of parsed.
 * Anything else is parsed in full. Seals are not recomputed here (that is `git zoo verify`'s and
 * `show`/`lineage`'s job); the catalog is a finding aid derived from the manifests.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface ParentRef { name: string; version: number; seal: string; relation: string }

export interface CatalogRow {
  path: string
  name: string
  version: number
  seal: string
  seed?: number
  dataset?: string
  arch?: string
  created?: string
  promoter?: string
  params: Record<string, Json>
  metrics: Record<string, number>
  history: Array<Record<string, number>>
  parents: ParentRef[]
  /** Number of files, their total size, and the number of distinct checkpoint epochs. */
  files: number
  size: number
  checkpoints: number
}

const NAME = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

class Bad extends Error {}
function bad(why: string): never { throw new Bad(why) }

/** Parse the canonical layout without the `files` array; undefined when the layout is not canonical. */
function fastParse(text: string): { obj: Record<string, unknown>; files: string } | undefined {
  const fi = text.indexOf('\n  "files": [')
  if (fi === -1) return undefined
  const after = text.indexOf('\n  "', fi + 13)
  const end = after === -1 ? text.lastIndexOf('\n}') : after
  if (end === -1 || end < fi) return undefined
  const filesText = text.slice(fi + 12, end)
  // the files value must end the key: `...],` (more keys follow) or `...]` (last key)
  const trimmed = filesText.trimEnd()
  if (!(trimmed.endsWith('],') || (after === -1 && trimmed.endsWith(']')))) return undefined
  let head = text.slice(0, fi).trimEnd()
  if (head.endsWith(',')) head = head.slice(0, -1)
  const tail = after === -1 ? '\n}' : text.slice(after)
  try {
    const obj = JSON.parse(head + (after === -1 ? '' : ',') + tail) as Record<string, unknown>
    return { obj, files: filesText }
  } catch { return undefined }
}

function countFiles(filesText: string): { files: number; size: number; checkpoints: number } {
  let files = 0, size = 0
  const epochs = new Set<number>()
  const re = /\n {6}"(size|epoch)": (\d+)/g
  let m
  while ((m = re.exec(filesText)) !== null) {
    if (m[1] === 'size') { files++; size += Number(m[2]) } else epochs.add(Number(m[2]))
  }
  return { files, size, checkpoints: epochs.size }
}

/** Extract a catalog row; throws with a reason when the manifest is not usable. */
export function extractRow(path: string, text: string): CatalogRow {
  try {
    return extract(path, text)
  } catch (err) {
    if (err instanceof Bad) throw new Error(`${path}: ${err.message}`)
    if (err instanceof SyntaxError) throw new Error(`${path}: not valid JSON (${err.message})`)
    throw err
  }
}

function extract(path: string, text: string): CatalogRow {
  const fast = fastParse(text)
  const m = fast?.obj ?? (JSON.parse(text) as unknown)
  if (!isObject(m)) bad('not a JSON object')
  let counts: { files: number; size: number; checkpoints: number }
  if (fast) counts = countFiles(fast.files)
  else {
    if (!Array.isArray(m.files)) bad('files is not a list')
    const fs = m.files as Array<Record<string, unknown>>
    counts = {
      files: fs.length,
      size: fs.reduce((a, f) => a + (typeof f?.size === 'number' ? f.size : 0), 0),
      checkpoints: new Set(fs.map((f) => f?.epoch).filter((e) => typeof e === 'number')).size,
    }
  }
  if (typeof m.name !== 'string' || !NAME.test(m.name)) bad('name is missing or invalid')
  if (!Number.isSafeInteger(m.version) || (m.version as number) < 1) bad('version is not a positive integer')
  const expect = `models/${m.name}/v${m.version}/manifest.json`
  if (path !== expect) bad(`it names ${m.name}@v${m.version}, which belongs at ${expect}`)
  if (typeof m.seal !== 'string') bad('seal is missing')
  if (!isObject(m.params)) bad('params is not an object')
  if (!isObject(m.metrics)) bad('metrics is not an object')
  const metrics: Record<string, number> = {}
  for (const [k, v] of Object.entries(m.metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(`metrics.${k} is not a number`)
    metrics[k] = v
  }
  const history: Array<Record<string, number>> = []
  if (m.history !== undefined) {
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
  }
  if (m.seed !== undefined) { if (!Number.isSafeInteger(m.seed)) bad('seed is not an integer'); row.seed = m.seed as number }
  for (const k of ['dataset', 'arch', 'created', 'promoter'] as const) {
    const v = m[k]
    if (v !== undefined) { if (typeof v !== 'string') bad(`${k} is not a string`); row[k] = v }
  }
  return row
}
