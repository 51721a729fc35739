/** Manifests: round trip, seal vectors, strict dag-cbor decoding, names and paths. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { encode } from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import {
  computeSeal, sealBytes, serializeManifest, parseManifest, checkSeal, validateManifest, type Manifest, type ManifestBody, type FileEntry,
} from '../src/manifest/manifest.js'
import { buildCheckpoints, expandManifest, readCheckpoints } from '../src/manifest/checkpoints.js'
import { decodeStrict } from '../src/manifest/cbor.js'
import { decodeNode, encodeNode, buildTree, fileChunks, MAX_LINKS } from '../src/manifest/node.js'
import { checkRelPath, checkModelName, parseModelRef } from '../src/manifest/names.js'
import { cidOf, RAW, DAG_CBOR, parseCid } from '../src/cas/cid.js'
import { MemoryStore } from '../src/cas/memory.js'
import { FormatError } from '../src/errors.js'

const VECTORS = new URL('./vectors/manifests.json', import.meta.url)

function sample(): ManifestBody {
  return {
    zoo: 1, name: 'vit-s/cifar100/ft-lr3e-4-s2', version: 2, message: 'best of the sweep', seed: 2,
    dataset: 'cifar100@1', arch: 'vit-s', params: { lr: 0.0003, epochs: 50, warmup: true, sched: 'cosine' },
    metrics: { test_acc: 0.8125, test_loss: 0.5 }, history: [{ epoch: 0, test_acc: 0.1 }, { epoch: 1, test_acc: 0.8125 }],
    config: { path: 'config.yaml', size: 12, sha256: 'a'.repeat(64) },
    files: [{ path: 'model.safetensors', size: 1048576, sha256: 'b'.repeat(64), root: cidOf(RAW, new Uint8Array([1, 2, 3])).toString(), format: 'safetensors' }],
    parents: [{ name: 'vit-s/pretrain', version: 1, seal: cidOf(DAG_CBOR, new Uint8Array([9])).toString(), relation: 'fine-tune' }],
    code: { repo: 'https://example.invalid/lab/train.git', commit: 'c'.repeat(40), dirty: false },
    env: { node: 'v20', git_zoo: '0.1.0' }, promoter: 'A Researcher <a@example.invalid>', created: '2026-11-22T00:00:00.000Z',
  }
}

/**
 * Seal vectors computed by an independent implementation: test/vectors/manifests.py (Python standard
 * library only, written from spec/format.md; it never imports src/). Regenerate with
 * `/usr/bin/python3 test/vectors/manifests.py`.
 */
interface Vector {
  name: string; manifest: ManifestBody; cbor_hex: string; seal: string
  /** Format 2: the checkpoint node the manifest links (its entries, history, bytes and CID). */
  node?: { files: FileEntry[]; history: Array<Record<string, number>>; cbor_hex: string; cid: string }
}

test('seal vectors: manifest -> canonical dag-cbor -> CID', () => {
  const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as Vector[]
  assert.ok(vectors.length >= 8)
  for (const v of vectors) {
    // each vector is a valid manifest, and the seal survives the manifest's own text form
    const m = parseManifest(JSON.stringify({ ...v.manifest, seal: v.seal }), v.name)
    assert.equal(checkSeal(m).ok, true, v.name)
    assert.equal(Buffer.from(sealBytes(v.manifest)).toString('hex'), v.cbor_hex, v.name)
    assert.equal(computeSeal(v.manifest), v.seal, v.name)
    assert.equal(cidOf(DAG_CBOR, Buffer.from(v.cbor_hex, 'hex')).toString(), v.seal, v.name)
  }
  assert.ok(vectors.some((v) => v.node), 'a format 2 vector with its checkpoint node')
})

test('checkpoint node vectors: the node git-zoo builds is the bytes the independent implementation gives; reads check it', async () => {
  const vectors = (JSON.parse(readFileSync(VECTORS, 'utf8')) as Vector[]).filter((v) => v.node)
  for (const v of vectors) {
    const n = v.node!
    const store = new MemoryStore()
    const link = await buildCheckpoints(n.files, n.history, (cid, bytes) => store.put(cid, bytes))
    assert.equal(link.node, n.cid, v.name)
    assert.equal(Buffer.from(await store.get(CID.parse(n.cid))).toString('hex'), n.cbor_hex, v.name)
    assert.deepEqual(link, v.manifest.checkpoints, v.name)
    const m = parseManifest(JSON.stringify({ ...v.manifest, seal: v.seal }), v.name)
    const full = await expandManifest(m, store)
    assert.deepEqual(full.files.map((f) => f.path), [...m.files, ...n.files].map((f) => f.path))
    assert.deepEqual(full.history, n.history)
    assert.equal(checkSeal(full).ok, true, 'a complete view seals as its manifest')
    assert.equal(serializeManifest(full), serializeManifest(m), 'and serializes as it')
    // a summary that disagrees with the node is refused on read
    const wrong = parseManifest(JSON.stringify({ ...v.manifest, checkpoints: { ...v.manifest.checkpoints, files: 3 }, seal: v.seal }), v.name)
    await assert.rejects(expandManifest(wrong, store), (e: FormatError) => e.code === 'E_NODE' && /does not match the manifest's checkpoints summary/.test(e.message))
  }
  // paging: 2,500 checkpoint files make a root and two more pages, read back in order
  const many = Array.from({ length: 2500 }, (_, e) => ({ path: `c${e}/w.safetensors`, size: 10, sha256: 'a'.repeat(64), root: cidOf(RAW, new Uint8Array([e & 255, e >> 8])).toString(), format: 'safetensors', epoch: e }))
  const store = new MemoryStore()
  const puts: string[] = []
  const link = await buildCheckpoints(many, many.map((f) => ({ epoch: f.epoch, acc: f.epoch / 2500 })), async (cid, bytes) => { puts.push(cid.toString()); await store.put(cid, bytes) })
  assert.equal(puts.length, 3)
  assert.equal(puts[2], link.node, 'the root is stored after its pages')
  const got = await readCheckpoints(link, store)
  assert.deepEqual(got.files.map((f) => f.epoch), many.map((f) => f.epoch))
  assert.equal(got.history.length, 2500)
  // older or newer formats are refused with a clear message
  const body = sample()
  assert.throws(() => validateManifest({ ...body, zoo: 3, seal: computeSeal(body) }), /unsupported format version 3 \(this git-zoo reads 1 and 2\); upgrade git-zoo/)
  assert.throws(() => validateManifest({ ...body, zoo: 2, seal: 'x' }), /checkpoints is not/)
})

test('manifest text round trips and has exactly one encoding', () => {
  const body = sample()
  const m: Manifest = { ...body, seal: computeSeal(body) }
  const text = serializeManifest(m)
  const back = parseManifest(text)
  assert.deepEqual(back, m)
  assert.equal(serializeManifest(back), text)
  assert.equal(checkSeal(back).ok, true)
  // key order in the file does not matter to the seal; content does
  const shuffled = JSON.stringify(Object.fromEntries(Object.entries(m).reverse()))
  assert.equal(checkSeal(parseManifest(shuffled)).ok, true)
  for (const mutate of [
    (x: Manifest) => { x.seed = 3 }, (x: Manifest) => { x.metrics.test_acc = 0.8126 },
    (x: Manifest) => { x.files[0]!.size += 1 }, (x: Manifest) => { x.code!.commit = 'd'.repeat(40) },
    (x: Manifest) => { x.config!.sha256 = 'e'.repeat(64) }, (x: Manifest) => { x.params.lr = 0.001 },
    (x: Manifest) => { x.files[0]!.root = cidOf(RAW, new Uint8Array([4])).toString() },
  ]) {
    const x = parseManifest(text)
    mutate(x)
    assert.equal(checkSeal(x).ok, false)
  }
})

test('manifest validation rejects bad structure with a named field', () => {
  const base = JSON.parse(serializeManifest({ ...sample(), seal: computeSeal(sample()) }))
  const bad: Array<[(m: any) => void, RegExp]> = [
    [(m) => { m.files[0].path = '../x' }, /unsafe file path/],
    [(m) => { m.files[0].path = '.git/hooks/pre-commit' }, /\.git/],
    [(m) => { m.files[0].sha256 = 'XYZ' }, /sha256/],
    [(m) => { m.files[0].root = 'bafy-not-a-cid' }, /not a CID/],
    [(m) => { m.version = 0 }, /version/],
    [(m) => { m.metrics.acc = 'high' }, /metrics.acc/],
    [(m) => { m.zoo = 99 }, /unsupported format version/],
    [(m) => { m.name = 'Upper/Case' }, /invalid model name/],
    [(m) => { m.files.push({ ...m.files[0], path: 'MODEL.safetensors' }) }, /listed twice/],
  ]
  for (const [mutate, msg] of bad) {
    const m = structuredClone(base)
    mutate(m)
    assert.throws(() => parseManifest(JSON.stringify(m)), msg)
  }
  assert.throws(() => parseManifest('{"zoo": 1,'), /not valid JSON/)
})

test('strict dag-cbor: non-canonical encodings are refused', () => {
  const good = encode({ a: 1, b: 2 })
  assert.deepEqual(decodeStrict(good), { a: 1, b: 2 })
  const cases: Array<[string, string]> = [
    ['unsorted keys', 'a2616202616101'],
    ['float16', 'f93c00'],
    ['float32 for a value float64 must hold', 'fa3fc00000'],
    ['integer in a longer form than needed', '1801'],
    ['indefinite-length list', '9f01ff'],
    ['undefined', 'f7'],
    ['trailing bytes', '0101'],
  ]
  for (const [what, hex] of cases) assert.throws(() => decodeStrict(Buffer.from(hex, 'hex')), FormatError, what)
  // deep nesting maps to a clean error, not a stack overflow
  const deep = Buffer.concat([Buffer.alloc(100_000, 0x81), Buffer.from([0x01])])
  assert.throws(() => decodeStrict(deep), FormatError)
})

test('file trees: one chunk is its own root; long files get a two-level tree; nodes are checked', async () => {
  const store = new MemoryStore()
  const put = (cid: CID, bytes: Uint8Array) => store.put(cid, bytes)
  const chunk = new Uint8Array([7, 7, 7])
  const c = cidOf(RAW, chunk)
  await store.put(c, chunk)
  assert.equal((await buildTree([[c, 3]], put)).toString(), c.toString())
  const many: Array<[CID, number]> = Array.from({ length: MAX_LINKS * 2 + 5 }, () => [c, 3])
  const root = await buildTree(many, put)
  assert.equal(root.code, DAG_CBOR)
  let n = 0
  for await (const [x] of fileChunks(root, store)) { assert.equal(x.toString(), c.toString()); n++ }
  assert.equal(n, many.length)
  const rootNode = decodeNode(await store.get(root), root)
  assert.equal(rootNode.leaf, false)
  assert.equal(rootNode.size, many.length * 3)
  // a node whose size lies, or that links a node from a leaf, is malformed
  const lying = encodeNode({ size: 4, leaf: true, links: [[c, 3]] })
  assert.throws(() => decodeNode(lying.bytes, lying.cid), /not the sum/)
  const wrongKind = encodeNode({ size: 3, leaf: true, links: [[root, 3]] })
  assert.throws(() => decodeNode(wrongKind.bytes, wrongKind.cid), /wrong codec/)
})

test('CIDs: only v1 sha2-256 raw/dag-cbor are accepted', () => {
  const ok = cidOf(RAW, new Uint8Array([1]))
  assert.equal(parseCid(ok.toString()).toString(), ok.toString())
  const v0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
  assert.throws(() => parseCid(v0), /not CIDv1/)
  const identity = CID.createV1(RAW, { code: 0x00, size: 1, digest: new Uint8Array([1]), bytes: new Uint8Array([0, 1, 1]) } as never)
  assert.throws(() => parseCid(identity.toString()), /sha2-256/)
  const dagPb = CID.createV1(0x70, ok.multihash)
  assert.throws(() => parseCid(dagPb.toString()), /codec/)
})

test('names and paths', () => {
  for (const good of ['a', 'vit-s/cifar100/ft-lr3e-4-s2', 'x.y_z/1']) assert.equal(checkModelName(good), good)
  for (const bad of ['', '/a', 'a/', 'a//b', 'A', 'a/../b', 'a b', 'a/v3', '-a']) assert.throws(() => checkModelName(bad))
  assert.deepEqual(parseModelRef('a/b@v12'), { name: 'a/b', version: 12 })
  assert.throws(() => parseModelRef('a@v0'))
  for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a\\b', 'a\0b', '.git/config', '.GIT/x', 'C:/x', 'x/.git./y', 'nul', 'a/']) assert.throws(() => checkRelPath(bad), FormatError, bad)
  assert.equal(checkRelPath('checkpoint_3/model.safetensors'), 'checkpoint_3/model.safetensors')
})
