/**
 * ONNX at add time (signature, tensor-boundary chunks) and `git zoo eval` on real onnxruntime
 * sessions: exact accuracy on data built so the answer is known, the evaluation record beside the
 * sealed model, the data digest across .npy / .npz, probability outputs, and ONNX external data
 * that escapes the model folder refused before loading.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile, readdir, rm, mkdir } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { processCtx, tempRepo, zoo, git } from './cli.js'
import { encodeMlpOnnx, encodeModel, encodeNode, encodeTensor, encodeValueInfo, ProtoWriter, DataType } from '../src/onnx/encode.js'
import { describeOnnx, readOnnxLayout, ONNX_SEGMENT_MIN } from '../src/onnx/inspect.js'
import { encodeNpy } from '../src/demo/data.js'
import { validateEvalRecord, readEvaluations } from '../src/evals/index.js'
import { Repo } from '../src/repo.js'
import { dataset, permModel, reference, zipFile } from './eval-fixtures.js'

const C = 8

/**
 * A zoo in a temp repo. The pre-commit hook is removed for these tests of eval itself: the rule that
 * lets it accept evals/ records belongs to src/promote/precommit.ts (tested in the last test here).
 */
async function zooRepo(keepHook = false): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-onnx-')
  const init = await zoo(r.dir, ['init'])
  assert.equal(init.code, 0, init.stderr)
  if (!keepHook) await rm(join(r.dir, '.git', 'hooks', 'pre-commit'))
  return r
}

test('readOnnxLayout: opset, inputs, outputs, parameters and raw_data extents; hostile bytes are a warning, not a crash', async () => {
  const big = new Float32Array(4096).map((_, i) => Math.sin(i)) // 16 KiB: its own segment
  const model = encodeMlpOnnx([
    { name: 'layers.0.weight', shape: [64, 64], data: big },
    { name: 'layers.0.bias', shape: [64], data: new Float32Array(64) },
    { name: 'layers.1.weight', shape: [10, 64], data: new Float32Array(640).fill(0.5) },
    { name: 'layers.1.bias', shape: [10], data: new Float32Array(10) },
  ], { activation: 'tanh' })
  const read = async (o: number, l: number): Promise<Uint8Array> => model.subarray(o, o + l)
  const layout = await readOnnxLayout(read, model.length)
  assert.deepEqual(layout.opsets, [{ domain: '', version: 17 }])
  assert.deepEqual(layout.inputs, [{ name: 'x', type: 'float32', shape: ['N', 64] }])
  assert.deepEqual(layout.outputs, [{ name: 'logits', type: 'float32', shape: ['N', 10] }])
  assert.deepEqual(layout.initializers.map((t) => [t.name, t.dims]), [['layers.0.weight', [64, 64]], ['layers.0.bias', [64]], ['layers.1.weight', [10, 64]], ['layers.1.bias', [10]]])
  const w = layout.initializers[0]!.raw!
  assert.deepEqual(new Float32Array(model.slice(w.start, w.end).buffer), big)
  const d = await describeOnnx(read, model.length)
  assert.equal(d.signature!.parameters, 4096 + 64 + 640 + 10)
  assert.equal(d.signature!.opset, 17)
  // segments: sum to the size; the big tensors' bytes are segments of their own
  assert.equal(d.segments!.reduce((a, b) => a + b, 0), model.length)
  let at = 0
  const extents = d.segments!.map((s) => { const e = [at, at + s]; at += s; return e.join() })
  for (const t of layout.initializers) if (t.raw!.end - t.raw!.start >= ONNX_SEGMENT_MIN) assert.ok(extents.includes(`${t.raw!.start},${t.raw!.end}`), t.name)
  // truncated and hostile: a warning and no segments, never a throw
  for (const bad of [model.subarray(0, model.length - 7), Uint8Array.from([0x08, 0x08, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f])]) {
    const r = await describeOnnx(async (o, l) => bad.subarray(o, o + l), bad.length)
    assert.equal(r.segments, null)
    assert.match(r.warning!, /onnx/)
  }
})

test('add seals the ONNX signature in the file entry and dedups a shared initializer across models', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const shared = new Float32Array(64 * 1024).map((_, i) => Math.cos(i)) // 256 KiB
    const mk = (head: number): Uint8Array => encodeMlpOnnx([
      { name: 'layers.0.weight', shape: [1024, 64], data: shared }, { name: 'layers.0.bias', shape: [1024], data: new Float32Array(1024) },
      { name: 'layers.1.weight', shape: [10, 1024], data: new Float32Array(10240).fill(head) }, { name: 'layers.1.bias', shape: [10], data: new Float32Array(10) },
    ], { activation: 'relu' })
    await writeFile(join(dir, 'a.onnx'), mk(0.25))
    await writeFile(join(dir, 'b.onnx'), mk(0.75))
    const a = await zoo(dir, ['add', 'a.onnx', '--name', 'onnx/a', '--json'])
    assert.equal(a.code, 0, a.stderr)
    const b = await zoo(dir, ['add', 'b.onnx', '--name', 'onnx/b', '--json'])
    assert.equal(b.code, 0, b.stderr)
    const sizeB = JSON.parse(b.stdout).files[0].size
    const storedB = JSON.parse(b.stdout).stored_bytes
    assert.ok(storedB < sizeB - shared.byteLength + 4096, `b stored ${storedB} of ${sizeB} bytes: the shared 256 KiB tensor was not deduplicated`)
    const man = JSON.parse(await readFile(join(dir, 'models/onnx/a/v1/manifest.json'), 'utf8'))
    assert.deepEqual(man.files[0].onnx, {
      ir_version: 8, opset: 17,
      inputs: [{ name: 'x', type: 'float32', shape: ['N', 64] }],
      outputs: [{ name: 'logits', type: 'float32', shape: ['N', 10] }],
      parameters: 65536 + 1024 + 10240 + 10, initializers: 4,
    })
    assert.equal((await zoo(dir, ['verify'])).code, 0) // the signature is sealed with the rest
  } finally { await cleanup() }
})

test('eval: exact accuracy, loss and top-5 on a dataset built so the answer is known; recorded beside the sealed model', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const { x, y, n } = dataset()
    await writeFile(join(dir, 'model.onnx'), permModel())
    await writeFile(join(dir, 'test.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'test.y.npy'), encodeNpy(BigInt64Array.from(y, (v) => BigInt(v)), [n]))
    assert.equal((await zoo(dir, ['add', 'model.onnx', '--name', 'cls/ident'])).code, 0)
    const manifestBefore = await readFile(join(dir, 'models/cls/ident/v1/manifest.json'), 'utf8')
    const headBefore = (await git(dir, 'rev-parse', 'HEAD')).trim()

    const r = await zoo(dir, ['eval', 'cls/ident', '--data', 'test.x.npy', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    const want = reference(x, y) // identity weights: logits are x exactly
    assert.equal(j.metrics.accuracy, 0.75)
    assert.equal(want.accuracy, 0.75)
    assert.ok(Math.abs(j.metrics.loss - want.loss) < 1e-12, `loss ${j.metrics.loss} vs ${want.loss}`)
    assert.equal(j.metrics.top5, want.top5)
    assert.equal(j.classes, C)
    assert.equal(j.output_kind, 'logits')
    assert.equal(j.recorded, true)
    assert.match(j.path, /^models\/cls\/ident\/v1\/evals\/[0-9a-f]{64}\.json$/)

    // its own commit, touching only the record; the sealed manifest is untouched
    assert.equal((await git(dir, 'rev-parse', 'HEAD~1')).trim(), headBefore)
    assert.equal((await git(dir, 'show', '--name-only', '--format=', 'HEAD')).trim(), j.path)
    assert.equal(await readFile(join(dir, 'models/cls/ident/v1/manifest.json'), 'utf8'), manifestBefore)
    assert.equal((await zoo(dir, ['verify'])).code, 0)
    const repo = await Repo.open(dir, processCtx())
    const m = await repo.resolve('cls/ident')
    const recs = await readEvaluations(repo, m)
    assert.equal(recs.length, 1)
    assert.equal(recs[0]!.ok, true)
    assert.equal(recs[0]!.model.seal, m.seal)
    assert.equal(recs[0]!.metrics.accuracy, 0.75)
    // a record naming another seal is caught
    const text = await readFile(join(dir, j.path), 'utf8')
    assert.throws(() => validateEvalRecord(text.replace(m.seal, 'bafyreigdwyov7qwpv47ojvt7vilmt645cwixuzwavfty7blhfpvd4bsbum'), m, j.path), /seal/)

    // the same arrays as .npz (stored, then deflated): same digest, so the record is found, not re-run
    await writeFile(join(dir, 'test.npz'), zipFile([{ name: 'x.npy', data: encodeNpy(x, [n, C]) }, { name: 'y.npy', data: encodeNpy(BigInt64Array.from(y, (v) => BigInt(v)), [n]) }]))
    await writeFile(join(dir, 'testz.npz'), zipFile([{ name: 'x.npy', data: encodeNpy(x, [n, C]), deflate: true }, { name: 'y.npy', data: encodeNpy(BigInt64Array.from(y, (v) => BigInt(v)), [n]), deflate: true }]))
    for (const f of ['test.npz', 'testz.npz']) {
      const again = await zoo(dir, ['eval', 'cls/ident', '--data', f, '--json'])
      assert.equal(again.code, 0, again.stderr)
      const k = JSON.parse(again.stdout)
      assert.equal(k.existing, true)
      assert.equal(k.data.sha256, j.data.sha256)
    }
    // --no-record runs again and records nothing
    const head = (await git(dir, 'rev-parse', 'HEAD')).trim()
    const nr = await zoo(dir, ['eval', 'cls/ident', '--data', 'test.npz', '--no-record', '--json'])
    assert.equal(nr.code, 0, nr.stderr)
    assert.equal(JSON.parse(nr.stdout).predictions_sha256, j.predictions_sha256)
    assert.equal((await git(dir, 'rev-parse', 'HEAD')).trim(), head)

    // bad data: usage errors, nothing recorded
    await writeFile(join(dir, 'bad.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'bad.y.npy'), encodeNpy(Int32Array.from(y, (v) => v + 3), [n]))
    const bad = await zoo(dir, ['eval', 'cls/ident', '--data', 'bad.x.npy'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /label \d+ but the model has 8 output classes/)
    const nolabels = await zoo(dir, ['eval', 'cls/ident', '--data', 'model.onnx'])
    assert.equal(nolabels.code, 2)
    assert.equal((await zoo(dir, ['eval', 'cls/ident'])).code, 2)
  } finally { await cleanup() }
})

test('eval reads softmax outputs as probabilities', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const { x, y, n } = dataset()
    const w = new Float32Array(C * C)
    for (let i = 0; i < C; i++) w[i * C + i] = 1
    const model = encodeModel({
      irVersion: 8, opset: 17,
      graph: {
        name: 'probs',
        nodes: [
          { opType: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['z'], attributes: [{ name: 'transB', i: 1 }] },
          { opType: 'Softmax', inputs: ['z'], outputs: ['p'], attributes: [{ name: 'axis', i: 1 }] },
        ],
        initializers: [{ name: 'w', dims: [C, C], data: w }, { name: 'b', dims: [C], data: new Float32Array(C) }],
        inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: ['N', C] }],
        outputs: [{ name: 'p', elemType: DataType.FLOAT, shape: ['N', C] }],
      },
    })
    await writeFile(join(dir, 'p.onnx'), model)
    await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'd.y.npy'), encodeNpy(y, [n]))
    assert.equal((await zoo(dir, ['add', 'p.onnx', '--name', 'cls/probs'])).code, 0)
    const tmp = join(dir, '..', `${basename(dir)}-tmp`)
    await mkdir(tmp)
    let r
    try {
      r = await zoo(dir, ['eval', 'cls/probs', '--data', 'd.x.npy', '--json', '--no-record'], { TMPDIR: tmp })
      // nothing left in TMPDIR: onnxruntime-node's telemetry client writes mat-debug-<pid>.log and .ses
      // there in every process that opens a session, unless ORT_DISABLE_TELEMETRY is set (git zoo sets it)
      assert.deepEqual(await readdir(tmp), [])
    } finally { await rm(tmp, { recursive: true, force: true }) }
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    assert.equal(j.output_kind, 'probabilities')
    assert.equal(j.metrics.accuracy, 0.75)
    const want = reference(x, y).loss // cross-entropy of softmax(x) is the same number
    assert.ok(Math.abs(j.metrics.loss - want) < 1e-5, `${j.metrics.loss} vs ${want}`)
  } finally { await cleanup() }
})

/** A Gemm model whose weight initializer lives in external data at `location`. */
function externalModel(location: string, length: number): Uint8Array {
  const weight = new ProtoWriter().repeatedVarints(1, [C, C]).varint(2, DataType.FLOAT).string(8, 'w')
  for (const [k, v] of [['location', location], ['offset', '0'], ['length', String(length)]]) {
    weight.bytes(13, new ProtoWriter().string(1, k!).string(2, v!).finish())
  }
  weight.varint(14, 1) // data_location = EXTERNAL
  const graph = new ProtoWriter()
    .bytes(1, encodeNode({ opType: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['logits'], attributes: [{ name: 'transB', i: 1 }] }))
    .string(2, 'ext')
    .bytes(5, weight.finish())
    .bytes(5, encodeTensor({ name: 'b', dims: [C], data: new Float32Array(C) }))
    .bytes(11, encodeValueInfo({ name: 'x', elemType: DataType.FLOAT, shape: ['N', C] }))
    .bytes(12, encodeValueInfo({ name: 'logits', elemType: DataType.FLOAT, shape: ['N', C] }))
  return new ProtoWriter().varint(1, 8).bytes(7, graph.finish()).bytes(8, new ProtoWriter().varint(2, 17).finish()).finish()
}

test('ONNX external data: inside the model folder it loads; outside (.., absolute) or not a model file is refused before loading', async () => {
  const { dir, cleanup } = await zooRepo()
  try {
    const { x, y, n } = dataset()
    await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'd.y.npy'), encodeNpy(y, [n]))
    const w = new Float32Array(C * C)
    for (let i = 0; i < C; i++) w[i * C + i] = 1
    const weights = new Uint8Array(w.buffer)
    await mkdir(join(dir, 'ok'))
    await writeFile(join(dir, 'ok', 'model.onnx'), externalModel('weights.bin', weights.length))
    await writeFile(join(dir, 'ok', 'weights.bin'), weights)
    const add = await zoo(dir, ['add', 'ok', '--name', 'ext/ok', '--json'])
    assert.equal(add.code, 0, add.stderr)
    const man = JSON.parse(await readFile(join(dir, 'models/ext/ok/v1/manifest.json'), 'utf8'))
    assert.deepEqual(man.files.find((f: { path: string }) => f.path === 'model.onnx').onnx.external_data, ['weights.bin'])
    const good = await zoo(dir, ['eval', 'ext/ok', '--data', 'd.x.npy', '--json', '--no-record'])
    assert.equal(good.code, 0, good.stderr)
    assert.equal(JSON.parse(good.stdout).metrics.accuracy, 0.75)

    // a secret beside the repo that a hostile model would read
    await writeFile(join(dir, '..', `secret-${process.pid}.bin`), weights)
    for (const [name, location] of [['dotdot', `../secret-${process.pid}.bin`], ['abs', join(dir, 'ok', 'weights.bin')], ['missing', 'not-in-model.bin']] as const) {
      await mkdir(join(dir, name))
      await writeFile(join(dir, name, 'model.onnx'), externalModel(location, weights.length))
      const a = await zoo(dir, ['add', join(name, 'model.onnx'), '--name', `ext/${name}`])
      assert.equal(a.code, 0, a.stderr)
      const r = await zoo(dir, ['eval', `ext/${name}`, '--data', 'd.x.npy'])
      assert.equal(r.code, 1, `${name}: ${r.stderr}`)
      assert.match(r.stderr, /refusing to load/)
      assert.doesNotMatch(r.stderr, /accuracy/)
    }
    await rm(join(dir, '..', `secret-${process.pid}.bin`), { force: true })
    // no temp folder is left behind by refused loads (they live under the OS temp dir; count ours)
    const left = (await readdir(join(dir, '..'))).filter((f) => f.startsWith('git-zoo-eval-'))
    assert.ok(left.length < 50)
  } finally { await cleanup() }
})

test('the pre-commit hook accepts an evaluation record', async () => {
  const { dir, cleanup } = await zooRepo(true)
  try {
    const { x, y, n } = dataset()
    await writeFile(join(dir, 'model.onnx'), permModel())
    await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'd.y.npy'), encodeNpy(y, [n]))
    assert.equal((await zoo(dir, ['add', 'model.onnx', '--name', 'cls/hooked'])).code, 0)
    const r = await zoo(dir, ['eval', 'cls/hooked', '--data', 'd.x.npy'])
    assert.equal(r.code, 0, r.stderr)
  } finally { await cleanup() }
})
