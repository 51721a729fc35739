/**
 * The web app's data, built from the zoo by the same code the commands use: the catalog (`ls`,
 * `find`), manifests and cards (`show`), lineage (`lineage`), evaluation records (`eval`), the
 * audit log (`log`) and weight diffs (`diff`). Read only: nothing here writes to the zoo (the
 * catalog cache aside, which every query may refresh).
 */
import { readFile, readdir, realpath } from 'node:fs/promises'
import { join, basename, sep } from 'node:path'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import type { Repo } from '../repo.js'
import { openCatalog } from '../catalog/catalog.js'
import type { CatalogFile } from '../catalog/columns.js'
import { checkSeal, manifestDir, MODELS_DIR, MANIFEST_FILE, type Manifest, type FileEntry } from '../manifest/manifest.js'
import { parseModelRef } from '../manifest/names.js'
import { RETIRED_FILE } from '../manifest/retirement.js'
import { CARD_FILE, renderModelCard } from '../manifest/card.js'
import { fileChunks } from '../manifest/node.js'
import { buildLineage, type ManifestSource } from '../lineage/graph.js'
import { zooSource } from '../lineage/source.js'
import { readEvaluations, evalsDir } from '../evals/record.js'
import { readLog, type LogEntry } from '../promote/log.js'
import { openReader, completeManifest } from '../zoo/reader.js'
import { diffMetadata } from '../weights/metadata-diff.js'
import { diffFiles, pairFiles, storageShare, type FileWeightDiff } from '../weights/diff.js'
import { FileOpener } from '../weights/tensors.js'
import type { Store } from '../cas/store.js'
import { CheckError, CorruptObjectError, UsageError } from '../errors.js'
import type { CatalogPayload, DiffPayload, ModelPayload } from './shapes.js'

/** Catalog columns the app never needs (where the manifest lives, stat facts, the params JSON the p:<k> columns repeat). */
const SKIP = /^(path|blob|params|st:.*)$/

/** String columns with few distinct values go as a dictionary (promoter, ...). */
const DICT_AT_MOST = 0.2

/** Names one build of the catalog (its rows' order): the page sends it back with every column it asks for. */
export function catalogId(c: CatalogFile): string {
  return createHash('sha256').update(`${c.header.key}\n${c.header.built}\n${c.count}`).digest('hex').slice(0, 16)
}

/** String columns the page fetches only when a query names them (CatalogPayload.lazy). */
const LAZY = new Set(['seal', 'created'])

/** The catalog as the app reads it: the JSON part, the binary numeric part and the lazy columns (CatalogPayload). */
export function catalogPayload(c: CatalogFile): { json: CatalogPayload; bin: Buffer; lazy: Map<string, string> } {
  const lazy = new Map<string, string>()
  const json: CatalogPayload = { lazy: [], id: catalogId(c), count: c.count, sections: [], str: {}, dicts: {}, history: {}, problems: c.header.problems.map((p) => ({ path: p.path, problem: p.problem })) }
  const parts: Buffer[] = []
  let offset = 0
  const add = (col: string, type: CatalogPayload['sections'][number]['type'], bytes: Uint8Array): void => {
    const pad = (8 - (offset % 8)) % 8 // typed arrays over the buffer need aligned offsets
    if (pad) { parts.push(Buffer.alloc(pad)); offset += pad }
    json.sections.push({ col, type, offset })
    parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    offset += bytes.byteLength
  }
  add('latest', 'u8', c.latest())
  add('current', 'u8', c.current())
  for (const section of c.sectionNames()) {
    const at = section.indexOf(':')
    const kind = section.slice(0, at), col = section.slice(at + 1)
    if (SKIP.test(col)) continue
    const h = /^h:(.+):(\d+)$/.exec(col)
    if (h) { (json.history[h[1]!] ??= []).push(Number(h[2])); continue }
    if (kind === 'f64' || kind === 'f32') {
      const v = c.f64(col)!
      const f = Float32Array.from(v)
      let exact = true
      for (let i = 0; i < v.length && exact; i++) if (f[i] !== v[i] && !(Number.isNaN(v[i]!) && Number.isNaN(f[i]!))) exact = false
      if (exact) add(col, 'f32', new Uint8Array(f.buffer))
      else add(col, 'f64', new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
    } else if (kind === 'dict') {
      const d = c.dict(col)!
      json.dicts[col] = d.values
      add(`dict:${col}`, 'u32', new Uint8Array(d.codes.buffer, d.codes.byteOffset, d.codes.byteLength))
    } else if (kind === 'str') {
      const a: Array<string | null> = new Array(c.count)
      const seen = new Map<string, number>()
      for (let i = 0; i < c.count; i++) { const v = c.str(col, i) ?? null; a[i] = v; if (v !== null && seen.size <= c.count * DICT_AT_MOST && !seen.has(v)) seen.set(v, seen.size + 1) }
      if (LAZY.has(col)) { json.lazy.push(col); lazy.set(col, JSON.stringify(a)); continue }
      if (c.count > 0 && seen.size <= c.count * DICT_AT_MOST) {
        json.dicts[col] = [...seen.keys()]
        add(`dict:${col}`, 'u32', new Uint8Array(Uint32Array.from(a, (v) => (v === null ? 0 : seen.get(v)!)).buffer))
      } else json.str[col] = a
    }
  }
  for (const k in json.history) json.history[k]!.sort((a, b) => a - b)
  return { json, bin: Buffer.concat(parts), lazy }
}

/**
 * A metric's history across the catalog: for each indexed epoch (CatalogPayload.history order), or
 * for the one epoch asked for, `count` float64 values (NaN missing), little-endian, concatenated.
 */
export function historyBytes(c: CatalogFile, metric: string, epoch?: number): Buffer | undefined {
  const epochs = c.numColumns().map((s) => /^h:(.+):(\d+)$/.exec(s)).filter((m) => m && m[1] === metric).map((m) => Number(m![2])).filter((e) => epoch === undefined || e === epoch).sort((a, b) => a - b)
  if (!epochs.length) return undefined
  const out = Buffer.alloc(epochs.length * c.count * 8)
  const view = new Float64Array(out.buffer, out.byteOffset, epochs.length * c.count)
  epochs.forEach((e, j) => view.set(c.f64(`h:${metric}:${e}`)!, j * c.count))
  return out
}

/** Open the catalog with the history columns (best/max/min and metric@epoch filters need them). */
export async function openUiCatalog(repo: Repo): Promise<CatalogFile> {
  return (await openCatalog({ cwd: repo.root, env: repo.env, history: true })).file
}

/**
 * Refuse a path of the zoo's work tree that resolves outside it (a symbolic link to elsewhere):
 * the web app reads nothing outside the zoo. Missing paths pass (the reader then says so).
 */
export async function insideZoo(repo: Repo, rel: string): Promise<void> {
  const root = await realpath(repo.root)
  let real: string
  try { real = await realpath(join(repo.root, rel)) } catch { return }
  if (real !== root && !real.startsWith(root + sep)) {
    throw new CheckError(`${rel} leads outside the zoo (a symbolic link to ${real}); the web app reads only the zoo's own files`, 'E_SYMLINK', { path: rel })
  }
}

/** The model version a reference names, its folder checked to be inside the zoo. */
async function resolveInside(repo: Repo, ref: string): Promise<Manifest> {
  const { name, version } = parseModelRef(ref)
  await insideZoo(repo, `${MODELS_DIR}/${name}`)
  if (version !== undefined) await insideZoo(repo, manifestDir(name, version))
  const m = await repo.resolve(ref)
  await insideZoo(repo, manifestDir(m.name, m.version))
  await insideZoo(repo, `${manifestDir(m.name, m.version)}/${MANIFEST_FILE}`)
  // the complete view: a trajectory's checkpoint files and history are in its checkpoint node
  return completeManifest(repo, m)
}

/** The card Markdown: README.md beside the manifest, or the card `git zoo add` writes when there is none. */
async function cardOf(repo: Repo, m: Manifest): Promise<string> {
  const rel = `${manifestDir(m.name, m.version)}/${CARD_FILE}`
  await insideZoo(repo, rel)
  try { return await readFile(join(repo.root, rel), 'utf8') } catch { return renderModelCard(m) }
}

/** What an export reads once for every model: the zoo's audit log and the lineage source. */
export interface ModelContext { log: LogEntry[]; src: ManifestSource }

/** A model version's page. */
export async function modelPayload(repo: Repo, ref: string, ctx?: ModelContext): Promise<ModelPayload> {
  const m = await resolveInside(repo, ref)
  await insideZoo(repo, `${manifestDir(m.name, m.version)}/${RETIRED_FILE}`)
  await insideZoo(repo, evalsDir(m))
  for (const n of await readdir(join(repo.root, evalsDir(m))).catch(() => [] as string[])) await insideZoo(repo, `${evalsDir(m)}/${n}`)
  const r = await repo.retirement(m.name, m.version)
  const src = ctx?.src ?? await zooSource(repo)
  let lineage: ModelPayload['lineage']
  try {
    const g = await buildLineage(m, src)
    lineage = { focus: g.focus, nodes: [...g.nodes].map(([key, n]) => ({ key, ...n })), edges: g.edges, problems: g.problems }
  } finally { if (!ctx) (src as ManifestSource & { close(): void }).close() }
  const evaluations = (await readEvaluations(repo, m)).map((e) => ({
    path: e.path, ok: e.ok, ...(e.problem ? { problem: e.problem } : {}), file: e.model?.file ?? '', data: e.data?.source ?? '', n: e.data?.n ?? 0,
    metrics: { ...(e.metrics ?? {}) } as Record<string, number>, created: e.created, evaluator: e.evaluator,
  }))
  const mine = (e: LogEntry): boolean => e.models.some((x) => x.name === m.name && x.version === m.version)
  return {
    manifest: m, sealOk: checkSeal(m).ok,
    retired: r ? { reason: r.reason, retired_by: r.retired_by, retired: r.retired } : null,
    card: await cardOf(repo, m), evaluations, lineage,
    log: ctx ? ctx.log.filter(mine) : await readLog(repo, { name: m.name, version: m.version }),
  }
}

/** `git zoo diff a b --json`, as the compare page shows it. */
export async function diffPayload(repo: Repo, refA: string, refB: string): Promise<DiffPayload> {
  const a = await resolveInside(repo, refA), b = await resolveInside(repo, refB)
  const config = async (m: Manifest): Promise<string | undefined> => {
    if (!m.config) return undefined
    await insideZoo(repo, `${manifestDir(m.name, m.version)}/${m.config.path}`)
    try { return await readFile(join(repo.root, manifestDir(m.name, m.version), m.config.path), 'utf8') } catch { return undefined }
  }
  const meta = diffMetadata(a, b, { a: await config(a), b: await config(b) })
  const store = await openReader(repo)
  try {
    const oa = new FileOpener(store), ob = new FileOpener(store)
    const weights: FileWeightDiff[] = []
    for (const [fa, fb] of pairFiles(a, b)) weights.push(await diffFiles(a, fa, b, fb, oa, ob, { fast: true }))
    const id = (m: Manifest): DiffPayload['a'] => ({ name: m.name, version: m.version, seal: m.seal })
    return { a: id(a), b: id(b), ...meta, weights, storage: await storageShare(a, b, oa, ob) }
  } finally { await store.close() }
}

/** A file of a model version, by its path in the manifest (nothing else can be named). */
export async function modelFile(repo: Repo, ref: string, path: string): Promise<{ manifest: Manifest; file: FileEntry }> {
  const m = await resolveInside(repo, ref)
  const file = m.files.find((f) => f.path === path)
  if (!file) throw new UsageError(`${m.name}@v${m.version} has no file ${JSON.stringify(path)}`, 'E_NO_FILE', { path })
  if (!checkSeal(m).ok) throw new CorruptObjectError(`${m.name}@v${m.version}: its manifest does not match its seal; run \`git zoo verify\``, { model: m.name })
  return { manifest: m, file }
}

/**
 * A file's bytes in order, each chunk verified against its CID by the store; the whole file is
 * checked against the manifest's size and sha256 at the end, and a mismatch throws (the server
 * then cuts the response short, so a bad download never completes).
 */
export async function* fileBytes(store: Store, m: Manifest, f: FileEntry, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256')
  let size = 0
  for await (const [cid] of fileChunks(CID.parse(f.root), store)) {
    signal?.throwIfAborted()
    const bytes = await store.get(cid)
    size += bytes.length
    if (size > f.size) break
    hash.update(bytes)
    yield bytes
  }
  const sha = hash.digest('hex')
  if (size !== f.size || sha !== f.sha256) {
    throw new CorruptObjectError(`model ${m.name}@v${m.version} file ${f.path}: the chunks give ${size} bytes with sha256 ${sha}, the manifest says ${f.size} bytes with ${f.sha256}`, { model: m.name, path: f.path, object: f.root })
  }
}

/**
 * Each file's chunks in order as [CID, size] (static exports: the browser fetches and checks them);
 * files whose root object this clone does not hold are left out (the page says `git zoo get`).
 */
export async function chunkPlan(store: Store, m: Manifest): Promise<Record<string, Array<[string, number]>>> {
  const opener = new FileOpener(store)
  const out: Record<string, Array<[string, number]>> = {}
  for (const f of m.files) {
    if (!(await store.has(CID.parse(f.root)))) continue
    out[f.path] = (await opener.get(f)).chunks.map((c) => [c.cid, c.size])
  }
  return out
}

/** The folder name of the zoo (page titles). */
export function zooTitle(repo: Repo): string { return basename(repo.root) }
