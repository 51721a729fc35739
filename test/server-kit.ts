/**
 * Helpers for the tests of the native client and the resident server (test/front-server.test.ts,
 * test/served-data.test.ts): a private XDG_RUNTIME_DIR per run, the servers started under it (found
 * in /proc, stopped at the end), and polling with a generous bound instead of fixed sleeps.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { BIN, ROOT, run } from './cli.js'

export const WRAPPER = join(ROOT, 'bin', 'git-zoo')
export const CLIENT = join(ROOT, 'dist', 'front', 'git-zoo')
export const hasClient = existsSync(CLIENT)

export interface Status { running: boolean; pid: number; served: number; build: string; socket: string; why?: string }
export interface Runtime { dir: string; env: NodeJS.ProcessEnv; pids: Set<number> }

/** A private XDG_RUNTIME_DIR, and the servers started under it (stopped by stopAll). */
export function runtime(): Runtime {
  const dir = mkdtempSync(join(tmpdir(), 'zoo-xdg-'))
  chmodSync(dir, 0o700)
  // a loaded machine may take its time to answer: the client waits for the server's first frame (not what these tests measure)
  return { dir, env: { XDG_RUNTIME_DIR: dir, GIT_ZOO_SERVER: '1', GIT_ZOO_DEBUG: '', GIT_ZOO_SERVER_WAIT: '30000' }, pids: new Set() }
}

export const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

/**
 * The `git zoo serve` processes started for this XDG_RUNTIME_DIR, from /proc: a server that a run
 * started is there as soon as that run has exited (it was spawned before), whether or not it listens yet.
 */
export function serversOf(dir: string): number[] {
  const pids: number[] = []
  for (const name of existsSync('/proc') ? readdirSync('/proc') : []) {
    if (!/^\d+$/.test(name)) continue
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')
      if (argv[argv.length - 2] !== 'serve' && argv[argv.length - 1] !== 'serve') continue
      if (readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(`XDG_RUNTIME_DIR=${dir}`)) pids.push(Number(name))
    } catch { /* gone, or not ours */ }
  }
  return pids
}

/** Poll `check` every 25 ms until it returns a value, failing after `ms` (a generous bound, not a timing assumption). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`gave up waiting for ${what} after ${ms / 1000} s`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** `git zoo server status --json` under `r`; a running server's pid is remembered for stopAll. */
export async function serverStatus(r: Runtime): Promise<Status> {
  const s = await run(process.execPath, [BIN, 'server', 'status', '--json'], { cwd: tmpdir(), env: r.env })
  assert.equal(s.code, 0, s.stderr)
  const st = JSON.parse(s.stdout) as Status
  if (st.running) r.pids.add(st.pid)
  return st
}

/** Stop every server started under `r` (asked, then killed if still there) and remove its folder. */
export async function stopAll(r: Runtime): Promise<void> {
  await run(process.execPath, [BIN, 'server', 'stop'], { cwd: tmpdir(), env: r.env })
  for (const pid of [...r.pids, ...serversOf(r.dir)]) if (alive(pid)) process.kill(pid, 'SIGKILL')
  rmSync(r.dir, { recursive: true, force: true })
}
