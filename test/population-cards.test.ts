/**
 * Model cards of an imported population (spec/catalog.md, "Model cards"), through the real CLI and
 * real git: a member of a population (a Ray Tune experiment folder with the zoo's config.json) is
 * committed as its manifest and config snapshot alone, no README.md; `git zoo show --card` renders
 * its card on demand, Hub front matter PyYAML reads included. A run outside any population keeps
 * its committed README.md, and `show --card` gives exactly those bytes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { tempRepo, zoo, git, run } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { PY } from './torch-helpers.js'

const EPOCHS = [0, 1, 2, 3]

function checkpoint(trial: number, epoch: number): Uint8Array {
  const w = new Float32Array(64).map((_, j) => Math.cos(j * (epoch + 1) + trial))
  return encodeSafetensors([{ name: 'fc.weight', dtype: 'F32', shape: [64], data: new Uint8Array(w.buffer) }])
}

/** A Ray Tune trial folder as the Model Zoos hold one: params.json, result.json, progress.csv, checkpoint_00000N/. */
async function trial(dir: string, i: number, seed: number): Promise<void> {
  for (const e of EPOCHS) {
    const cp = join(dir, `checkpoint_${String(e).padStart(6, '0')}`)
    await mkdir(cp, { recursive: true })
    await writeFile(join(cp, 'model.safetensors'), checkpoint(i, e))
  }
  await writeFile(join(dir, 'params.json'), JSON.stringify({ seed, 'model::type': 'CNN', 'optim::lr': 0.0003, 'dataset::dump': '/data/zoos/MNIST/tune_zoo_mnist_uniform/dataset.pt' }, null, 2))
  await writeFile(join(dir, 'result.json'), EPOCHS.map((e) => JSON.stringify({ test_acc: [0.5, 0.6, 0.7, 0.65][e], test_loss: [1, 0.8, 0.6, 0.4][e], training_iteration: e })).join('\n') + '\n')
  await writeFile(join(dir, 'progress.csv'), 'test_acc,training_iteration\n0.5,0\n')
}

/** The front matter of a card as PyYAML (the Hub's YAML) reads it, as JSON. */
async function frontMatter(card: string, cwd: string): Promise<Record<string, unknown>> {
  const r = await run(PY, ['-c', 'import sys, json, yaml; t = sys.stdin.read(); print(json.dumps(yaml.safe_load(t.split("---")[1])))'], { cwd, input: card })
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

test('a population member is committed without a README.md; show --card renders its card, a lone run keeps its committed card', async () => {
  const { dir, cleanup } = await tempRepo('zoo-cards-')
  const src = await mkdtemp(join(tmpdir(), 'zoo-cards-src-'))
  try {
    const exp = join(src, 'tune_zoo_mnist_uniform')
    await trial(join(exp, 'NN_tune_trainable_a1b2c_00000_0_seed=1_2021-03-01'), 0, 1)
    await trial(join(exp, 'NN_tune_trainable_a1b2c_00001_1_seed=2_2021-03-01'), 1, 2)
    // the zoo-level config makes the experiment folder a population
    await writeFile(join(exp, 'config.json'), JSON.stringify({ 'optim::lr': 0.0003, seed: { grid_search: [1, 2] } }))
    await trial(join(src, 'lone', 'NN_tune_trainable_f9e8d_00000_0_seed=3_2021-03-02'), 2, 3)
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await git(dir, 'add', '-A')
    await git(dir, 'commit', '-q', '-m', 'zoo')
    const imp = await zoo(dir, ['import', src, '--prefix', 'mz', '--json'])
    assert.equal(imp.code, 0, imp.stderr)
    const rep = JSON.parse(imp.stdout) as { promoted: number; populations: Array<{ name: string; models: number }> }
    assert.equal(rep.promoted, 3)
    assert.deepEqual(rep.populations.map((p) => [p.name, p.models]), [['mz/tune_zoo_mnist_uniform', 2]])

    const member = 'mz/tune_zoo_mnist_uniform/nn_tune_trainable_a1b2c_00000_0_seed-1_2021-03-01'
    const lone = 'mz/lone/nn_tune_trainable_f9e8d_00000_0_seed-3_2021-03-02'
    const tracked = async (name: string): Promise<string[]> => (await git(dir, 'ls-files', `models/${name}/v1`)).trim().split('\n').map((p) => p.slice(`models/${name}/v1/`.length))
    // two files per population member: what a clone of 50,000 of them checks out
    assert.deepEqual(await tracked(member), ['manifest.json', 'params.json'])
    assert.deepEqual(await tracked(lone), ['README.md', 'manifest.json', 'params.json'])
    const m = JSON.parse(await readFile(join(dir, 'models', member, 'v1', 'manifest.json'), 'utf8')) as { population?: string; seal: string; metrics: Record<string, number> }
    assert.equal(m.population, 'mz/tune_zoo_mnist_uniform')

    // the member's card, on demand: Hub front matter, the metrics table with the best epoch, how to get it
    const card = await zoo(dir, ['show', member, '--card'])
    assert.equal(card.code, 0, card.stderr)
    assert.equal(card.stderr, '')
    const fm = await frontMatter(card.stdout, dir)
    assert.deepEqual(fm.datasets, ['MNIST'])
    assert.deepEqual(fm.tags, ['git-zoo', 'CNN', 'safetensors', 'trajectory'])
    assert.equal(fm.license, 'other')
    const index = fm['model-index'] as Array<{ name: string; results: Array<{ metrics: Array<{ type: string; value: number }> }> }>
    assert.equal(index[0]!.name, member)
    assert.deepEqual(Object.fromEntries(index[0]!.results[0]!.metrics.map((x) => [x.type, x.value])), m.metrics)
    assert.match(card.stdout, new RegExp(`^# ${member} v1$`, 'm'))
    assert.match(card.stdout, /\| test_acc \| 0\.65 \| 0\.7 \(max\) \| 2 \|/)
    assert.match(card.stdout, /4 checkpoints \(epochs 0-3\)/)
    assert.match(card.stdout, new RegExp(`\\| seal \\| \`${m.seal}\` \\|`))
    assert.match(card.stdout, new RegExp(`git zoo get ${member}@v1 --checkpoint 3`))

    // a run outside any population: the committed card, and show --card gives the same bytes
    const committed = await readFile(join(dir, 'models', lone, 'v1', 'README.md'), 'utf8')
    const again = await zoo(dir, ['show', lone, '--card'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.stdout, committed)
    assert.deepEqual((await frontMatter(committed, dir)).tags, ['git-zoo', 'CNN', 'safetensors', 'trajectory'])

    // --card prints the Markdown alone
    const both = await zoo(dir, ['show', member, '--card', '--json'])
    assert.equal(both.code, 2)
    assert.match(both.stdout, /"code": "E_USAGE"/)
    assert.match(both.stdout, /--card prints the Markdown card alone; leave out --json and --files/)
  } finally {
    await cleanup()
    await rm(src, { recursive: true, force: true })
  }
})

test('a pull that renumbers a clashing population member writes it again without a card', async () => {
  const work = await mkdtemp(join(tmpdir(), 'zoo-cards-team-'))
  try {
    const bare = join(work, 'origin.git')
    const founder = join(work, 'founder')
    await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
    await git(work, 'init', '-q', '-b', 'main', founder)
    const identity = async (d: string, who: string): Promise<void> => {
      for (const [k, v] of [['user.name', who], ['user.email', `${who}@example.invalid`], ['commit.gpgsign', 'false']]) await git(d, 'config', k!, v!)
    }
    await identity(founder, 'founder')
    await git(founder, 'remote', 'add', 'origin', bare)
    assert.equal((await zoo(founder, ['init'])).code, 0)
    assert.equal((await zoo(founder, ['remote', 'add', 'origin', join(work, 'objects')])).code, 0)
    await git(founder, 'add', '-A')
    await git(founder, 'commit', '-q', '-m', 'zoo')
    await git(founder, 'push', '-q', '-u', 'origin', 'main')
    const clones: string[] = []
    for (const who of ['ann', 'bob']) {
      const c = await zoo(work, ['clone', bare, who])
      assert.equal(c.code, 0, c.stderr)
      await identity(join(work, who), who)
      clones.push(join(work, who))
    }
    const [ann, bob] = clones as [string, string]
    // both import a trial of the same name (different weights) into the same population
    for (const [i, d] of [[0, ann], [1, bob]] as const) {
      const src = join(work, `src-${i}`)
      const exp = join(src, 'tune_zoo_mnist_uniform')
      await trial(join(exp, 'NN_tune_trainable_a1b2c_00000_0_seed=1_2021-03-01'), i, 1)
      await writeFile(join(exp, 'config.json'), JSON.stringify({ seed: { grid_search: [1] } }))
      const r = await zoo(d, ['import', src, '--prefix', 'mz'])
      assert.equal(r.code, 0, r.stderr)
    }
    const p = await zoo(ann, ['push'])
    assert.equal(p.code, 0, p.stderr)
    const pull = await zoo(bob, ['pull'])
    assert.equal(pull.code, 0, pull.stderr)
    const member = 'mz/tune_zoo_mnist_uniform/nn_tune_trainable_a1b2c_00000_0_seed-1_2021-03-01'
    const files = (await git(bob, 'ls-files', `models/${member}`)).trim().split('\n').map((f) => f.slice(`models/${member}/`.length))
    assert.deepEqual(files, ['v1/manifest.json', 'v1/params.json', 'v2/manifest.json', 'v2/params.json'])
    const v2 = JSON.parse(await readFile(join(bob, 'models', member, 'v2', 'manifest.json'), 'utf8')) as { version: number; population: string }
    assert.equal(v2.version, 2)
    assert.equal(v2.population, 'mz/tune_zoo_mnist_uniform')
    const card = await zoo(bob, ['show', `${member}@v2`, '--card'])
    assert.equal(card.code, 0, card.stderr)
    assert.match(card.stdout, new RegExp(`^# ${member} v2$`, 'm'))
  } finally {
    await rm(work, { recursive: true, force: true })
  }
})
