/**
 * The local data path of issue 11 through the real CLI: the slab pipeline of add / get / verify on
 * files large enough for it, tensor dedup in ONNX subgraphs, Constant tensors and external data, a
 * store written by the previous chunk layout, and a disk that fills up during add (a real tmpfs).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { BIN, flipByte, git, run, tempRepo, zoo } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { encodeModel, type GraphSpec, type NodeSpec, type TensorSpec } from '../src/onnx/encode.js'

const MiB = 1024 * 1024
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** xorshift32 bytes, masked (`mask` 0x0f keeps them compressible for the committed fixture). */
function xorshiftBytes(seed: number, n: number, mask = 0xff): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; out[i] = x & mask }
  return out
}

/** A safetensors file of `count` U8 tensors of `size` bytes; tensors in `changed` get other bytes. */
function checkpoint(count: number, size: number, changed: Set<number> = new Set()): Uint8Array {
  return encodeSafetensors(Array.from({ length: count }, (_, i) => ({
    name: `layers.${String(i).padStart(2, '0')}.weight`, dtype: 'U8', shape: [size],
    data: xorshiftBytes(1 + i + (changed.has(i) ? 1000 : 0), size),
  })))
}

async function zooRepo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-data-path-')
  const init = await zoo(r.dir, ['init'])
  assert.equal(init.code, 0, init.stderr)
  return r
}

async function addJson(dir: string, args: string[]): Promise<{ stored_bytes: number; files: Array<{ size: number; sha256: string }> }> {
  const r = await zoo(dir, ['add', ...args, '--json'])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('a 20 MiB checkpoint takes the slab path: a fine-tune stores only its changed tensor; get and verify check every chunk', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const base = checkpoint(5, 4 * MiB)
    const tuned = checkpoint(5, 4 * MiB, new Set([2]))
    await writeFile(join(dir, 'base.safetensors'), base)
    await writeFile(join(dir, 'tuned.safetensors'), tuned)
    const a = await addJson(dir, ['base.safetensors', '--name', 'm/base'])
    assert.equal(a.files[0]!.sha256, sha(base), 'the whole-file sha256 users check with sha256sum')
    const b = await addJson(dir, ['tuned.safetensors', '--name', 'm/tuned'])
    assert.equal(b.files[0]!.sha256, sha(tuned))
    // the changed tensor (4 MiB, sixteen 256 KiB chunks), the header and the file's node: nothing else
    assert.ok(b.stored_bytes >= 4 * MiB && b.stored_bytes < 4 * MiB + 64 * 1024, `fine-tune stored ${b.stored_bytes} bytes`)
    for (const [name, bytes] of [['m/base', base], ['m/tuned', tuned]] as const) {
      const out = join(dir, `out-${name.slice(2)}`)
      const g = await zoo(dir, ['get', name, '--out', out])
      assert.equal(g.code, 0, g.stderr)
      const file = (await readdir(out))[0]!
      assert.equal(sha(await readFile(join(out, file))), sha(bytes))
    }
    assert.equal((await zoo(dir, ['verify'])).code, 0)

    // one flipped byte inside a chunk of the base's pack: verify names it, get refuses and writes nothing
    const packs = join(dir, '.git', 'zoo', 'packs')
    const pack = (await readdir(packs)).filter((n) => n.endsWith('.pack')).sort()[0]!
    await flipByte(join(packs, pack), 10 * MiB)
    const v = await zoo(dir, ['verify', 'm/base', '--json'])
    assert.equal(v.code, 1, v.stderr)
    const problems = JSON.parse(v.stdout).problems as Array<{ model: string; problem: string; object: string }>
    assert.equal(problems.length, 1, v.stdout)
    assert.equal(problems[0]!.model, 'm/base@v1')
    assert.equal(problems[0]!.problem, 'corrupt')
    assert.match(problems[0]!.object, /^bafk/)
    const g = await zoo(dir, ['get', 'm/base', '--out', join(dir, 'damaged')])
    assert.equal(g.code, 1)
    assert.match(g.stderr, new RegExp(`object ${problems[0]!.object} from .* does not match its CID`))
    await assert.rejects(readdir(join(dir, 'damaged')), /ENOENT/)
  } finally { await cleanup() }
})

test('get of a model whose chunk in its first slab is damaged fails with E_CORRUPT_OBJECT every time, never with a write error from the next slab', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    // 24 MiB: two slabs (16 MiB each), so a second batch is read and hashed while the first is checked
    const base = checkpoint(6, 4 * MiB)
    await writeFile(join(dir, 'base.safetensors'), base)
    await addJson(dir, ['base.safetensors', '--name', 'm/base'])
    const { LocalStore } = await import('../src/cas/local.js')
    const { parseManifest } = await import('../src/manifest/manifest.js')
    const { fileChunksFast } = await import('../src/zoo/file-node.js')
    const { CID } = await import('multiformats/cid')
    const m = parseManifest(await readFile(join(dir, 'models', 'm', 'base', 'v1', 'manifest.json'), 'utf8'))
    const store = await LocalStore.open(join(dir, '.git', 'zoo'))
    let damaged = ''
    try {
      // the third chunk of the file: well inside the first slab, whatever the chunk boundaries
      let k = 0
      for await (const [cid] of fileChunksFast(CID.parse(m.files[0]!.root), store)) {
        if (k++ < 2) continue
        const e = (await store.locate(cid))!
        await flipByte(store.packPath(e.pack), e.offset + (e.length >> 1))
        damaged = String(cid)
        break
      }
    } finally { await store.close() }
    assert.ok(damaged)
    for (let i = 0; i < 3; i++) {
      const g = await zoo(dir, ['get', 'm/base', '--out', join(dir, `damaged-${i}`), '--json'])
      assert.equal(g.code, 1, g.stderr)
      assert.equal(JSON.parse(g.stdout).error.code, 'E_CORRUPT_OBJECT', g.stdout)
      assert.match(g.stderr, new RegExp(`object ${damaged} from .* does not match its CID`))
      await assert.rejects(readdir(join(dir, `damaged-${i}`)), /ENOENT/)
    }
  } finally { await cleanup() }
})

test('a zoo that switched chunk hash: get and verify check BLAKE3 and sha2-256 chunks on the slab path (threads chosen by the first chunks seen) and find a damaged one', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const config = join(dir, '.zoo', 'config.json')
    const setHash = async (h: string): Promise<void> => {
      await writeFile(config, JSON.stringify({ ...JSON.parse(await readFile(config, 'utf8')), chunk_hash: h }, null, 2) + '\n')
      await git(dir, 'commit', '-q', '-am', `chunks by ${h}`)
    }
    // 20 MiB each (the slab path): b/old named by sha2-256, a/new by BLAKE3 (walked first by verify)
    const old = checkpoint(5, 4 * MiB)
    const neu = checkpoint(5, 4 * MiB, new Set([0, 1, 2, 3, 4]))
    await setHash('sha2-256')
    await writeFile(join(dir, 'old.safetensors'), old)
    await addJson(dir, ['old.safetensors', '--name', 'b/old'])
    await setHash('blake3')
    await writeFile(join(dir, 'new.safetensors'), neu)
    await addJson(dir, ['new.safetensors', '--name', 'a/new'])
    const { LocalStore } = await import('../src/cas/local.js')
    const { parseManifest } = await import('../src/manifest/manifest.js')
    const { fileChunksFast } = await import('../src/zoo/file-node.js')
    const { verifyModels } = await import('../src/zoo/verify.js')
    const { CID } = await import('multiformats/cid')
    const manifest = async (name: string) => parseManifest(await readFile(join(dir, 'models', name, 'v1', 'manifest.json'), 'utf8'))
    const [mNew, mOld] = [await manifest('a/new'), await manifest('b/old')]
    const codes = async (m: typeof mNew): Promise<Set<number>> => {
      const store = await LocalStore.open(join(dir, '.git', 'zoo'))
      const seen = new Set<number>()
      try { for await (const [cid] of fileChunksFast(CID.parse(m.files[0]!.root), store)) seen.add(cid.multihash.code) } finally { await store.close() }
      return seen
    }
    assert.deepEqual([...await codes(mNew)], [0x1e], 'a/new: BLAKE3 chunks')
    assert.deepEqual([...await codes(mOld)], [0x12], 'b/old: sha2-256 chunks')
    for (const [name, bytes] of [['a/new', neu], ['b/old', old]] as const) {
      const out = join(dir, `out-${name.slice(2)}`)
      const g = await zoo(dir, ['get', name, '--out', out])
      assert.equal(g.code, 0, g.stderr)
      assert.equal(sha(await readFile(join(out, `${name.slice(2)}.safetensors`))), sha(bytes), name)
    }
    assert.equal((await zoo(dir, ['verify'])).code, 0)

    // one byte of a sha2-256 chunk of b/old flipped (its middle chunk)
    const store = await LocalStore.open(join(dir, '.git', 'zoo'))
    let damaged = ''
    try {
      const chunks: string[] = []
      for await (const [cid] of fileChunksFast(CID.parse(mOld.files[0]!.root), store)) chunks.push(String(cid))
      damaged = chunks[chunks.length >> 1]!
      const e = (await store.locate(CID.parse(damaged)))!
      await flipByte(store.packPath(e.pack), e.offset + (e.length >> 1))
      // windows of 16 chunks: the first ones (a/new's) are all BLAKE3, so this thread hashes every window,
      // b/old's sha2-256 ones too
      const r = await verifyModels([mNew, mOld], store, { window: 16 })
      assert.deepEqual(r.problems.map((p) => [p.model, p.object, p.problem]), [['b/old@v1', damaged, 'corrupt']])
    } finally { await store.close() }
    const v = await zoo(dir, ['verify', '--json'])
    assert.equal(v.code, 1, v.stderr)
    assert.deepEqual((JSON.parse(v.stdout).problems as Array<{ object: string; problem: string }>).map((p) => [p.object, p.problem]), [[damaged, 'corrupt']])
    const g = await zoo(dir, ['get', 'b/old', '--out', join(dir, 'damaged'), '--json'])
    assert.equal(g.code, 1, g.stderr)
    assert.equal(JSON.parse(g.stdout).error.code, 'E_CORRUPT_OBJECT', g.stdout)
    assert.match(g.stderr, new RegExp(`object ${damaged} from .* does not match its CID`))
    await assert.rejects(readdir(join(dir, 'damaged')), /ENOENT/)
    assert.equal((await zoo(dir, ['get', 'a/new', '--out', join(dir, 'still')])).code, 0, 'the BLAKE3 model is whole')
  } finally { await cleanup() }
})

/** `count` tensors of 40 KiB: below FastCDC's 64 KiB minimum, so without segments no chunk holds one alone. */
function small(seed: number): Float32Array {
  return new Float32Array(xorshiftBytes(seed, 40 * 1024).buffer)
}

/**
 * A model whose weights all sit where top-level initializer scans never look: Constant nodes'
 * `value` tensors, an If node's two branch subgraphs (an initializer in one, a Constant in the
 * other) and a Loop body's initializer. Each shared tensor sits next to one that differs per model.
 */
function nestedModel(variant: number, graphName: string): Uint8Array {
  const t = (name: string, data: Float32Array): TensorSpec => ({ name, dims: [data.length], data })
  const constant = (out: string, data: Float32Array): NodeSpec => ({ opType: 'Constant', inputs: [], outputs: [out], attributes: [{ name: 'value', t: t(out, data) }] })
  const branch = (name: string, nodes: NodeSpec[], initializers: TensorSpec[], out: string): GraphSpec => ({
    name, nodes, initializers, inputs: [], outputs: [{ name: out, elemType: 1, shape: [10240] }],
  })
  const thenG = branch('then', [{ opType: 'Identity', inputs: ['then_w'], outputs: ['then_out'] }],
    [t('then_w', small(11)), t('then_extra', small(100 + variant))], 'then_out')
  const elseG = branch('else', [constant('else_w', small(12)), constant('else_extra', small(200 + variant))], [], 'else_w')
  const body = branch('body', [{ opType: 'Identity', inputs: ['body_w'], outputs: ['body_out'] }],
    [t('body_extra', small(300 + variant)), t('body_w', small(13))], 'body_out')
  return encodeModel({
    irVersion: 8, opset: 17,
    graph: {
      name: graphName,
      nodes: [
        constant('c_extra', small(400 + variant)), constant('c_w', small(14)),
        { opType: 'If', inputs: ['cond'], outputs: ['y'], attributes: [{ name: 'then_branch', g: thenG }, { name: 'else_branch', g: elseG }] },
        { opType: 'Loop', inputs: ['n', 'cond'], outputs: ['z'], attributes: [{ name: 'body', g: body }] },
      ],
      initializers: [],
      inputs: [{ name: 'cond', elemType: 9, shape: [] }, { name: 'n', elemType: 7, shape: [] }],
      outputs: [{ name: 'y', elemType: 1, shape: [10240] }],
    },
  })
}

test('ONNX: tensors in Constant nodes and in If/Loop subgraphs are chunked on their own and stored once', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    await writeFile(join(dir, 'a.onnx'), nestedModel(1, 'release-1'))
    // another graph name shifts every byte after it: dedup must follow the tensors, not offsets
    await writeFile(join(dir, 'b.onnx'), nestedModel(2, 'release-2-with-a-longer-name'))
    await addJson(dir, ['a.onnx', '--name', 'onnx/a'])
    const b = await addJson(dir, ['b.onnx', '--name', 'onnx/b'])
    const shared = 4 * 40 * 1024
    const size = b.files[0]!.size
    // everything but the four shared tensors: the four that differ (160 KiB) and the framing
    assert.ok(b.stored_bytes <= size - shared + 8 * 1024, `b stored ${b.stored_bytes} of ${size} bytes; ${shared} are shared with a`)
    assert.ok(b.stored_bytes >= 4 * 40 * 1024, `b stored ${b.stored_bytes}: its own tensors must be stored`)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
    const g = await zoo(dir, ['get', 'onnx/b', '--out', join(dir, 'out')])
    assert.equal(g.code, 0, g.stderr)
    assert.deepEqual(await readFile(join(dir, 'out', 'b.onnx')), await readFile(join(dir, 'b.onnx')))
  } finally { await cleanup() }
})

/** A model with every weight in `weights.bin` beside it, in the order `order` gives. */
async function externalModel(folder: string, tensors: Array<{ name: string; data: Float32Array }>): Promise<void> {
  await mkdir(folder, { recursive: true })
  const initializers: TensorSpec[] = []
  const parts: Uint8Array[] = []
  let offset = 0
  for (const { name, data } of tensors) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    initializers.push({ name, dims: [data.length], data: new Float32Array(0), external: { location: 'weights.bin', offset, length: bytes.length } })
    parts.push(bytes)
    offset += bytes.length
  }
  await writeFile(join(folder, 'weights.bin'), Buffer.concat(parts))
  await writeFile(join(folder, 'model.onnx'), encodeModel({
    irVersion: 8, opset: 17,
    graph: { name: 'ext', nodes: [], initializers, inputs: [], outputs: [{ name: tensors[0]!.name, elemType: 1, shape: [10240] }] },
  }))
}

test('ONNX external data: the data file is cut at the tensors the model places there, so reordered and shared tensors dedup', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const w = Array.from({ length: 6 }, (_, i) => ({ name: `w${i}`, data: small(50 + i) }))
    await externalModel(join(dir, 'v1'), w)
    // release 2: the same tensors in another order, one of them retrained
    await externalModel(join(dir, 'v2'), [w[3]!, w[0]!, { name: 'w5', data: small(999) }, w[1]!, w[4]!, w[2]!])
    await addJson(dir, ['v1/model.onnx', 'v1/weights.bin', '--name', 'ext/m'])
    const b = await addJson(dir, ['v2/model.onnx', 'v2/weights.bin', '--name', 'ext/m2'])
    const modelSize = (await readFile(join(dir, 'v2', 'model.onnx'))).length
    // the retrained tensor and the small model file; the five others are stored once, by v1
    assert.ok(b.stored_bytes <= 40 * 1024 + modelSize + 4096, `v2 stored ${b.stored_bytes} bytes`)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
    const g = await zoo(dir, ['get', 'ext/m2', '--out', join(dir, 'out')])
    assert.equal(g.code, 0, g.stderr)
    assert.deepEqual(await readFile(join(dir, 'out', 'weights.bin')), await readFile(join(dir, 'v2', 'weights.bin')))
  } finally { await cleanup() }
})

/** A v3 GGUF of F32 tensors (alignment 32), in the order given; `meta` shifts every offset after it. */
function gguf(tensors: Array<{ name: string; data: Float32Array }>, meta: string): Uint8Array {
  const parts: Buffer[] = []
  const u32 = (v: number): void => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b) }
  const u64 = (v: number): void => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b) }
  const str = (x: string): void => { const b = Buffer.from(x); u64(b.length); parts.push(b) }
  parts.push(Buffer.from('GGUF')); u32(3); u64(tensors.length); u64(1)
  str('general.name'); u32(8); str(meta)
  let offset = 0
  for (const t of tensors) {
    str(t.name); u32(1); u64(t.data.length); u32(0); u64(offset)
    offset += Math.ceil(t.data.byteLength / 32) * 32
  }
  const headerLength = parts.reduce((a, b) => a + b.length, 0)
  parts.push(Buffer.alloc((32 - (headerLength % 32)) % 32))
  for (const t of tensors) {
    parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))
    parts.push(Buffer.alloc((32 - (t.data.byteLength % 32)) % 32))
  }
  return Buffer.concat(parts)
}

test('GGUF and PyTorch zip: every tensor is chunked on its own, so shared tensors dedup when offsets move', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const w = Array.from({ length: 5 }, (_, i) => ({ name: `blk.${i}.weight`, data: small(600 + i) }))
    await writeFile(join(dir, 'a.gguf'), gguf(w, 'release one'))
    // a longer name shifts every tensor; one tensor retrained
    await writeFile(join(dir, 'b.gguf'), gguf([...w.slice(0, 4), { name: 'blk.4.weight', data: small(777) }], 'release two, longer'))
    await addJson(dir, ['a.gguf', '--name', 'gguf/a'])
    const g = await addJson(dir, ['b.gguf', '--name', 'gguf/b'])
    assert.ok(g.stored_bytes <= 40 * 1024 + 4096, `gguf b stored ${g.stored_bytes} bytes`)

    // PyTorch's zip layout (archive/data.pkl, archive/data/<key> stored uncompressed), written by
    // python's zipfile; release 2 stores the same storages in another order beside a new one
    const script = String.raw`
import sys, zipfile
def xs(seed, n):
    out = bytearray(n); x = seed
    for i in range(n):
        x ^= (x << 13) & 0xffffffff; x ^= x >> 17; x ^= (x << 5) & 0xffffffff
        out[i] = x & 0xff
    return bytes(out)
def write(path, keys, pkl):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', pkl)
        for k, seed in keys: z.writestr('archive/data/%d' % k, xs(seed, 40 * 1024))
        z.writestr('archive/version', '3\n')
write(sys.argv[1] + '/a.pt', [(0, 1), (1, 2), (2, 3), (3, 4)], b'\x80\x02}q\x00.')
write(sys.argv[1] + '/b.pt', [(3, 4), (2, 3), (4, 99), (1, 2), (0, 1)], b'\x80\x02}q\x00X\x05\x00\x00\x00extraq\x01K\x01s.')
`
    const py = await run('python3', ['-c', script, dir], { cwd: dir })
    assert.equal(py.code, 0, py.stderr)
    await addJson(dir, ['a.pt', '--name', 'torch/a'])
    const t = await addJson(dir, ['b.pt', '--name', 'torch/b'])
    assert.ok(t.stored_bytes <= 40 * 1024 + 4096, `torch b stored ${t.stored_bytes} bytes`)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
  } finally { await cleanup() }
})

/**
 * test/fixtures/previous-layout-store.tar.gz: a zoo written by git-zoo at commit f5fb201, before
 * fixed-size chunks (its 1.2 MB tensor was cut by FastCDC), holding old/model@v1 whose file is
 * fixtureModel() (pre-commit hooks left out of the archive). Made with that commit's CLI:
 * `git zoo init; git zoo add model.safetensors --name old/model`.
 */
function fixtureModel(): Uint8Array {
  return encodeSafetensors([
    { name: 'big.weight', dtype: 'U8', shape: [1200000], data: xorshiftBytes(7, 1200000, 0x0f) },
    { name: 'small.weight', dtype: 'U8', shape: [70000], data: xorshiftBytes(8, 70000, 0x0f) },
  ])
}

test('a store written by the previous chunk layout stays readable; the same file added again shares what did not change', async () => {
  const work = await mkdtemp(join(tmpdir(), 'zoo-old-layout-'))
  try {
    const untar = await run('tar', ['-xzf', join(import.meta.dirname, 'fixtures', 'previous-layout-store.tar.gz'), '-C', work], { cwd: work })
    assert.equal(untar.code, 0, untar.stderr)
    const dir = join(work, 'zoo')
    const model = fixtureModel()
    const v = await zoo(dir, ['verify', '--json'])
    assert.equal(v.code, 0, v.stdout + v.stderr)
    const g = await zoo(dir, ['get', 'old/model', '--out', join(work, 'out')])
    assert.equal(g.code, 0, g.stderr)
    assert.equal(sha(await readFile(join(work, 'out', 'model.safetensors'))), sha(model))
    assert.equal((await zoo(dir, ['init'])).code, 0) // hooks of this build
    await writeFile(join(dir, 'model.safetensors'), model)
    const again = await addJson(dir, ['model.safetensors', '--name', 'new/model'])
    // the header and the small tensor (whole chunks in both layouts) are shared; the big tensor is
    // now cut into 256 KiB pieces, new objects beside the old ones (and the file's node)
    assert.ok(again.stored_bytes >= 1200000 && again.stored_bytes < 1200000 + 1024, `stored ${again.stored_bytes}`)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
    const g2 = await zoo(dir, ['get', 'new/model', '--out', join(work, 'out2')])
    assert.equal(g2.code, 0, g2.stderr)
    assert.equal(sha(await readFile(join(work, 'out2', 'model.safetensors'))), sha(model))
  } finally { await rm(work, { recursive: true, force: true }) }
})

/** Run git zoo, killing it (and failing) if it has not exited after `ms`: a hang is the bug here. */
function zooWithin(cwd: string, args: string[], ms: number): Promise<{ code: number | null; stderr: string; hung: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += d })
    let hung = false
    const timer = setTimeout(() => { hung = true; child.kill('SIGKILL') }, ms)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr, hung }) })
  })
}

test('add into a filesystem that fills up fails at once with the write error, stages nothing, and succeeds once there is room', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'zoo-enospc-'))
  const mnt = join(work, 'mnt')
  await mkdir(mnt)
  const mount = await run('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mnt], { cwd: work })
  if (mount.code !== 0) {
    await rm(work, { recursive: true, force: true })
    t.skip(`cannot mount a tmpfs here (${mount.stderr.trim()}): needs root`)
    return
  }
  try {
    const dir = join(mnt, 'repo')
    await mkdir(dir)
    await git(dir, 'init', '-q', '-b', 'main')
    await git(dir, 'config', 'user.name', 'Test Researcher')
    await git(dir, 'config', 'user.email', 'researcher@example.invalid')
    await git(dir, 'commit', '-q', '--allow-empty', '-m', 'start')
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await git(dir, 'add', '-A')
    await git(dir, 'commit', '-q', '-m', 'init')
    const head = await git(dir, 'rev-parse', 'HEAD')
    // 64 MiB of weights (the slab path) kept outside the small filesystem
    const file = join(work, 'big.safetensors')
    await writeFile(file, checkpoint(4, 16 * MiB))
    const r = await zooWithin(dir, ['add', file, '--name', 'big'], 60_000)
    assert.equal(r.hung, false, 'add hung on a full disk')
    assert.ok(r.code !== 0 && r.code !== null, `exit ${r.code}`)
    assert.match(r.stderr, /ENOSPC|no space/i)
    assert.equal(await git(dir, 'rev-parse', 'HEAD'), head, 'nothing committed')
    assert.equal(await git(dir, 'status', '--porcelain'), '', 'nothing staged or left in the work tree')
    // room again: the same command goes through and the store verifies
    const grow = await run('mount', ['-o', 'remount,size=256m', mnt], { cwd: work })
    assert.equal(grow.code, 0, grow.stderr)
    const again = await zoo(dir, ['add', file, '--name', 'big'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
  } finally {
    await run('umount', [mnt], { cwd: work })
    await rm(work, { recursive: true, force: true })
  }
})

test('TreeBuilder, fed one chunk at a time, builds exactly the tree buildTree builds', async () => {
  const { TreeBuilder } = await import('../src/ingest/ingest.js')
  const { buildTree } = await import('../src/manifest/node.js')
  const { cidOf, RAW } = await import('../src/cas/cid.js')
  for (const n of [1, 2, 1023, 1024, 1025, 2048, 2049, 5000]) {
    const chunks = Array.from({ length: n }, (_, i) => [cidOf(RAW, Uint8Array.of(i & 255, i >> 8)), 1000 + (i % 7)] as [ReturnType<typeof cidOf>, number])
    const a: string[] = []
    const b: string[] = []
    const want = await buildTree(chunks, async (cid) => { a.push(cid.toString()) })
    const tree = new TreeBuilder(async (cid) => { b.push(cid.toString()) })
    for (const [cid, size] of chunks) await tree.add(cid, size)
    assert.equal((await tree.finish()).toString(), want.toString(), `${n} chunks`)
    assert.deepEqual(b, a, `${n} chunks: the same nodes, children before parents`)
  }
})

test('slab hashing with the calling thread as a hasher: every digest is the sha256 of its range, before and after the worker has started', async () => {
  const { HashPool } = await import('../src/cas/hash-pool.js')
  const pool = new HashPool(1)
  try {
    const ring = await pool.slabs(2, 4 * MiB, { stream: false, inline: true })
    const bytes = xorshiftBytes(99, 4 * MiB)
    ring.slabs[0]!.set(bytes)
    // ranges of odd sizes, split between the worker and this thread in various ways (the first calls
    // run while the worker is still starting: this thread hashes them all)
    for (let round = 0; round < 24; round++) {
      const offs: number[] = []
      const lens: number[] = []
      let at = round * 7
      for (let k = 0; at < 4 * MiB; k++) {
        const len = Math.min(4 * MiB - at, 1 + ((round * 7919 + k * 104729) % (300 * 1024)))
        offs.push(at); lens.push(len); at += len + (k % 3)
      }
      const digests = await ring.hashRanges(0, offs, lens)
      for (let i = 0; i < offs.length; i++) {
        assert.equal(Buffer.from(digests.subarray(32 * i, 32 * i + 32)).toString('hex'), sha(bytes.subarray(offs[i]!, offs[i]! + lens[i]!)), `round ${round}, range ${i}`)
      }
    }
  } finally { await pool.close() }
})

test('verify checks chunks in windows as it walks: a damaged chunk two models share is named for each, whatever window found it', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    // the same 20 MiB checkpoint under two names: its 80 chunks are stored once, named by both
    const base = checkpoint(5, 4 * MiB)
    await writeFile(join(dir, 'a.safetensors'), base)
    await writeFile(join(dir, 'b.safetensors'), base)
    await addJson(dir, ['a.safetensors', '--name', 'm/a'])
    const b = await addJson(dir, ['b.safetensors', '--name', 'm/b'])
    assert.ok(b.stored_bytes < 64 * 1024, `the second name stored ${b.stored_bytes} bytes`)
    const packs = join(dir, '.git', 'zoo', 'packs')
    const pack = (await readdir(packs)).filter((n) => n.endsWith('.pack')).sort()[0]!
    await flipByte(join(packs, pack), 6 * MiB)
    const { LocalStore } = await import('../src/cas/local.js')
    const { parseManifest } = await import('../src/manifest/manifest.js')
    const { verifyModels } = await import('../src/zoo/verify.js')
    const manifests = await Promise.all(['m/a', 'm/b'].map(async (n) => parseManifest(await readFile(join(dir, 'models', n, 'v1', 'manifest.json'), 'utf8'))))
    // one chunk per window: m/a's windows are checked while (or before) m/b is walked
    for (const window of [1, 7, 1024]) {
      const store = await LocalStore.open(join(dir, '.git', 'zoo'))
      try {
        const r = await verifyModels(manifests, store, { window })
        const seen = r.problems.map((p) => `${p.model} ${p.path} ${p.problem}`).sort()
        assert.deepEqual(seen, ['m/a@v1 a.safetensors corrupt', 'm/b@v1 b.safetensors corrupt'], `window ${window}`)
        assert.equal(new Set(r.problems.map((p) => p.object)).size, 1, 'the same chunk')
      } finally { await store.close() }
    }
    // the CLI says the same
    const v = await zoo(dir, ['verify', '--json'])
    assert.equal(v.code, 1, v.stderr)
    assert.deepEqual((JSON.parse(v.stdout).problems as Array<{ model: string }>).map((p) => p.model).sort(), ['m/a@v1', 'm/b@v1'])
  } finally { await cleanup() }
})
