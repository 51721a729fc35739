/**
 * The zoo around the current git repository: where its store is, its committed configuration
 * (`.zoo/config.json`), and reading its manifests.
 */
import { readFile, readdir, stat } from 'node:fs/promises'
import { join, resolve, isAbsolute } from 'node:path'
import { findRepo, runGit, git } from './git/git.js'
import { LocalStore } from './cas/local.js'
import { parseManifest, MODELS_DIR, MANIFEST_FILE, type Manifest } from './manifest/manifest.js'
import { parseModelRef } from './manifest/names.js'
import { UnknownModelError, ZooError } from './errors.js'

export const ZOO_DIR = '.zoo'
export const ZOO_CONFIG = '.zoo/config.json'

export interface ZooConfig {
  /** Zoo remotes by name: where objects live. */
  remotes?: Record<string, { url: string }>
  default_remote?: string
  /** Promotion policy (sealing, signing). */
  policy?: { require_signed?: boolean; [k: string]: unknown }
  [k: string]: unknown
}

export class Repo {
  private constructor(readonly root: string, readonly commonDir: string, readonly env: NodeJS.ProcessEnv) {}

  static async open(cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Repo> {
    const info = await findRepo(cwd)
    return new Repo(info.root, info.commonDir, env)
  }

  git(args: string[], opts: { input?: string } = {}): Promise<string> { return git(this.root, args, opts) }
  runGit(args: string[], opts: { input?: string } = {}) { return runGit(this.root, args, opts) }

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

  async openStore(): Promise<LocalStore> { return LocalStore.open(await this.storeRoot()) }

  async config(): Promise<ZooConfig> {
    let text: string
    try {
      text = await readFile(join(this.root, ZOO_CONFIG), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
    let v: unknown
    try {
      v = JSON.parse(text)
    } catch (err) {
      throw new ZooError(`${ZOO_CONFIG} is not valid JSON (${(err as Error).message}); fix it by hand or restore it with \`git checkout -- ${ZOO_CONFIG}\``, 'E_CONFIG', {}, { cause: err })
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      throw new ZooError(`${ZOO_CONFIG} is not a JSON object; fix it by hand or restore it with \`git checkout -- ${ZOO_CONFIG}\``, 'E_CONFIG')
    }
    return v as ZooConfig
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

  /** Resolve `name`, `name@vN` or a seal CID to a manifest. */
  async resolve(ref: string): Promise<Manifest> {
    if (/^baf[a-z2-7]{20,}$/.test(ref)) {
      for (const m of await this.allManifests()) if (m.seal === ref) return m
      throw new UnknownModelError(`no model in this zoo has seal ${ref}`, { seal: ref })
    }
    const { name, version } = parseModelRef(ref)
    if (version !== undefined) return this.readManifest(name, version)
    const vs = await this.versions(name)
    if (vs.length === 0) throw new UnknownModelError(`model ${name} is not in this zoo; \`git zoo ls\` lists the models`, { name })
    return this.readManifest(name, vs[vs.length - 1]!)
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
