/**
 * A promotion: store the files, seal a manifest per model version, and commit them all in one git
 * commit. Used by `add` (one model), `import` (many) and `soup` (a computed model).
 * Order (spec/format.md): objects -> store flush -> manifests written -> staged -> committed.
 */
import { stat, readFile } from 'node:fs/promises'
import { readFileSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { chunkHashOf, type Repo, type ZooConfig } from '../repo.js'
import { ingestFile, ingestBytes, storePrepared, WORKER_THRESHOLD, SMALL_FILE, SLABS, SLAB_SIZE, type PreparedBytes } from '../ingest/ingest.js'
import { HashPool, chunkThreads } from '../cas/hash-pool.js'
import type { ChunkHash } from '../cas/cid.js'
import type { LocalStore } from '../cas/local.js'
import {
  computeSeal, serializeManifest, manifestDir, MANIFEST_FORMAT, MANIFEST_FORMAT_NODES, MANIFEST_FILE, MODELS_DIR,
  registerView, type Manifest, type ManifestBody, type FileEntry, type ParentLink, type Json,
} from '../manifest/manifest.js'
import { checkModelName, checkRelPath, parseModelRef } from '../manifest/names.js'
import { parseStageRef } from '../git/stages.js'
import { commitFiles, checkSigningPolicy, requireIdentity, type CommitFile } from '../zoo/commit.js'
import { detectEnvironment } from './environment.js'
import { committedCard, CARD_FILE } from '../manifest/card.js'
import { buildCheckpoints, bestOf } from '../manifest/checkpoints.js'
import { validateAgainstSchema, readSchema } from './policy.js'
import { UsageError, CheckError, ZooError, diskFull } from '../errors.js'
import { resolve as resolvePath, join } from 'node:path'
import { isWeightsFile, SNIFF_BYTES } from '../formats/sniff.js'
import { isZooPath, maxBlobBytes } from './staged.js'
import { precheckFile, nameProblem, malformedError } from './malformed.js'

export interface SourceFile {
  source: string
  path: string
  epoch?: number
  /** A checkpoint's companion that is not weights (`optimizer`, `metadata`: src/importer/run.ts). */
  role?: string
  /**
   * Its size as a regular file, when the caller has just listed it (an import's plan); then it is
   * not looked up again, and a file gone meanwhile is reported when it is read.
   */
  size?: number
}

export interface PromotionSpec {
  name: string
  files: SourceFile[]
  configFile?: string
  /** The config file's bytes, when the caller read them (an import's plan): the snapshot committed. */
  configBytes?: Uint8Array
  metrics?: Record<string, number>
  history?: Array<Record<string, number>>
  seed?: number
  dataset?: string
  arch?: string
  params?: Record<string, Json>
  /** `name`, `name@vN` or a seal, with the relation (fine-tune, merge, ...). */
  parents?: Array<{ ref: string; relation: string }>
  env?: Record<string, string>
  message?: string
  /** Extra sealed fields (evaluation results, ONNX signatures, ...). */
  extra?: Record<string, Json>
  /** The licence (an SPDX id or a Hugging Face licence id); default: `.zoo/config.json` card.license. */
  license?: string
  /** Markdown for the model card's text (sealed as `card_text`); default: the file config card.template names. */
  cardText?: string
}

export interface PromotionResult {
  name: string
  version: number
  seal: string
  files: Array<{ path: string; size: number; sha256: string }>
  stored_bytes: number
  warnings: string[]
  manifest: Manifest
}

export interface PromoteOptions {
  allowDirty?: boolean
  /** Store files that are malformed or whose bytes contradict their name as opaque bytes instead of refusing them. */
  allowMalformed?: boolean
  /** The commit message's subject; default "zoo: promote <name>@v<N>". */
  subject?: string
  onProgress?: (bytesDone: number, bytesTotal: number) => void
  /**
   * Named steps for crash and pause tests (spec/reliability.md): `after-chunk` and `add-mid-pack`
   * (in ingestFile), `after-file` once a file's chunks are appended (not yet durable),
   * `before-flush` (a pack written, not yet indexed), `after-flush` (objects durable, no manifest
   * yet), `after-write` (manifests and cards in the work tree, not staged), `before-commit` (staged,
   * not committed); `add-checked` once the checks of a promotion whose files stream meanwhile are
   * answered (passed, or one failed: the stream is stopped after the point).
   */
  crashPoint?: (name: string) => void | Promise<void>
  /**
   * Stops the promotion at its next step (between chunks while storing); the store is flushed, so
   * what was stored is indexed and a rerun does not write it again, and the work tree and index are
   * rolled back. Once `git commit` has run, the promotion stands whatever the signal says.
   */
  signal?: AbortSignal
  /** The code revision to record instead of the zoo's own HEAD (`add --code`: another repository). */
  code?: ManifestBody['code']
  /** Further files the promotion commit holds (an import's zoo-level records, src/importer/population.ts). */
  extraFiles?: CommitFile[]
  /**
   * Reads and prepares small files (up to SMALL_FILE) off this thread, a few models ahead of the
   * one being stored (an import's worker threads, src/importer/prepare.ts). A model whose
   * preparation fails is ingested here instead, so its error is the usual one.
   */
  preparer?: { prepare(paths: string[], chunkHash: ChunkHash): Promise<PreparedBytes[]> }
  /**
   * Hashing workers already started for this promotion (promote starts them before it opens the
   * store; see earlyPool): sealPromotion uses them instead of starting its own and leaves closing
   * them to the caller. `null`: the promotion has no file that needs them.
   */
  pool?: HashPool | null
  /**
   * A store handle the caller opened (and recovered, and closes): an import's batches share one, so
   * the store's indexes are loaded once per import, not once per batch. Flushed here as usual.
   */
  store?: LocalStore
  /**
   * The store's multi-pack index is written while the commit runs instead of before it (promote's
   * own store handle, closed after the commit, which waits for it): it only speeds lookups, the
   * per-pack indexes flushed before the commit are the authority (src/cas/local.ts flush).
   */
  indexLater?: boolean
  /** The questions for git already asked (promote asks them before it opens the store: askGit). */
  asked?: AskedGit
}

/** Answers sealPromotion takes from git, asked early and taken in the order the checks always had (askGit). */
export interface AskedGit {
  /** The code revision (`git status`; E_DIRTY), unless the caller gives one (PromoteOptions.code). */
  code?: Promise<ManifestBody['code']>
  /** The committed versions of a promotion's one model. */
  versions?: Promise<number[]>
  /** The one model's parents, each resolved (in the order given). */
  parents?: Array<Promise<Manifest>>
}

/**
 * Ask git what a promotion will need from it, all at once and without waiting: the code revision
 * (status and settings), a single model's committed versions (ls-tree) and its parents. Each
 * failure (a dirty tree, an unknown parent) is kept for the step that takes the answer.
 */
export function askGit(repo: Repo, specs: PromotionSpec[], opts: PromoteOptions & { known?: ReadonlyMap<string, Manifest> } = {},
                       settings: Promise<unknown> = repo.configValues()): AskedGit {
  const early = <T>(p: Promise<T>): Promise<T> => { p.catch(() => { /* taken later */ }); return p }
  const one = specs.length === 1 && !opts.known ? specs[0]! : undefined
  settings.catch(() => { /* the git that reads them says why */ })
  return {
    ...(opts.code ? {} : { code: early(codeRevision(repo, opts.allowDirty ?? false, settings)) }),
    ...(one ? { versions: early(committedVersions(repo, one.name)) } : {}),
    // (after the settings are listed: a lookup may read one, and git should list them once)
    ...(one?.parents?.length ? { parents: one.parents.map((p) => early(settings.then(() => repo.resolve(p.ref), () => repo.resolve(p.ref)))) } : {}),
  }
}

/** How many models ahead of the one being stored the preparer works. */
const PREPARE_AHEAD = 12

export const RELATIONS = ['fine-tune', 'finetune', 'adapter', 'merge', 'soup', 'quantized', 'sparsified', 'distilled', 'continued', 'pruned', 'derived'] as const

async function committedVersions(repo: Repo, name: string): Promise<number[]> {
  const r = await repo.runGit(['ls-tree', '-d', '--name-only', 'HEAD', `${MODELS_DIR}/${name}/`])
  if (r.code !== 0) return []
  return r.stdout.split('\n').map((l) => /\/v([1-9]\d*)$/.exec(l.trim())).filter(Boolean).map((m) => Number(m![1]))
}

/**
 * The latest committed version of each model of a big promotion: `git ls-tree` of exactly their
 * folders, a few hundred names per git process (a git process per model cost more than the
 * model's own files, and listing all of models/ grew with the zoo).
 */
async function latestVersions(repo: Repo, names: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (let at = 0; at < names.length; at += 500) {
    const r = await repo.runGit(['ls-tree', '-d', '--name-only', '-z', 'HEAD', '--', ...names.slice(at, at + 500).map((n) => `${MODELS_DIR}/${n}/`)])
    if (r.code !== 0) return out
    for (const line of r.stdout.split('\0')) {
      const m = /^models\/(.+)\/v([1-9]\d*)$/.exec(line)
      if (m) out.set(m[1]!, Math.max(out.get(m[1]!) ?? 0, Number(m[2])))
    }
  }
  return out
}

/** Promotions of more models than this look up versions with one ls-tree of models/. */
const MANY_MODELS = 8

/** The zoo's code revision a promotion records (HEAD, and a digest of the diff when the tree is dirty). */
export async function codeRevision(repo: Repo, allowDirty: boolean, settings: Promise<unknown> = repo.configValues()): Promise<ManifestBody['code']> {
  // one git answers both questions: HEAD (`# branch.oid`, "(initial)" before the first commit) and
  // the tracked changes outside the zoo's own folders, which make the tree dirty
  const scope = ['--', '.', `:(exclude)${MODELS_DIR}`, ':(exclude).zoo', ':(exclude).gitignore']
  // the status and the settings (origin's URL; the promoter's identity next) are read by two gits at once
  // (`settings`: the listing a caller started already, so git lists them once). These gits run
  // while other zoo commands of this repository commit: --no-optional-locks keeps them from taking
  // the index lock to refresh it, which would make such a `git commit` fail on index.lock
  const [v2] = await Promise.all([repo.git(['--no-optional-locks', 'status', '--porcelain=v2', '--branch', '-z', '--untracked-files=no', ...scope]), settings])
  const lines = v2.split('\0').filter(Boolean)
  const oid = lines.find((l) => l.startsWith('# branch.oid '))?.slice('# branch.oid '.length)
  const commit = oid && /^[0-9a-f]{40,64}$/.test(oid) ? oid : '0'.repeat(40)
  const dirty = lines.some((l) => !l.startsWith('#'))
  let origin = await originUrl(repo)
  if (origin !== undefined) origin = origin.replace(/\/\/[^@/]*@/, '//')
  if (!dirty) return { ...(origin ? { repo: origin } : {}), commit, dirty: false }
  // the list the user is shown, as `git status --porcelain` prints it
  const st = await repo.git(['--no-optional-locks', 'status', '--porcelain', '--untracked-files=no', ...scope])
  if (!allowDirty) {
    throw new CheckError(`the working tree has uncommitted changes, so the code revision would not say what produced this model:\n${st.trimEnd()}\ncommit them first, or pass --allow-dirty to record the tree as dirty with a digest of the diff`, 'E_DIRTY')
  }
  const diff = await repo.git(['--no-optional-locks', 'diff', 'HEAD', '--', '.', `:(exclude)${MODELS_DIR}`, ':(exclude).zoo'])
  return { ...(origin ? { repo: origin } : {}), commit, dirty: true, diff_sha256: createHash('sha256').update(diff).digest('hex') }
}

/**
 * The URL of the remote `origin` as `git remote get-url origin` gives it; undefined without one.
 * Read from the settings already listed (Repo.configValues) unless a url.<base>.insteadOf rule may
 * rewrite it, then git is asked.
 */
async function originUrl(repo: Repo): Promise<string | undefined> {
  const values = await repo.configValues()
  if (values && ![...values.keys()].some((k) => k.startsWith('url.') && (k.endsWith('.insteadof') || k.endsWith('.pushinsteadof')))) {
    const urls = values.get('remote.origin.url')
    const url = urls?.[0]
    return url ? url.trim() : undefined
  }
  const o = await repo.runGit(['remote', 'get-url', 'origin'])
  return o.code === 0 ? o.stdout.trim() : undefined
}

/** A source file's size; E_NO_FILE when it is missing or not a regular file. */
function sourceSize(source: string): number {
  let st
  try { st = statSync(source) } catch (err) {
    throw new UsageError(`cannot read ${source}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 'E_NO_FILE', { path: source }, { cause: err })
  }
  if (!st.isFile()) throw new UsageError(`${source} is not a regular file`, 'E_NO_FILE', { path: source })
  return st.size
}

/** Check every input before anything is written: names, files, relations. Returns the total bytes and each file's size. */
async function checkSpecs(specs: PromotionSpec[]): Promise<{ total: number; sizes: Map<SourceFile, number> }> {
  let total = 0
  const sizes = new Map<SourceFile, number>()
  const names = new Set<string>()
  for (const s of specs) {
    checkModelName(s.name)
    if (names.has(s.name)) throw new UsageError(`model ${s.name} appears twice in one promotion`, 'E_USAGE')
    names.add(s.name)
    if (s.files.length === 0) throw new UsageError(`model ${s.name}: no files to promote`, 'E_USAGE')
    const paths = new Set<string>()
    for (const f of s.files) {
      checkRelPath(f.path)
      if (paths.has(f.path.toLowerCase())) throw new UsageError(`model ${s.name}: two files would be stored as ${f.path}`, 'E_USAGE')
      paths.add(f.path.toLowerCase())
      const size = f.size ?? sourceSize(f.source)
      total += size
      sizes.set(f, size)
    }
    if (s.configFile && !s.configBytes) {
      try { if (!(await stat(s.configFile)).isFile()) throw new Error('not a file') } catch (err) {
        throw new UsageError(`cannot read config file ${s.configFile}`, 'E_NO_FILE', { path: s.configFile }, { cause: err })
      }
    }
    for (const p of s.parents ?? []) {
      if (!(RELATIONS as readonly string[]).includes(p.relation)) {
        throw new UsageError(`unknown relation ${JSON.stringify(p.relation)} for parent ${p.ref}; use one of ${RELATIONS.join(', ')}`, 'E_USAGE')
      }
    }
  }
  return { total, sizes }
}

/** A small file read in one call; a file listed with its size that is gone now fails as checkSpecs would have. */
function readSource(f: SourceFile): Buffer {
  if (f.size !== undefined) sourceSize(f.source)
  return readFileSync(f.source)
}

/** Licence ids as the Hub takes them: letters, digits, `.`, `-`, `+`. */
const LICENSE = /^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$/
/** Card text is sealed in the manifest: keep it a card, not a payload. */
export const MAX_CARD_TEXT = 256 * 1024

/** The card defaults of `.zoo/config.json` ({ "card": { "license": "apache-2.0", "template": "docs/card.md" } }). */
async function cardDefaults(repo: Repo, config: ZooConfig): Promise<{ license?: string; text?: string }> {
  const card = config.card as { license?: unknown; template?: unknown } | undefined
  if (card === undefined) return {}
  if (!card || typeof card !== 'object' || Array.isArray(card)) throw new ZooError('.zoo/config.json: "card" is not an object like { "license": "apache-2.0", "template": "docs/card.md" }', 'E_CONFIG')
  if (card.license !== undefined && (typeof card.license !== 'string' || !LICENSE.test(card.license))) throw new ZooError('.zoo/config.json: card.license is not a licence id such as apache-2.0 or MIT', 'E_CONFIG')
  let text: string | undefined
  if (card.template !== undefined) {
    if (typeof card.template !== 'string') throw new ZooError('.zoo/config.json: card.template is not a path to a markdown file', 'E_CONFIG')
    try { text = await readFile(resolvePath(repo.root, card.template), 'utf8') } catch (err) {
      throw new ZooError(`.zoo/config.json: card.template ${card.template} cannot be read (${(err as Error).message})`, 'E_CONFIG', {}, { cause: err })
    }
  }
  return { ...(typeof card.license === 'string' ? { license: card.license } : {}), ...(text !== undefined ? { text } : {}) }
}

/** A promotion stored and sealed, its files ready to commit (sealPromotion, then commitPromotion). */
export interface SealedPromotion {
  results: PromotionResult[]
  files: CommitFile[]
  message: string
  config: ZooConfig
  /** The pre-commit hook's rules for any staged file, as the commit applies them (CommitFilesOptions.verified). */
  ok: (path: string, bytes: Uint8Array) => boolean
}

/**
 * Store a promotion's files, seal its manifests and flush the store (crash points up to
 * `after-flush`): everything but the commit. `store` is the caller's (open, recovered; closed by
 * the caller after the commit). `known` names versions sealed by earlier promotions of the same
 * run that may not be committed yet (an import's batch N+1 is sealed while batch N commits): parents
 * are looked up there before the zoo.
 */
export async function sealPromotion(repo: Repo, specs: PromotionSpec[], store: LocalStore, opts: PromoteOptions & { known?: ReadonlyMap<string, Manifest> } = {}): Promise<SealedPromotion> {
  const { total: totalBytes, sizes } = await checkSpecs(specs)
  // the questions for git (started by promote while the store opened, else now) run while the
  // files are stored and checked; their answers (and failures: a dirty tree) are taken in the
  // order they always were
  const asked = opts.asked ?? askGit(repo, specs, opts)
  // the zoo's config names the chunk hash the stream needs; one that cannot be read is reported by
  // the checks below (checkSigningPolicy), in their order, and nothing is stored early
  let config: ZooConfig | undefined = await repo.config().catch(() => undefined)
  // new chunks are named by the zoo's chunk hash (`.zoo/config.json` "chunk_hash"; absent: sha2-256)
  let chunkHash: ChunkHash = config ? chunkHashOf(config) : 'sha2-256'
  // hashing workers serve files of WORKER_THRESHOLD and up only (ingestFile)
  const ownPool = opts.pool === undefined
  const needsPool = [...sizes.values()].some((n) => n >= WORKER_THRESHOLD)
  let pool: HashPool | null = opts.pool !== undefined ? opts.pool : config && needsPool ? new HashPool(chunkThreads(chunkHash)) : null
  // a file's header, read once: before anything of it is stored, a name that lies about the bytes or
  // a broken header refuses it (files above SMALL_FILE; small ones are judged on the description
  // their ingest gives, in storeFiles)
  const prechecked = new Map<SourceFile, string | undefined>()
  const precheck = async (f: SourceFile): Promise<string | undefined> => {
    if (!prechecked.has(f)) prechecked.set(f, await precheckFile(f.source, f.path))
    return prechecked.get(f)
  }
  const malformed = new Map<string, string>()
  let done = 0
  /** One model's files stored, in order, each checked once its bytes are in (the malformed ones refused). */
  const storeFiles = async (s: PromotionSpec, prepared: Map<SourceFile, PreparedBytes> | null | undefined, signal: AbortSignal | undefined): Promise<{ files: FileEntry[]; warnings: string[] }> => {
    const files: FileEntry[] = []
    const warnings: string[] = []
    for (const f of s.files) {
      const io = { pool, chunkHash, ...(signal ? { signal } : {}), ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}), onBytes: (n: number) => { done += n; opts.onProgress?.(done, totalBytes) } }
      // small files (an import's checkpoints) are read in one synchronous call: the per-file
      // round trips of a streamed read cost more than the bytes
      const p = prepared?.get(f)
      const small = sizes.get(f)! <= SMALL_FILE
      const r = p ? await storePrepared(p, store, io)
        : small ? await ingestBytes(readSource(f), store, { ...io, source: f.source }) : await ingestFile(f.source, store, io)
      await opts.crashPoint?.('after-file')
      signal?.throwIfAborted()
      // a layout only the full read finds broken (a truncated ONNX) is refused here, before sealing
      let bad = malformed.get(f.source)
      if (bad === undefined && (nameProblem(f.path, r.format) || r.warning)) bad = await precheckFile(f.source, f.path) ?? nameProblem(f.path, r.format) ?? `malformed ${r.format}: ${r.warning}`
      if (bad && !opts.allowMalformed) throw malformedError(s.name, f.source, bad)
      if (bad) warnings.push(`${f.source}: ${bad}; stored as opaque bytes (--allow-malformed)`)
      files.push({ path: f.path, size: r.size, sha256: r.sha256, root: r.root.toString(), format: bad ? 'unknown' : r.format, ...(bad ? { malformed: bad } : {}), ...(f.epoch !== undefined ? { epoch: f.epoch } : {}), ...(f.role ? { role: f.role } : {}),
        ...(r.onnx && !bad ? { onnx: r.onnx as unknown as Json } : {}) })
    }
    return { files, warnings }
  }
  // issue 11: a single model's files (an add) start to stream into the store now, while the checks
  // below run, unless a header is wrong (then the checks refuse it, or --allow-malformed stores it,
  // as before). A failed check stops the stream (`stop`), waits for it to unwind and reports what
  // it always did; what was stored by then stays as objects nothing references, as after an
  // interrupted add (spec/format.md, "Write order of git zoo add"), which gc removes.
  const stop = new AbortController()
  let streaming: { before: number; stored: Promise<{ files: FileEntry[]; warnings: string[] }> } | undefined
  if (specs.length === 1 && !opts.preparer && config && (pool || !needsPool)) {
    const s = specs[0]!
    let clean = true
    for (const f of s.files) {
      if (sizes.get(f)! <= SMALL_FILE) continue
      // a header that cannot be read is reported by the checks, in their order
      if (await precheck(f).catch(() => 'unreadable')) { clean = false; prechecked.delete(f); break }
    }
    if (clean) {
      const before = store.storedBytes
      const stored = storeFiles(s, undefined, opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal)
      stored.catch(() => { /* taken after the checks */ })
      streaming = { before, stored }
    }
  }
  try {
    let code: ManifestBody['code']
    let who: string
    let schema: Awaited<ReturnType<typeof readSchema>>
    let defaults: { license?: string; text?: string }
    try {
      config = await checkSigningPolicy(repo, config)
      chunkHash = chunkHashOf(config)
      defaults = await cardDefaults(repo, config)
      for (const s of specs) {
        const license = s.license ?? defaults.license
        if (license !== undefined && !LICENSE.test(license)) throw new UsageError(`--license ${JSON.stringify(license)} is not a licence id; use an SPDX id (Apache-2.0, MIT, CC-BY-4.0) or the Hub's (apache-2.0, openrail, other)`, 'E_USAGE')
        const text = s.cardText ?? defaults.text
        if (text !== undefined && Buffer.byteLength(text) > MAX_CARD_TEXT) throw new UsageError(`the card text is ${Buffer.byteLength(text)} bytes; a card holds at most ${MAX_CARD_TEXT}`, 'E_USAGE')
      }
      // bad input is refused before anything is stored (see precheck)
      for (const s of specs) {
        for (const f of s.files) {
          if (sizes.get(f)! <= SMALL_FILE) continue
          const problem = await precheck(f)
          if (problem && !opts.allowMalformed) throw malformedError(s.name, f.source, problem)
          if (problem) malformed.set(f.source, problem)
        }
      }
      code = opts.code ?? await asked.code!
      who = await requireIdentity(repo)
      // read once: every manifest of the promotion meets the same schema
      schema = await readSchema(repo)
    } catch (err) {
      if (streaming) {
        // (a pause here lets a test see the stream go on while a failed check's answer waits)
        await Promise.resolve(opts.crashPoint?.('add-checked')).catch(() => { /* the check's error is the one reported */ })
        stop.abort(err)
        await streaming.stored.catch(() => { /* the check's error is the one reported */ })
      }
      throw err
    }
    if (streaming) await opts.crashPoint?.('add-checked')
    const env = detectEnvironment(repo.host)
    const created = new Date().toISOString()
    if (ownPool && !pool && needsPool) pool = new HashPool(chunkThreads(chunkHash))

    // parents resolve against the zoo as it is (and against earlier specs in this batch, see below)
    // the store handle registers as a writer on its first put and holds gc off until close(), which
    // comes after the manifests are committed (src/cas/local.ts)
    const results: PromotionResult[] = []
    const batch = new Map<string, Manifest>()
    const views = new Map<Manifest, Manifest>()
    const configBytes = new Map<string, Buffer>()
    const latest = specs.length > MANY_MODELS ? await latestVersions(repo, specs.map((x) => x.name)) : undefined
    // the preparer reads and hashes the next models' small files while this thread stores
    const ahead = new Map<number, Promise<Map<SourceFile, PreparedBytes> | null>>()
    const launch = (i: number): void => {
      const s = specs[i]
      if (!opts.preparer || !s || ahead.has(i)) return
      const small = s.files.filter((f) => sizes.get(f)! <= SMALL_FILE)
      if (!small.length) return
      ahead.set(i, opts.preparer.prepare(small.map((f) => f.source), chunkHash).then((out) => new Map(small.map((f, k) => [f, out[k]!])), () => null))
    }
    for (let i = 0; i < PREPARE_AHEAD; i++) launch(i)
    for (const [at, s] of specs.entries()) {
      launch(at + PREPARE_AHEAD)
      const prepared = await ahead.get(at)
      ahead.delete(at)
      const early = at === 0 ? streaming : undefined
      const before = early ? early.before : store.storedBytes
      const { files, warnings } = early ? await early.stored : await storeFiles(s, prepared, opts.signal)
      files.sort((a, b) => (a.epoch ?? -1) - (b.epoch ?? -1) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      const parents: ParentLink[] = []
      for (const [k, p] of (s.parents ?? []).entries()) {
        const ref = parseModelRefOrSeal(p.ref)
        const m = batch.get(ref) ?? opts.known?.get(ref) ?? await (at === 0 && asked.parents ? asked.parents[k]! : repo.resolve(p.ref))
        parents.push({ name: m.name, version: m.version, seal: m.seal, relation: p.relation })
      }
      const version = (latest ? latest.get(s.name) ?? 0 : Math.max(0, ...(await (at === 0 && asked.versions ? asked.versions : committedVersions(repo, s.name))))) + 1
      let configEntry: ManifestBody['config']
      if (s.configFile) {
        // read once: the snapshot committed is the bytes the digest was taken of
        const bytes = s.configBytes ? Buffer.from(s.configBytes.buffer, s.configBytes.byteOffset, s.configBytes.byteLength) : await readFile(s.configFile)
        configBytes.set(s.name, bytes)
        const base = s.configFile.split('/').pop()!
        const path = files.some((f) => f.path === base) ? `config-${base}` : base
        configEntry = { path, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }
      }
      // a trajectory's checkpoint entries and history go into its checkpoint node (format 2);
      // the manifest keeps the other files, the final and best metrics and the node's link
      const epochFiles = files.filter((f) => f.epoch !== undefined)
      const checkpoints = epochFiles.length ? await buildCheckpoints(epochFiles, s.history ?? [], (cid, bytes) => store.put(cid, bytes)) : undefined
      const best = checkpoints && s.history?.length ? bestOf(s.history) : undefined
      const body: ManifestBody = {
        zoo: checkpoints ? MANIFEST_FORMAT_NODES : MANIFEST_FORMAT,
        name: s.name,
        version,
        ...(s.message ? { message: s.message } : {}),
        ...(s.seed !== undefined ? { seed: s.seed } : {}),
        ...(s.dataset ? { dataset: s.dataset } : {}),
        ...(s.arch ? { arch: s.arch } : {}),
        params: s.params ?? {},
        metrics: s.metrics ?? {},
        ...(best ? { best } : {}),
        ...(s.history && !checkpoints ? { history: s.history } : {}),
        ...(configEntry ? { config: configEntry } : {}),
        files: checkpoints ? files.filter((f) => f.epoch === undefined) : files,
        ...(checkpoints ? { checkpoints } : {}),
        parents,
        ...(code ? { code } : {}),
        env: { ...env, ...(s.env ?? {}) },
        promoter: who,
        created,
        ...((s.license ?? defaults.license) ? { license: (s.license ?? defaults.license)! } : {}),
        ...((s.cardText ?? defaults.text) !== undefined ? { card_text: (s.cardText ?? defaults.text)! } : {}),
        ...(s.extra ?? {}),
      }
      await validateAgainstSchema(repo, body, schema)
      const manifest: Manifest = { ...body, seal: computeSeal(body) }
      // the card is rendered from the complete view: every file and the history
      if (checkpoints) views.set(manifest, registerView({ ...manifest, files, ...(s.history ? { history: s.history } : {}) }, manifest))
      batch.set(s.name, manifest)
      results.push({ name: s.name, version, seal: manifest.seal, files: files.map(({ path, size, sha256 }) => ({ path, size, sha256 })), stored_bytes: store.storedBytes - before, warnings, manifest })
    }
    // invariant 3: everything the manifests reference is durable in the store before they are written
    await opts.crashPoint?.('before-flush')
    await store.flush({ index: opts.indexLater ? 'background' : 'now' })
    await opts.crashPoint?.('after-flush')
    opts.signal?.throwIfAborted()
    const files: CommitFile[] = []
    for (const r of results) {
      const dir = manifestDir(r.name, r.version)
      const config = configBytes.get(r.name)
      if (config && r.manifest.config) files.push({ path: `${dir}/${r.manifest.config.path}`, data: config })
      files.push({ path: `${dir}/${MANIFEST_FILE}`, data: serializeManifest(r.manifest) })
      const card = committedCard(views.get(r.manifest) ?? r.manifest)
      if (card !== undefined) files.push({ path: `${dir}/${CARD_FILE}`, data: card })
    }
    files.push(...(opts.extraFiles ?? []))
    const subject = opts.subject ?? (results.length === 1 ? `zoo: promote ${results[0]!.name}@v${results[0]!.version}` : `zoo: promote ${results.length} models`)
    const body = specs.length === 1 && specs[0]!.message ? `\n\n${specs[0]!.message}` : ''
    const trailers = results.length <= 20
      ? results.map((r) => `Zoo-Model: ${r.name}@v${r.version}\nZoo-Seal: ${r.seal}`).join('\n')
      : `Zoo-Models: ${results.length}`
    const message = `${subject}${body}\n\n${trailers}\nZoo-Code: ${code?.commit ?? 'none'}${code?.dirty ? ' (dirty)' : ''}\n`
    const ok = hookAccepts(maxBlobBytes(await readFile(join(repo.root, '.zoo', 'config.json'), 'utf8').catch(() => null)))
    return { results, files, message, config, ok }
  } finally {
    // the pool's workers keep the process alive until closed
    if (ownPool) await pool?.close()
  }
}

/**
 * The hashing workers for a promotion with a file of WORKER_THRESHOLD bytes or more, started now,
 * with the ring of slabs ingestFile reads into (src/ingest/ingest.ts): a worker takes 30-70 ms to
 * boot (the whole-file sha256's, and the chunk hashers of a zoo that needs them), which then overlaps opening the store and the promotion's
 * checks and git questions instead of delaying the first slab's hashing (the whole-file sha256 is
 * add's critical path). null when no file is that large, or a file cannot be read (checkSpecs
 * reports it).
 */
async function earlyPool(repo: Repo, specs: PromotionSpec[]): Promise<HashPool | null> {
  let large = false
  try {
    for (const s of specs) for (const f of s.files) if ((f.size ?? statSync(f.source).size) >= WORKER_THRESHOLD) large = true
  } catch { return null }
  if (!large) return null
  // the zoo's chunk hash decides the chunk workers (chunkThreads); a config that cannot be read is
  // reported by the checks (sealPromotion), and these workers are then never used
  const chunkHash: ChunkHash = await repo.config().then(chunkHashOf, () => 'sha2-256' as const)
  const pool = new HashPool(chunkThreads(chunkHash))
  pool.slabs(SLABS, SLAB_SIZE).catch(() => {}) // a worker that fails to start fails the first hashing call that needs it
  return pool
}

/**
 * Commit a sealed promotion: a refused commit rolls the work tree and index back; objects stay in
 * the store (gc collects them). Crash points `after-write` and `before-commit`.
 */
export async function commitPromotion(repo: Repo, sealed: SealedPromotion, opts: PromoteOptions = {}): Promise<string> {
  const { results } = sealed
  return commitFiles(repo, sealed.files, {
    message: sealed.message, kind: 'promotion', refused: 'nothing was promoted', config: sealed.config,
    fresh: results.map((r) => manifestDir(r.name, r.version)), // leftovers of an interrupted promotion
    // built and checked here: sealed, canonical, schema-checked manifests over flushed objects;
    // each file is judged by the hook's rules for any staged file
    verified: { ok: sealed.ok },
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}),
  })
}

/**
 * Store the files, seal a manifest per model version and commit them all in one commit (the order
 * of spec/format.md). The store handle registers as a writer on its first put and holds gc off
 * until close(), which comes after the manifests are committed (src/cas/local.ts).
 */
export async function promote(repo: Repo, specs: PromotionSpec[], opts: PromoteOptions = {}): Promise<{ commit: string; results: PromotionResult[] }> {
  let store: LocalStore | undefined
  let pool: HashPool | null | undefined = opts.pool
  let closing: Promise<void> | undefined
  try {
    // git is asked (its settings, status, ls-tree, parents) while the workers boot; the store
    // opens once the settings are in (they may name its folder: one `git config -l` answers all)
    const settings = repo.configValues()
    const asked = askGit(repo, specs, opts, settings)
    if (pool === undefined) pool = await earlyPool(repo, specs)
    await settings.catch(() => { /* the git that reads them says why */ })
    if (opts.store) store = opts.store
    else {
      store = await repo.openStore()
      // what an add killed earlier (kill -9) stored is indexed now, so it is not written again
      await store.recoverInterrupted()
    }
    const sealed = await sealPromotion(repo, specs, store, { ...opts, pool, asked, indexLater: !opts.store })
    // the workers are done: they stop while the commit runs
    if (opts.pool === undefined && pool) { closing = pool.close(); closing.catch(() => {}) }
    return { commit: await commitPromotion(repo, sealed, opts), results: sealed.results }
  } catch (err) {
    throw diskFull(err, store?.location ?? repo.root)
  } finally {
    // the pool's workers keep the process alive until closed
    if (opts.pool === undefined) await (closing ?? pool?.close())
    try { if (!opts.store) await store?.close() } catch (err) { throw diskFull(err, store!.location) }
  }
}

/** The pre-commit hook's rules for any staged file (src/promote/precommit.ts): no raw weights; the size limit outside models/ and .zoo/. */
function hookAccepts(max: number): (path: string, bytes: Uint8Array) => boolean {
  return (path, bytes) => !isWeightsFile(bytes.subarray(0, SNIFF_BYTES), bytes.length) && (isZooPath(path) || bytes.length <= max)
}

function parseModelRefOrSeal(ref: string): string {
  if (/^baf[a-z2-7]{20,}$/.test(ref)) return ref
  // name@<stage> names a committed version, never one of this batch
  if (parseStageRef(ref)) return `stage:${ref}`
  return parseModelRef(ref).name
}

