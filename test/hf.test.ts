/**
 * Hugging Face interop and cards through the real binary: `import --layout hf` of a Hub snapshot
 * (sharded safetensors + index, config, tokenizer, README front matter), lineage from base_model
 * (a zoo model by the Hub id it was imported from, or a Hub model recorded), a broken index
 * refused, `export --format hf` giving every file back byte for byte with a README whose front
 * matter real YAML (PyYAML) reads as the Hub's; `add --license --card` and the config defaults.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, writeFile, rm, rename, symlink } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { initRepo, tempDir, zoo, git } from './helpers-git.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'

function shard(names: Array<[string, number]>, seed: number): Buffer {
  return Buffer.from(encodeSafetensors(names.map(([name, n], k) => ({ name, dtype: 'F32' as const, shape: [n], data: new Uint8Array(new Float32Array(n).map((_, i) => Math.sin(i * 0.37 + seed + k)).buffer) }))))
}

const CARD = `---
license: apache-2.0
base_model: google-bert/bert-base-uncased
base_model_relation: finetune
datasets:
- imdb
language:
- en
pipeline_tag: text-classification
tags:
- sentiment
model-index:
- name: bert-imdb
  results:
  - task:
      type: text-classification
    dataset:
      name: imdb
      type: imdb
    metrics:
    - type: accuracy
      value: 0.93
      name: Accuracy
---

# bert-imdb

A BERT fine-tuned on IMDB reviews.
`

/** A Hub snapshot folder: two shards and their index, config, tokenizer, README. */
async function snapshot(dir: string, card = CARD, seed = 1): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'model-00001-of-00002.safetensors'), shard([['encoder.weight', 256], ['encoder.bias', 16]], seed))
  await writeFile(join(dir, 'model-00002-of-00002.safetensors'), shard([['classifier.weight', 32]], seed))
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 1216 }, weight_map: {
    'encoder.weight': 'model-00001-of-00002.safetensors', 'encoder.bias': 'model-00001-of-00002.safetensors', 'classifier.weight': 'model-00002-of-00002.safetensors' } }, null, 2))
  await writeFile(join(dir, 'config.json'), JSON.stringify({ architectures: ['BertForSequenceClassification'], model_type: 'bert', hidden_size: 16, num_labels: 2 }, null, 2))
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'WordPiece', vocab: { '[PAD]': 0 } } }))
  await writeFile(join(dir, '.gitattributes'), '*.safetensors filter=lfs\n')
  await writeFile(join(dir, 'README.md'), card)
}

/** The README's front matter as PyYAML reads it (Debian's python3). */
function yamlFrontMatter(readme: string): Promise<Record<string, unknown>> {
  const fm = /^---\n([\s\S]*?)\n---\n/.exec(readme)
  assert.ok(fm, 'README.md starts with front matter')
  return new Promise((res, rej) => {
    const child = execFile('/usr/bin/python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], (err, stdout, stderr) => (err ? rej(new Error(stderr)) : res(JSON.parse(stdout) as Record<string, unknown>)))
    child.stdin!.end(fm[1])
  })
}

async function ok(dir: string, args: string[]): Promise<string> {
  const r = await zoo(dir, args)
  assert.equal(r.code, 0, `git zoo ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

async function zooRepo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await initRepo()
  await ok(r.dir, ['init'])
  await git(r.dir, 'add', '-A')
  await git(r.dir, 'commit', '-q', '-m', 'zoo')
  return r
}

test('import --layout hf reads a Hub snapshot; export --format hf gives it back byte for byte with a Hub card', async () => {
  const t = await tempDir('zoo-hf-')
  const z = await zooRepo()
  try {
    // a snapshot as the Hub cache keeps it: the Hub id and revision come from the path
    const snap = join(t.dir, 'hub', 'models--acme--bert-imdb', 'snapshots', '0123abcd')
    await snapshot(snap)
    // the Hub cache keeps the bytes in blobs/ and links them from the snapshot
    const blobs = join(t.dir, 'hub', 'models--acme--bert-imdb', 'blobs')
    await mkdir(blobs)
    for (const f of await readdir(snap)) {
      await rename(join(snap, f), join(blobs, `blob-${f}`))
      await symlink(join('..', '..', 'blobs', `blob-${f}`), join(snap, f))
    }
    const imp = JSON.parse(await ok(z.dir, ['import', '--layout', 'hf', snap, '--json']))
    assert.equal(imp.name, 'acme/bert-imdb')
    assert.deepEqual(imp.hub_base_models, ['google-bert/bert-base-uncased'])
    assert.deepEqual(imp.files.map((f: { path: string }) => f.path).sort(), ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.json'])
    const m = JSON.parse(await ok(z.dir, ['show', 'acme/bert-imdb', '--json']))
    assert.equal(m.license, 'apache-2.0')
    assert.equal(m.dataset, 'imdb')
    assert.equal(m.arch, 'BertForSequenceClassification')
    assert.deepEqual(m.metrics, { accuracy: 0.93 })
    assert.equal(m.params.hf_id, 'acme/bert-imdb')
    assert.equal(m.params.hf_revision, '0123abcd')
    assert.equal(m.params.hf_base_model, 'google-bert/bert-base-uncased')
    assert.match(m.card_text, /A BERT fine-tuned on IMDB reviews\./)

    // a child whose card names the parent by its Hub id: linked in the zoo, relation from the card
    const child = join(t.dir, 'bert-imdb-int8')
    await snapshot(child, CARD.replace('base_model: google-bert/bert-base-uncased', 'base_model: acme/bert-imdb').replace('finetune', 'quantized'), 2)
    const ci = JSON.parse(await ok(z.dir, ['import', '--layout', 'hf', child, '--prefix', 'acme', '--json']))
    assert.equal(ci.name, 'acme/bert-imdb-int8')
    assert.deepEqual(ci.parents, [{ name: 'acme/bert-imdb', version: 1, relation: 'quantized' }])
    assert.deepEqual(ci.hub_base_models, [])

    const out = join(t.dir, 'out')
    const ex = JSON.parse(await ok(z.dir, ['export', 'acme/bert-imdb-int8', '--format', 'hf', '--out', out, '--json']))
    assert.deepEqual(ex.base_model, ['acme/bert-imdb'])
    const written = (await readdir(out)).sort()
    assert.deepEqual(written, ['README.md', 'config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json', 'tokenizer.json'])
    for (const f of written.filter((f) => f !== 'README.md')) assert.deepEqual(await readFile(join(out, f)), await readFile(join(child, f)), f)
    const readme = await readFile(join(out, 'README.md'), 'utf8')
    const fm = await yamlFrontMatter(readme)
    assert.equal(fm.license, 'apache-2.0')
    assert.deepEqual(fm.base_model, ['acme/bert-imdb'])
    assert.equal(fm.base_model_relation, 'quantized')
    assert.deepEqual(fm.datasets, ['imdb'])
    assert.deepEqual(fm.language, ['en'])
    assert.equal(fm.pipeline_tag, 'text-classification')
    assert.ok((fm.tags as string[]).includes('sentiment'))
    const results = (fm['model-index'] as Array<{ name: string; results: Array<{ task: { type: string }; dataset: { name: string }; metrics: Array<{ type: string; value: number }> }> }>)[0]!
    assert.equal(results.name, 'acme/bert-imdb-int8')
    assert.deepEqual(results.results[0]!.task, { type: 'text-classification' })
    assert.deepEqual(results.results[0]!.metrics.map((x) => [x.type, x.value]), [['accuracy', 0.93]])
    assert.match(readme, /\n# bert-imdb\n\nA BERT fine-tuned on IMDB reviews\.\n/)
    // the root's export names the Hub model it was fine-tuned from
    const out2 = join(t.dir, 'out2')
    await ok(z.dir, ['export', 'acme/bert-imdb', '--format', 'hf', '--out', out2])
    assert.deepEqual((await yamlFrontMatter(await readFile(join(out2, 'README.md'), 'utf8'))).base_model, ['google-bert/bert-base-uncased'])
    // an export never writes into a folder that holds something
    const again = await zoo(z.dir, ['export', 'acme/bert-imdb', '--format', 'hf', '--out', out2])
    assert.equal(again.code, 2)
    assert.match(again.stderr, /is not empty/)
    assert.equal((await zoo(z.dir, ['export', 'acme/bert-imdb', '--out', join(t.dir, 'o3')])).code, 2)
  } finally { await z.cleanup(); await t.cleanup() }
})

test('a sharded snapshot whose index names a missing shard or a tensor its shard lacks is refused; nothing is promoted', async () => {
  const t = await tempDir('zoo-hf-bad-')
  const z = await zooRepo()
  try {
    const head = (await git(z.dir, 'rev-parse', 'HEAD')).trim()
    const snap = join(t.dir, 'partial')
    await snapshot(snap)
    await rm(join(snap, 'model-00002-of-00002.safetensors'))
    const missing = await zoo(z.dir, ['import', '--layout', 'hf', snap])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /model\.safetensors\.index\.json names shard model-00002-of-00002\.safetensors \(1 tensors\), which the folder does not have/)
    await writeFile(join(snap, 'model-00002-of-00002.safetensors'), shard([['other.weight', 32]], 1))
    const wrong = await zoo(z.dir, ['import', '--layout', 'hf', snap])
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /puts 1 tensor\(s\) in model-00002-of-00002\.safetensors that it does not hold \(first: classifier\.weight\)/)
    assert.equal((await git(z.dir, 'rev-parse', 'HEAD')).trim(), head)
    const empty = join(t.dir, 'empty')
    await mkdir(empty)
    await writeFile(join(empty, 'config.json'), '{}')
    assert.equal((await zoo(z.dir, ['import', '--layout', 'hf', empty])).code, 2)
  } finally { await z.cleanup(); await t.cleanup() }
})

test('add --license --card writes a Hub-compatible card; .zoo/config.json card defaults apply; bad licence ids are refused', async () => {
  const t = await tempDir('zoo-card-')
  const z = await zooRepo()
  try {
    const w = join(t.dir, 'w.safetensors')
    await writeFile(w, shard([['w', 8]], 3))
    await writeFile(join(t.dir, 'card.md'), '---\nlicense: mit\nlanguage: en\n---\n# Tiny\n\nA tiny model for tests.\n')
    await ok(z.dir, ['add', w, '--name', 'tiny/a', '--license', 'Apache-2.0', '--card', join(t.dir, 'card.md')])
    const readme = await readFile(join(z.dir, 'models/tiny/a/v1/README.md'), 'utf8')
    const fm = await yamlFrontMatter(readme)
    // --license wins over the card's own licence key; the card's other keys are kept
    assert.equal(fm.license, 'apache-2.0')
    assert.equal(fm.language, 'en')
    assert.match(readme, /\n# Tiny\n\nA tiny model for tests\.\n/)
    const show = await ok(z.dir, ['show', 'tiny/a'])
    assert.match(show, /^  license\s+apache-2\.0$/m)
    // zoo-wide defaults
    await writeFile(join(z.dir, 'CARD.md'), 'Trained by the vision group.\n')
    const config = JSON.parse(await readFile(join(z.dir, '.zoo/config.json'), 'utf8'))
    await writeFile(join(z.dir, '.zoo/config.json'), JSON.stringify({ ...config, card: { license: 'cc-by-4.0', template: 'CARD.md' } }, null, 2))
    await git(z.dir, 'add', '.zoo/config.json', 'CARD.md')
    await git(z.dir, 'commit', '-q', '-m', 'card defaults')
    await ok(z.dir, ['add', w, '--name', 'tiny/b'])
    const b = await readFile(join(z.dir, 'models/tiny/b/v1/README.md'), 'utf8')
    assert.equal((await yamlFrontMatter(b)).license, 'cc-by-4.0')
    assert.match(b, /Trained by the vision group\./)
    const bad = await zoo(z.dir, ['add', w, '--name', 'tiny/c', '--license', 'not a licence'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--license "not a licence" is not a licence id/)
    const noCard = await zoo(z.dir, ['add', w, '--name', 'tiny/c', '--card', join(t.dir, 'nope.md')])
    assert.equal(noCard.code, 2)
    assert.match(noCard.stderr, /cannot read --card .*nope\.md: no such file/)
  } finally { await z.cleanup(); await t.cleanup() }
})
