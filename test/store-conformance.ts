/**
 * The one conformance suite every Store implementation runs (memory, local packs, path, http, s3).
 * Call `storeConformance(name, open)` from a *.test.ts file.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { cidOf, RAW, DAG_CBOR, type CID } from '../src/cas/cid.js'
import type { Store } from '../src/cas/store.js'
import { CorruptObjectError, NotFoundError, ZooError } from '../src/errors.js'

export interface StoreHarness {
  store: Store
  /** Reopen a fresh handle on the same backing storage (a second process's view), when supported. */
  reopen?: () => Promise<Store>
  /** Replace the stored bytes of `cid` by `bytes` behind the store's back, when supported. */
  damage?: (cid: CID, bytes: Uint8Array) => Promise<void>
  /**
   * A store that only reads (http) cannot put: the harness seeds objects through this instead, and
   * the write checks assert that every put is refused with E_READ_ONLY and stores nothing.
   */
  seed?: (cid: CID, bytes: Uint8Array) => Promise<void>
  cleanup: () => Promise<void>
}

function obj(size: number, codec = RAW): { cid: CID, bytes: Uint8Array } {
  const bytes = randomBytes(size)
  return { cid: cidOf(codec, bytes), bytes }
}

export function storeConformance(name: string, open: () => Promise<StoreHarness>): void {
  describe(`Store conformance: ${name}`, () => {
    async function withStore(fn: (h: StoreHarness) => Promise<void>): Promise<void> {
      const h = await open()
      try { await fn(h) } finally { await h.store.close().catch(() => {}); await h.cleanup() }
    }
    async function put(h: StoreHarness, cid: CID, bytes: Uint8Array): Promise<boolean> {
      if (h.seed) { await h.seed(cid, bytes); return true }
      const fresh = await h.store.put(cid, bytes)
      await h.store.flush()
      return fresh
    }

    it('gets back exactly what was put, for empty, small and large objects', () => withStore(async (h) => {
      for (const size of [0, 1, 1000, 3 * 1024 * 1024 + 7]) {
        const o = obj(size)
        assert.equal(await put(h, o.cid, o.bytes), true)
        assert.equal(await h.store.has(o.cid), true)
        assert.deepEqual(Buffer.from(await h.store.get(o.cid)), Buffer.from(o.bytes))
      }
    }))

    const readOnly = (err: unknown): boolean => err instanceof ZooError && err.code === 'E_READ_ONLY'

    it('is idempotent: a second put of the same object writes nothing', () => withStore(async (h) => {
      const o = obj(4096, DAG_CBOR)
      if (h.seed) {
        // read-only: a put is refused whether the object is there or not, and nothing changes
        await h.seed(o.cid, o.bytes)
        await assert.rejects(h.store.put(o.cid, o.bytes), readOnly)
        const other = obj(100)
        await assert.rejects(h.store.put(other.cid, other.bytes), readOnly)
        assert.equal(await h.store.has(other.cid), false)
        const listed = []
        for await (const c of h.store.list()) listed.push(c.toString())
        assert.deepEqual(listed, [o.cid.toString()])
        return
      }
      assert.equal(await h.store.put(o.cid, o.bytes), true)
      assert.equal(await h.store.put(o.cid, o.bytes), false)
      await h.store.flush()
      assert.equal(await h.store.put(o.cid, o.bytes), false)
      const seen = []
      for await (const c of h.store.list()) seen.push(c.toString())
      assert.deepEqual(seen, [o.cid.toString()])
    }))

    it('refuses bytes that do not match the CID, writing nothing', () => withStore(async (h) => {
      const o = obj(100)
      const wrong = Uint8Array.from(o.bytes); wrong[0] ^= 1
      await assert.rejects(h.store.put(o.cid, wrong), h.seed ? readOnly : CorruptObjectError)
      await h.store.flush()
      assert.equal(await h.store.has(o.cid), false)
    }))

    it('answers NotFoundError for an absent object', () => withStore(async (h) => {
      const o = obj(10)
      assert.equal(await h.store.has(o.cid), false)
      await assert.rejects(h.store.get(o.cid), NotFoundError)
    }))

    it('lists every object once', () => withStore(async (h) => {
      const want = new Set<string>()
      for (let i = 0; i < 20; i++) { const o = obj(i * 37); await put(h, o.cid, o.bytes); want.add(o.cid.toString()) }
      const seen: string[] = []
      for await (const c of h.store.list()) seen.push(c.toString())
      assert.equal(seen.length, want.size)
      assert.deepEqual(new Set(seen), want)
    }))

    it('makes flushed objects visible to a second handle', (t) => withStore(async (h) => {
      if (!h.reopen) { t.skip(`${name} has no second handle on the same storage`); return }
      const o = obj(5000)
      await put(h, o.cid, o.bytes)
      const other = await h.reopen()
      try {
        assert.equal(await other.has(o.cid), true)
        assert.deepEqual(Buffer.from(await other.get(o.cid)), Buffer.from(o.bytes))
      } finally { await other.close() }
    }))

    it('two handles writing at once: neither loses the other\'s objects, a third handle sees both', (t) => withStore(async (h) => {
      if (h.seed || !h.reopen) { t.skip(`${name} has no second writable handle`); return }
      const other = await h.reopen()
      try {
        const mine = Array.from({ length: 6 }, (_, i) => obj(1000 + i * 4099))
        const theirs = Array.from({ length: 6 }, (_, i) => obj(2000 + i * 4099))
        // interleaved puts, flushed at once, as two pushers to one remote would
        await Promise.all([
          (async () => { for (const o of mine) await h.store.put(o.cid, o.bytes); await h.store.flush() })(),
          (async () => { for (const o of theirs) await other.put(o.cid, o.bytes); await other.flush() })(),
        ])
        const third = await h.reopen()
        try {
          for (const o of [...mine, ...theirs]) {
            assert.equal(await third.has(o.cid), true)
            assert.deepEqual(Buffer.from(await third.get(o.cid)), Buffer.from(o.bytes))
          }
          const listed = new Set<string>()
          for await (const c of third.list()) listed.add(c.toString())
          assert.equal(listed.size, 12)
        } finally { await third.close() }
      } finally { await other.close() }
    }))

    it('never returns damaged bytes: get throws CorruptObjectError', (t) => withStore(async (h) => {
      if (!h.damage) { t.skip(`${name} cannot be damaged behind its back`); return }
      const o = obj(2048)
      await put(h, o.cid, o.bytes)
      const bad = Uint8Array.from(o.bytes); bad[1000] ^= 0x40
      await h.damage(o.cid, bad)
      await assert.rejects(h.store.get(o.cid), CorruptObjectError)
      await h.damage(o.cid, o.bytes.subarray(0, o.bytes.length - 1))
      await assert.rejects(h.store.get(o.cid), CorruptObjectError)
    }))
  })
}
