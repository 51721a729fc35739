/**
 * PathStore: a remote in a local folder (a shared disk, NFS): the files the pack layout is built on
 * (./packed.ts: ranges, create-if-absent, replace, list, remove), and loose objects, one file per
 * object in the layout-1 layout (./layout.ts), which older remotes hold.
 *
 * Writes: temp file in the object's folder -> write -> fsync -> link() to the final name (link fails
 * when the name exists, so an existing object is never overwritten) -> unlink the temp file. Where a
 * filesystem has no hard links, rename() is used after checking the name is free. Folder fsyncs are
 * batched into flush(). A crash leaves at most a `.tmp-*` file, which readers ignore.
 */
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { CID } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { MAX_OBJECT_SIZE } from '../cas/store.js'
import { writeAllAt } from '../cas/atomic.js'
import { CorruptObjectError, NotFoundError, ZooError } from '../errors.js'
import { cidFromName, fanout, isFanoutDir, OBJECTS_DIR } from './layout.js'
import { verifyObject, type Digester } from './verify.js'
import { LOCKS_DIR, type AgedEntry, type RetentionStore } from './aged.js'

export class PathStore implements Store, RetentionStore {
  readonly location: string
  readonly root: string
  /** Folders that gained entries since the last flush (their fsync makes the new names durable). */
  private readonly dirtyDirs = new Set<string>()
  /** Fan-out folders known to exist (created or seen by this handle). */
  private readonly madeDirs = new Set<string>()

  constructor(root: string, private readonly opts: { digest?: Digester } = {}) {
    this.root = resolve(root)
    this.location = this.root
  }

  /** Absolute path of an object's file. */
  pathOf(cid: CID): string {
    const text = cid.toString()
    return join(this.root, OBJECTS_DIR, fanout(text), text)
  }

  async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (bytes.length > MAX_OBJECT_SIZE) {
      throw new ZooError(`object ${cid} is ${bytes.length} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`, 'E_TOO_LARGE', { cid: String(cid) })
    }
    await verifyObject(cid, bytes, 'put', this.opts.digest)
    return this.putVerified(cid, bytes)
  }

  /** put for bytes the caller has just verified against `cid` (a verifying get). */
  async putVerified(cid: CID, bytes: Uint8Array): Promise<boolean> {
    // No existence check first: callers (transfer) have just asked has(), and link() refuses an
    // existing name anyway.
    const target = this.pathOf(cid)
    const dir = dirname(target)
    if (!this.madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true })
      this.madeDirs.add(dir)
      this.dirtyDirs.add(join(this.root, OBJECTS_DIR)).add(this.root)
    }
    const tmp = join(dir, `.tmp-${cid.toString().slice(-8)}-${randomBytes(6).toString('hex')}`)
    let fd
    try {
      fd = await open(tmp, 'wx', 0o444)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      await mkdir(dir, { recursive: true }) // removed behind this handle's back
      fd = await open(tmp, 'wx', 0o444)
    }
    try {
      await fd.writeFile(bytes)
      await fd.sync()
    } finally {
      await fd.close()
    }
    try {
      return await this.publish(tmp, target)
    } finally {
      await unlink(tmp).catch(() => {})
      this.dirtyDirs.add(dir)
    }
  }

  /** Make `tmp` visible as `target` without ever replacing an existing `target`. */
  private async publish(tmp: string, target: string): Promise<boolean> {
    try {
      await link(tmp, target)
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') return false
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err
    }
    // No hard links here (some SMB / FUSE mounts): rename, accepting a narrow race between two
    // writers of the same object, which carry identical verified bytes.
    if (await exists(target)) return false
    await rename(tmp, target)
    return true
  }

  async get(cid: CID): Promise<Uint8Array> {
    const file = this.pathOf(cid)
    let fd
    try {
      fd = await open(file, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new NotFoundError(`object ${cid} is not in ${this.location}`, { cid: String(cid), remote: this.location })
      }
      throw err
    }
    try {
      const { size } = await fd.stat()
      if (size > MAX_OBJECT_SIZE) {
        throw new CorruptObjectError(`object ${cid} in ${this.location} is ${size} bytes, over the ${MAX_OBJECT_SIZE}-byte limit, so it cannot match its CID`,
          { cid: String(cid), where: this.location })
      }
      const bytes = Buffer.alloc(size)
      let off = 0
      while (off < size) {
        const { bytesRead } = await fd.read(bytes, off, size - off, off)
        if (bytesRead === 0) break
        off += bytesRead
      }
      const got = bytes.subarray(0, off)
      await verifyObject(cid, got, this.location, this.opts.digest)
      return got
    } finally {
      await fd.close()
    }
  }

  async has(cid: CID): Promise<boolean> {
    return exists(this.pathOf(cid))
  }

  async *list(): AsyncIterable<CID> {
    const top = join(this.root, OBJECTS_DIR)
    let dirs: string[]
    try {
      dirs = await readdir(top)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const d of dirs.sort()) {
      if (!isFanoutDir(d)) continue
      let names: string[]
      try {
        names = await readdir(join(top, d))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue
        throw err
      }
      for (const name of names) {
        const cid = cidFromName(d, name)
        if (cid) yield cid
      }
    }
  }

  async *listAged(): AsyncIterable<AgedEntry> {
    const top = join(this.root, OBJECTS_DIR)
    let dirs: string[]
    try { dirs = await readdir(top) } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const d of dirs.sort()) {
      if (!isFanoutDir(d)) continue
      let names: string[]
      try { names = await readdir(join(top, d)) } catch { continue }
      for (const name of names) {
        const cid = cidFromName(d, name)
        if (!cid && !name.startsWith('.tmp-')) continue
        const st = await stat(join(top, d, name)).catch(() => null)
        if (!st?.isFile()) continue
        yield { ...(cid ? { cid } : {}), key: `${d}/${name}`, modified: st.mtimeMs, size: st.size }
      }
    }
  }

  async deleteEntries(keys: string[]): Promise<void> {
    for (const k of keys) {
      if (!/^[a-z2-7]{2}\/[^/]+$/.test(k)) throw new ZooError(`not an object key of ${this.location}: ${k}`, 'E_REMOTE_IO', { key: k })
      const file = join(this.root, OBJECTS_DIR, k)
      await rm(file, { force: true })
      this.dirtyDirs.add(dirname(file))
    }
    await this.flush()
  }

  // ---- files, for the pack layout (./packed.ts) ----

  private file(key: string): string {
    if (!/^[a-z]+\/[A-Za-z0-9._-]+$/.test(key) && !/^[A-Za-z0-9._-]+$/.test(key)) {
      throw new ZooError(`not a file name of ${this.location}: ${key}`, 'E_REMOTE_IO', { key })
    }
    return join(this.root, key)
  }

  /** Bytes [offset, offset + length) of a file; NotFoundError when it is absent. */
  async readRange(key: string, offset: number, length: number, _partial?: boolean): Promise<Uint8Array> {
    let fd
    try { fd = await open(this.file(key), 'r') } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${key} is not in ${this.location}`, { key, remote: this.location })
      throw err
    }
    try {
      const bytes = Buffer.allocUnsafe(length)
      let off = 0
      while (off < length) {
        const { bytesRead } = await fd.read(bytes, off, length - off, offset + off)
        if (bytesRead === 0) break
        off += bytesRead
      }
      return bytes.subarray(0, off)
    } finally { await fd.close() }
  }

  /** A whole small file, or undefined when absent. */
  async readFile(key: string, maxBytes: number): Promise<Uint8Array | undefined> {
    try {
      const st = await stat(this.file(key))
      if (st.size > maxBytes) throw new ZooError(`${key} in ${this.location} is ${st.size} bytes, over the ${maxBytes}-byte limit`, 'E_REMOTE_TOO_LARGE', { key })
      return await readFile(this.file(key))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /**
   * Create a file that must not exist yet: temp file, write, fsync, link() to the final name (never
   * replaces; false when the name exists). `midway` runs after half the parts are written (crash tests).
   */
  async createFile(key: string, parts: Uint8Array[], midway?: () => void | Promise<void>): Promise<boolean> {
    const target = this.file(key)
    const dir = dirname(target)
    await mkdir(dir, { recursive: true })
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`)
    const fd = await open(tmp, 'wx', 0o444)
    try {
      const half = Math.ceil(parts.length / 2)
      await writeAllAt(fd, parts.slice(0, half), 0)
      await midway?.()
      await writeAllAt(fd, parts.slice(half), parts.slice(0, half).reduce((a, b) => a + b.length, 0))
      await fd.sync()
    } catch (err) {
      await fd.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      throw err
    }
    await fd.close()
    try {
      return await this.publish(tmp, target)
    } finally {
      await unlink(tmp).catch(() => {})
      this.dirtyDirs.add(dir).add(this.root)
    }
  }

  /** Write a file, replacing any earlier one atomically (temp, fsync, rename). */
  async replaceFile(key: string, bytes: Uint8Array): Promise<void> {
    const target = this.file(key)
    const dir = dirname(target)
    await mkdir(dir, { recursive: true })
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`)
    try {
      const fd = await open(tmp, 'wx', 0o644)
      try { await writeAllAt(fd, [bytes], 0); await fd.sync() } finally { await fd.close() }
      await rename(tmp, target)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
    this.dirtyDirs.add(dir)
  }

  /** The files directly in a folder (names starting with `.` included: temp files), or [] when it is absent. */
  async listFiles(dir: string): Promise<Array<{ name: string; size: number; modified: number }>> {
    let names: string[]
    try { names = await readdir(this.file(dir)) } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const out = []
    for (const name of names) {
      const st = await stat(join(this.file(dir), name)).catch(() => null)
      if (st?.isFile()) out.push({ name, size: st.size, modified: st.mtimeMs })
    }
    return out
  }

  async removeFiles(keys: string[]): Promise<void> {
    for (const k of keys) {
      const file = this.file(k)
      await rm(file, { force: true })
      this.dirtyDirs.add(dirname(file))
    }
    await this.flush()
  }

  async putLock(name: string, body: string): Promise<void> {
    const dir = join(this.root, LOCKS_DIR)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, name), body, { flag: 'wx' })
    await fsyncDir(dir)
  }

  async listLocks(prefix: string): Promise<Array<{ name: string; body: string }>> {
    let names: string[]
    try { names = await readdir(join(this.root, LOCKS_DIR)) } catch { return [] }
    const out: Array<{ name: string; body: string }> = []
    for (const name of names.filter((n) => n.startsWith(prefix)).sort()) {
      out.push({ name, body: await readFile(join(this.root, LOCKS_DIR, name), 'utf8').catch(() => '') })
    }
    return out
  }

  async removeLock(name: string): Promise<void> {
    await rm(join(this.root, LOCKS_DIR, name), { force: true })
  }

  async flush(): Promise<void> {
    const dirs = [...this.dirtyDirs]
    this.dirtyDirs.clear()
    // Deepest first: a fan-out folder, then objects/ (which names it), then the root.
    dirs.sort((a, b) => b.length - a.length)
    for (const dir of dirs) await fsyncDir(dir)
  }

  async close(): Promise<void> {
    await this.flush()
  }
}


async function exists(file: string): Promise<boolean> {
  try {
    await stat(file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fd
  try {
    fd = await open(dir, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  try { await fd.sync() } catch { /* some filesystems cannot fsync a folder */ } finally { await fd.close() }
}
