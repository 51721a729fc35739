/** Atomic file writes: temp file beside the target, fsync, rename, fsync the folder. */
import { open, rename, rm, mkdir, readdir } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { diskFull } from '../errors.js'

export function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(8).toString('hex')}.tmp`)
}

/** A temp file name beside `target` that names its writer: `.<name>.<pid>.<hex>.tmp` (see removeStaleTemps). */
export function ownedTempName(target: string, pid: number): string {
  return join(dirname(target), `.${basename(target)}.${pid}.${randomBytes(4).toString('hex')}.tmp`)
}

/**
 * Remove temp files of `target` named by ownedTempName whose writing process is gone: what a killed
 * process left beside its target. Temp files of live processes (a concurrent writer, this one) are
 * kept. The pid is checked on this host only: a folder shared with another host keeps that host's
 * temps. Returns the names removed.
 */
export async function removeStaleTemps(target: string, alive: (pid: number) => boolean): Promise<string[]> {
  const dir = dirname(target)
  const prefix = `.${basename(target)}.`
  let names: string[]
  try { names = await readdir(dir) } catch { return [] }
  const removed: string[] = []
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const m = /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length))
    if (!m || alive(Number(m[1]))) continue // ours, or a writer still at work
    await rm(join(dir, name), { force: true })
    removed.push(name)
  }
  return removed
}

export async function fsyncDir(dir: string): Promise<void> {
  const fd = await open(dir, 'r')
  try { await fd.sync() } catch { /* some filesystems cannot fsync a folder */ } finally { await fd.close() }
}

/** Write `data` to `target` atomically; the folder is created if needed. */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(target), { recursive: true })
  const tmp = tempName(target)
  const fd = await open(tmp, 'wx', 0o644)
  try {
    await fd.writeFile(data)
    await fd.sync()
  } catch (err) {
    await fd.close().catch(() => {})
    await rm(tmp, { force: true })
    throw diskFull(err, dirname(target))
  }
  await fd.close()
  try {
    await rename(tmp, target)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dirname(target))
}
