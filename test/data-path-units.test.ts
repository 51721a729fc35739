/**
 * Parts of the local data path (spec/performance.md) on their own:
 * - the fast file-node reader of get and verify (src/zoo/file-node.ts) against the strict decoder:
 *   it takes exactly the canonical bytes encodeNode writes and gives the same node; anything else
 *   goes back to decodeNode, so a malformed node is still reported as one through the CLI;
 * - the early writeback of get's output files (EarlyWriteback, src/cas/atomic.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { cidOf, DAG_CBOR, RAW } from '../src/cas/cid.js'
import { decodeNode, encodeNode, type FileNode } from '../src/manifest/node.js'
import { readFileNodeFast } from '../src/zoo/file-node.js'
import { computeSeal, parseManifest, serializeManifest } from '../src/manifest/manifest.js'
import { LocalStore } from '../src/cas/local.js'
import { EarlyWriteback } from '../src/cas/atomic.js'
import { tempRepo, zoo } from './cli.js'

const links = (n: number, codec: number, size: (i: number) => number): Array<[CID, number]> =>
  Array.from({ length: n }, (_, i) => [cidOf(codec, Buffer.from(`object ${i}`)), size(i)])

const same = (a: FileNode, b: FileNode): void => {
  assert.equal(a.size, b.size)
  assert.equal(a.leaf, b.leaf)
  assert.deepEqual(a.links.map(([c, s]) => [c.toString(), s]), b.links.map(([c, s]) => [c.toString(), s]))
}

test('every canonical node reads the same fast as strictly: leaf and branch, every integer width, 0 to 1,024 links', () => {
  // link sizes and totals that need each CBOR integer form: < 24, 1, 2, 4 and 8 bytes
  const sizes = [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7]
  const cases: FileNode[] = [
    { size: 0, leaf: true, links: [] },
    ...sizes.map((s) => ({ size: s, leaf: true, links: links(1, RAW, () => s) })),
    ...sizes.map((s) => ({ size: 3 * s, leaf: false, links: links(3, DAG_CBOR, () => s) })),
  ]
  const full = links(1024, RAW, (i) => 262144 + (i % 7))
  cases.push({ size: full.reduce((a, [, s]) => a + s, 0), leaf: true, links: full })
  for (const node of cases) {
    const { cid, bytes } = encodeNode(node)
    const fast = readFileNodeFast(bytes)
    assert.ok(fast, `a canonical node of ${node.links.length} links (size ${node.size}) is read fast`)
    same(fast, decodeNode(bytes, cid))
  }
})

test('anything but the canonical node form is left to the strict decoder', () => {
  const good = encodeNode({ size: 300, leaf: true, links: links(2, RAW, () => 150) }).bytes
  const variants: Array<[string, Uint8Array]> = [
    // the same content with a non-minimal integer: 150 as a 2-byte integer (0x19 0x00 0x96)
    ['a non-minimal link size', Buffer.from(Buffer.from(good).toString('hex').replace(/1896$/, '190096'), 'hex')],
    // a3 | "leaf" f5 | "size" 19 01 2c | "links" ...: the same entries with size before leaf
    ['keys in another order', Buffer.concat([good.subarray(0, 1), good.subarray(6 + 1, 15), good.subarray(1, 7), good.subarray(15)])],
    ['a trailing byte', Buffer.concat([good, Buffer.from([0])])],
    ['one byte short', good.subarray(0, good.length - 1)],
    ['sizes that do not add up', encodeNode({ size: 301, leaf: true, links: links(2, RAW, () => 150) }).bytes],
    ['a leaf linking dag-cbor nodes', encodeNode({ size: 300, leaf: true, links: links(2, DAG_CBOR, () => 150) }).bytes],
    ['a branch linking raw chunks', encodeNode({ size: 300, leaf: false, links: links(2, RAW, () => 150) }).bytes],
    ['an extra key', dagCbor.encode({ leaf: true, size: 0, links: [], x: 1 })],
    ['not a map', dagCbor.encode([1, 2, 3])],
  ]
  assert.ok(readFileNodeFast(good))
  for (const [what, bytes] of variants) assert.equal(readFileNodeFast(bytes), null, what)
})

test('verify reports a node with a matching CID but non-canonical bytes as malformed, and get refuses the model', async () => {
  const { dir, cleanup } = await tempRepo('zoo-file-node-')
  try {
    assert.equal((await zoo(dir, ['init'])).code, 0)
    // a file of two chunks: its root is a leaf node; rewrite the manifest to point at a
    // non-canonical copy of that node (stored under its own, matching CID)
    const bytes = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24
    await writeFile(join(dir, 'w.bin'), bytes)
    const add = await zoo(dir, ['add', 'w.bin', '--name', 'm/a'])
    assert.equal(add.code, 0, add.stderr)
    const path = join(dir, 'models', 'm', 'a', 'v1', 'manifest.json')
    const m = parseManifest(await readFile(path, 'utf8'))
    const root = CID.parse(m.files[0]!.root)
    const store = await LocalStore.open(join(dir, '.git', 'zoo'))
    const node = decodeNode(await store.get(root), root)
    assert.ok(node.links.length > 1)
    const canonical = encodeNode(node).bytes
    // the first link's size as an 8-byte integer instead of its minimal form
    const first = node.links[0]![1]
    const minimal = Buffer.from(dagCbor.encode(first))
    const at = Buffer.from(canonical).indexOf(Buffer.concat([Buffer.from(node.links[0]![0].bytes), minimal]))
    assert.ok(at > 0)
    const wide = Buffer.alloc(9); wide[0] = 0x1b; wide.writeBigUInt64BE(BigInt(first), 1)
    const odd = Buffer.concat([canonical.subarray(0, at + 36), wide, canonical.subarray(at + 36 + minimal.length)])
    assert.equal(readFileNodeFast(odd), null)
    const oddCid = cidOf(DAG_CBOR, odd)
    await store.put(oddCid, odd)
    await store.close()
    const verify = await zoo(dir, ['verify', 'm/a'])
    assert.equal(verify.code, 0, verify.stderr)
    // point a manifest at the odd node: its CID matches its bytes, its form does not
    m.files[0]!.root = oddCid.toString()
    m.seal = computeSeal(m)
    await writeFile(path, serializeManifest(m))
    const bad = await zoo(dir, ['verify', 'm/a', '--json'])
    assert.equal(bad.code, 1, bad.stderr)
    const problems = JSON.parse(bad.stdout).problems as Array<{ object: string; problem: string }>
    assert.deepEqual(problems.map((p) => p.object), [oddCid.toString()])
    assert.match(problems[0]!.problem, /malformed node: .*more bytes than necessary/)
    const get = await zoo(dir, ['get', 'm/a', '--out', join(dir, 'out')])
    assert.notEqual(get.code, 0)
    assert.match(get.stderr, /more bytes than necessary/)
  } finally { await cleanup() }
})

test('EarlyWriteback starts one datasync per `every` bytes written, one at a time, and surfaces a failed one', async () => {
  const { dir, cleanup } = await tempRepo('zoo-writeback-')
  try {
    const fd = await open(join(dir, 'f.bin'), 'w')
    let syncs = 0
    const counted = Object.assign(Object.create(fd), { datasync: () => { syncs++; return fd.datasync() } })
    const wb = new EarlyWriteback(counted, 1000)
    const chunk = Buffer.alloc(400, 1)
    for (let i = 0; i < 10; i++) { await fd.write(chunk); wb.wrote(chunk.length); await wb.settle() }
    assert.equal(syncs, 3, 'a datasync each time 1,000 more bytes were written (at 1,200, 2,400 and 3,600)')
    // while one is in flight no other starts (no await between the calls: the first cannot settle)
    await fd.write(Buffer.alloc(4000, 2))
    for (let i = 0; i < 10; i++) wb.wrote(chunk.length)
    assert.equal(syncs, 4)
    await wb.settle()
    await fd.close()
    assert.equal((await readFile(join(dir, 'f.bin'))).length, 8000)
    // a datasync that fails (here: the file was closed under it) is thrown by settle and by the next write
    const closed = await open(join(dir, 'g.bin'), 'w')
    await closed.close()
    const broken = new EarlyWriteback(closed, 10)
    broken.wrote(20)
    await assert.rejects(broken.settle(), /EBADF|closed/)
    assert.throws(() => broken.wrote(1), /EBADF|closed/)
  } finally { await cleanup() }
})

test('readBatches: a batch whose callback rejects at once is recorded before the next batch is handed over, so the next callback is never called', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const { HashPool } = await import('../src/cas/hash-pool.js')
  const { readBatches } = await import('../src/cas/pack-read.js')
  const dir = await mkdtemp(join(tmpdir(), 'zoo-pack-read-'))
  const store = await LocalStore.open(dir)
  const pool = new HashPool(2)
  try {
    // three objects of 48 KiB, one per slab of 64 KiB
    const items = []
    for (let i = 0; i < 3; i++) {
      const bytes = Buffer.alloc(48 * 1024, i + 1)
      const cid = cidOf(RAW, bytes)
      await store.put(cid, bytes)
      items.push({ cid, entry: null as unknown as NonNullable<Awaited<ReturnType<LocalStore['locate']>>> })
    }
    await store.flush()
    for (const it of items) it.entry = (await store.locate(it.cid))!
    const ring = await pool.slabs(4, 64 * 1024, { stream: false })
    // the first batch's hashes come back only once the second batch's have: the second batch is
    // then waiting for its turn when the first is handed over (the order that raced in get)
    let secondHashed!: () => void
    const second = new Promise<void>((resolve) => { secondHashed = resolve })
    let calls = 0
    const ordered = {
      slabs: ring.slabs,
      acquire: () => ring.acquire(),
      release: (i: number) => ring.release(i),
      hashRanges: async (slab: number, offs: number[], lens: number[]) => {
        const n = calls++
        const d = await ring.hashRanges(slab, offs, lens)
        if (n === 0) { await second; for (let k = 0; k < 10; k++) await Promise.resolve() } else if (n === 1) secondHashed()
        return d
      },
    } as unknown as typeof ring
    const called: number[] = []
    await assert.rejects(readBatches(store, ordered, items, async (b) => {
      called.push(b.items[0]!.index)
      if (b.items[0]!.index === 0) throw new Error('the first batch is bad')
    }), /the first batch is bad/)
    assert.deepEqual(called, [0], 'no callback after the failed one')
  } finally {
    await pool.close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
})
