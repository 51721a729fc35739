/**
 * Real servers for the remote tests, all on 127.0.0.1 with ephemeral ports:
 * - a static file server (like nginx with autoindex, or `python3 -m http.server`) over a folder,
 *   which records every request and lets a test take over any request;
 * - s3rver, an S3-compatible server that runs in-process.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CID as MfCID } from 'multiformats/cid'
import { tmpdir } from 'node:os'
import { dirname, join, normalize } from 'node:path'
import type { CID } from '../src/cas/cid.js'
import { encodeIndex, parseIndex } from '../src/cas/local.js'
import { idxKey, packKey, type PackedStore } from '../src/remote/packed.js'

export interface SeenRequest { method: string; url: string; headers: http.IncomingHttpHeaders }

export interface StaticServer {
  url: string
  port: number
  requests: SeenRequest[]
  /** Body bytes sent so far (what a client moved over the network, headers aside). */
  sent: { bytes: number }
  close: () => Promise<void>
}

/**
 * Serve `root` read-only. `intercept` may answer a request itself (return true) before the files do.
 * Folders get an HTML listing like nginx's autoindex, unless `listings` is false (then 403).
 */
export async function startStaticServer(root: string, opts: {
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>
  listings?: boolean
} = {}): Promise<StaticServer> {
  const requests: SeenRequest[] = []
  const sent = { bytes: 0 }
  const server = http.createServer(async (req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    try {
      if (opts.intercept && await opts.intercept(req, res)) return
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
      const file = normalize(join(root, path))
      if (!file.startsWith(normalize(root))) { res.writeHead(403).end(); return }
      const st = await stat(file).catch(() => undefined)
      if (!st) { res.writeHead(404).end('not found'); return }
      if (st.isDirectory()) {
        if (opts.listings === false || !path.endsWith('/')) { res.writeHead(403).end('forbidden'); return }
        const names = await readdir(file, { withFileTypes: true })
        const html = '<html><body><a href="../">../</a>\n'
          + names.map((d) => { const n = d.name + (d.isDirectory() ? '/' : ''); return `<a href="${encodeURIComponent(d.name)}${d.isDirectory() ? '/' : ''}">${n}</a>` }).join('\n')
          + '</body></html>'
        res.writeHead(200, { 'content-type': 'text/html' }).end(html)
        return
      }
      // one byte range (`Range: bytes=a-b`), as nginx and Apache serve them: only those bytes are read
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
      if (range) {
        const start = Number(range[1])
        const end = Math.min(st.size - 1, range[2] ? Number(range[2]) : st.size - 1)
        if (start >= st.size) { res.writeHead(416, { 'content-range': `bytes */${st.size}` }).end(); return }
        const part = Buffer.alloc(end + 1 - start)
        const fd = await open(file, 'r')
        try { await fd.read(part, 0, part.length, start) } finally { await fd.close() }
        res.writeHead(206, { 'content-length': part.length, 'content-range': `bytes ${start}-${end}/${st.size}`, 'content-type': 'application/octet-stream' })
        if (req.method !== 'HEAD') sent.bytes += part.length
        res.end(req.method === 'HEAD' ? undefined : part)
        return
      }
      const body = await readFile(file)
      res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' })
      if (req.method !== 'HEAD') sent.bytes += body.length
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(String(err))
      else res.destroy()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    requests,
    sent,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}

export interface S3Server {
  endpoint: string; bucket: string; env: NodeJS.ProcessEnv
  /** The folder s3rver keeps its buckets in (objects are `<bucket>/<key>._S3rver_object`). */
  directory: string
  close: () => Promise<void>
}

/** The parts of s3rver's FilesystemStore (s3rver/lib/stores/filesystem.js, 3.7) that atomicPuts replaces. */
interface S3rverObject { bucket: string; key: string; content: NodeJS.ReadableStream | Buffer | null; metadata: Record<string, string>; range?: { start: number; end: number } }
interface S3rverStore {
  getResourcePath(bucket: string, key: string, resource: string): string
  getMetadata(bucket: string, key: string): Promise<Record<string, string | number>>
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3rverObject | null>
}

/**
 * Make s3rver's objects appear whole or not at all, as S3's do ("Amazon S3 never adds partial
 * objects"; a GET concurrent with a PUT of the same key answers the old object or the new one).
 * s3rver 3.7 as shipped does not: its putObject opens `<key>._S3rver_object` with
 * fs.createWriteStream (truncating it) and streams the request body into it, and its getObject
 * answers with whatever that file holds at the moment (length from a stat of it). So a reader racing
 * a writer got an empty or cut-short object with status 200: an empty `zoo-remote.json` read while
 * another pusher wrote it failed "two handles writing at once" at random with E_REMOTE_LAYOUT.
 * Here a PUT is received into a temp file beside the object (a name s3rver's listings skip), then
 * renamed over it; a GET opens the file once and serves that one file's size and bytes.
 * An object's metadata lives in two more files (s3rver's putMetadata writes `<key>._S3rver_object.md5`,
 * the ETag, and `<key>._S3rver_metadata.json` in place with fs.writeFile, so a reader could see a
 * half-written JSON: a 500). Here each is written to a temp file and renamed into place, after the
 * object's own rename, and the three renames of a key are one step for a reader: they and a GET's
 * open of the object and read of its metadata (and every getMetadata: HEAD, listings) take a per-key
 * lock, so a GET answers the old bytes with the old metadata or the new with the new.
 */
function atomicPuts(store: S3rverStore, S3Object: new (bucket: string, key: string, content: unknown, metadata: object) => S3rverObject): void {
  const readMetadata = store.getMetadata.bind(store)
  // per key: the tail of the queue of steps that hold its lock
  const queues = new Map<string, Promise<void>>()
  const locked = async <T>(bucket: string, key: string, step: () => Promise<T>): Promise<T> => {
    const id = `${bucket}\0${key}`
    const before = queues.get(id) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((resolve) => { release = resolve })
    const tail = before.then(() => mine)
    queues.set(id, tail)
    await before
    try { return await step() } finally {
      release()
      if (queues.get(id) === tail) queues.delete(id)
    }
  }
  /** `text` into `path` through a temp file beside it and a rename (the temp name is no s3rver resource). */
  const replace = async (path: string, text: string): Promise<void> => {
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
    try {
      await writeFile(tmp, text)
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  }
  // what s3rver's putMetadata stores, written whole
  const ALLOWED = (S3Object as unknown as { ALLOWED_METADATA: string[] }).ALLOWED_METADATA
  const metadataText = (metadata: Record<string, string>): string => JSON.stringify(Object.fromEntries(Object.entries(metadata)
    .filter(([k]) => ALLOWED.includes(k) || k.startsWith('x-amz-meta-'))), null, 2)
  store.putMetadata = async (bucket, key, metadata, md5) => locked(bucket, key, async () => {
    if (md5) await replace(store.getResourcePath(bucket, key, 'object.md5'), md5)
    await replace(store.getResourcePath(bucket, key, 'metadata.json'), metadataText(metadata))
  })
  store.getMetadata = async (bucket, key) => locked(bucket, key, () => readMetadata(bucket, key))
  store.putObject = async (object) => {
    const target = store.getResourcePath(object.bucket, object.key, 'object')
    await mkdir(dirname(target), { recursive: true })
    const tmp = `${target}.tmp-${randomBytes(6).toString('hex')}`
    const md5 = createHash('md5')
    let size = 0
    try {
      const body = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content ?? Readable.from([])
      await pipeline(body, new Transform({ transform(chunk: Buffer, _enc, done) { md5.update(chunk); size += chunk.length; done(null, chunk) } }),
        createWriteStream(tmp))
      const digest = md5.digest('hex')
      await locked(object.bucket, object.key, async () => {
        await rename(tmp, target)
        await replace(`${target}.md5`, digest)
        await replace(store.getResourcePath(object.bucket, object.key, 'metadata.json'), metadataText(object.metadata))
      })
      return { size, md5: digest }
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  }
  store.getObject = async (bucket, key, options) => {
    // the object's bytes (an open file) and its metadata, both from one committed PUT
    const found = await locked(bucket, key, async () => {
      let fd
      try { fd = await open(store.getResourcePath(bucket, key, 'object'), 'r') } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
      try {
        return { fd, stored: await readMetadata(bucket, key) }
      } catch (err) {
        await fd.close().catch(() => {})
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
    })
    if (!found) return null
    const { fd, stored } = found
    try {
      const st = await fd.stat()
      const metadata = { ...stored, 'content-length': st.size, 'last-modified': st.mtime.toUTCString() }
      const last = Math.max(0, st.size - 1)
      const range = { start: options?.start ?? 0, end: Math.min(options?.end ?? Infinity, last) }
      const ranged = options !== undefined && (options.start !== undefined || options.end !== undefined)
      if (range.start < 0 || range.end < range.start) {
        await fd.close()
        const none = new S3Object(bucket, key, null, metadata)
        if (ranged) none.range = range
        return none
      }
      const out = new S3Object(bucket, key, fd.createReadStream({ start: range.start, end: range.end }), metadata)
      if (ranged) out.range = range
      return out
    } catch (err) {
      await fd.close().catch(() => {})
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }
}

/**
 * s3rver in-process, its PUTs made atomic as S3's are (atomicPuts). NOTE: s3rver checks signatures
 * only against its fixed key pair and does not implement conditional writes (If-None-Match), so tests
 * using it claim neither credential checking nor the no-overwrite guarantee of conditional PutObject;
 * the HeadObject check before PutObject is what keeps objects from being rewritten here.
 */
export async function startS3rver(bucket = 'zoo'): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 'zoo-s3rver-'))
  const name = 's3rver'
  // s3rver ships no types.
  const S3rver = ((await import(name)) as { default: new (o: object) => { run(): Promise<AddressInfo>; close(): Promise<void>; store: S3rverStore } }).default
  const S3Object = createRequire(import.meta.url)('s3rver/lib/models/object') as new (bucket: string, key: string, content: unknown, metadata: object) => S3rverObject
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] })
  atomicPuts(server.store, S3Object)
  const addr = await server.run()
  const endpoint = `http://127.0.0.1:${addr.port}`
  return {
    endpoint,
    bucket,
    directory: dir,
    env: {
      AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: endpoint,
    },
    close: async () => { await server.close(); await rm(dir, { recursive: true, force: true }) },
  }
}

export async function tempDir(prefix = 'zoo-remote-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/** The objects a packed path remote lists in its pack indexes: CID string, pack file, offset, length. */
export async function packEntries(root: string): Promise<Array<{ cid: string; pack: string; offset: number; length: number }>> {
  const dir = join(root, 'packs')
  const out: Array<{ cid: string; pack: string; offset: number; length: number }> = []
  for (const name of (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.idx')).sort()) {
    for (const [k, offset, length] of parseIndex(await readFile(join(dir, name)), name)) {
      out.push({ cid: MfCID.decode(Buffer.from(k, 'latin1')).toString(), pack: join(dir, name.slice(0, -4) + '.pack'), offset, length })
    }
  }
  return out
}

/** Flip one byte of an object inside its pack on a path remote (packs are read-only files: rewritten). */
export async function poisonInPack(root: string, cid: string): Promise<void> {
  const e = (await packEntries(root)).find((x) => x.cid === cid)
  if (!e) throw new Error(`${cid} is in no pack index under ${root}`)
  const bytes = await readFile(e.pack)
  bytes[e.offset + (e.length >> 1)]! ^= 1
  await unlink(e.pack)
  await writeFile(e.pack, bytes)
}

/** Damage an object inside its pack through the remote's own files: same length, or shorter (its index says so). */
export async function damageInPack(store: PackedStore, cid: CID, bytes: Uint8Array): Promise<void> {
  const files = store.backing
  for (const f of (await files.listFiles('packs')) ?? []) {
    if (!f.name.endsWith('.idx')) continue
    const name = f.name.slice(0, -4)
    const entries = parseIndex(Buffer.from((await files.readFile(idxKey(name), 64 * 2 ** 20))!), f.name)
    const i = entries.findIndex(([k]) => k === Buffer.from(cid.bytes).toString('latin1'))
    if (i < 0) continue
    const [, offset, length] = entries[i]!
    const pack = Buffer.from(await files.readRange(packKey(name), 0, 64 * 2 ** 20, true))
    Buffer.from(bytes).copy(pack, offset)
    for (let j = bytes.length; j < length; j++) pack[offset + j]! ^= 0xff
    await files.replaceFile!(packKey(name), pack)
    if (bytes.length !== length) {
      entries[i] = [entries[i]![0], offset, bytes.length]
      await files.replaceFile!(idxKey(name), encodeIndex(entries))
    }
    return
  }
  throw new Error(`${cid} is in no pack`)
}
