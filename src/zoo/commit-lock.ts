/**
 * One zoo commit at a time per repository. Commands that commit (add, import, soup, retire, eval)
 * may run at once in one repository; each writes, stages and commits under this lock,
 * `<git common dir>/zoo-commit.lock`, so they queue instead of tripping over git's index.lock, and
 * the one that comes second sees what the first committed (src/zoo/commit.ts refuses to commit a
 * path that is already in HEAD). A lock left by a process that died on this host (kill -9) is
 * taken over; one of another host (a repository on a shared disk) is never stolen.
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Repo } from '../repo.js'
import { describeLock, isDeadHere, lockInfo, type LockInfo } from '../cas/lock.js'
import { ZooError } from '../errors.js'

const held = new Map<string, number>()

/** How long a command waits for another's commit before giving up (E_COMMIT_LOCKED). */
export const COMMIT_LOCK_WAIT_MS = 120_000

export async function withCommitLock<T>(repo: Repo, fn: () => Promise<T>, opts: { signal?: AbortSignal; waitMs?: number } = {}): Promise<T> {
  const file = join(repo.commonDir, 'zoo-commit.lock')
  const depth = held.get(file) ?? 0
  if (depth > 0) { // this process holds it already
    held.set(file, depth + 1)
    try { return await fn() } finally { held.set(file, held.get(file)! - 1) }
  }
  const deadline = Date.now() + (opts.waitMs ?? COMMIT_LOCK_WAIT_MS)
  for (;;) {
    opts.signal?.throwIfAborted()
    try {
      await writeFile(file, JSON.stringify(lockInfo(repo.host, 'a git zoo commit')), { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let info: LockInfo | null = null
    try { info = JSON.parse(await readFile(file, 'utf8')) as LockInfo } catch { /* being written, or just removed */ }
    if (info && isDeadHere(repo.host, info)) { await rm(file, { force: true }); continue }
    if (Date.now() > deadline) {
      throw new ZooError(`another git zoo command is committing in this repository: ${info ? describeLock(info) : 'the lock is being taken'}; wait for it to finish, or remove ${file} if that process is gone`,
        'E_COMMIT_LOCKED', { lock: info, file })
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  held.set(file, 1)
  try {
    return await fn()
  } finally {
    held.delete(file)
    await rm(file, { force: true })
  }
}
