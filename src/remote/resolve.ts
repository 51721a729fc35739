/**
 * Where a zoo remote given as a relative path lives (spec/remotes.md, "Relative paths").
 *
 * A relative path in the committed `.zoo/config.json` is relative to the zoo's *home repository*,
 * the way git resolves relative submodule URLs against the superproject's remote: follow the git
 * remote (the current branch's upstream remote, else `origin`) from repository to repository while
 * it is a local path or file:// URL; the last repository reached (one with no such git remote,
 * usually the bare repository everyone clones from, or the original repository itself) is the home.
 * So every clone on the machine, at any depth and through clones of clones, finds the same folder.
 * A per-clone override (`git config zoo.remote.<name>.url`) that is relative is relative to this
 * clone's top folder.
 */
import { stat } from 'node:fs/promises'
import { isAbsolute, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runGit } from '../git/git.js'
import { ZooError } from '../errors.js'
import type { Repo } from '../repo.js'
import { remoteKind } from './index.js'

/** Hops followed from clone to clone before giving up on a chain (a loop or a very long chain). */
const MAX_HOPS = 16

/** Variables that would point git at the repository that runs us rather than at `dir`. */
const REPO_VARS = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_COMMON_DIR', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_NAMESPACE', 'GIT_PREFIX']

function envFor(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env }
  for (const v of REPO_VARS) delete out[v]
  return out
}

/** A git remote URL naming a folder on this machine, as an absolute path; undefined otherwise. */
export function localGitPath(url: string, base: string): string | undefined {
  if (/^file:\/\//i.test(url)) {
    try { return fileURLToPath(url) } catch { return undefined }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return undefined // ssh://, https://, git://
  // git's scp-like form host:path has a colon before any slash
  if (/^[^/]*:/.test(url) && !/^[a-zA-Z]:[\\/]/.test(url)) return undefined
  return isAbsolute(url) ? resolve(url) : resolve(base, url)
}

/** The URL of the git remote a repository (working tree or bare) follows: its branch's upstream, else origin. */
async function followedRemoteUrl(dir: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  let remote = 'origin'
  const branch = await runGit(dir, ['symbolic-ref', '--quiet', '--short', 'HEAD'], { env })
  if (branch.code === 0) {
    const r = await runGit(dir, ['config', '--get', `branch.${branch.stdout.trim()}.remote`], { env })
    if (r.code === 0 && r.stdout.trim() && r.stdout.trim() !== '.') remote = r.stdout.trim()
  }
  const u = await runGit(dir, ['config', '--get', `remote.${remote}.url`], { env })
  return u.code === 0 && u.stdout.trim() ? u.stdout.trim() : undefined
}

async function isGitRepo(dir: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const st = await stat(dir).catch(() => undefined)
  if (!st?.isDirectory()) return false
  return (await runGit(dir, ['rev-parse', '--git-dir'], { env })).code === 0
}

/**
 * The folder relative zoo remote paths of `repo` are resolved against: its home repository (see the
 * module comment). `hops` lists the repositories visited, for messages.
 */
export async function zooHome(repo: Repo): Promise<{ dir: string; hops: string[] }> {
  const env = envFor(repo.env)
  let dir = repo.root
  const hops = [dir]
  for (let i = 0; i < MAX_HOPS; i++) {
    const url = await followedRemoteUrl(dir, env)
    const next = url === undefined ? undefined : localGitPath(url, dir)
    if (next === undefined || hops.includes(next) || !(await isGitRepo(next, env))) break
    dir = next
    hops.push(dir)
  }
  return { dir, hops }
}

export interface ResolvedRemote {
  /** The URL to open: for a path remote, an absolute path. */
  url: string
  /** For a relative path: the folder it was resolved against. */
  base?: string
}

/** Resolve a zoo remote's URL for this clone (absolute paths and other kinds are returned as they are). */
export async function resolveRemoteUrl(repo: Repo, url: string, source: 'config' | 'git-config'): Promise<ResolvedRemote> {
  if (remoteKind(url) !== 'path' || /^file:/i.test(url) || isAbsolute(url)) return { url }
  const base = source === 'git-config' ? repo.root : (await zooHome(repo)).dir
  return { url: resolve(base, url), base }
}

/**
 * Refuse to read from a path remote whose folder does not exist, naming the folder and how it was
 * found (a wrong depth, an unmounted share), instead of reporting every object as missing.
 */
export async function checkRemoteFolder(name: string, recorded: string, resolved: ResolvedRemote): Promise<void> {
  if (remoteKind(resolved.url) !== 'path') return
  const path = /^file:/i.test(resolved.url) ? fileURLToPath(resolved.url) : resolved.url
  const st = await stat(path).catch(() => undefined)
  if (st?.isDirectory()) return
  const how = resolved.base !== undefined
    ? ` (recorded as ${JSON.stringify(recorded)} in .zoo/config.json, resolved against the zoo's home repository ${resolved.base})`
    : ''
  throw new ZooError(`zoo remote ${name} at ${path}: the folder ${st ? 'is not a folder' : 'does not exist'}${how}; `
    + `mount or create it, or point this clone at the right folder with \`git config zoo.remote.${name}.url <absolute path>\``,
  'E_REMOTE_MISSING', { remote: name, path, recorded, ...(resolved.base !== undefined ? { base: resolved.base } : {}) })
}

/**
 * The URL `git zoo remote add` records for a URL typed in `cwd`: a relative path is taken relative
 * to `cwd` (where the user typed it) and recorded relative to the zoo's home repository, which is
 * what every clone resolves it against. Other URLs are recorded as given.
 */
export async function urlToRecord(repo: Repo, cwd: string, url: string): Promise<string> {
  if (remoteKind(url) !== 'path' || /^file:/i.test(url) || isAbsolute(url)) return url
  const { dir } = await zooHome(repo)
  return relative(dir, resolve(cwd, url)).split(sep).join('/') || '.'
}
