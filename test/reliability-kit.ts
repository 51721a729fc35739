/**
 * Helpers of the reliability tests (test/reliability-*.test.ts) and of `npm run reliability`
 * (bench/reliability.ts): deterministic bytes, zoos with a zoo remote, the real CLI with a time limit
 * (a hang is a failure, not a stuck test), small tmpfs filesystems, and an audit of a store's bytes.
 */
import { execFile } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, git, type Run } from './cli.js'
import { LocalStore, parseIndex } from '../src/cas/local.js'
import { verifyBytes } from '../src/cas/cid.js'

/** `n` pseudo-random bytes that depend only on `seed` (AES-128-CTR of zeros). */
export function seededBytes(n: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest()
  const c = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32))
  return Buffer.concat([c.update(Buffer.alloc(n)), c.final()])
}

export interface Timed extends Run { signal: NodeJS.Signals | null; seconds: number; timedOut: boolean }

/** `git zoo <args>` through the real binary; killed (and reported as timed out) after `limitMs`. */
export function zooTimed(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, limitMs = 120_000): Promise<Timed> {
  const start = performance.now()
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, GIT_ZOO_DEBUG: '', ...env }, timeout: limitMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals; killed?: boolean }) | null
        const seconds = (performance.now() - start) / 1000
        res({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, signal: e?.signal ?? null, stdout, stderr, seconds, timedOut: Boolean(e?.killed && seconds * 1000 >= limitMs - 50) })
      })
  })
}

/** A git repository set up as a zoo (identity, no signing, `git zoo init` committed). */
export async function newZoo(dir: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  await git(tmpdir(), 'init', '-q', '-b', 'main', dir)
  for (const [k, v] of [['user.name', 'Test Researcher'], ['user.email', 'researcher@example.invalid'], ['commit.gpgsign', 'false']] as const) await git(dir, 'config', k, v)
  await must(zooTimed(dir, ['init'], env), 'init')
  await git(dir, 'add', '-A')
  await git(dir, 'commit', '-q', '-m', 'zoo set up')
  return dir
}

/**
 * Under `base`: a bare git remote `origin.git` and a zoo `a` whose git and zoo remotes are both
 * `origin` (the zoo remote a folder, `objects`), that setup committed. Returns `a`'s path.
 */
export async function newZooWithOrigin(base: string): Promise<string> {
  await mkdir(base, { recursive: true })
  await git(base, 'init', '-q', '--bare', '-b', 'main', join(base, 'origin.git'))
  const a = await newZoo(join(base, 'a'))
  await git(a, 'remote', 'add', 'origin', join(base, 'origin.git'))
  await must(zooTimed(a, ['remote', 'add', 'origin', join(base, 'objects')]), 'remote add')
  await git(a, 'commit', '-q', '-am', 'zoo remote')
  return a
}

/** Throws with the command's output unless it exited 0. */
export async function must(p: Promise<Timed>, what: string): Promise<Timed> {
  const r = await p
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}):\n${r.stderr}${r.stdout}`)
  return r
}

export interface Tmpfs { dir: string; resize(mib: number): Promise<void>; close(): Promise<void> }

function sh(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((res) => execFile(cmd, args, { encoding: 'utf8' }, (err, _o, stderr) => res({ code: err ? 1 : 0, stderr })))
}

/**
 * A tmpfs of `mib` MiB mounted on a fresh folder, or the reason it cannot be (not root, no mount
 * permission in this container): callers skip with that message.
 */
export async function mountTmpfs(mib: number): Promise<Tmpfs | string> {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-tmpfs-'))
  const r = await sh('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'zoo-test', dir])
  if (r.code !== 0) { await rm(dir, { recursive: true, force: true }); return `cannot mount a tmpfs here (${r.stderr.trim() || 'mount failed'})` }
  return {
    dir,
    resize: async (n) => { const x = await sh('mount', ['-o', `remount,size=${n}m`, dir]); if (x.code !== 0) throw new Error(`remount failed: ${x.stderr}`) },
    close: async () => { await sh('umount', ['-l', dir]); await rm(dir, { recursive: true, force: true }) },
  }
}

export interface StoreAudit {
  /** Objects listed by an index. */
  objects: number
  /** Listed objects whose bytes do not hash to their CID, or whose pack is missing or short. */
  bad: string[]
  /** Index files that do not parse (a half-written index under its final name). */
  badIndexes: string[]
  /** Temporary files (`.*.tmp`) left in the store. */
  temps: string[]
}

/**
 * Every object an index lists, read from its pack and checked against its CID: what a half-written
 * object under a final name would show as. A store that does not exist yet audits as empty.
 */
export async function auditStore(root: string): Promise<StoreAudit> {
  const out: StoreAudit = { objects: 0, bad: [], badIndexes: [], temps: [] }
  let names: string[]
  try { names = await readdir(join(root, 'packs')) } catch { return out }
  out.temps = names.filter((n) => n.endsWith('.tmp'))
  for (const n of names.filter((x) => x.endsWith('.idx'))) {
    try { parseIndex(await readFile(join(root, 'packs', n)), n) } catch { out.badIndexes.push(n) }
  }
  const store = await LocalStore.open(root)
  try {
    for (const [cid] of store.entries()) {
      out.objects++
      try { verifyBytes(cid, await store.readUnverified(cid), 'audit') } catch { out.bad.push(cid.toString()) }
    }
  } finally { await store.close() }
  return out
}

/** Files under `dir` (recursively), as paths relative to it; [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  let entries
  try { entries = await readdir(dir, { recursive: true, withFileTypes: true }) } catch { return [] }
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1)).sort()
}
