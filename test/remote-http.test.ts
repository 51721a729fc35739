import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rm, unlink, writeFile } from 'node:fs/promises'
import { storeConformance } from './store-conformance.js'
import { startStaticServer, tempDir, type StaticServer } from './remote-servers.js'
import { PathStore } from '../src/remote/path.js'
import { HttpStore } from '../src/remote/http.js'
import { objectKey } from '../src/remote/layout.js'
import { MemoryStore } from '../src/cas/memory.js'
import { transfer } from '../src/remote/transfer.js'
import { cidOf, RAW, type CID } from '../src/cas/cid.js'
import { CheckError, CorruptObjectError, NotFoundError, UsageError, ZooError } from '../src/errors.js'

async function overwrite(file: string, bytes: Uint8Array): Promise<void> {
  await unlink(file).catch(() => {})
  await writeFile(file, bytes)
}

/** A PathStore folder served by a static web server, with an HttpStore reading it. */
async function served(opts: Parameters<typeof startStaticServer>[1] = {}, storeOpts: ConstructorParameters<typeof HttpStore>[1] = {}) {
  const dir = await tempDir()
  const backing = new PathStore(dir)
  const server = await startStaticServer(dir, opts)
  const store = new HttpStore(server.url, storeOpts)
  const seed = async (cid: CID, bytes: Uint8Array): Promise<void> => { await backing.put(cid, bytes); await backing.flush() }
  const cleanup = async (): Promise<void> => { await store.close(); await server.close(); await rm(dir, { recursive: true, force: true }) }
  return { dir, backing, server, store, seed, cleanup }
}

function object(size: number): { cid: CID; bytes: Buffer } {
  const bytes = randomBytes(size)
  return { cid: cidOf(RAW, bytes), bytes }
}

storeConformance('http remote (static server over a path remote)', async () => {
  const s = await served()
  return {
    store: s.store,
    seed: s.seed,
    reopen: async () => new HttpStore(s.server.url),
    damage: (cid, bytes) => overwrite(s.backing.pathOf(cid), bytes),
    cleanup: s.cleanup,
  }
})

describe('http remote', () => {
  it('is read-only: put names the URL and says where to push', async () => {
    const s = await served()
    try {
      const o = object(10)
      await assert.rejects(s.store.put(o.cid, o.bytes), (err: Error) => err instanceof ZooError
        && (err as ZooError).code === 'E_READ_ONLY' && err.message.includes(s.server.url) && /path or s3/.test(err.message))
    } finally { await s.cleanup() }
  })

  it('a poisoned object: CorruptObjectError naming remote and CID; transfer stores nothing bad', async () => {
    const s = await served()
    try {
      const good = object(3000)
      const bad = object(3000)
      await s.seed(good.cid, good.bytes)
      await s.seed(bad.cid, bad.bytes)
      const poisoned = Buffer.from(bad.bytes); poisoned[7]! ^= 0x80
      await overwrite(s.backing.pathOf(bad.cid), poisoned)
      await assert.rejects(s.store.get(bad.cid), (err: Error) => err instanceof CorruptObjectError
        && err.message.includes(bad.cid.toString()) && err.message.includes(s.store.location))
      const local = new MemoryStore()
      await assert.rejects(transfer(s.store, local, [good.cid, bad.cid]), (err: Error) =>
        err instanceof CorruptObjectError && err.message.includes(bad.cid.toString()))
      assert.equal(await local.has(bad.cid), false)
      assert.equal(await local.has(good.cid), true)
    } finally { await s.cleanup() }
  })

  it('404 is NotFoundError; has() uses HEAD', async () => {
    const s = await served()
    try {
      const o = object(10)
      assert.equal(await s.store.has(o.cid), false)
      await assert.rejects(s.store.get(o.cid), NotFoundError)
      assert.ok(s.server.requests.some((r) => r.method === 'HEAD'))
    } finally { await s.cleanup() }
  })

  it('refuses a huge Content-Length before reading the body', async () => {
    const o = object(100)
    let sent = 0
    const s = await served({
      intercept: (req, res) => {
        if (!req.url?.includes(o.cid.toString())) return false
        res.writeHead(200, { 'content-length': String(2 ** 40) })
        const timer = setInterval(() => { if (!res.write(Buffer.alloc(65536))) return; sent += 65536 }, 1)
        res.on('close', () => clearInterval(timer))
        return true
      },
    })
    try {
      await assert.rejects(s.store.get(o.cid), (err: Error) => err instanceof CheckError
        && (err as CheckError).code === 'E_REMOTE_TOO_LARGE' && err.message.includes(o.cid.toString()))
    } finally { await s.cleanup() }
    assert.ok(sent < 16 * 1024 * 1024, `server managed to send ${sent} bytes`)
  })

  it('refuses an endless body without Content-Length once it passes the object size limit', async () => {
    const o = object(100)
    const s = await served({
      intercept: (req, res) => {
        if (!req.url?.includes(o.cid.toString())) return false
        res.writeHead(200) // chunked, no length
        const chunk = Buffer.alloc(1024 * 1024)
        const pump = (): void => { while (res.write(chunk)) { /* keep writing */ } }
        res.on('drain', pump)
        pump()
        return true
      },
    })
    try {
      const before = process.memoryUsage().rss
      await assert.rejects(s.store.get(o.cid), (err: Error) => (err as ZooError).code === 'E_REMOTE_TOO_LARGE')
      assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'memory stayed bounded')
    } finally { await s.cleanup() }
  })

  it('reads no byte beyond the declared Content-Length, even when the server sends more', async () => {
    const o = object(1000)
    const next = object(1000)
    const fake = Buffer.from(next.bytes); fake[0]! ^= 1
    const s = await served({
      intercept: (req, res) => {
        if (!req.url?.includes(o.cid.toString())) return false
        // The declared length covers the object; then a smuggled "second response" with bad bytes for
        // the next object follows on the same connection.
        const smuggled = `HTTP/1.1 200 OK\r\ncontent-length: ${fake.length}\r\n\r\n`
        res.socket!.write(`HTTP/1.1 200 OK\r\ncontent-length: ${o.bytes.length}\r\nconnection: keep-alive\r\n\r\n`)
        res.socket!.write(Buffer.concat([o.bytes, Buffer.from(smuggled), fake, randomBytes(100000)]))
        return true
      },
    })
    try {
      await s.seed(next.cid, next.bytes)
      // Node's parser sees the extra bytes with the response: the whole answer is refused.
      await assert.rejects(s.store.get(o.cid), (err: Error) => err instanceof CheckError
        && (err as CheckError).code === 'E_REMOTE_TOO_LARGE' && err.message.includes(o.cid.toString()))
      // The next request must not be answered by the smuggled bytes.
      assert.deepEqual(Buffer.from(await s.store.get(next.cid)), next.bytes)
    } finally { await s.cleanup() }
  })

  it('a body shorter than its Content-Length is an error, never a short object', async () => {
    const o = object(5000)
    const s = await served({
      intercept: (req, res) => {
        if (!req.url?.includes(o.cid.toString())) return false
        res.writeHead(200, { 'content-length': String(o.bytes.length) })
        res.write(o.bytes.subarray(0, 2000), () => res.destroy())
        return true
      },
    })
    try {
      await assert.rejects(s.store.get(o.cid), (err: Error) => (err as ZooError).code === 'E_REMOTE_IO'
        && err.message.includes(o.cid.toString()))
    } finally { await s.cleanup() }
  })

  it('times out a server that stops sending', async () => {
    const o = object(100)
    const s = await served({
      intercept: (req, res) => {
        if (!req.url?.includes(o.cid.toString())) return false
        res.writeHead(200, { 'content-length': '100' })
        res.write(o.bytes.subarray(0, 10)) // then silence
        return true
      },
    }, { idleTimeoutMs: 200 })
    try {
      await assert.rejects(s.store.get(o.cid), (err: Error) => (err as ZooError).code === 'E_REMOTE_IO' && /no data/.test(err.message))
    } finally { await s.cleanup() }
  })

  it('follows same-origin redirects with credentials; refuses other origins and sends them nothing', async () => {
    const o = object(500)
    let foreign!: StaticServer
    const s = await served({
      intercept: (req, res) => {
        if (req.url?.startsWith('/moved/')) { res.writeHead(301, { location: req.url.slice('/moved'.length) }).end(); return true }
        if (req.url?.startsWith('/away/')) { res.writeHead(302, { location: `${foreign.url}${req.url.slice('/away/'.length)}` }).end(); return true }
        return false
      },
    })
    foreign = await startStaticServer(s.dir) // another port on 127.0.0.1: another origin
    try {
      await s.seed(o.cid, o.bytes)
      const password = 'pa55-w0rd-secret'
      const authed = (path: string): HttpStore =>
        new HttpStore(`http://alice:${password}@127.0.0.1:${s.server.port}/${path}`)
      const same = authed('moved/')
      assert.ok(!same.location.includes(password) && !same.location.includes('alice'))
      assert.deepEqual(Buffer.from(await same.get(o.cid)), o.bytes)
      const expected = 'Basic ' + Buffer.from(`alice:${password}`).toString('base64')
      const followed = s.server.requests.filter((r) => r.url === '/' + objectKey(o.cid))
      assert.ok(followed.length > 0 && followed.every((r) => r.headers.authorization === expected))
      await same.close()

      const away = authed('away/')
      await assert.rejects(away.get(o.cid), (err: Error) => err instanceof CheckError
        && (err as CheckError).code === 'E_REDIRECT_REFUSED' && !err.message.includes(password))
      await assert.rejects(away.has(o.cid), CheckError)
      await away.close()
      // Also with a token from the environment.
      const envStore = new HttpStore(`${s.server.url}away/`, { env: { GIT_ZOO_HTTP_AUTHORIZATION: 'Bearer tok-123' } })
      await assert.rejects(envStore.get(o.cid), CheckError)
      await envStore.close()
      assert.equal(foreign.requests.length, 0, 'the other origin received no request at all')
      assert.equal(foreign.requests.filter((r) => r.headers.authorization).length, 0)
    } finally {
      await foreign.close()
      await s.cleanup()
    }
  })

  it('refuses URLs with CR/LF and a redirect Location carrying control characters', async () => {
    for (const bad of ['http://127.0.0.1:1/zoo\r\nAuthorization: x', 'http://127.0.0.1:1/zoo\n', 'http://127.0.0.1:1/\tzoo']) {
      assert.throws(() => new HttpStore(bad), (err: Error) => err instanceof UsageError && !/\r|\n/.test(err.message))
    }
    assert.throws(() => new HttpStore('http://127.0.0.1:1/zoo?token=1'), UsageError)
    assert.throws(() => new HttpStore('http://127.0.0.1:1/', { env: { GIT_ZOO_HTTP_AUTHORIZATION: 'Bearer x\r\nX-Evil: 1' } }), UsageError)
  })

  it('listing needs folder listings; without them list() says so clearly', async () => {
    const s = await served({ listings: false })
    try {
      const o = object(10)
      await s.seed(o.cid, o.bytes)
      await assert.rejects(async () => { for await (const _ of s.store.list()) { /* drain */ } },
        (err: Error) => (err as ZooError).code === 'E_UNSUPPORTED' && err.message.includes(s.store.location))
      assert.deepEqual(Buffer.from(await s.store.get(o.cid)), o.bytes) // get needs no listing
    } finally { await s.cleanup() }
  })
})
