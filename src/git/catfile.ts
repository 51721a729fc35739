/**
 * One long-lived `git cat-file --batch` for many small reads: blob heads for sniffing, manifests
 * as of a commit or the index (`HEAD:path`, `:path`, `<commit>:path` or an object id). Requests are
 * pipelined and answered in order; only the first `limit` bytes of each object are kept, the rest
 * streams past, so reading the head of a large blob costs no memory. `head()` does not even stream
 * a large blob: it asks its size first and reads only the head through a `git cat-file blob` it stops.
 */
import { ZooError } from '../errors.js'
import { spawnGit, type GitChild, type GitEnv } from './git.js'

export interface CatObject {
  oid: string
  type: string
  /** The object's full size. */
  size: number
  /** Its first `min(size, limit)` bytes. */
  bytes: Buffer
}

interface Pending { limit: number; resolve: (o: CatObject | null) => void; reject: (e: Error) => void }

export class CatFile {
  private child: GitChild | null = null
  private readonly queue: Pending[] = []
  private buf: Buffer = Buffer.alloc(0)
  /** The object being received: header parsed, body bytes still to come. */
  private cur: { obj: CatObject; parts: Buffer[]; kept: number; left: number; p: Pending } | null = null
  private failed: Error | null = null

  private sizes: CatFile | null = null

  /** git starts on the first read. With `checkOnly`, objects come back without their bytes. */
  constructor(private readonly cwd: string, private readonly env: GitEnv, private readonly checkOnly = false) {}

  private start(): GitChild {
    if (this.child) return this.child
    const child = spawnGit(this.cwd, ['cat-file', this.checkOnly ? '--batch-check' : '--batch'], {
      env: this.env,
      onError: (err) => this.fail(err),
      onExit: (code, stderr) => {
        if (this.queue.length || this.cur) this.fail(new ZooError(`git cat-file stopped (exit ${code}): ${stderr.trim()}`, 'E_GIT'))
      },
    })
    child.stdout.on('data', (d: Buffer) => this.onData(d))
    this.child = child
    return child
  }

  /** The object `spec` names, or null when it does not exist. Keeps at most `limit` bytes. */
  read(spec: string, limit = Number.MAX_SAFE_INTEGER): Promise<CatObject | null> {
    if (this.failed) return Promise.reject(this.failed)
    if (/[\n\r]/.test(spec)) return Promise.resolve(null) // git cannot be asked; such a path is never a zoo path
    return new Promise((resolve, reject) => {
      const child = this.start()
      this.queue.push({ limit, resolve, reject })
      child.stdin.write(spec + '\n')
    })
  }

  /**
   * The first `limit` bytes of a blob (and its size) for sniffing. Blobs up to `BIG` bytes come
   * through the batch; a larger one is read by a `git cat-file blob` that is stopped after `limit`
   * bytes, so a checkpoint staged by mistake is not streamed whole.
   */
  async head(oid: string, limit: number): Promise<CatObject | null> {
    this.sizes ??= new CatFile(this.cwd, this.env, true)
    const info = await this.sizes.read(oid)
    if (!info || info.type !== 'blob') return info
    if (info.size <= CatFile.BIG) return this.read(oid, limit)
    return { ...info, bytes: await blobHead(this.cwd, this.env, oid, limit) }
  }

  static readonly BIG = 4 * 1024 * 1024

  /** The object's text (whole), or null. */
  async text(spec: string): Promise<string | null> {
    const o = await this.read(spec)
    return o && o.type === 'blob' ? o.bytes.toString('utf8') : null
  }

  async close(): Promise<void> {
    await this.sizes?.close()
    const child = this.child
    // (a git killed by a signal, e.g. Ctrl-C to the process group, has no exit code but has closed)
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => { child.once('close', () => resolve()); child.stdin.end() })
  }

  private fail(err: Error): void {
    if (this.failed) return
    this.failed = err
    if (this.cur) { this.cur.p.reject(err); this.cur = null }
    for (const p of this.queue.splice(0)) p.reject(err)
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
    for (;;) {
      if (this.cur) {
        const c = this.cur
        const take = Math.min(c.left, this.buf.length)
        const keep = Math.min(take, c.p.limit - c.kept)
        if (keep > 0) { c.parts.push(this.buf.subarray(0, keep)); c.kept += keep }
        this.buf = this.buf.subarray(take)
        c.left -= take
        if (c.left > 0) return
        c.obj.bytes = Buffer.concat(c.parts)
        this.cur = null
        c.p.resolve(c.obj)
        continue
      }
      const nl = this.buf.indexOf(10)
      if (nl === -1) return
      const header = this.buf.subarray(0, nl).toString()
      this.buf = this.buf.subarray(nl + 1)
      const p = this.queue.shift()
      if (!p) { this.fail(new ZooError(`git cat-file answered what was not asked: ${header}`, 'E_GIT')); return }
      const m = /^([0-9a-f]{40,64}) (\S+) (\d+)$/.exec(header)
      if (!m) { p.resolve(null); continue } // "<spec> missing" / "ambiguous"
      if (this.checkOnly) { p.resolve({ oid: m[1]!, type: m[2]!, size: Number(m[3]), bytes: Buffer.alloc(0) }); continue }
      // body plus the newline that ends it
      this.cur = { obj: { oid: m[1]!, type: m[2]!, size: Number(m[3]), bytes: Buffer.alloc(0) }, parts: [], kept: 0, left: Number(m[3]) + 1, p: { ...p, limit: Math.min(p.limit, Number(m[3])) } }
    }
  }
}

/** The first `limit` bytes of a blob, from a `git cat-file blob` stopped once they are in. */
function blobHead(cwd: string, env: GitEnv, oid: string, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let done = false
    const child = spawnGit(cwd, ['cat-file', 'blob', oid], {
      env,
      onError: (err) => { if (!done) { done = true; reject(err) } },
    })
    child.stdin.end()
    const parts: Buffer[] = []
    let n = 0
    const finish = (): void => {
      if (done) return
      done = true
      child.stdout.destroy()
      child.kill()
      const all = Buffer.concat(parts)
      resolve(all.subarray(0, Math.min(all.length, limit)))
    }
    child.stdout.on('data', (d: Buffer) => { parts.push(d); n += d.length; if (n >= limit) finish() })
    child.stdout.on('end', finish)
  })
}
