import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { startStaticServer, tempDir } from './remote-servers.js'
import { MemoryStore } from '../src/cas/memory.js'
import type { Store } from '../src/cas/store.js'
import { cidOf, RAW, type CID } from '../src/cas/cid.js'
import { transfer, TransferError } from '../src/remote/transfer.js'
import { FaultyStore } from '../src/remote/faulty.js'
import { PathStore } from '../src/remote/path.js'
import { HttpStore } from '../src/remote/http.js'
import { CorruptObjectError, ZooError } from '../src/errors.js'

function object(size: number): { cid: CID; bytes: Buffer } {
  const bytes = randomBytes(size)
  return { cid: cidOf(RAW, bytes), bytes }
}

async function filled(count: number, size = 1000): Promise<{ store: MemoryStore; objs: Array<{ cid: CID; bytes: Buffer }> }> {
  const store = new MemoryStore()
  const objs = Array.from({ length: count }, (_, i) => object(size + i))
  for (const o of objs) await store.put(o.cid, o.bytes)
  return { store, objs }
}

/** Counts concurrent gets and flushes of a store. */
class Watched implements Store {
  inFlight = 0
  maxInFlight = 0
  flushes = 0
  constructor(readonly inner: Store, readonly delayMs = 0) {}
  get location(): string { return this.inner.location }
  put(cid: CID, bytes: Uint8Array): Promise<boolean> { return this.inner.put(cid, bytes) }
  async get(cid: CID): Promise<Uint8Array> {
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      await new Promise((r) => setTimeout(r, this.delayMs))
      return await this.inner.get(cid)
    } finally { this.inFlight-- }
  }
  has(cid: CID): Promise<boolean> { return this.inner.has(cid) }
  list(): AsyncIterable<CID> { return this.inner.list() }
  async flush(): Promise<void> { this.flushes++; await this.inner.flush() }
  close(): Promise<void> { return this.inner.close() }
}

describe('transfer', () => {
  it('copies only what the destination lacks, once per CID, and flushes the destination', async () => {
    const { store: from, objs } = await filled(20)
    const to = new Watched(new MemoryStore())
    for (const o of objs.slice(0, 5)) await to.put(o.cid, o.bytes)
    const cids = [...objs.map((o) => o.cid), ...objs.map((o) => o.cid)] // repeats are skipped
    const sizes = new Map(objs.map((o) => [o.cid.toString(), o.bytes.length]))
    const seen: number[] = []
    const r = await transfer(from, to, cids, { sizeOf: (c) => sizes.get(c.toString()), onProgress: (p) => seen.push(p.objects + p.skippedObjects) })
    assert.equal(r.objects, 15)
    assert.equal(r.bytes, objs.slice(5).reduce((n, o) => n + o.bytes.length, 0))
    assert.equal(r.skippedObjects, 5)
    assert.equal(r.skippedBytes, objs.slice(0, 5).reduce((n, o) => n + o.bytes.length, 0))
    assert.equal(to.flushes, 1)
    assert.equal(seen.at(-1), 20)
    for (const o of objs) assert.deepEqual(Buffer.from(await to.get(o.cid)), o.bytes)
  })

  it('keeps at most `concurrency` objects in flight, and takes CIDs from an async source', async () => {
    const { store, objs } = await filled(24)
    const from = new Watched(store, 5)
    async function* source(): AsyncIterable<CID> { for (const o of objs) { await Promise.resolve(); yield o.cid } }
    const r = await transfer(from, new MemoryStore(), source(), { concurrency: 3 })
    assert.equal(r.objects, 24)
    assert.equal(from.maxInFlight, 3)
    const r8 = await transfer(new Watched(store, 2), new MemoryStore(), objs.map((o) => o.cid))
    assert.equal(r8.objects, 24)
  })

  it('bytes flipped on read (fault-injecting store): refused, named, nothing bad stored', async () => {
    const { store, objs } = await filled(10)
    const from = new FaultyStore(store, [{ op: 'get', nth: 4, fault: 'flip' }])
    const to = new MemoryStore()
    await assert.rejects(transfer(from, to, objs.map((o) => o.cid), { concurrency: 1 }), (err: Error) =>
      err instanceof CorruptObjectError && err.message.includes(objs[3]!.cid.toString()) && err.message.includes(store.location))
    assert.equal(await to.has(objs[3]!.cid), false)
    for await (const cid of to.list()) {
      const want = objs.find((o) => o.cid.equals(cid))!
      assert.deepEqual(Buffer.from(to.objects.get(cid.toString())!), want.bytes)
    }
    // Every kind of read damage is caught the same way.
    for (const fault of ['truncate', 'empty', 'extra'] as const) {
      const f = new FaultyStore(store, [{ op: 'get', nth: 1, fault }])
      const dst = new MemoryStore()
      await assert.rejects(transfer(f, dst, [objs[0]!.cid]), CorruptObjectError)
      assert.equal(dst.objects.size, 0)
    }
    // A store that verifies after the damage throws on its own.
    const rv = new FaultyStore(store, [{ op: 'get', fault: 'flip' }], { reverify: true })
    await assert.rejects(rv.get(objs[0]!.cid), CorruptObjectError)
  })

  it('a failed call names the CID and store; a rerun completes without copying anything twice', async () => {
    const { store, objs } = await filled(30)
    const from = new FaultyStore(store)
    const to = new FaultyStore(new MemoryStore(), [{ op: 'put', nth: 12, fault: 'fail' }])
    await assert.rejects(transfer(from, to, objs.map((o) => o.cid), { concurrency: 4 }), (err: Error) => {
      const cid = (err as ZooError).data.cid as string
      return err instanceof ZooError && err.message.includes(cid) && err.message.includes(to.location)
    })
    assert.equal(to.calls.flush, 1, 'what was copied before the failure is flushed')
    const firstGets = from.calls.get
    const copied = (to.inner as MemoryStore).objects.size
    assert.ok(copied >= 11 && copied < 30)
    const r = await transfer(from, to, objs.map((o) => o.cid), { concurrency: 4 })
    assert.equal(r.objects, 30 - copied)
    assert.equal(r.skippedObjects, copied)
    assert.equal(from.calls.get - firstGets, 30 - copied, 'the rerun reads only the missing objects')
  })

  it('a connection cut mid-body: the rerun completes and re-downloads only the cut object', async () => {
    const dir = await tempDir()
    const seed = new PathStore(dir)
    const objs = Array.from({ length: 16 }, () => object(64 * 1024))
    for (const o of objs) await seed.put(o.cid, o.bytes)
    let cut = false
    const server = await startStaticServer(dir, {
      intercept: (req, res) => {
        if (cut || req.method !== 'GET' || !req.url?.includes(objs[9]!.cid.toString())) return false
        cut = true
        res.writeHead(200, { 'content-length': String(64 * 1024) })
        res.write(objs[9]!.bytes.subarray(0, 30000), () => res.socket?.destroy())
        return true
      },
    })
    const local = await tempDir()
    try {
      const remote = new HttpStore(server.url)
      const to = new PathStore(local)
      await assert.rejects(transfer(remote, to, objs.map((o) => o.cid), { concurrency: 2 }), (err: Error) =>
        (err as ZooError).code === 'E_REMOTE_IO' && err.message.includes(objs[9]!.cid.toString()) && err.message.includes(server.url))
      assert.equal(await to.has(objs[9]!.cid), false)
      const r = await transfer(remote, new PathStore(local), objs.map((o) => o.cid), { concurrency: 2 })
      assert.equal(r.objects + r.skippedObjects, 16)
      const gets = server.requests.filter((q) => q.method === 'GET')
      const perObject = new Map<string, number>()
      for (const q of gets) perObject.set(q.url, (perObject.get(q.url) ?? 0) + 1)
      for (const o of objs) {
        const n = [...perObject].find(([u]) => u.endsWith(o.cid.toString()))?.[1] ?? 0
        assert.equal(n, o === objs[9] ? 2 : 1, `GETs of ${o.cid}`)
      }
      for (const o of objs) assert.deepEqual(Buffer.from(await to.get(o.cid)), o.bytes)
      await remote.close()
    } finally {
      await server.close()
      await rm(dir, { recursive: true, force: true })
      await rm(local, { recursive: true, force: true })
    }
  })

  it('stops on abort: in-flight objects finish, what was copied is flushed', async () => {
    const { store, objs } = await filled(40)
    const ac = new AbortController()
    const to = new Watched(new MemoryStore())
    await assert.rejects(transfer(new Watched(store, 1), to, objs.map((o) => o.cid), {
      concurrency: 2, signal: ac.signal, onProgress: (p) => { if (p.objects === 5) ac.abort(new Error('user stop')) },
    }), /user stop/)
    assert.equal(to.flushes, 1)
    const n = (to.inner as MemoryStore).objects.size
    assert.ok(n >= 5 && n < 40)
  })

  it('a failing CID source is reported as a TransferError', async () => {
    const { store, objs } = await filled(3)
    async function* source(): AsyncIterable<CID> { yield objs[0]!.cid; throw new Error('manifest unreadable') }
    await assert.rejects(transfer(store, new MemoryStore(), source()), (err: Error) =>
      err instanceof TransferError && /manifest unreadable/.test(err.message))
  })
})
