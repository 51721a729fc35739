/**
 * Evaluations where people look: after real `git zoo eval` runs (onnxruntime on a small ONNX model),
 * `show` lists each record (data name and digest, metrics, when, by whom) in text and JSON, and
 * `find` filters and sorts on eval.<metric> (the latest evaluation) and eval[<data>].<metric>.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, rm, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { tempRepo, zoo } from './cli.js'
import { encodeNpy } from '../src/demo/data.js'
import { dataset, permModel } from './eval-fixtures.js'

const C = 8

async function ok(dir: string, args: string[]): Promise<string> {
  const r = await zoo(dir, args)
  assert.equal(r.code, 0, `git zoo ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

test('show lists evaluations; find filters and sorts on eval.<metric> and eval[<data>].<metric>', async () => {
  const r = await tempRepo('zoo-evals-show-')
  try {
    const dir = r.dir
    await ok(dir, ['init'])
    // the evaluation commits are checked by the hook elsewhere (onnx.test.ts); here only what is shown
    await rm(join(dir, '.git', 'hooks', 'pre-commit'))
    for (const [name, perm] of [['a', [...Array(C).keys()]], ['b', [1, 0, 2, 3, 4, 5, 6, 7]]] as const) {
      await mkdir(join(dir, name))
      await writeFile(join(dir, name, 'model.onnx'), permModel([...perm]))
      await ok(dir, ['add', name, '--name', `cls/${name}`])
    }
    const { x, y, n } = dataset()
    await writeFile(join(dir, 'd.x.npy'), encodeNpy(x, [n, C]))
    await writeFile(join(dir, 'd.y.npy'), encodeNpy(y, [n]))
    // a second dataset: the first 8 samples, on which the identity model is always right
    await writeFile(join(dir, 'small.x.npy'), encodeNpy(x.slice(0, 8 * C), [8, C]))
    await writeFile(join(dir, 'small.y.npy'), encodeNpy(y.slice(0, 8), [8]))
    await ok(dir, ['eval', 'cls/a', '--data', 'd.x.npy'])
    await ok(dir, ['eval', 'cls/b', '--data', 'd.x.npy'])
    await ok(dir, ['eval', 'cls/a', '--data', 'small.x.npy'])

    const shown = JSON.parse(await ok(dir, ['show', 'cls/a', '--json']))
    assert.equal(shown.evaluations.length, 2)
    const full = shown.evaluations.find((e: { data: string }) => e.data === 'd.x.npy + d.y.npy')
    assert.ok(full, JSON.stringify(shown.evaluations))
    assert.match(full.data_sha256, /^[0-9a-f]{64}$/)
    assert.equal(full.n, 20)
    assert.equal(full.file, 'model.onnx')
    assert.equal(full.metrics.accuracy, 0.75)
    assert.equal(full.by, 'Test Researcher <researcher@example.invalid>')
    assert.ok(!Number.isNaN(Date.parse(full.created)))
    assert.equal(full.ok, true)
    const text = await ok(dir, ['show', 'cls/a'])
    assert.match(text, /^evaluations$/m)
    assert.match(text, new RegExp(`^  d\\.x\\.npy \\+ d\\.y\\.npy  sha256 ${full.data_sha256.slice(0, 16)}…  20 samples  model\\.onnx$`, 'm'))
    assert.match(text, /^    accuracy 0\.75  loss /m)
    assert.match(text, /by Test Researcher <researcher@example\.invalid>$/m)

    // eval.accuracy is the latest evaluation: for a that is the small set (accuracy 1)
    const latest = JSON.parse(await ok(dir, ['find', 'eval.accuracy>0.9', '--json']))
    assert.deepEqual(latest.models.map((m: { name: string; fields: Record<string, number> }) => [m.name, m.fields['eval.accuracy']]), [['cls/a', 1]])
    const onFull = JSON.parse(await ok(dir, ['find', 'eval[d.x.npy + d.y.npy].accuracy>0', '--sort', '-eval[d.x.npy + d.y.npy].accuracy', '--json']))
    assert.deepEqual(onFull.models.map((m: { name: string }) => m.name), ['cls/a', 'cls/b'])
    assert.ok(onFull.models[1].fields['eval[d.x.npy + d.y.npy].accuracy'] < 0.75)
    const byDigest = JSON.parse(await ok(dir, ['find', `eval[${full.data_sha256.slice(0, 12)}].accuracy=0.75`, '--json']))
    assert.deepEqual(byDigest.models.map((m: { name: string }) => m.name), ['cls/a'])
    const table = await ok(dir, ['find', 'eval.accuracy>0', '--sort', 'name'])
    assert.match(table, /^MODEL\s+eval\.accuracy/m)
    const none = await zoo(dir, ['find', 'eval[other.npy].accuracy>0'])
    assert.equal(none.code, 0)
    assert.match(none.stderr, /no model matches/)
    const notNumber = await zoo(dir, ['find', 'eval.accuracy>high'])
    assert.equal(notNumber.code, 2)
  } finally { await r.cleanup() }
})
