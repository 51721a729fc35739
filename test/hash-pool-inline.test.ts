/**
 * A HashPool without chunk workers (chunkThreads: BLAKE3 with the native addon, as add uses it in a
 * BLAKE3 zoo) computes every digest on the calling thread: hash(), a ring's hashRanges with one hash
 * for all ranges or one per range, and the whole-stream sha256 (still in its worker) must give the
 * digests the hash functions give.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { HashPool, chunkThreads } from '../src/cas/hash-pool.js'
import { blake3Backend } from '../src/cas/blake3.js'
import { BLAKE3, SHA2_256, digestWith } from '../src/cas/cid.js'

test('chunkThreads: none for native BLAKE3, one per core otherwise (one fewer when the caller hashes too)', () => {
  const cores = availableParallelism()
  assert.equal(chunkThreads('sha2-256'), cores)
  assert.equal(chunkThreads('sha2-256', { callerHashes: true }), Math.max(1, cores - 1))
  if (blake3Backend() === 'native') {
    assert.equal(chunkThreads('blake3'), 0)
    assert.equal(chunkThreads('blake3', { callerHashes: true }), 0)
  } else assert.equal(chunkThreads('blake3', { callerHashes: true }), Math.max(1, cores - 1))
})

test('a pool of 0 chunk workers hashes ranges, whole inputs and the stream exactly', async () => {
  const pool = new HashPool(0)
  try {
    const ring = await pool.slabs(2, 1024 * 1024)
    const slab = await ring.acquire()
    const buf = ring.slabs[slab]!
    buf.set(randomBytes(buf.length))
    const offs = [0, 1000, 70_000, 500_000]
    const lens = [1000, 69_000, 430_000, 548_576]
    const want = (code: number, i: number): Buffer => Buffer.from(digestWith(code, buf.subarray(offs[i]!, offs[i]! + lens[i]!)))
    for (const mh of [BLAKE3, SHA2_256]) {
      const got = await ring.hashRanges(slab, offs, lens, mh)
      for (let i = 0; i < offs.length; i++) assert.deepEqual(Buffer.from(got.subarray(32 * i, 32 * i + 32)), want(mh, i))
    }
    const per = [BLAKE3, SHA2_256, SHA2_256, BLAKE3]
    const mixed = await ring.hashRanges(slab, offs, lens, per)
    for (let i = 0; i < offs.length; i++) assert.deepEqual(Buffer.from(mixed.subarray(32 * i, 32 * i + 32)), want(per[i]!, i))
    const whole = randomBytes(3000)
    assert.deepEqual(Buffer.from(await pool.hash(whole, BLAKE3)), Buffer.from(digestWith(BLAKE3, whole)))
    assert.deepEqual(Buffer.from(await pool.hash(whole)), createHash('sha256').update(whole).digest())
    await ring.update(slab, 0, 600_000)
    await ring.update(slab, 600_000, buf.length - 600_000)
    assert.equal(await ring.digest(), createHash('sha256').update(buf).digest('hex'))
    ring.release(slab)
  } finally { await pool.close() }
})
