import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { encodeNpy, makeDataset, mulberry32, TASK_A, TASK_B } from '../src/demo/data.js'
import { ACTIVATIONS, erf, evaluate, forward, initMlp, lossAndAccuracy, train } from '../src/demo/train.js'
import type { Mlp } from '../src/demo/train.js'
import { checkpointDirName, checkpointSafetensors, generatePopulation } from '../src/demo/population.js'
import type { PopulationOptions } from '../src/demo/population.js'
import { DataType, encodeMlpOnnx, encodeModel } from '../src/onnx/encode.js'

// onnxruntime runs in this process here: keep its telemetry client off, as git zoo does
// (src/cli/main.ts), or every run leaves mat-debug-<pid>.log and .ses in TMPDIR
process.env.ORT_DISABLE_TELEMETRY ??= '1'

/** A small population: 2 grid models x 3 epochs, 1 pre-trained + 3 fine-tunes; well under a second. */
const SMALL: PopulationOptions = {
  seeds: [1], learningRates: [0.1], activations: ['relu', 'tanh'], epochs: 3,
  pretrain: { seed: 1, lr: 0.1, activation: 'gelu', init: 'kaiming_uniform', epochs: 3 }, finetuneEpochs: 2,
}

const A = makeDataset(TASK_A, 1)

/** Test-side safetensors reader (header JSON + raw tensor bytes), independent of the writer. */
function readSafetensors(bytes: Uint8Array): Map<string, { shape: number[]; bytes: Uint8Array }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const n = Number(view.getBigUint64(0, true))
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { shape: number[]; data_offsets: [number, number] }>
  const out = new Map<string, { shape: number[]; bytes: Uint8Array }>()
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue
    out.set(name, { shape: t.shape, bytes: bytes.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) })
  }
  return out
}

/** Test-side .npy reader for the two layouts the demo writes. */
function readNpy(bytes: Uint8Array): { descr: string; shape: number[]; data: Float32Array | BigInt64Array } {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  const len = bytes[8]! | (bytes[9]! << 8)
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + len))
  assert.equal((10 + len) % 64, 0)
  assert.ok(header.endsWith('\n'))
  const descr = /'descr': '([^']+)'/.exec(header)![1]!
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1]!.split(',').filter((s) => s.trim()).map(Number)
  const body = Uint8Array.from(bytes.subarray(10 + len)) // a copy: Buffer#slice would share the pool
  return { descr, shape, data: descr === '<f4' ? new Float32Array(body.buffer) : new BigInt64Array(body.buffer) }
}

async function runOnnx(model: Uint8Array, x: Float32Array, n: number, features: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model)
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [n, features]) })
    return out[session.outputNames[0]!]!.data as Float32Array
  } finally {
    await session.release()
  }
}

/** Logits agree within tolerance; argmax agrees wherever the top two TS logits are not a near-tie. */
function assertSamePredictions(ts: Float32Array, onnx: Float32Array, classes: number): void {
  assert.equal(onnx.length, ts.length)
  for (let i = 0; i < ts.length; i++) assert.ok(Math.abs(ts[i]! - onnx[i]!) <= 1e-4 * (1 + Math.abs(ts[i]!)), `logit ${i}: ${ts[i]} vs ${onnx[i]}`)
  for (let r = 0; r < ts.length / classes; r++) {
    const row = [...ts.subarray(r * classes, (r + 1) * classes)], orow = [...onnx.subarray(r * classes, (r + 1) * classes)]
    const a = row.indexOf(Math.max(...row)), b = orow.indexOf(Math.max(...orow))
    if (a !== b) assert.ok(Math.abs(row[a]! - row[b]!) < 1e-4, `row ${r}: argmax ${a} vs ${b} is not a near-tie`)
  }
}

test('mulberry32 and the datasets are deterministic and shaped as specified', () => {
  const r = mulberry32(1)
  assert.deepEqual([r(), r()], [0.6270739405881613, 0.002735721180215478]) // golden values, spec/demo.md
  const again = makeDataset(TASK_A, 1)
  assert.deepEqual(again.train.x, A.train.x)
  assert.deepEqual(again.test.y, A.test.y)
  assert.notDeepEqual(makeDataset(TASK_A, 2).train.x, A.train.x)
  assert.equal(A.train.x.length, TASK_A.train * 64)
  assert.equal(makeDataset(TASK_B, 1).classes, 6)
  assert.ok(Math.abs(erf(1) - 0.8427007929497149) < 1e-12 && Math.abs(erf(-2.5) + 0.999593047982555) < 1e-12)
})

test('.npy v1.0 header: magic, 64-byte alignment, dict ending in a newline', () => {
  const f = readNpy(encodeNpy(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]))
  assert.equal(f.descr, '<f4')
  assert.deepEqual(f.shape, [2, 3])
  assert.deepEqual([...f.data], [1, 2, 3, 4, 5, 6])
  const y = readNpy(encodeNpy(BigInt64Array.of(3n, 1n), [2]))
  assert.deepEqual([y.descr, y.shape, [...y.data]], ['<i8', [2], [3n, 1n]])
})

test('training is deterministic to the byte and clearly better than chance', () => {
  const run = (): Uint8Array[] => {
    const m = initMlp({ inputs: 64, hidden: [16], outputs: 10, activation: 'relu' }, 'kaiming_normal', 7)
    return train(m, A, { epochs: 3, lr: 0.1, seed: 7, momentum: 0.9 }).checkpoints.map(checkpointSafetensors)
  }
  const [a, b] = [run(), run()]
  assert.equal(a.length, 4)
  a.forEach((bytes, e) => assert.deepEqual(bytes, b[e], `checkpoint ${e}`))
  assert.notDeepEqual(a[0], a[3])
  const m = initMlp({ inputs: 64, hidden: [16], outputs: 10, activation: 'relu' }, 'kaiming_normal', 7)
  const { metrics } = train(m, A, { epochs: 3, lr: 0.1, seed: 7, momentum: 0.9 })
  assert.equal(metrics[3]!.test_acc, evaluate(m, A.test).acc)
  assert.ok(metrics[3]!.test_acc >= 2 / A.classes, `test_acc ${metrics[3]!.test_acc}`)
})

test('ONNX export runs in onnxruntime with the same logits and predictions, for every activation', async () => {
  for (const activation of ACTIVATIONS) {
    const m: Mlp = initMlp({ inputs: 64, hidden: [24, 12], outputs: 10, activation }, 'kaiming_uniform', 3)
    train(m, A, { epochs: 1, lr: 0.05, seed: 3, momentum: 0.9 })
    const onnx = await runOnnx(encodeMlpOnnx(m.params, { activation }), A.test.x, A.test.n, 64)
    const ts = forward(m, A.test.x, A.test.n)
    assertSamePredictions(ts, onnx, 10)
    assert.ok(Math.abs(lossAndAccuracy(onnx, A.test.y, 10).acc - evaluate(m, A.test).acc) <= 1 / A.test.n, activation)
  }
})

test('encodeModel: a hand-built graph with a negative int attribute and metadata loads and runs', async () => {
  const model = encodeModel({
    irVersion: 8, opset: 13, producerName: 'test', metadata: { b: '2', a: '1' },
    graph: {
      name: 'softmax', initializers: [{ name: 'k', dims: [2], data: Float32Array.of(2, 0) }],
      nodes: [
        { opType: 'Mul', inputs: ['x', 'k'], outputs: ['s'] },
        { opType: 'Softmax', inputs: ['s'], outputs: ['p'], attributes: [{ name: 'axis', i: -1 }] },
      ],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: ['N', 2] }],
      outputs: [{ name: 'p', elemType: DataType.FLOAT, shape: ['N', 2] }],
    },
  })
  const p = await runOnnx(model, Float32Array.of(0, 5, Math.log(2) / 2, 0), 2, 2)
  assert.ok(Math.abs(p[0]! - 0.5) < 1e-6 && Math.abs(p[2]! - 2 / 3) < 1e-6, String([...p]))
})

test('generatePopulation: byte-identical reruns, frozen bodies shared, ONNX matches result.json', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'zoo-demo-'))
  t.after(() => rm(root, { recursive: true, force: true }))
  const [one, two] = [join(root, 'one'), join(root, 'two')]
  const summary = await generatePopulation(one, SMALL)
  await generatePopulation(two, SMALL)
  const files = (await readdir(one, { recursive: true, withFileTypes: true })).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name).slice(one.length + 1)).sort()
  assert.equal(files.length, summary.files)
  for (const f of files) assert.deepEqual(await readFile(join(two, f)), await readFile(join(one, f)), f)
  await assert.rejects(generatePopulation(one, SMALL), { code: 'E_NOT_EMPTY' })

  assert.deepEqual(summary.models.map((m) => m.path), [
    'grid/mlp-seed1-lr0.1-relu-kaiming_uniform', 'grid/mlp-seed1-lr0.1-tanh-kaiming_uniform',
    'pretraining/mlp-taskA-seed1-gelu', 'finetuning/mlp-taskA-seed1-gelu/ft-full-lr0.05',
    'finetuning/mlp-taskA-seed1-gelu/ft-head-lr0.1', 'finetuning/mlp-taskA-seed1-gelu/ft-head-lr0.02',
  ])
  for (const m of summary.models) {
    const chance = 1 / (m.config.outputs as number)
    assert.ok(m.final.test_acc >= 2 * chance, `${m.path}: test_acc ${m.final.test_acc}`)
  }

  // Frozen body tensors: identical in every checkpoint of both head-only fine-tunes and in the parent's last one.
  const st = async (model: string, epoch: number) => readSafetensors(await readFile(join(one, model, checkpointDirName(epoch), 'model.safetensors')))
  const parentLast = await st('pretraining/mlp-taskA-seed1-gelu', 3)
  for (const ft of ['ft-head-lr0.1', 'ft-head-lr0.02']) {
    const path = `finetuning/mlp-taskA-seed1-gelu/${ft}`
    assert.deepEqual(JSON.parse(await readFile(join(one, path, 'config.json'), 'utf8')).frozen, ['layers.0.weight', 'layers.0.bias'])
    for (let e = 0; e <= 2; e++) {
      const ck = await st(path, e)
      for (const name of ['layers.0.weight', 'layers.0.bias']) assert.deepEqual(ck.get(name)!.bytes, parentLast.get(name)!.bytes, `${path} epoch ${e} ${name}`)
      if (e > 0) assert.notDeepEqual(ck.get('layers.1.weight')!.bytes, (await st(path, e - 1)).get('layers.1.weight')!.bytes)
    }
  }
  assert.notDeepEqual((await st('finetuning/mlp-taskA-seed1-gelu/ft-full-lr0.05', 2)).get('layers.0.weight')!.bytes, parentLast.get('layers.0.weight')!.bytes)

  // Each model's ONNX file, run on the eval files in data/, reproduces the final test accuracy in result.json.
  for (const m of summary.models) {
    const task = m.config.dataset as string
    const x = readNpy(await readFile(join(one, 'data', `${task}-test.x.npy`)))
    const y = readNpy(await readFile(join(one, 'data', `${task}-test.y.npy`)))
    assert.deepEqual([x.descr, y.descr, x.shape[0]], ['<f4', '<i8', y.shape[0]])
    const epochs = m.config.epochs as number
    const logits = await runOnnx(await readFile(join(one, m.path, checkpointDirName(epochs), 'model.onnx')), x.data as Float32Array, x.shape[0]!, x.shape[1]!)
    const result = JSON.parse(await readFile(join(one, m.path, 'result.json'), 'utf8')) as { test_acc: number }[]
    assert.equal(result.length, epochs + 1)
    const acc = lossAndAccuracy(logits, Int32Array.from(y.data as BigInt64Array, Number), m.config.outputs as number).acc
    assert.ok(Math.abs(acc - result[epochs]!.test_acc) <= 1 / x.shape[0]!, `${m.path}: onnx ${acc} vs ${result[epochs]!.test_acc}`)
  }
})
