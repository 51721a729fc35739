/** Test helpers: temporary git repositories and the real CLI (bin/git-zoo.js on the built dist/). */
import { execFile } from 'node:child_process'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { processHost, type Host } from '../src/host.js'

// every git zoo the tests start runs in node: none starts the query server (spec/server.md), which
// would outlive the test; test/front-server.test.ts turns it on for its own runs (GIT_ZOO_SERVER=1)
process.env.GIT_ZOO_SERVER = '0'

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
export const BIN = join(ROOT, 'bin', 'git-zoo.js')

export interface Run { code: number; stdout: string; stderr: string }

export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<Run> {
  return new Promise((res) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }))
    if (opts.input !== undefined) child.stdin!.end(opts.input)
  })
}

/** What in-process calls of domain code (Repo.open, ...) take: this process's env (plus `env`) and Host. */
export function processCtx(env: NodeJS.ProcessEnv = {}): { env: NodeJS.ProcessEnv; host: Host } {
  return { env: { ...process.env, ...env }, host: processHost() }
}

/** Run `git zoo <args>` in `cwd` through the real binary. */
export function zoo(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(process.execPath, [BIN, ...args], { cwd, env: { GIT_ZOO_DEBUG: '', ...env } })
}

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await run('git', args, { cwd })
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout
}

/** A fresh git repository with an identity and one commit; call cleanup() when done. */
export async function tempRepo(prefix = 'zoo-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await git(dir, 'init', '-q', '-b', 'main')
  await git(dir, 'config', 'user.name', 'Test Researcher')
  await git(dir, 'config', 'user.email', 'researcher@example.invalid')
  await git(dir, 'config', 'commit.gpgsign', 'false')
  await git(dir, 'commit', '-q', '--allow-empty', '-m', 'start')
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * A zoo in `dir` (a git repository with an identity, then `git zoo init`) whose git remote `origin`
 * is a fresh bare repository `bare`: the set-up of the tests that push, clone and pull.
 */
export async function zooWithOrigin(work: string, dir: string, bare: string): Promise<void> {
  await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
  await git(work, 'init', '-q', '-b', 'main', dir)
  for (const [k, v] of [['user.name', 'Test Researcher'], ['user.email', 'researcher@example.invalid'], ['commit.gpgsign', 'false']]) await git(dir, 'config', k!, v!)
  await git(dir, 'remote', 'add', 'origin', bare)
  const r = await zoo(dir, ['init'])
  if (r.code !== 0) throw new Error(`git zoo init failed (${r.code}): ${r.stderr}`)
}

/** Damage one byte of a file in place (xor 0x5a) as a bad disk would; returns the file's bytes after. */
export async function flipByte(path: string, at: number): Promise<Buffer> {
  const fd = await open(path, 'r+')
  try {
    const one = Buffer.alloc(1)
    await fd.read(one, 0, 1, at)
    one[0]! ^= 0x5a
    await fd.write(one, 0, 1, at)
  } finally { await fd.close() }
  return readFile(path)
}
