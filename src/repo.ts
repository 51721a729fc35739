/**
 * The zoo around the current git repository: where its store is, its committed configuration
 * (`.zoo/config.json`), and reading its manifests.
 */
import { injectFaults, type StoreFault } from './cas/faulty.js'
import { registerStoreUser } from './cas/users.js'
import { readFile, readdir, stat } from 'node:fs/promises'
import { statSync } from 'node:fs'
import { join, resolve, isAbsolute } from 'node:path'
import { findRepo, runGit, git, gitFailed, type GitResult } from './git/git.js'
import { LocalStore } from './cas/local.js'
import { writeFileAtomic } from './cas/atomic.js'
import { parseManifest, MODELS_DIR, MANIFEST_FILE, type Manifest } from './manifest/manifest.js'
import { parseModelRef } from './manifest/names.js'
import { parseStageRef, readStages, type StageState } from './git/stages.js'
import { CheckError, UnknownModelError, ZooError } from './errors.js'
import { CHUNK_HASHES, type ChunkHash } from './cas/cid.js'
import { parseRetirement, RETIRED_FILE, type Retirement } from './manifest/retirement.js'
import type { Host } from './host.js'

/** A config value as git's --type=bool reads it; undefined when it is not a boolean. */
function configBool(v: string | null): boolean | undefined {
  if (v === null) return true
  const l = v.toLowerCase()
  if (l === 'true' || l === 'yes' || l === 'on') return true
  if (l === 'false' || l === 'no' || l === 'off' || l === '') return false
  if (/^-?\d+$/.test(l)) return Number(l) !== 0
  return undefined
}

export const ZOO_DIR = '.zoo'
export const ZOO_CONFIG = '.zoo/config.json'

export interface ZooConfig {
  /** Zoo remotes by name: where objects live. */
  remotes?: Record<string, { url: string }>
  default_remote?: string
  /** Promotion policy (sealing, signing). */
  policy?: { require_signed?: boolean; [k: string]: unknown }
  /**
   * How new raw chunks are named: "blake3" (the template's, for zoos made by `git zoo init`) or
   * "sha2-256" (absent: every zoo made before the key existed). Checked by Repo.config().
   */
  chunk_hash?: ChunkHash
  [k: string]: unknown
}

/** What a Repo is opened with: the environment every git it runs gets, and the running process. */
export interface RepoContext {
  env: NodeJS.ProcessEnv
  host: Host
  /** Faults to inject into every store handle opened (tests only: GIT_ZOO_FAULTS, src/cas/faulty.ts). */
  storeFaults?: StoreFault[]
  /** Named crash points of every store handle opened (`midx-written`; the CLI's, spec/reliability.md). */
  storeCrashPoint?: (name: string) => void | Promise<void>
}

/**
 * How a zoo names the raw chunks it adds (`"chunk_hash"` of a `.zoo/config.json` that Repo.config()
 * checked): "sha2-256" when the key is absent, so a zoo made before it keeps deduplicating against
 * what it holds. Objects already stored keep their CIDs whichever it says; reads accept both
 * (spec/format.md).
 */
export function chunkHashOf(config: ZooConfig): ChunkHash {
  return config.chunk_hash ?? 'sha2-256'
}

export class Repo {
  private constructor(readonly root: string, readonly commonDir: string, readonly env: NodeJS.ProcessEnv, readonly host: Host) {}

  /** The repository around `cwd`. `ctx` is the CLI's Io (or any { env, host }): nothing is read from the process here. */
  static async open(cwd: string, ctx: RepoContext): Promise<Repo> {
    const info = await findRepo(cwd, ctx.env)
    const repo = new Repo(info.root, info.commonDir, ctx.env, ctx.host)
    repo.storeFaults = ctx.storeFaults ?? []
    repo.storeCrashPoint = ctx.storeCrashPoint
    return repo
  }

  private storeFaults: StoreFault[] = []
  private storeCrashPoint: RepoContext['storeCrashPoint']

  /** Another repository (one sharing this store), opened with this one's environment and process. */
  sibling(workTree: string): Promise<Repo> {
    const env = { ...this.env }
    delete env.GIT_DIR; delete env.GIT_WORK_TREE; delete env.GIT_INDEX_FILE
    return Repo.open(workTree, { env, host: this.host, storeFaults: this.storeFaults, storeCrashPoint: this.storeCrashPoint })
  }

  /** Run git in the work tree with this repository's environment; throws on a non-zero exit. */
  async git(args: string[], opts: { input?: string } = {}): Promise<string> {
    const cached = await this.configRead(args)
    if (cached) { if (cached.code !== 0) throw gitFailed(args, cached); return cached.stdout }
    return git(this.root, args, { ...opts, env: this.env })
  }
  /** Run git in the work tree with this repository's environment; returns the exit code (`signal`: see runGit). */
  async runGit(args: string[], opts: { input?: string; signal?: AbortSignal } = {}): Promise<GitResult> {
    return await this.configRead(args) ?? runGit(this.root, args, { ...opts, env: this.env })
  }

  /**
   * Every setting git sees here (`git config -l -z`: system, global, local, worktree, includes, -c
   * and GIT_CONFIG_* of this environment), read with one git process and kept while the repository's
   * own config file is unchanged (its inode, size and mtime; git replaces it on every write). A
   * command asks git several questions (user.name, user.email, zoo.store, remote.origin.url,
   * zoo.lazy ...): each git process costs ~5-10 ms of a ~0.3 s command. Keys are as `git config -l`
   * prints them (section and name lower-case); a key without `=` has the value null (true).
   * Undefined when git cannot list them (a broken config file: the caller's own git call then says why).
   */
  configValues(): Promise<Map<string, Array<string | null>> | undefined> {
    const stamp = this.configStamp()
    if (this.configSnap && this.configSnap.stamp === stamp) return Promise.resolve(this.configSnap.values)
    // callers that ask at once (add asks from several of its checks) share one `git config -l`
    if (this.configListing?.stamp === stamp) return this.configListing.values
    const values = this.listConfig(stamp)
    this.configListing = { stamp, values }
    const done = (): void => { if (this.configListing?.values === values) this.configListing = null }
    values.then(done, done)
    return values
  }

  private configListing: { stamp: string; values: Promise<Map<string, Array<string | null>> | undefined> } | null = null

  private async listConfig(stamp: string): Promise<Map<string, Array<string | null>> | undefined> {
    const r = await runGit(this.root, ['config', '-l', '-z'], { env: this.env })
    if (r.code !== 0) { this.configSnap = null; return undefined }
    const values = new Map<string, Array<string | null>>()
    for (const entry of r.stdout.split('\0')) {
      if (!entry) continue
      const nl = entry.indexOf('\n')
      const key = nl === -1 ? entry : entry.slice(0, nl)
      const list = values.get(key) ?? []
      list.push(nl === -1 ? null : entry.slice(nl + 1))
      values.set(key, list)
    }
    this.configSnap = { stamp, values }
    return values
  }

  private configSnap: { stamp: string; values: Map<string, Array<string | null>> } | null = null

  private configStamp(): string {
    try {
      const st = statSync(join(this.commonDir, 'config'))
      return `${st.ino}:${st.size}:${st.mtimeMs}`
    } catch { return 'none' }
  }

  /**
   * A read of one setting (`git config [--get] [--type=bool|--bool|--type=path] <key>`) answered
   * from configValues() as git would answer it (the last value; exit 1 when unset); undefined for
   * anything else, which then runs git (a write through here is seen by the next read: it changes
   * the config file's stamp). Values git would have to interpret further (a path starting with ~
   * or %, a boolean that is not one) are left to git, which also gives its own error.
   */
  private async configRead(args: readonly string[]): Promise<GitResult | undefined> {
    if (args[0] !== 'config') return undefined
    let type: 'bool' | 'path' | undefined
    let i = 1
    if (args[i] === '--type=bool' || args[i] === '--bool') { type = 'bool'; i++ } else if (args[i] === '--type=path') { type = 'path'; i++ }
    if (args[i] === '--get') i++
    else if (i !== 1) return undefined
    const name = args[i]
    if (args.length !== i + 1 || name === undefined || name.startsWith('-') || !/^[^.]+\..+$/.test(name) || /\s/.test(name)) return undefined
    const values = await this.configValues()
    if (!values) return undefined
    // section and name are case-insensitive, a subsection is not (git prints the first two lower-cased)
    const first = name.indexOf('.'), last = name.lastIndexOf('.')
    const key = first === last ? name.toLowerCase() : `${name.slice(0, first).toLowerCase()}${name.slice(first, last)}${name.slice(last).toLowerCase()}`
    const list = values.get(key)
    if (!list?.length) return { stdout: '', stderr: '', code: 1 }
    const v = list[list.length - 1]!
    if (type === 'bool') {
      const b = configBool(v)
      return b === undefined ? undefined : { stdout: `${b}\n`, stderr: '', code: 0 }
    }
    if (type === 'path' && v !== null && (v.startsWith('~') || v.startsWith('%'))) return undefined
    return { stdout: `${v ?? ''}\n`, stderr: '', code: 0 }
  }

  /**
   * The object store's folder: $GIT_ZOO_STORE, else `git config zoo.store` (relative to the work
   * tree), else `<git dir>/zoo`. Several repositories may point at one store.
   */
  async storeRoot(): Promise<string> {
    if (this.env.GIT_ZOO_STORE) return resolve(this.root, this.env.GIT_ZOO_STORE)
    const r = await this.runGit(['config', '--get', 'zoo.store'])
    const configured = r.code === 0 ? r.stdout.trim() : ''
    if (configured) return isAbsolute(configured) ? configured : resolve(this.root, configured)
    return join(this.commonDir, 'zoo')
  }

  /** The local store, opened as this process (its handle registers as a writer when it writes: src/cas/local.ts). */
  async openStore(): Promise<LocalStore> {
    const root = await this.storeRoot()
    // GIT_ZOO_DIRECT_IO=0: packs written through the page cache (src/cas/append-write.ts)
    const store = await LocalStore.open(root, { host: this.host, directIO: this.env.GIT_ZOO_DIRECT_IO !== '0', ...(this.storeCrashPoint ? { crashPoint: this.storeCrashPoint } : {}) })
    await registerStoreUser(root, this.root) // gc in another repository sharing the store keeps this one's objects
    return injectFaults(store, this.storeFaults)
  }

  /**
   * The committed `.zoo/config.json` as it is in the work tree, unknown keys kept; {} when there is
   * none. The one reader of that file: invalid JSON or a non-object is E_CONFIG, saying how to fix it.
   */
  async config(): Promise<ZooConfig> {
    let text: string
    try {
      text = await readFile(join(this.root, ZOO_CONFIG), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
    const restore = `fix it by hand or restore it with \`git checkout -- ${ZOO_CONFIG}\``
    let v: unknown
    try {
      v = JSON.parse(text)
    } catch (err) {
      throw new ZooError(`${ZOO_CONFIG} is not valid JSON (${(err as Error).message}); ${restore}`, 'E_CONFIG', {}, { cause: err })
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ZooError(`${ZOO_CONFIG} is not a JSON object; ${restore}`, 'E_CONFIG')
    // remotes: an object of { "url": "<url>" } entries; anything else is named, never silently dropped
    const remotes = (v as ZooConfig).remotes as unknown
    if (remotes !== undefined) {
      const fix = `fix it by hand (e.g. "remotes": { "origin": { "url": "s3://bucket/zoo" } }) or restore it with \`git checkout -- ${ZOO_CONFIG}\``
      if (!remotes || typeof remotes !== 'object' || Array.isArray(remotes)) throw new ZooError(`${ZOO_CONFIG}: "remotes" is not an object of named remotes; ${fix}`, 'E_CONFIG')
      for (const [name, r] of Object.entries(remotes)) {
        if (!r || typeof r !== 'object' || typeof (r as { url?: unknown }).url !== 'string') {
          throw new ZooError(`${ZOO_CONFIG}: remote ${JSON.stringify(name)} has no "url" string; ${fix}`, 'E_CONFIG', { remote: name })
        }
      }
    }
    // chunk_hash: one of the accepted names; absent means sha2-256 (zoos made before the key)
    const chunkHash = (v as ZooConfig).chunk_hash as unknown
    if (chunkHash !== undefined && !CHUNK_HASHES.includes(chunkHash as ChunkHash)) {
      throw new ZooError(`${ZOO_CONFIG}: "chunk_hash" is ${JSON.stringify(chunkHash)}; it must be ${CHUNK_HASHES.map((h) => JSON.stringify(h)).join(' or ')} (or absent, which means "sha2-256"); fix it by hand or restore it with \`git checkout -- ${ZOO_CONFIG}\``,
        'E_CONFIG', { key: 'chunk_hash', value: chunkHash, accepted: [...CHUNK_HASHES] })
    }
    return v as ZooConfig
  }

  /** Write `.zoo/config.json` (atomically, 2-space JSON) and stage it; committing is the user's call. */
  async writeConfig(config: ZooConfig): Promise<void> {
    await writeFileAtomic(join(this.root, ZOO_CONFIG), JSON.stringify(config, null, 2) + '\n')
    await this.git(['add', '--', ZOO_CONFIG])
  }

  /** Versions of a model present in the working tree, ascending. */
  async versions(name: string): Promise<number[]> {
    let names: string[]
    try { names = await readdir(join(this.root, MODELS_DIR, name)) } catch { return [] }
    const out: number[] = []
    for (const n of names) {
      const m = /^v([1-9]\d*)$/.exec(n)
      if (m) {
        try { await stat(join(this.root, MODELS_DIR, name, n, MANIFEST_FILE)); out.push(Number(m[1])) } catch { /* not a version */ }
      }
    }
    return out.sort((a, b) => a - b)
  }

  async readManifest(name: string, version: number): Promise<Manifest> {
    const rel = `${MODELS_DIR}/${name}/v${version}/${MANIFEST_FILE}`
    let text: string
    try {
      text = await readFile(join(this.root, rel), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UnknownModelError(`model ${name}@v${version} is not in this zoo (no ${rel})`, { name, version })
      throw err
    }
    return parseManifest(text, rel)
  }

  /**
   * Resolve `name`, `name@vN`, `name@<stage>` or a seal CID to a manifest. A bare name means its
   * latest version in service: retired versions (RETIRED.json beside the manifest) are skipped, and
   * a model whose every version is retired is refused (E_ALL_RETIRED) with the `@vN` that forces
   * one. An explicit `@vN`, stage or seal always resolves, retired or not; a stage resolves only
   * when the manifest in the work tree has the seal its stage tag records (spec/stages.md).
   */
  async resolve(ref: string): Promise<Manifest> {
    if (/^baf[a-z2-7]{20,}$/.test(ref)) {
      for (const m of await this.allManifests()) if (m.seal === ref) return m
      throw new UnknownModelError(`no model in this zoo has seal ${ref}`, { seal: ref })
    }
    const staged = parseStageRef(ref)
    if (staged) {
      const state = (await this.stages(staged.name)).find((s) => s.stage === staged.stage)
      if (!state || state.version === undefined) {
        throw new UnknownModelError(`${ref}: model ${staged.name} has no stage ${staged.stage}${state ? ' (it was deleted)' : ''}; \`git zoo tag ${staged.name}@vN ${staged.stage}\` sets it, \`git zoo show ${staged.name}\` lists its stages`, { name: staged.name, stage: staged.stage })
      }
      const m = await this.readManifest(staged.name, state.version)
      if (m.seal !== state.seal) {
        throw new CheckError(`${ref} names ${staged.name}@v${state.version} with seal ${state.seal}, but the manifest in the work tree has seal ${m.seal}; restore it with \`git checkout -- ${MODELS_DIR}/${staged.name}/v${state.version}\` and run \`git zoo verify\``, 'E_SEAL_MISMATCH', { name: staged.name, stage: staged.stage })
      }
      return m
    }
    const { name, version } = parseModelRef(ref)
    if (version !== undefined) return this.readManifest(name, version)
    const vs = await this.versions(name)
    if (vs.length === 0) throw new UnknownModelError(`model ${name} is not in this zoo; \`git zoo ls\` lists the models`, { name })
    for (let i = vs.length - 1; i >= 0; i--) {
      if (!(await this.retirement(name, vs[i]!))) return this.readManifest(name, vs[i]!)
    }
    const last = vs[vs.length - 1]!
    throw new CheckError(`every version of ${name} is retired (${vs.map((v) => `v${v}`).join(', ')}); to use one anyway, name it: ${name}@v${last} (\`git zoo show ${name}@v${last}\` says why it was retired)`,
      'E_ALL_RETIRED', { name, versions: vs })
  }

  /** The stages of the zoo (or of one model), read from their tags (src/git/stages.ts). */
  stages(model?: string): Promise<StageState[]> { return readStages(this.root, this.env, model) }

  /** The retirement record of name@vN in the working tree (RETIRED.json), or null when it is in service. */
  async retirement(name: string, version: number): Promise<Retirement | null> {
    const rel = `${MODELS_DIR}/${name}/v${version}/${RETIRED_FILE}`
    let text: string
    try { text = await readFile(join(this.root, rel), 'utf8') } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    return parseRetirement(text, rel)
  }

  /** Every manifest path in the working tree (tracked or not). */
  async manifestPaths(): Promise<string[]> {
    const out: string[] = []
    const walk = async (rel: string): Promise<void> => {
      let entries
      try { entries = await readdir(join(this.root, rel), { withFileTypes: true }) } catch { return }
      for (const e of entries) {
        if (e.isDirectory()) await walk(`${rel}/${e.name}`)
        else if (e.name === MANIFEST_FILE && /\/v[1-9]\d*$/.test(rel)) out.push(`${rel}/${e.name}`)
      }
    }
    await walk(MODELS_DIR)
    return out.sort()
  }

  async allManifests(): Promise<Manifest[]> {
    const out: Manifest[] = []
    for (const p of await this.manifestPaths()) out.push(await this.readManifestAt(p))
    return out
  }

  /** The manifest at `path` (relative to the work tree, as manifestPaths lists it). */
  async readManifestAt(path: string): Promise<Manifest> {
    return parseManifest(await readFile(join(this.root, path), 'utf8'), path)
  }
}
