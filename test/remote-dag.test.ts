import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { MemoryStore } from '../src/cas/memory.js'
import { CID, cidOf, RAW } from '../src/cas/cid.js'
import { buildTree, decodeNode, MAX_LINKS } from '../src/manifest/node.js'
import { syncFiles } from '../src/remote/dag.js'
import { FaultyStore } from '../src/remote/faulty.js'
import { CorruptObjectError } from '../src/errors.js'

/** A file of `n` small chunks in `store`; returns its root and the chunks. */
async function file(store: MemoryStore, n: number, shared: Array<[CID, number]> = []): Promise<{ root: string; size: number; chunks: Array<[CID, number]> }> {
  const chunks: Array<[CID, number]> = [...shared]
  for (let i = chunks.length; i < n; i++) {
    const b = randomBytes(16)
    const cid = cidOf(RAW, b)
    await store.put(cid, b)
    chunks.push([cid, b.length])
  }
  const root = await buildTree(chunks, (cid, bytes) => store.put(cid, bytes))
  return { root: root.toString(), size: chunks.reduce((a, [, s]) => a + s, 0), chunks }
}

/** Records the order of puts. */
class Recording extends MemoryStore {
  order: string[] = []
  override async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    const fresh = await super.put(cid, bytes)
    if (fresh) this.order.push(cid.toString())
    return fresh
  }
}

/** Invariant 2: every node was stored after every object it links to. */
function checkInvariant2(store: Recording): void {
  const at = new Map(store.order.map((c, i) => [c, i]))
  for (const [c, i] of at) {
    const cid = CID.parse(c)
    if (cid.code === RAW) continue
    for (const [link] of decodeNode(store.objects.get(c)!, cid).links) {
      assert.ok((at.get(link.toString()) ?? (store.objects.has(link.toString()) ? -1 : Infinity)) < i, `node ${c} stored before its link ${link}`)
    }
  }
}

describe('syncFiles', () => {
  it('copies a two-level tree with every node after its links, and skips what is there', async () => {
    const src = new MemoryStore()
    const big = await file(src, MAX_LINKS + 5)             // root -> 2 leaf nodes -> chunks
    const single = await file(src, 1)                       // a one-chunk file: its root is the chunk
    const dst = new Recording()
    const r = await syncFiles(src, dst, [big, single, big])
    assert.equal(r.objects, src.objects.size)
    assert.equal(dst.objects.size, src.objects.size)
    checkInvariant2(dst)
    const again = await syncFiles(src, dst, [big, single])
    assert.equal(again.objects, 0)
    assert.equal(again.skippedObjects, 2)
    assert.equal(again.skippedBytes, big.size + single.size)
  })

  it('a fine-tune sharing a subtree moves only the new chunks and the nodes above them', async () => {
    const src = new MemoryStore()
    const base = await file(src, MAX_LINKS * 2)
    const dst = new Recording()
    await syncFiles(src, dst, [base])
    // Same first 1024 chunks (one shared leaf node), 3 new chunks after.
    const tuned = await file(src, MAX_LINKS + 3, base.chunks.slice(0, MAX_LINKS))
    dst.order = []
    const r = await syncFiles(src, dst, [tuned])
    assert.equal(r.objects, 3 + 1 + 1, 'three chunks, one new leaf node, the new root')
    assert.equal(r.skippedBytes, 16 * MAX_LINKS, 'the shared leaf node was skipped whole')
    checkInvariant2(dst)
  })

  it('an interruption leaves no node without its links; the rerun copies only the rest', async () => {
    const src = new MemoryStore()
    const big = await file(src, MAX_LINKS + 100)
    const inner = new Recording()
    const dst = new FaultyStore(inner, [{ op: 'put', nth: 600, fault: 'fail' }])
    await assert.rejects(syncFiles(src, dst, [big], { concurrency: 4 }), /injected fault/)
    checkInvariant2(inner)
    const before = inner.objects.size
    const reads = new FaultyStore(src)
    const r = await syncFiles(reads, inner, [big], { concurrency: 4 })
    assert.equal(r.objects, src.objects.size - before)
    assert.equal(inner.objects.size, src.objects.size)
    checkInvariant2(inner)
  })

  it('a node damaged on the source stops the copy naming it; nothing above it is stored', async () => {
    const src = new MemoryStore()
    const big = await file(src, MAX_LINKS + 1)
    const bad = new FaultyStore(src, [{ op: 'get', when: (c) => c.cid === big.root, fault: 'flip' }], { reverify: true })
    const dst = new MemoryStore()
    await assert.rejects(syncFiles(bad, dst, [big]), (err: Error) => err instanceof CorruptObjectError && err.message.includes(big.root))
    assert.equal(await dst.has(CID.parse(big.root)), false)
  })
})
