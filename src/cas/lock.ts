/**
 * Coordination between writers and gc on one store, through files in `<store>/locks/`. Writers
 * register through the LocalStore handle they write with (./local.ts), so every command that
 * writes (add, import, soup, fetch, pull, clone, a lazy get, verify --repair) is covered.
 * A writer registers itself, then checks for gc; gc takes its lock, then checks for writers: either
 * side always sees the other. A lock whose process is gone on this host is stale and removed; a lock
 * from another host is never stolen (its message names host, pid and age).
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Host } from '../host.js'
import { ZooError } from '../errors.js'

export interface LockInfo { host: string; pid: number; started: number; what: string }

/** Who holds a lock taken now by this process (remote locks use it too: src/remote/remote-lock.ts). */
export function lockInfo(host: Host, what: string): LockInfo {
  return { host: host.hostname, pid: host.pid, started: Date.now(), what }
}

/** Whether a lock's process is gone: same host and no such pid (never judged for another host). */
export function isDeadHere(host: Host, l: LockInfo): boolean {
  return l.host === host.hostname && !host.alive(l.pid)
}

async function readLock(path: string): Promise<LockInfo | null> {
  try { return JSON.parse(await readFile(path, 'utf8')) as LockInfo } catch { return null }
}

/** Live locks in the folder whose name starts with `prefix`; stale ones on this host are removed. */
async function liveLocks(host: Host, dir: string, prefix: string): Promise<Array<LockInfo & { file: string }>> {
  let names: string[]
  try { names = await readdir(dir) } catch { return [] }
  const out: Array<LockInfo & { file: string }> = []
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const info = await readLock(join(dir, name))
    if (!info) continue
    if (isDeadHere(host, info)) { await rm(join(dir, name), { force: true }); continue }
    out.push({ ...info, file: name })
  }
  return out
}

export function describeLock(l: LockInfo): string {
  return `${l.what} (pid ${l.pid} on ${l.host}, started ${Math.round((Date.now() - l.started) / 1000)} s ago)`
}

export interface Held { release(): Promise<void> }

async function place(host: Host, dir: string, name: string, what: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, name)
  const info = lockInfo(host, what)
  await writeFile(file, JSON.stringify(info), { flag: 'wx' })
  return file
}

/** Register a writer; waits (up to `waitMs`) while gc runs. */
export async function registerWriter(host: Host, storeRoot: string, what: string, waitMs = 60_000): Promise<Held> {
  const dir = join(storeRoot, 'locks')
  const deadline = Date.now() + waitMs
  for (;;) {
    const file = await place(host, dir, `writer-${host.pid}-${randomBytes(4).toString('hex')}`, what)
    const gc = await liveLocks(host, dir, 'gc')
    if (gc.length === 0) return { release: () => rm(file, { force: true }) }
    await rm(file, { force: true })
    if (Date.now() > deadline) {
      throw new ZooError(`the store ${storeRoot} is locked by ${describeLock(gc[0]!)}; wait for it to finish, or remove ${join(dir, gc[0]!.file)} if that process is gone`, 'E_LOCKED', { lock: gc[0] })
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Take the gc lock; fails at once when writers or another gc are active. */
export async function lockForGc(host: Host, storeRoot: string): Promise<Held> {
  const dir = join(storeRoot, 'locks')
  const others = await liveLocks(host, dir, 'gc')
  if (others.length) throw new ZooError(`another gc holds ${storeRoot}: ${describeLock(others[0]!)}; remove ${join(dir, others[0]!.file)} if that process is gone`, 'E_LOCKED', { lock: others[0] })
  const file = await place(host, dir, `gc-${host.pid}-${randomBytes(4).toString('hex')}`, 'git zoo gc')
  const writers = await liveLocks(host, dir, 'writer')
  const gcs = (await liveLocks(host, dir, 'gc')).filter((l) => l.file !== file.split('/').pop())
  if (writers.length || gcs.length) {
    await rm(file, { force: true })
    const l = writers[0] ?? gcs[0]!
    throw new ZooError(`the store ${storeRoot} is in use by ${describeLock(l)}; run gc again when it has finished`, 'E_LOCKED', { lock: l })
  }
  return { release: () => rm(file, { force: true }) }
}
