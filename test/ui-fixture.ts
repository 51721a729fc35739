/**
 * A small zoo for the web app's tests, built through the CLI as a user would: `import` of a grid of
 * runs (checkpoints, per-epoch history, factors), `add` of a pre-train and two fine-tunes (ONNX +
 * safetensors, parents), `soup` of the fine-tunes, `eval` of one, `retire` of an old version.
 */
import assert from 'node:assert/strict'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempRepo, zoo, git } from './cli.js'
import { encodeMlpOnnx } from '../src/onnx/encode.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { encodeNpy } from '../src/demo/data.js'
import { dataset } from './eval-fixtures.js'

const C = 8
const f32 = (a: ArrayLike<number>): Uint8Array => new Uint8Array(Float32Array.from(a).buffer)

/** Weights of an 8x8 MLP layer: a permutation scaled by `s` plus a small pattern (so models differ, soups are defined). */
function layer(s: number, shift: number): { w: Float32Array; b: Float32Array } {
  const w = new Float32Array(C * C)
  for (let i = 0; i < C; i++) { for (let j = 0; j < C; j++) w[i * C + j] = 0.01 * Math.sin(i + shift * j); w[i * C + i] += s }
  return { w, b: new Float32Array(C).map((_, i) => shift * 0.001 * i) }
}

async function runDir(dir: string, s: number, shift: number): Promise<void> {
  await mkdir(dir, { recursive: true })
  const { w, b } = layer(s, shift)
  const t = [{ name: 'layers.0.weight', shape: [C, C], data: w }, { name: 'layers.0.bias', shape: [C], data: b }]
  await writeFile(join(dir, 'model.onnx'), encodeMlpOnnx(t, { activation: 'relu' }))
  await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(t.map((x) => ({ name: x.name, dtype: 'F32', shape: x.shape, data: f32(x.data) }))))
}

const history = (base: number, epochs: number): string => JSON.stringify(Array.from({ length: epochs }, (_, e) => ({ epoch: e, test_acc: Number((base * (1 - Math.exp(-(e + 1) / 3))).toFixed(4)), test_loss: Number((2.3 * Math.exp(-(e + 1) * base / 3)).toFixed(4)) })))

export interface UiZoo { dir: string; cleanup: () => Promise<void>; grid: string[] }

export async function buildUiZoo(): Promise<UiZoo> {
  const { dir, cleanup } = await tempRepo('zoo-ui-')
  const ok = async (args: string[]): Promise<void> => { const r = await zoo(dir, args); assert.equal(r.code, 0, `git zoo ${args.join(' ')}: ${r.stderr}`) }
  await ok(['init'])
  await rm(join(dir, '.git', 'hooks', 'pre-commit')) // evaluation records are committed (the hook's rule is tested in onnx.test.ts)
  await writeFile(join(dir, '.gitignore'), '.zoo/cache/\nin/\n')
  await git(dir, 'add', '.gitignore', '.zoo')
  await git(dir, 'commit', '-q', '-m', 'zoo')
  // a grid of 12 runs, 3 checkpoints each, imported in one commit
  const grid: string[] = []
  for (let k = 0; k < 12; k++) {
    const lr = [0.001, 0.01, 0.1][k % 3]!, seed = k
    const run = join(dir, 'in', 'grid', `run-${String(k).padStart(2, '0')}`)
    for (let e = 0; e < 3; e++) {
      const cp = join(run, `checkpoint_${e}`)
      await mkdir(cp, { recursive: true })
      const { w, b } = layer(1 + e * 0.1, k + 1)
      await writeFile(join(cp, 'model.safetensors'), encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [C, C], data: f32(w) }, { name: 'b', dtype: 'F32', shape: [C], data: f32(b) }]))
    }
    await writeFile(join(run, 'params.json'), JSON.stringify({ seed, lr, optimizer: k % 2 ? 'adam' : 'sgd', dataset: 'glyphs@1', arch: k < 6 ? 'mlp-s' : 'mlp-m' }))
    await writeFile(join(run, 'result.json'), history(0.5 + 0.035 * k, 3))
    grid.push(`grid/run-${String(k).padStart(2, '0')}`)
  }
  await ok(['import', join(dir, 'in', 'grid'), '--prefix', 'grid', '--layout', 'model-zoos'])
  // a pre-train, two fine-tunes, their soup
  const add = async (name: string, s: number, shift: number, extra: string[]): Promise<void> => {
    const d = join(dir, 'in', name.replace(/\//g, '_'))
    await runDir(d, s, shift)
    await writeFile(`${d}.metrics.json`, history(0.6 + shift / 20, 6))
    await ok(['add', d, '--name', name, '--metrics', `${d}.metrics.json`, '--dataset', 'glyphs@1', '--arch', 'mlp-s', ...extra])
  }
  await add('glyph/pre', 1, 1, ['--seed', '1', '--param', 'lr=0.1', '-m', 'pre-trained on glyphs'])
  await add('glyph/pre', 1, 2, ['--seed', '1', '--param', 'lr=0.05', '-m', 'second try'])
  await ok(['retire', 'glyph/pre@v2', '--reason', 'diverged after epoch 3'])
  await add('glyph/ft-a', 2, 3, ['--seed', '2', '--param', 'lr=0.01', '--parent', 'glyph/pre@v1'])
  await add('glyph/ft-b', 3, 4, ['--seed', '3', '--param', 'lr=0.003', '--parent', 'glyph/pre@v1=fine-tune'])
  await ok(['soup', 'glyph/ft-a', 'glyph/ft-b', '--name', 'glyph/soup'])
  const { x, y, n } = dataset()
  await writeFile(join(dir, 'in', 'd.x.npy'), encodeNpy(x, [n, C]))
  await writeFile(join(dir, 'in', 'd.y.npy'), encodeNpy(y, [n]))
  await ok(['eval', 'glyph/ft-a', '--data', join(dir, 'in', 'd.x.npy')])
  return { dir, cleanup, grid }
}
