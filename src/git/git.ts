/**
 * One runner for the git CLI. Writes (add, commit, push) go through simple-git so the user's own
 * config, signing keys, hooks and transports apply; quick reads use the same binary directly.
 */
import { execFile } from 'node:child_process'
import { simpleGit, type SimpleGit } from 'simple-git'
import { ZooError, UsageError } from '../errors.js'

export interface GitResult { stdout: string; stderr: string; code: number }

/** Run git and return its output; never throws for a non-zero exit (see `git()` for that). */
export function runGit(cwd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; maxBuffer?: number } = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', args, { cwd, env: opts.env, maxBuffer: opts.maxBuffer ?? 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          reject(new ZooError(`could not run git: ${err.message}; is git installed and on PATH?`, 'E_GIT_MISSING', {}, { cause: err }))
          return
        }
        resolve({ stdout, stderr, code: err ? (err as { code: number }).code : 0 })
      })
    if (opts.input !== undefined) child.stdin!.end(opts.input)
  })
}

/** Run git; throw a ZooError naming the command and git's message when it fails. */
export async function git(cwd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await runGit(cwd, args, opts)
  if (r.code !== 0) {
    throw new ZooError(`\`git ${args.join(' ')}\` failed: ${r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`}`, 'E_GIT', { args, code: r.code })
  }
  return r.stdout
}

export interface RepoInfo {
  /** The working tree's top folder. */
  root: string
  /** The repository's git dir (shared by worktrees: the common dir). */
  commonDir: string
}

export async function findRepo(cwd: string, env?: NodeJS.ProcessEnv): Promise<RepoInfo> {
  const r = await runGit(cwd, ['rev-parse', '--show-toplevel', '--git-common-dir'], { env })
  if (r.code !== 0) {
    throw new UsageError(`not inside a git repository (${cwd}); run \`git init\` first, or cd into your repository`, 'E_NOT_A_REPO', { cwd })
  }
  const [root, common] = r.stdout.trim().split('\n')
  if (!root) throw new UsageError('this is a bare repository; git zoo needs a working tree', 'E_NOT_A_REPO', { cwd })
  const { resolve } = await import('node:path')
  return { root, commonDir: resolve(root, common!) }
}

export function simple(root: string): SimpleGit {
  return simpleGit({ baseDir: root, trimmed: false })
}
