/**
 * `git zoo import`: promote every model of a directory in one commit (or one per --batch models),
 * skipping models the zoo already holds with identical content, so an interrupted or repeated
 * import picks up where it stopped (spec/import.md).
 */
import { openReader } from '../zoo/reader.js'
import { expandManifest } from '../manifest/checkpoints.js'
import { createReadStream } from 'node:fs'
import { createHash } from 'node:crypto'
import { stat, readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Repo } from '../repo.js'
import { sealPromotion, commitPromotion, codeRevision, RELATIONS, type PromotionSpec, type SourceFile } from '../promote/promote.js'
import { detectLayout, scanModels, nameFor, type FoundModel, type Layout } from './layout.js'
import { CONFIG_FILES } from './run.js'
import { readRun } from './read-run.js'
import { factorsFromConfig, readConfig } from './factors.js'
import { openCatalog } from '../catalog/catalog.js'
import { ParentIndex } from './parents.js'
import { findPopulations, populationFiles } from './population.js'
import { PreparePool } from './prepare.js'
import { MODELS_DIR, MANIFEST_FILE, type Manifest } from '../manifest/manifest.js'
import type { LocalStore } from '../cas/local.js'
import { UsageError, diskFull } from '../errors.js'

/**
 * Without --batch, a commit holds up to this many models (parents first): a promotion holds its
 * models' manifests until it commits (~130-160 KB per Model Zoos model), so bounded batches keep the
 * peak RSS of an import flat in the population's size (spec/import.md, "Batches").
 */
export const DEFAULT_BATCH = 250

export interface ImportOptions {
  layout: Layout | 'auto'
  prefix?: string
  /** Models per commit; default DEFAULT_BATCH. */
  batch?: number
  allowDirty?: boolean
  dryRun?: boolean
  onPhase?: (text: string) => void
  onProgress?: (bytesDone: number, bytesTotal: number) => void
  /** Stops the import between models and between chunks; commits already made stay (spec/teams.md). */
  signal?: AbortSignal
  /** Named crash and pause points of the promotion (see PromoteOptions.crashPoint). */
  crashPoint?: (name: string) => void | Promise<void>
}

export interface ImportedModel { name: string; version?: number; seal?: string; status: 'promoted' | 'unchanged' | 'planned'; checkpoints: number; files: number; parent?: string }

export interface ImportReport {
  layout: Layout
  /** The zoos (Ray Tune experiment folders) the models came from, recorded under zoos/<name>/. */
  populations?: Array<{ name: string; source: string; files: string[]; models: number }>
  models: ImportedModel[]
  promoted: number
  unchanged: number
  commits: string[]
  checkpoints: number
  files: number
  bytes: number
  stored_bytes: number
  seconds: number
}

interface Planned { found: FoundModel; spec: PromotionSpec; bytes: number; checkpoints: number }

/** A model name for a reference that may not be a valid folder path (an absolute path, say): never throws. */
function safeName(prefix: string | undefined, ref: string): string {
  try { return nameFor(prefix, ref) } catch { return '' }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  const size = (await stat(path)).size
  if (size <= 4 << 20) return h.update(await readFile(path)).digest('hex')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

/** Whether a manifest already holds exactly these files (paths, sizes, sha256) and config. */
async function sameContent(m: Manifest, spec: PromotionSpec): Promise<boolean> {
  if (m.files.length !== spec.files.length) return false
  const byPath = new Map(m.files.map((f) => [f.path, f]))
  const sizes = await Promise.all(spec.files.map(async (f) => (await stat(f.source)).size))
  if (spec.files.some((f, i) => byPath.get(f.path)?.size !== sizes[i] || (byPath.get(f.path)?.epoch ?? -1) !== (f.epoch ?? -1))) return false
  if (Boolean(m.config) !== Boolean(spec.configFile)) return false
  if (m.config && spec.configFile && m.config.sha256 !== await sha256File(spec.configFile)) return false
  // hashing is bound by per-file latency, so several files are read at once
  let next = 0, same = true
  const worker = async (): Promise<void> => {
    while (same && next < spec.files.length) {
      const f = spec.files[next++]!
      if (byPath.get(f.path)!.sha256 !== await sha256File(f.source)) same = false
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  return same
}

/**
 * Add to `out` the models whose `version` is not in HEAD: the catalog lists the index, where an
 * import killed between staging a batch and moving HEAD left its versions. One `git ls-tree` of
 * their manifests per 500 models, only for models the zoo already lists.
 */
async function findUncommitted(repo: Repo, models: Array<{ name: string; version: number }>, out: Set<string>): Promise<void> {
  for (let at = 0; at < models.length; at += 500) {
    const part = models.slice(at, at + 500)
    const path = (m: { name: string; version: number }): string => `${MODELS_DIR}/${m.name}/v${m.version}/${MANIFEST_FILE}`
    const r = await repo.runGit(['ls-tree', '--name-only', '-z', 'HEAD', '--', ...part.map(path)])
    const inHead = new Set(r.code === 0 ? r.stdout.split('\0') : [])
    for (const m of part) if (!inHead.has(path(m))) out.add(m.name)
  }
}

/** Order models so every parent named inside the import comes before its children. */
function parentsFirst<T>(nodes: Array<{ name: string; parents: string[]; item: T }>): T[] {
  const byName = new Map(nodes.map((p) => [p.name, p]))
  const out: T[] = []
  const state = new Map<string, 1 | 2>()
  const visit = (p: (typeof nodes)[number], path: string[]): void => {
    const s = state.get(p.name)
    if (s === 2) return
    if (s === 1) throw new UsageError(`the import's parent links form a cycle: ${[...path, p.name].join(' -> ')}; fix the configs' parent keys`, 'E_IMPORT_CYCLE')
    state.set(p.name, 1)
    for (const par of p.parents) { const q = byName.get(par); if (q) visit(q, [...path, p.name]) }
    state.set(p.name, 2)
    out.push(p.item)
  }
  for (const p of nodes) visit(p, [])
  return out
}

export async function importZoo(repo: Repo, dir: string, o: ImportOptions): Promise<ImportReport> {
  const started = performance.now()
  let st
  try { st = await stat(dir) } catch (err) { throw new UsageError(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'E_NO_FILE', { path: dir }, { cause: err }) }
  if (!st.isDirectory()) throw new UsageError(`${dir} is not a directory; git zoo import takes a directory of runs (git zoo add takes files)`, 'E_USAGE')
  if (o.batch !== undefined && o.batch < 1) throw new UsageError('--batch takes a number of models >= 1', 'E_USAGE')
  const layout = o.layout === 'auto' ? await detectLayout(dir) : o.layout
  o.onPhase?.(`scanning ${dir} (${layout} layout)\n`)
  const found = await scanModels(dir, layout, o.prefix)
  if (found.length === 0) throw new UsageError(`no models found in ${dir} with the ${layout} layout (a model is a folder holding checkpoint_<epoch>/ folders${layout === 'generic' ? ' or weight files' : ''}); see \`git zoo import --help\``, 'E_NO_MODELS')
  const parentsIndex = new ParentIndex(found)
  const populations = await findPopulations(dir, found, o.prefix)

  // what the zoo already holds: names and latest versions, from the catalog
  const opened = await openCatalog({ cwd: repo.root, env: repo.env })
  const latest = new Map<string, number>()
  try {
    const c = opened.file
    const v = c.f64('version')
    const isLatest = c.latest()
    for (let i = 0; i < c.count; i++) if (isLatest[i]) latest.set(c.str('name', i)!, v![i]!)
  } finally { opened.file.close() }

  // pass 1, light: each model's parent (config keys and nesting), so parents come first; the full
  // plan of a model (its files, history, resume check) is made only for the commit it goes in, so
  // memory follows one commit's models, not the whole import's
  const lineage = found.map((f) => {
    const configFile = CONFIG_FILES.map((n) => join(f.dir, n)).find((p) => existsSync(p))
    const factors = factorsFromConfig(configFile ? readConfig(configFile) : {})
    // a config's `parent` key, else the folder nesting (vit, generic), else a config key naming the
    // run's starting point (training::init_checkpoint_path, pretraining::model)
    const parentKey = factors.parent ?? f.nestedIn ?? factors.initParent
    let parentRef: string | undefined
    if (parentKey) {
      parentRef = parentsIndex.resolve(parentKey)?.name
        ?? (latest.has(parentKey) ? parentKey : latest.has(safeName(o.prefix, parentKey)) ? safeName(o.prefix, parentKey) : undefined)
    }
    if (parentKey && !parentRef) throw new UsageError(`model ${f.rel}: its parent ${parentKey} is neither a model folder of this import (by path, trial folder name, Ray trial id or name prefix) nor a model in the zoo; import the parent's folder too`, 'E_NO_PARENT', { model: f.rel, parent: parentKey })
    const relation = factors.relation ?? (factors.parent === undefined && f.nestedIn === undefined ? factors.initRelation : undefined) ?? 'fine-tune'
    if (!(RELATIONS as readonly string[]).includes(relation)) throw new UsageError(`model ${f.rel}: unknown relation ${JSON.stringify(relation)}; use one of ${RELATIONS.join(', ')}`, 'E_USAGE')
    return { f, ...(parentRef ? { parentRef } : {}), relation }
  })
  const order = parentsFirst(lineage.map((l) => ({ name: l.f.name, parents: l.parentRef ? [l.parentRef] : [], item: l })))

  let zooFiles = populations.list.length && !o.dryRun ? await populationFiles(populations.list) : []
  // worker threads read the model folders and hash the checkpoints while this thread stores them and
  // seals manifests (closed below, whatever happens)
  const preparer = o.dryRun ? null : PreparePool.open()
  const report: ImportedModel[] = []
  let checked = 0
  // models whose latest version in the catalog (built from the index) is staged but not committed
  const uncommitted = new Set<string>()
  // one store handle (it only reads) for every resume check
  let reader: ReturnType<typeof openReader> | undefined
  // set once the batches are over (finished or failed): a plan still running for a next batch stops
  let stopped = false
  const plan = async ({ f, parentRef, relation }: (typeof lineage)[number]): Promise<{ item: ImportedModel; planned?: Planned } | undefined> => {
    o.signal?.throwIfAborted()
    if (stopped) return undefined
    // read by a worker thread when there are some (a failure there is read again here, for its error)
    const read = (preparer ? await preparer.readRun(f.dir, f.nested).catch(() => null) : null) ?? await readRun(f.dir, f.nested)
    const { run, metrics } = read
    // sizes as just listed: the promotion does not look them up again
    const files: SourceFile[] = run.files.flatMap((x, i) => (x.source !== run.configFile ? [{ ...x, size: read.sizes[i]! }] : []))
    if (files.length === 0) return undefined
    const factors = factorsFromConfig(read.config)
    const population = populations.of(f.rel)
    const spec: PromotionSpec = {
      name: f.name, files,
      ...(run.configFile ? { configFile: run.configFile, ...(read.configBytes ? { configBytes: read.configBytes } : {}) } : {}),
      ...(metrics ? { metrics: metrics.metrics, ...(metrics.history ? { history: metrics.history } : {}) } : {}),
      ...(factors.seed !== undefined ? { seed: factors.seed } : {}),
      ...(factors.dataset ? { dataset: factors.dataset } : {}),
      ...(factors.arch ? { arch: factors.arch } : {}),
      params: factors.params,
      parents: parentRef ? [{ ref: parentRef, relation }] : [],
      message: `imported from ${f.rel}`,
      ...(population ? { extra: { population: population.name } } : {}),
    }
    const sizes = files.map((x) => x.size!)
    const item: ImportedModel = { name: f.name, status: 'planned', checkpoints: run.epochs.length, files: files.length, ...(parentRef ? { parent: parentRef } : {}) }
    // a version the index holds but HEAD does not (an import killed after staging its batch) is
    // not in the zoo yet: the model is promoted again, into that folder
    const have = uncommitted.has(f.name) ? undefined : latest.get(f.name)
    if (have !== undefined) {
      if (++checked % 100 === 1) o.onPhase?.(`checking models the zoo already holds (${checked})\n`)
      // every file of the version: a trajectory's checkpoint entries are in its checkpoint node
      const m = await expandManifest(await repo.readManifest(f.name, have), await (reader ??= openReader(repo)))
      if (await sameContent(m, spec)) return { item: { ...item, status: 'unchanged', version: m.version, seal: m.seal } }
    }
    return { item, planned: { found: f, spec, bytes: sizes.reduce((a, b) => a + b, 0), checkpoints: run.epochs.length } }
  }

  const size = o.batch ?? DEFAULT_BATCH
  const commits: string[] = []
  let stored = 0, doneBytes = 0, checkpoints = 0, fileCount = 0, bytes = 0
  // worker threads read and hash the checkpoints while this thread stores them and seals manifests
  // every batch records the code revision the import started from (not the batch before it)
  let code: Awaited<ReturnType<typeof codeRevision>> | undefined
  // one store handle for every batch: the store's indexes are loaded once (it holds gc off until
  // closed, after the last commit)
  let store: LocalStore | undefined
  // the commit of the batch before, still running while the next batch is stored and sealed
  let committing: Promise<void> | undefined
  let known: Map<string, Manifest> | undefined
  // the batch being planned while the one before is stored (settled before the workers stop)
  let planned: Promise<Array<Awaited<ReturnType<typeof plan>>>> | undefined
  try {
    // (an unchanged child keeps linking to the parent version it was trained from, even when that
    // parent's folder changed and is promoted again as a new version here)
    // the next batch is planned (its folders read by the workers) while this one is stored
    const planSlice = async (from: number): Promise<Array<Awaited<ReturnType<typeof plan>>>> => {
      const slice = order.slice(from, from + size)
      await findUncommitted(repo, slice.flatMap(({ f }) => latest.has(f.name) ? [{ name: f.name, version: latest.get(f.name)! }] : []), uncommitted)
      const results: Array<Awaited<ReturnType<typeof plan>>> = new Array(slice.length)
      let next = 0
      // models are read and checked several at a time (the resume check waits on git and hashing)
      await Promise.all(Array.from({ length: Math.min(8, slice.length) }, async () => {
        while (next < slice.length) { const i = next++; results[i] = await plan(slice[i]!) }
      }))
      return results
    }
    planned = planSlice(0)
    for (let at = 0, end = 0; at < order.length; at = end) {
      end = Math.min(order.length, at + size)
      const results = await planned
      if (end < order.length) { planned = planSlice(end); planned.catch(() => {}) } // awaited next round
      const chunk: Planned[] = []
      for (const r of results) {
        if (!r) continue
        report.push(r.item)
        if (r.planned) chunk.push(r.planned)
      }
      if (o.dryRun || chunk.length === 0) continue
      const chunkBytes = chunk.reduce((a, p) => a + p.bytes, 0)
      const last = end >= order.length
      o.onPhase?.(`storing ${chunk.length} model${chunk.length === 1 ? '' : 's'}${at > 0 || !last ? ` (${end} of ${order.length} checked)` : ''}\n`)
      const base = doneBytes
      code ??= await codeRevision(repo, o.allowDirty ?? false)
      if (!store) {
        store = await repo.openStore()
        // what an add or import killed earlier (kill -9) stored is indexed now, so it is not written again
        await store.recoverInterrupted()
      }
      // stored and sealed while the batch before commits (it builds on HEAD meanwhile)
      const sealed = await sealPromotion(repo, chunk.map((p) => p.spec), store, {
        code,
        allowDirty: o.allowDirty ?? false,
        subject: `zoo: import ${chunk.length} model${chunk.length === 1 ? '' : 's'} from ${dir.split('/').filter(Boolean).pop()}`,
        onProgress: (done) => o.onProgress?.(base + done, base + chunkBytes),
        ...(o.signal ? { signal: o.signal } : {}),
        ...(o.crashPoint ? { crashPoint: o.crashPoint } : {}),
        ...(zooFiles.length ? { extraFiles: zooFiles } : {}),
        ...(preparer ? { preparer } : {}),
        ...(known ? { known } : {}),
      }).catch((err: unknown) => { throw diskFull(err, store!.location) })
      zooFiles = []
      doneBytes += chunkBytes
      // one commit at a time, each on the one before
      await committing
      // parents in this batch are found here until its commit lands
      known = new Map(sealed.results.map((r) => [r.name, r.manifest]))
      committing = commitPromotion(repo, sealed, { ...(o.signal ? { signal: o.signal } : {}), ...(o.crashPoint ? { crashPoint: o.crashPoint } : {}) })
        .then((commit) => {
          commits.push(commit)
          const byName = new Map(report.map((x) => [x.name, x]))
          for (const r of sealed.results) {
            stored += r.stored_bytes
            const item = byName.get(r.name)!
            item.status = 'promoted'; item.version = r.version; item.seal = r.seal
          }
          for (const p of chunk) { checkpoints += p.checkpoints; fileCount += p.spec.files.length; bytes += p.bytes }
        }, (err: unknown) => { throw diskFull(err, store!.location) })
      committing.catch(() => {}) // awaited before the next commit and at the end
    }
    await committing
    // each batch's commit wrote one pack: merged once the import is done, so the packs stay few
    // as zoos are added (a geometric repack rewrites the small packs, not the zoo's big one)
    if (commits.length > 1 && (await repo.runGit(['config', '--get', 'gc.auto'])).stdout.trim() !== '0') {
      o.onPhase?.(`merging the ${commits.length} packs of git objects the import wrote\n`)
      // housekeeping only: the commits stand whatever it says (a git before 2.32 has no --geometric)
      await repo.runGit(['repack', '-d', '-q', '--geometric=2'])
    }
  } finally {
    stopped = true
    // a commit under way finishes (or rolls back) before the store lets gc run again; a batch
    // being planned settles before the workers stop and the reader it may have opened is closed
    await committing?.catch(() => {})
    await planned?.catch(() => {})
    try { await store?.close() } finally {
      try { await preparer?.close() } finally { await (await reader?.catch(() => undefined))?.close() }
    }
  }
  const rank = new Map(found.map((f, i) => [f.name, i]))
  report.sort((a, b) => rank.get(a.name)! - rank.get(b.name)!)
  return {
    layout,
    ...(populations.list.length ? { populations: populations.list.map((p) => ({ name: p.name, source: p.rel, files: p.files.map((f) => f.path), models: p.models })) } : {}),
    models: report,
    promoted: report.filter((r) => r.status === 'promoted').length,
    unchanged: report.filter((r) => r.status === 'unchanged').length,
    commits,
    checkpoints,
    files: fileCount,
    bytes,
    stored_bytes: stored,
    seconds: (performance.now() - started) / 1000,
  }
}
