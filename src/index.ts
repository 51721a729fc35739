/**
 * git-zoo as a library: `import { Zoo } from 'git-zoo'`. The same operations as the CLI (which runs
 * the same domain code), for scripts: open a zoo, add a model version, get its files, find models,
 * walk lineage. Errors are ZooError (a stable `code`, `data`, a message saying how to fix it).
 *
 *   const zoo = await Zoo.open('/path/to/repo')
 *   const v = await zoo.add(['build/model.safetensors'], { name: 'resnet18/cifar10', seed: 3 })
 *   await zoo.get('resnet18/cifar10', { out: 'weights/' })
 *   const { models } = await zoo.find(['dataset=cifar10', 'metrics.test_acc>0.6'], { sort: '-metrics.test_acc' })
 *   const g = await zoo.lineage('resnet18/cifar10@v1')
 *
 * This is an entry point like the CLI: it reads `process.env` (and this process's Host) only as the
 * default when `Zoo.open` is not given an environment.
 */
import { resolve } from 'node:path'
import { Repo } from './repo.js'
import { processHost, type Host } from './host.js'
import { promote, type PromoteOptions } from './promote/promote.js'
import { readMetrics } from './promote/metrics.js'
import { sourcesOf } from './importer/sources.js'
import { writeModelFiles } from './zoo/checkout.js'
import { ensureObjects } from './remote/sync.js'
import { completeManifest } from './zoo/reader.js'
import { openCatalog } from './catalog/catalog.js'
import { parseFilter, parseSort, runQuery, summarize, finalMetricKeys, needsHistory, type ModelSummary } from './catalog/query.js'
import { zooSource } from './lineage/source.js'
import { buildLineage } from './lineage/graph.js'
import { renderJson } from './lineage/render.js'
import type { Json, Manifest } from './manifest/manifest.js'

export { ZooError, UsageError, CheckError, NotFoundError, UnknownModelError, FormatError, ERROR_CODES, type ErrorCode } from './errors.js'
export type { Manifest, FileEntry, ParentLink, Json } from './manifest/manifest.js'
export type { ModelSummary } from './catalog/query.js'
export type { Host } from './host.js'

export interface ZooOpenOptions {
  /** The environment git and the zoo read (GIT_*, GIT_ZOO_STORE, AWS_*, ...); default process.env. */
  env?: NodeJS.ProcessEnv
  /** The running process as locks record it; default this process. */
  host?: Host
}

export interface AddOptions {
  /** The model's name, e.g. `resnet18/cifar10`. */
  name: string
  /** A training config file, snapshotted beside the manifest. */
  config?: string
  /** A metrics file (JSON object, JSON list or lines, CSV with a header row); run folders bring their own. */
  metrics?: string
  seed?: number
  dataset?: string
  arch?: string
  params?: Record<string, Json>
  /** Parent models: `name`, `name@vN` or a seal, with the relation (default fine-tune). */
  parents?: Array<string | { ref: string; relation?: string }>
  /** Environment facts to record beside the detected ones. */
  env?: Record<string, string>
  /** Why this model is promoted (the commit message body). */
  message?: string
  /** Promote even if tracked code has uncommitted changes (recorded as dirty). */
  allowDirty?: boolean
  onProgress?: PromoteOptions['onProgress']
}

export interface AddResult {
  name: string
  version: number
  seal: string
  commit: string
  files: Array<{ path: string; size: number; sha256: string }>
  /** Bytes this version added to the store (what deduplication did not find). */
  stored_bytes: number
  warnings: string[]
  manifest: Manifest
}

export interface GetResult { name: string; version: number; seal: string; out: string; files: Array<{ path: string; size: number; sha256: string }> }

export interface FindOptions {
  /** `[-]field[,...]`, as `git zoo find --sort`. */
  sort?: string
  limit?: number
  /** Every version, not only the latest of each model. */
  allVersions?: boolean
}

export interface LineageResult {
  focus: string
  nodes: Array<{ name: string; version: number; seal: string; missing?: boolean }>
  edges: Array<{ from: string; to: string; relation: string }>
  problems: Array<{ model: string; problem: string }>
}

/** A zoo: a git repository with its object store. Paths given to its methods are relative to `dir`. */
export class Zoo {
  private constructor(private readonly repo: Repo, private readonly dir: string) {}

  /** The zoo around `dir` (any folder inside its git work tree). */
  static async open(dir: string, opts: ZooOpenOptions = {}): Promise<Zoo> {
    const cwd = resolve(dir)
    return new Zoo(await Repo.open(cwd, { env: opts.env ?? process.env, host: opts.host ?? processHost() }), cwd)
  }

  /** The work tree's top folder. */
  get root(): string { return this.repo.root }

  /** The manifest of `name`, `name@vN` (default: the latest version) or a seal. */
  resolve(ref: string): Promise<Manifest> { return this.repo.resolve(ref) }

  /**
   * Store, seal and commit the files (or run folders) at `paths` as the next version of
   * `opts.name`, as `git zoo add` does (the signing policy and metadata schema apply).
   */
  async add(paths: string | string[], opts: AddOptions): Promise<AddResult> {
    const { files, runMetrics } = await sourcesOf(typeof paths === 'string' ? [paths] : paths, this.dir)
    const metricsFile = opts.metrics !== undefined ? resolve(this.dir, opts.metrics) : runMetrics
    const metrics = metricsFile ? await readMetrics(metricsFile) : undefined
    const { commit, results } = await promote(this.repo, [{
      name: opts.name, files,
      ...(opts.config !== undefined ? { configFile: resolve(this.dir, opts.config) } : {}),
      ...(metrics ? { metrics: metrics.metrics, ...(metrics.history ? { history: metrics.history } : {}) } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      ...(opts.dataset !== undefined ? { dataset: opts.dataset } : {}),
      ...(opts.arch !== undefined ? { arch: opts.arch } : {}),
      params: opts.params ?? {},
      parents: (opts.parents ?? []).map((p) => (typeof p === 'string' ? { ref: p, relation: 'fine-tune' } : { ref: p.ref, relation: p.relation ?? 'fine-tune' })),
      env: opts.env ?? {},
      ...(opts.message !== undefined ? { message: opts.message } : {}),
    }], { allowDirty: opts.allowDirty ?? false, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) })
    const r = results[0]!
    return { name: r.name, version: r.version, seal: r.seal, commit, files: r.files, stored_bytes: r.stored_bytes, warnings: r.warnings, manifest: r.manifest }
  }

  /**
   * Write the files of `ref` into `opts.out` (default: a folder named after the model), every byte
   * verified; a lazy clone fetches the objects from its zoo remote first.
   */
  async get(ref: string, opts: { out?: string } = {}): Promise<GetResult> {
    const sealed = await this.repo.resolve(ref)
    const m = await completeManifest(this.repo, sealed)
    const out = resolve(this.dir, opts.out ?? m.name)
    await ensureObjects(this.repo, [sealed])
    const store = await this.repo.openStore()
    try {
      const files = await writeModelFiles(m, store, out)
      return { name: m.name, version: m.version, seal: m.seal, out, files: files.map(({ path, size, sha256 }) => ({ path, size, sha256 })) }
    } finally { await store.close() }
  }

  /**
   * Models matching every filter (`git zoo find` syntax: `dataset=cifar10`, `metrics.test_acc>0.6`,
   * `ancestor=vit-s/pretrain`, ...); no filters lists them all, as `git zoo ls`.
   */
  async find(filters: string[] = [], opts: FindOptions = {}): Promise<{ models: ModelSummary[]; total: number }> {
    const parsed = filters.map(parseFilter)
    const sort = parseSort(opts.sort)
    const history = [...parsed.map((f) => f.field), ...sort.map((s) => s.field)].some(needsHistory)
    const opened = await openCatalog({ cwd: this.repo.root, env: this.repo.env, history })
    const c = opened.file
    try {
      const q = runQuery(c, { filters: parsed, sort, ...(opts.limit !== undefined ? { limit: opts.limit } : {}), allVersions: opts.allVersions ?? false })
      const keys = finalMetricKeys(c)
      return { models: q.rows.map((r) => summarize(c, r, [...q.fields, ...q.sortFields], keys)), total: q.total }
    } finally { c.close() }
  }

  /** The ancestors and descendants of `ref` (as `git zoo lineage --json`); `problems` lists broken links. */
  async lineage(ref: string, opts: { ancestors?: boolean; descendants?: boolean } = {}): Promise<LineageResult> {
    const focus = await this.repo.resolve(ref)
    const src = await zooSource(this.repo)
    try {
      const g = await buildLineage(focus, src, { ancestors: opts.ancestors ?? true, descendants: opts.descendants ?? true })
      return renderJson(g) as LineageResult
    } finally { src.close() }
  }
}
