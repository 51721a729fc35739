/**
 * Judging models: hard agreement (recorded and computed), weight-space diff with exact numbers,
 * soups equal to element-wise means (F32, F16, BF16; uniform, weighted, epoch averaging) with an
 * ONNX graph carrying the averaged weights, and pickle checkpoints that are never unpickled.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile, rm, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { processCtx, tempRepo, zoo } from './cli.js'
import { encodeMlpOnnx } from '../src/onnx/encode.js'
import { encodeSafetensors, parseSafetensorsHeader } from '../src/formats/safetensors.js'
import { readOnnxLayout } from '../src/onnx/inspect.js'
import { encodeNpy } from '../src/demo/data.js'
import { floatToHalf, halfToFloat, floatToBf16, bf16ToFloat } from '../src/weights/dtype.js'
import { safetensorsHeader } from '../src/weights/soup.js'
import { dataset, permModel, zipFile } from './eval-fixtures.js'

const C = 8

async function zooRepo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-judge-')
  assert.equal((await zoo(r.dir, ['init'])).code, 0)
  // eval records are committed; the hook's evals/ rule is tested in onnx.test.ts
  await rm(join(r.dir, '.git', 'hooks', 'pre-commit'))
  return r
}

const f32 = (a: number[] | Float32Array): Uint8Array => new Uint8Array(Float32Array.from(a).buffer)
const u16 = (a: number[]): Uint8Array => new Uint8Array(Uint16Array.from(a).buffer)
const i64 = (a: number[]): Uint8Array => new Uint8Array(BigInt64Array.from(a.map(BigInt)).buffer)

function tensorsOf(buf: Uint8Array): Map<string, { dtype: string; shape: number[]; data: Uint8Array }> {
  const bytes = new Uint8Array(buf) // a copy: Buffer#slice would share the pool
  const layout = parseSafetensorsHeader(bytes, bytes.length)
  return new Map(layout.tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data: bytes.slice(t.start, t.end) }]))
}

test('dtype rounding: float16 and bfloat16, ties to even, subnormals, overflow', () => {
  for (const [v, bits] of [[1, 0x3c00], [65504, 0x7bff], [65520, 0x7c00], [2 ** -24, 0x0001], [0.1, 0x2e66], [-2, 0xc000], [2 ** -25, 0], [3 * 2 ** -25, 0x0002], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02]] as const) {
    assert.equal(floatToHalf(v), bits, `half(${v})`)
  }
  for (const [v, bits] of [[1, 0x3f80], [0.1, 0x3dcd], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [-1.5, 0xbfc0], [3.4e38, 0x7f80]] as const) {
    assert.equal(floatToBf16(v), bits, `bf16(${v})`)
  }
  for (let h = 0; h < 0x7c00; h += 37) assert.equal(floatToHalf(halfToFloat(h)), h)
  for (let b = 0; b < 0x7f80; b += 101) assert.equal(floatToBf16(bf16ToFloat(b)), b)
})

test('soup writer lays safetensors out exactly as encodeSafetensors does', () => {
  const tensors = [
    { name: 'b', dtype: 'F32', shape: [2], data: f32([1, 2]) }, { name: 'a', dtype: 'F16', shape: [1], data: u16([0x3c00]) },
    { name: 'step', dtype: 'I64', shape: [], data: i64([7]) },
  ]
  const ref = encodeSafetensors(tensors, { 'git-zoo': 'soup/uniform' })
  const { head, order } = safetensorsHeader(tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.data.length })), { 'git-zoo': 'soup/uniform' })
  assert.deepEqual(Buffer.from(ref.subarray(0, head.length)), Buffer.from(head))
  assert.deepEqual(order.map((i) => tensors[i]!.name), ['step', 'b', 'a'])
})

test('agree: the hard agreement rate, from recorded predictions or by running the models', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const { x, y, n } = dataset()
    await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'd.y.npy'), encodeNpy(y, [n]))
    await mkdir(join(dir, 'a')); await mkdir(join(dir, 'b'))
    const swap = [1, 0, 2, 3, 4, 5, 6, 7] // class 0 and 1 swapped: disagrees exactly where argmax(x) is 0 or 1
    await writeFile(join(dir, 'a', 'model.onnx'), permModel())
    await writeFile(join(dir, 'b', 'model.onnx'), permModel(swap))
    assert.equal((await zoo(dir, ['add', 'a', '--name', 'agree/a'])).code, 0)
    assert.equal((await zoo(dir, ['add', 'b', '--name', 'agree/b'])).code, 0)
    let expected = 0
    for (let i = 0; i < n; i++) if (i % C > 1) expected++ // the largest feature of sample i is class i % 8
    const run = async (): Promise<{ rate: number; agree: number; n: number; a: { predictions: string }; b: { predictions: string } }> => {
      const r = await zoo(dir, ['agree', 'agree/a', 'agree/b', '--data', 'd.x.npy', '--json'])
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout)
    }
    const computed = await run()
    assert.equal(computed.agree, expected)
    assert.equal(computed.rate, expected / n)
    assert.deepEqual([computed.a.predictions, computed.b.predictions], ['computed', 'computed'])
    assert.equal((await zoo(dir, ['eval', 'agree/a', '--data', 'd.x.npy'])).code, 0)
    assert.equal((await zoo(dir, ['eval', 'agree/b', '--data', 'd.x.npy'])).code, 0)
    const recorded = await run()
    assert.equal(recorded.rate, expected / n)
    assert.deepEqual([recorded.a.predictions, recorded.b.predictions], ['recorded', 'recorded'])
    const self = await zoo(dir, ['agree', 'agree/a', 'agree/a', '--data', 'd.x.npy'])
    assert.match(self.stdout, /hard agreement 1 \(20 of 20 samples\)/)
  } finally { await cleanup() }
})

test('diff: factors, metrics, exact L2 and cosine, identical tensors by chunk CIDs, missing/extra, shared storage', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const body = Array.from({ length: 64 * 1024 }, (_, i) => Math.sin(i)) // 256 KiB, shared by both
    await mkdir(join(dir, 'a')); await mkdir(join(dir, 'b'))
    await writeFile(join(dir, 'a', 'model.safetensors'), encodeSafetensors([
      { name: 'body', dtype: 'F32', shape: [body.length], data: f32(body) }, { name: 'head', dtype: 'F32', shape: [2], data: f32([1, 2]) },
      { name: 'only_a', dtype: 'F32', shape: [1], data: f32([1]) }, { name: 'shape', dtype: 'F32', shape: [2], data: f32([0, 0]) }]))
    await writeFile(join(dir, 'b', 'model.safetensors'), encodeSafetensors([
      { name: 'body', dtype: 'F32', shape: [body.length], data: f32(body) }, { name: 'head', dtype: 'F32', shape: [2], data: f32([4, 6]) },
      { name: 'only_b', dtype: 'F32', shape: [1], data: f32([2]) }, { name: 'shape', dtype: 'F32', shape: [1, 2], data: f32([0, 0]) }]))
    await writeFile(join(dir, 'ma.json'), JSON.stringify({ acc: 0.5 }))
    await writeFile(join(dir, 'mb.json'), JSON.stringify({ acc: 0.75 }))
    assert.equal((await zoo(dir, ['add', 'a/model.safetensors', '--name', 'diff/a', '--seed', '1', '--param', 'lr=0.1', '--metrics', 'ma.json'])).code, 0)
    assert.equal((await zoo(dir, ['add', 'b/model.safetensors', '--name', 'diff/b', '--seed', '2', '--param', 'lr=0.1', '--metrics', 'mb.json'])).code, 0)
    const r = await zoo(dir, ['diff', 'diff/a', 'diff/b', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    assert.deepEqual(j.factors, [{ key: 'seed', a: 1, b: 2 }])
    assert.deepEqual(j.metrics, [{ key: 'acc', a: 0.5, b: 0.75, delta: 0.25 }])
    const w = j.weights[0]
    assert.equal(w.a_file, 'model.safetensors')
    const byName = Object.fromEntries(w.tensors.map((t: { name: string }) => [t.name, t]))
    assert.deepEqual(byName.body, { name: 'body', dtype: 'F32', shape: [body.length], identical: true, l2: 0, cosine: 1, max_abs: 0, by: 'chunks' })
    assert.equal(byName.head.identical, false)
    assert.equal(byName.head.l2, 5) // (3, 4)
    assert.equal(byName.head.cosine, 16 / Math.sqrt(5 * 52))
    assert.equal(byName.head.max_abs, 4)
    assert.deepEqual(w.missing, ['only_a'])
    assert.deepEqual(w.extra, ['only_b'])
    assert.deepEqual(w.mismatched, [{ name: 'shape', a: { dtype: 'F32', shape: [2] }, b: { dtype: 'F32', shape: [1, 2] } }])
    assert.equal(w.summary.compared, 2)
    assert.equal(w.summary.identical, 1)
    assert.equal(w.summary.l2, 5)
    const bodyNorm2 = body.reduce((s, v) => s + Math.fround(v) ** 2, 0)
    assert.ok(Math.abs(w.summary.cosine - (bodyNorm2 + 16) / Math.sqrt((bodyNorm2 + 5) * (bodyNorm2 + 52))) < 1e-12)
    assert.ok(j.storage.shared.bytes >= body.length * 4, `shared ${j.storage.shared.bytes}`)
    assert.ok(j.storage.shared.objects >= 1)
    // a model against itself: every tensor identical, nothing read
    const same = JSON.parse((await zoo(dir, ['diff', 'diff/a', 'diff/a', '--json', '--fast'])).stdout)
    assert.ok(same.weights[0].tensors.every((t: { identical: boolean; by: string }) => t.identical && t.by === 'chunks'))
    const text = await zoo(dir, ['diff', 'diff/a', 'diff/b'])
    assert.match(text.stdout, /~ head F32\[2\]\s+L2 5/)
    assert.match(text.stdout, /seed: 1 -> 2/)
  } finally { await cleanup() }
})

test('soup: the element-wise mean (F32, F16, BF16), weighted means, integer tensors copied, an ONNX graph with the averaged weights', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const wa = new Float32Array(C * C).map((_, i) => Math.sin(i)), wb = new Float32Array(C * C).map((_, i) => Math.cos(3 * i))
    const ba = new Float32Array(C).map((_, i) => i / 3), bb = new Float32Array(C).map((_, i) => -i / 7)
    const members = [
      { w: wa, b: ba, h: [0x3c00, 0x4100, 0xc400], z: [0x3f80, 0x4020], dir: 'p' }, // half 1, 2.5, -4; bf16 1, 2.5
      { w: wb, b: bb, h: [0x4000, 0x4300, 0x4400], z: [0x4000, 0x4060], dir: 'q' }, // half 2, 3.5, 4; bf16 2, 3.5
    ]
    for (const m of members) {
      await mkdir(join(dir, m.dir))
      const t = [{ name: 'layers.0.weight', shape: [C, C], data: m.w }, { name: 'layers.0.bias', shape: [C], data: m.b }]
      await writeFile(join(dir, m.dir, 'model.onnx'), encodeMlpOnnx(t, { activation: 'relu' }))
      await writeFile(join(dir, m.dir, 'model.safetensors'), encodeSafetensors([
        ...t.map((x) => ({ name: x.name, dtype: 'F32', shape: x.shape, data: f32(x.data) })),
        { name: 'extra.half', dtype: 'F16', shape: [3], data: u16(m.h) }, { name: 'extra.bf16', dtype: 'BF16', shape: [2], data: u16(m.z) },
        { name: 'step', dtype: 'I64', shape: [], data: i64([100]) }]))
      assert.equal((await zoo(dir, ['add', m.dir, '--name', `soup/${m.dir}`, '--dataset', 'glyphs@1'])).code, 0)
    }
    const r = await zoo(dir, ['soup', 'soup/p', 'soup/q', '--name', 'soup/pq', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    assert.equal(j.soup.method, 'uniform')
    assert.deepEqual(j.onnx, { replaced: 2, kept: 0, unused: 3 })
    const man = JSON.parse(await readFile(join(dir, 'models/soup/pq/v1/manifest.json'), 'utf8'))
    assert.deepEqual(man.parents.map((p: { name: string; relation: string }) => [p.name, p.relation]), [['soup/p', 'soup'], ['soup/q', 'soup']])
    assert.deepEqual(man.metrics, {})
    assert.equal(man.dataset, 'glyphs@1')
    assert.equal((await zoo(dir, ['get', 'soup/pq', '--out', 'out'])).code, 0)
    const soup = tensorsOf(await readFile(join(dir, 'out', 'model.safetensors')))
    const mean = (a: Float32Array, b: Float32Array): Float32Array => a.map((v, i) => Math.fround((v + b[i]!) / 2))
    assert.deepEqual(new Float32Array(soup.get('layers.0.weight')!.data.slice().buffer), mean(wa, wb))
    assert.deepEqual(new Float32Array(soup.get('layers.0.bias')!.data.slice().buffer), mean(ba, bb))
    assert.deepEqual([...new Uint16Array(soup.get('extra.half')!.data.slice().buffer)], [0x3e00, 0x4200, 0x0000]) // 1.5, 3, 0
    assert.deepEqual([...new Uint16Array(soup.get('extra.bf16')!.data.slice().buffer)], [0x3fc0, 0x4040]) // 1.5, 3
    assert.deepEqual(soup.get('step')!.data, i64([100]))
    // the ONNX file carries exactly the soup's weights
    const onnx = new Uint8Array(await readFile(join(dir, 'out', 'model.onnx')))
    const layout = await readOnnxLayout(async (o, l) => onnx.subarray(o, o + l), onnx.length)
    for (const t of layout.initializers) assert.deepEqual(Buffer.from(onnx.subarray(t.raw!.start, t.raw!.end)), Buffer.from(soup.get(t.name)!.data), t.name)
    // and evaluates: the soup has metrics only once evaluated
    const { x, y, n } = dataset()
    await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'd.y.npy'), encodeNpy(y, [n]))
    const ev = await zoo(dir, ['eval', 'soup/pq', '--data', 'd.x.npy', '--json'])
    assert.equal(ev.code, 0, ev.stderr)

    // weighted: (3 a + b) / 4
    const wr = await zoo(dir, ['soup', 'soup/p', 'soup/q', '--name', 'soup/weighted', '--weights', '3,1', '--no-onnx'])
    assert.equal(wr.code, 0, wr.stderr)
    assert.equal((await zoo(dir, ['get', 'soup/weighted', '--out', 'outw'])).code, 0)
    const wsoup = tensorsOf(await readFile(join(dir, 'outw', 'model.safetensors')))
    assert.deepEqual(new Float32Array(wsoup.get('layers.0.weight')!.data.slice().buffer), wa.map((v, i) => Math.fround((3 * v + wb[i]!) / 4)))
    assert.equal((await zoo(dir, ['soup', 'soup/p', 'soup/q', '--name', 'soup/bad', '--weights', '1'])).code, 2)
  } finally { await cleanup() }
})

test('soup refuses incompatible models; epoch averaging takes the last k checkpoints of a trajectory', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    await mkdir(join(dir, 'x')); await mkdir(join(dir, 'y'))
    await writeFile(join(dir, 'x', 'model.safetensors'), encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: f32([1, 2]) }]))
    await writeFile(join(dir, 'y', 'model.safetensors'), encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [1, 2], data: f32([1, 2]) }]))
    assert.equal((await zoo(dir, ['add', 'x', '--name', 'inc/x'])).code, 0)
    assert.equal((await zoo(dir, ['add', 'y', '--name', 'inc/y'])).code, 0)
    const bad = await zoo(dir, ['soup', 'inc/x', 'inc/y', '--name', 'inc/xy'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /tensor w: .* has F32 \[1,2\]/)

    // a trajectory: epochs 0..3, w = [e, 10 e]
    const files = []
    for (let e = 0; e <= 3; e++) {
      const p = join(dir, `ckpt${e}.safetensors`)
      await writeFile(p, encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: f32([e, 10 * e]) }]))
      files.push({ source: p, path: `checkpoint_00000${e}/model.safetensors`, epoch: e })
    }
    // promote() in process, from the build (the CLI's add does not tag epochs); dist/ is built by pretest
    const { promote } = await import('../dist/src/promote/promote.js' as string) as typeof import('../src/promote/promote.js')
    const { Repo: DistRepo } = await import('../dist/src/repo.js' as string) as typeof import('../src/repo.js')
    await promote(await DistRepo.open(dir, processCtx()), [{ name: 'traj/run', files }])
    const r = await zoo(dir, ['soup', 'traj/run', '--last-k', '3', '--name', 'traj/run-avg3', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    assert.equal(j.soup.method, 'epoch-average')
    assert.deepEqual(j.soup.members.map((m: { epoch: number }) => m.epoch), [1, 2, 3])
    assert.equal((await zoo(dir, ['get', 'traj/run-avg3', '--out', 'avg'])).code, 0)
    assert.deepEqual([...new Float32Array(tensorsOf(await readFile(join(dir, 'avg', 'model.safetensors'))).get('w')!.data.slice().buffer)], [2, 20])
    const man = JSON.parse(await readFile(join(dir, 'models/traj/run-avg3/v1/manifest.json'), 'utf8'))
    assert.deepEqual(man.parents.map((p: { name: string; relation: string }) => [p.name, p.relation]), [['traj/run', 'soup']])
    assert.equal((await zoo(dir, ['soup', 'traj/run', '--last-k', '9', '--name', 'traj/x'])).code, 2)
  } finally { await cleanup() }
})

test('pickle checkpoints are stored by zip entry but never unpickled; diff reports them not inspectable', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const marker = join(dir, 'PWNED')
    // protocol 2: posix.system("touch <marker>") via GLOBAL + REDUCE
    const cmd = Buffer.from(`touch ${marker}`)
    const evil = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cposix\nsystem\n'), Buffer.from([0x58]), Buffer.from(Uint32Array.of(cmd.length).buffer), cmd, Buffer.from([0x85, 0x52, 0x2e])])
    const benign = Buffer.from([0x80, 0x02, 0x7d, 0x2e]) // {} STOP
    const storage = new Uint8Array(f32(Array.from({ length: 4096 }, (_, i) => i)))
    const mk = (pkl: Uint8Array): Uint8Array => zipFile([
      { name: 'archive/data.pkl', data: pkl }, { name: 'archive/data/0', data: storage }, { name: 'archive/version', data: Buffer.from('3\n') }])
    await mkdir(join(dir, 'e')); await mkdir(join(dir, 'g'))
    await writeFile(join(dir, 'e', 'model.pt'), mk(evil))
    await writeFile(join(dir, 'g', 'model.pt'), mk(benign))
    const a = await zoo(dir, ['add', 'e', '--name', 'pt/evil', '--json'])
    assert.equal(a.code, 0, a.stderr)
    assert.equal((await zoo(dir, ['add', 'g', '--name', 'pt/good'])).code, 0)
    const man = JSON.parse(await readFile(join(dir, 'models/pt/evil/v1/manifest.json'), 'utf8'))
    assert.equal(man.files[0].format, 'pytorch-zip')
    const r = await zoo(dir, ['diff', 'pt/evil', 'pt/good', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const w = JSON.parse(r.stdout).weights[0]
    assert.equal(w.inspectable, false)
    assert.match(w.reason, /not inspectable/)
    assert.equal(w.pickle.a.ok, false)
    assert.ok(w.pickle.a.globals.includes('posix.system'))
    assert.equal(w.pickle.b.ok, true)
    assert.deepEqual(w.tensors, [])
    assert.deepEqual(w.entries, { matched: 3, identical: 2, only_a: 0, only_b: 0 }) // the storage and version entries
    const text = await zoo(dir, ['diff', 'pt/evil', 'pt/good'])
    assert.match(text.stdout, /not inspectable/)
    assert.equal(await readFile(marker).then(() => true, () => false), false, 'the pickle ran')
  } finally { await cleanup() }
})
