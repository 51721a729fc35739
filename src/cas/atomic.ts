/** Atomic file writes: temp file beside the target, fsync, rename, fsync the folder. */
import { open, rename, rm, mkdir, readdir, type FileHandle } from 'node:fs/promises'
import { openSync, writeSync, closeSync, mkdirSync, renameSync, rmSync } from 'node:fs'
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

/**
 * Write `data` to `target` atomically; the folder is created if needed. With `syncDir: false` the
 * folder is not fsynced: the rename is visible at once but durable only once the caller fsyncs the
 * folder (the local store does it once per flush for all the pack indexes it renamed).
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string, opts: { syncDir?: boolean } = {}): Promise<void> {
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
  if (opts.syncDir !== false) await fsyncDir(dirname(target))
}

/**
 * writeFileAtomic for many small files at once (a promotion of thousands of models): every file is
 * written to its temp name, then the temps are fsynced together (the file system folds their journal
 * commits into a few), renamed into place, and each folder is fsynced once. Each target is either
 * its old content or its new one at any moment; on an error the temps are removed.
 * `data` is called for one file at a time, so the caller need not hold every file's bytes at once.
 */
export async function writeFilesAtomic(targets: Array<{ path: string; data: () => Promise<Uint8Array | string> }>): Promise<void> {
  const made = new Set<string>()
  const temps: Array<[string, string]> = []
  try {
    for (const t of targets) {
      const dir = dirname(t.path)
      if (!made.has(dir)) { mkdirSync(dir, { recursive: true }); made.add(dir) }
      const tmp = tempName(t.path)
      const data = await t.data()
      const fd = openSync(tmp, 'wx', 0o644)
      temps.push([tmp, t.path])
      try { writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data) } finally { closeSync(fd) }
    }
    await parallel(temps, 64, async ([tmp]) => { const fh = await open(tmp, 'r+'); try { await fh.sync() } finally { await fh.close() } })
    for (const [tmp, target] of temps) renameSync(tmp, target)
    temps.length = 0
    await parallel([...made], 64, fsyncDir)
  } finally {
    for (const [tmp] of temps) rmSync(tmp, { force: true })
  }
}

async function parallel<T>(items: T[], width: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => { while (next < items.length) await fn(items[next++]!) }))
}

/** Bytes written to a large file between two early writebacks (EarlyWriteback). */
export const WRITEBACK_EVERY = 64 * 1024 * 1024

/**
 * Writeback of a large file started while it is still being written: after every WRITEBACK_EVERY
 * bytes a datasync is started in the background (one at a time), so the disk works while the writer
 * goes on and the final fsync finds little left. Without it the dirty pages pile up, the kernel
 * throttles the writer, and the fsync at the end waits for the whole file (measured on a 1 GiB get:
 * writes plus fsync 4.8-6.8 s with one fsync at the end, 1.0-3.0 s with a datasync per 64 MiB, and
 * a third of the system time). A failed datasync (EIO, ENOSPC) is thrown by the next wrote() or by
 * settle(). Call settle() before the final fsync and before closing the file.
 */
export class EarlyWriteback {
  #since = 0
  #inflight: Promise<void> | null = null
  #err: { err: unknown } | null = null
  constructor(private readonly fd: FileHandle, private readonly every = WRITEBACK_EVERY) {}

  /** `n` more bytes were written to the file. */
  wrote(n: number): void {
    if (this.#err) throw this.#err.err
    this.#since += n
    if (this.#since < this.every || this.#inflight) return
    this.#since = 0
    this.#inflight = this.fd.datasync().then(() => { this.#inflight = null }, (err: unknown) => { this.#err ??= { err }; this.#inflight = null })
  }

  /** Wait for the writeback in flight; throws the error of a failed one. */
  async settle(): Promise<void> {
    await this.#inflight
    if (this.#err) throw this.#err.err
  }
}

/** The most buffers one readv or writev takes (IOV_MAX on Linux). */
const IOV_MAX = 1024

/**
 * The part of `bufs` not yet done after the first `done` bytes, as at most IOV_MAX views: readv and
 * writev may move fewer bytes than asked and take at most IOV_MAX buffers, so their callers loop on this.
 */
export function remainingIov(bufs: readonly Uint8Array[], done: number): Uint8Array[] {
  let skip = done
  const rest: Uint8Array[] = []
  for (const b of bufs) {
    if (rest.length === IOV_MAX) break
    if (skip >= b.length) { skip -= b.length; continue }
    rest.push(skip > 0 ? b.subarray(skip) : b)
    skip = 0
  }
  return rest
}

/** Write every byte of `bufs`, in order, from file position `at` (looping on short writes). Returns the byte count. */
export async function writeAllAt(fd: FileHandle, bufs: readonly Uint8Array[], at: number): Promise<number> {
  let total = 0
  for (const b of bufs) total += b.length
  let done = 0
  while (done < total) done += (await fd.writev(remainingIov(bufs, done), at + done)).bytesWritten
  return total
}
