/**
 * The few facts about the repository the catalog's warm path needs, read in-process (no `git`
 * spawn): the work tree's top folder, the git dir, and a cheap key that changes whenever git
 * changes the work tree or the index (checkout, reset, pull, add, commit).
 * Unusual setups ($GIT_DIR, $GIT_WORK_TREE, a bare repository) fall back to asking git.
 */
import { readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve, isAbsolute } from 'node:path'
import type { GitEnv } from '../git/git.js'
import { UsageError } from '../errors.js'

export interface GitPlaces {
  /** The work tree's top folder. */
  root: string
  /** This work tree's git dir (holds HEAD and index). */
  gitDir: string
  /** The common git dir (refs, objects), shared by linked worktrees. */
  commonDir: string
}

function readText(path: string): string | undefined {
  try { return readFileSync(path, 'utf8') } catch { return undefined }
}

/** git's own answer (its runner is imported only then: the usual path starts no process). */
async function askGit(cwd: string, env: GitEnv): Promise<GitPlaces> {
  const { runGit } = await import('../git/git.js')
  const r = await runGit(cwd, ['rev-parse', '--show-toplevel', '--absolute-git-dir', '--git-common-dir'], { env })
  if (r.code !== 0) {
    throw new UsageError(`not inside a git repository with a work tree (${cwd}); run \`git init\` first, or cd into your repository`, 'E_NOT_A_REPO', { cwd, git: r.stderr.trim() })
  }
  const [root, gitDir, common] = r.stdout.trim().split('\n')
  return { root: root!, gitDir: gitDir!, commonDir: resolve(root!, common!) }
}

/** Find the repository around `cwd` by walking up to a `.git` folder or file. */
export async function findGitPlaces(cwd: string, env: NodeJS.ProcessEnv): Promise<GitPlaces> {
  if (env.GIT_DIR || env.GIT_WORK_TREE || env.GIT_COMMON_DIR) return askGit(cwd, env)
  let dir = resolve(cwd)
  for (;;) {
    const dotgit = join(dir, '.git')
    let st
    try { st = statSync(dotgit) } catch { st = undefined }
    if (st?.isDirectory()) return { root: dir, gitDir: dotgit, commonDir: dotgit }
    if (st?.isFile()) {
      // a linked worktree or submodule: "gitdir: <path>"
      const m = /^gitdir:\s*(.+?)\s*$/m.exec(readText(dotgit) ?? '')
      if (!m) return askGit(cwd, env)
      const gitDir = isAbsolute(m[1]!) ? m[1]! : resolve(dir, m[1]!)
      const common = readText(join(gitDir, 'commondir'))?.trim()
      return { root: dir, gitDir, commonDir: common ? resolve(gitDir, common) : gitDir }
    }
    const up = dirname(dir)
    if (up === dir) return askGit(cwd, env) // gives the proper "not a repository" error
    dir = up
  }
}

/** The commit HEAD points at ('' on an unborn branch), read from HEAD, loose refs or packed-refs. */
export function headCommit(p: GitPlaces): string {
  let head = readText(join(p.gitDir, 'HEAD'))?.trim() ?? ''
  for (let depth = 0; depth < 5 && head.startsWith('ref: '); depth++) {
    const ref = head.slice(5).trim()
    const loose = readText(join(ref.startsWith('refs/') ? p.commonDir : p.gitDir, ref)) ?? readText(join(p.gitDir, ref))
    if (loose !== undefined) { head = loose.trim(); continue }
    const packed = readText(join(p.commonDir, 'packed-refs')) ?? ''
    const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`))
    head = line ? line.slice(0, line.indexOf(' ')) : ''
  }
  return /^[0-9a-f]{40,64}$/.test(head) ? head : ''
}

/**
 * A key that changes whenever git rewrites the index (every command that changes the work tree
 * through git does) or HEAD moves. Unstaged edits made outside git do not change it.
 */
export function gitKey(p: GitPlaces): string {
  let index = 'none'
  try {
    const s = statSync(join(p.gitDir, 'index'), { bigint: true })
    index = `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}`
  } catch { /* no index yet */ }
  return `${headCommit(p)}|${index}`
}
