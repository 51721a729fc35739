/**
 * Locks on a zoo remote (`<root>/locks/`, see ./aged.ts), so a remote gc never runs beside another
 * remote gc or beside a push (spec/teams.md, "Retention and gc"):
 *
 * - gc places `locks/gc-<time>-<random>.json`, then lists the locks: another live gc lock, or a live
 *   push lock, makes it remove its own and stop (E_REMOTE_LOCKED).
 * - a push places `locks/push-<time>-<random>.json` before it asks the remote which objects it has,
 *   then lists the gc locks: while one is live it removes its own, waits and tries again.
 * Each side writes before it reads, so of a gc and a push starting together at least one sees the
 * other (S3 listings are strongly consistent; so is file creation in a folder).
 *
 * Staleness: a lock whose process is gone on this host is removed. A gc lock older than a day is
 * removed (no gc runs that long; a crashed machine must not block pushes for ever). A push lock
 * older than the gc's grace period is ignored (objects that old are not protected by the grace
 * either) and removed once it is also older than a day.
 */
import { randomBytes } from 'node:crypto'
import { describeLock, isDeadHere, lockInfo, type Held, type LockInfo } from '../cas/lock.js'
import type { Host } from '../host.js'
import { ZooError } from '../errors.js'
import type { RetentionStore } from './aged.js'

/** A remote gc lock older than this is taken as left by a crashed gc. */
export const REMOTE_LOCK_STALE_MS = 24 * 3600 * 1000
/** How long a push waits for a remote gc before it gives up. */
export const PUSH_WAIT_MS = 10 * 60 * 1000

type Found = LockInfo & { name: string }

async function place(store: RetentionStore, host: Host, kind: 'gc' | 'push', what: string, now: number): Promise<string> {
  const name = `${kind}-${now.toString(36)}-${randomBytes(6).toString('hex')}.json`
  await store.putLock(name, JSON.stringify(lockInfo(host, what)))
  return name
}

/**
 * Live locks of one kind, other than `own`. Removes those of dead processes here and those older
 * than `removeAfterMs`; leaves out (without removing) those older than `ignoreAfterMs`.
 */
async function live(store: RetentionStore, host: Host, kind: 'gc' | 'push', own: string, now: number,
  ignoreAfterMs: number, removeAfterMs: number): Promise<Found[]> {
  const out: Found[] = []
  for (const l of await store.listLocks(`${kind}-`)) {
    if (l.name === own) continue
    let info: LockInfo
    try { info = JSON.parse(l.body) as LockInfo } catch { continue } // cut short while written: holds nothing
    const age = now - info.started
    if (isDeadHere(host, info) || age > removeAfterMs) { await store.removeLock(l.name).catch(() => {}); continue }
    if (age > ignoreAfterMs) continue
    out.push({ ...info, name: l.name })
  }
  return out
}

function held(store: RetentionStore, name: string): Held {
  return { release: () => store.removeLock(name).catch(() => {}) }
}

/** Take the gc lock of a remote; fails at once when another gc or a push (younger than `graceMs`) holds it. */
export async function lockRemoteForGc(store: RetentionStore, host: Host, graceMs: number, now = Date.now()): Promise<Held> {
  const own = await place(store, host, 'gc', 'git zoo gc --remote', now)
  const gcs = await live(store, host, 'gc', own, now, REMOTE_LOCK_STALE_MS, REMOTE_LOCK_STALE_MS)
  const pushes = gcs.length ? [] : await live(store, host, 'push', own, now, graceMs, Math.max(graceMs, REMOTE_LOCK_STALE_MS))
  const other = gcs[0] ?? pushes[0]
  if (other) {
    await store.removeLock(own).catch(() => {})
    const what = gcs.length ? 'another gc is running on' : 'a push is in progress to'
    throw new ZooError(`${what} the zoo remote ${store.location}: ${describeLock(other)}; run gc again when it has finished `
      + `(if that process is gone, remove locks/${other.name} on the remote)`, 'E_REMOTE_LOCKED', { lock: other })
  }
  return held(store, own)
}

/**
 * Register a push on a remote (before asking which objects it has); waits up to `waitMs` while a
 * remote gc runs, telling `onWait` once.
 */
export async function registerPush(store: RetentionStore, host: Host, opts: { waitMs?: number; onWait?: (why: string) => void } = {}): Promise<Held> {
  const deadline = Date.now() + (opts.waitMs ?? PUSH_WAIT_MS)
  let told = false
  for (;;) {
    const now = Date.now()
    const own = await place(store, host, 'push', 'git zoo push', now)
    const gcs = await live(store, host, 'gc', own, now, REMOTE_LOCK_STALE_MS, REMOTE_LOCK_STALE_MS)
    if (gcs.length === 0) return held(store, own)
    await store.removeLock(own).catch(() => {})
    const g = gcs[0]!
    if (Date.now() > deadline) {
      throw new ZooError(`a gc is running on the zoo remote ${store.location}: ${describeLock(g)}; nothing was uploaded, push again when it has finished `
        + `(if that process is gone, remove locks/${g.name} on the remote)`, 'E_REMOTE_LOCKED', { lock: g })
    }
    if (!told) { opts.onWait?.(`waiting for a gc on the zoo remote ${store.location} to finish: ${describeLock(g)}`); told = true }
    await new Promise((r) => setTimeout(r, 500))
  }
}
