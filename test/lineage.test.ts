/**
 * Lineage through the CLI: a pre-trained model, three fine-tunes of it and a soup of the three;
 * text/json/dot/mermaid output, find by parent/ancestor/relation, model cards, and a hand-edited
 * manifest that makes a cycle or breaks a seal link.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempRepo, zoo, git } from './cli.js'

async function family(dir: string): Promise<void> {
  assert.equal((await zoo(dir, ['init'])).code, 0)
  await git(dir, 'commit', '-q', '-m', 'init zoo')
  const add = async (name: string, bytes: number, extra: string[]): Promise<void> => {
    await writeFile(join(dir, 'w.bin'), Buffer.alloc(bytes, bytes % 251))
    await writeFile(join(dir, 'm.json'), JSON.stringify([{ epoch: 0, test_acc: 0.1, test_loss: 2 }, { epoch: 1, test_acc: 0.3 + bytes / 1e5, test_loss: 1 }]))
    const r = await zoo(dir, ['add', 'w.bin', '--name', name, '--metrics', 'm.json', '--dataset', 'glyphs', ...extra])
    assert.equal(r.code, 0, r.stderr)
  }
  await writeFile(join(dir, '.gitignore'), '.zoo/cache/\nw.bin\nm.json\n')
  await git(dir, 'add', '.gitignore')
  await git(dir, 'commit', '-q', '-m', 'ignore inputs')
  await add('vit/pre', 1000, ['--seed', '1'])
  await add('vit/ft-a', 1100, ['--parent', 'vit/pre', '--seed', '2'])
  await add('vit/ft-b', 1200, ['--parent', 'vit/pre=fine-tune', '--seed', '3'])
  await add('vit/ft-c', 1300, ['--parent', 'vit/pre@v1', '--seed', '4'])
  await add('vit/soup', 1400, ['--parent', 'vit/ft-a=soup', '--parent', 'vit/ft-b=soup', '--parent', 'vit/ft-c=soup'])
}

test('lineage of a pre-train with three fine-tunes and a soup, in every format; find by lineage; cards', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    await family(dir)
    const j = await zoo(dir, ['lineage', 'vit/pre', '--format', 'json'])
    assert.equal(j.code, 0, j.stderr)
    const g = JSON.parse(j.stdout) as { nodes: Array<{ name: string; version: number; seal: string }>; edges: Array<{ from: string; to: string; relation: string }> }
    assert.deepEqual(g.nodes.map((n) => `${n.name}@v${n.version}`).sort(), ['vit/ft-a@v1', 'vit/ft-b@v1', 'vit/ft-c@v1', 'vit/pre@v1', 'vit/soup@v1'])
    assert.ok(g.nodes.every((n) => /^baf/.test(n.seal)))
    const edges = g.edges.map((e) => `${e.from} -${e.relation}-> ${e.to}`).sort()
    assert.deepEqual(edges, [
      'vit/ft-a@v1 -soup-> vit/soup@v1', 'vit/ft-b@v1 -soup-> vit/soup@v1', 'vit/ft-c@v1 -soup-> vit/soup@v1',
      'vit/pre@v1 -fine-tune-> vit/ft-a@v1', 'vit/pre@v1 -fine-tune-> vit/ft-b@v1', 'vit/pre@v1 -fine-tune-> vit/ft-c@v1',
    ])
    const text = await zoo(dir, ['lineage', 'vit/pre'])
    assert.equal(text.code, 0)
    assert.match(text.stdout, /descendants of vit\/pre@v1/)
    assert.match(text.stdout, /├─ fine-tune -> vit\/ft-a@v1/)
    assert.match(text.stdout, /soup -> vit\/soup@v1 .*\(also from vit\/ft-b@v1, vit\/ft-c@v1\)/)
    assert.match(text.stdout, /vit\/soup@v1 \(shown above\)/)
    // the soup's ancestors: all three fine-tunes and, through them, the pre-train
    const up = await zoo(dir, ['lineage', 'vit/soup', '--json'])
    const ug = JSON.parse(up.stdout) as { nodes: unknown[]; edges: unknown[] }
    assert.equal(ug.nodes.length, 5)
    assert.equal(ug.edges.length, 6)
    const dot = await zoo(dir, ['lineage', 'vit/ft-b', '--format', 'dot'])
    assert.match(dot.stdout, /^digraph lineage \{/)
    assert.match(dot.stdout, /"vit\/pre@v1" -> "vit\/ft-b@v1" \[label="fine-tune"\];/)
    assert.match(dot.stdout, /"vit\/ft-b@v1" -> "vit\/soup@v1" \[label="soup"\];/)
    assert.doesNotMatch(dot.stdout, /ft-a/) // a sibling is neither ancestor nor descendant
    const mm = await zoo(dir, ['lineage', 'vit/pre', '--format', 'mermaid'])
    assert.match(mm.stdout, /^graph TD\n/)
    assert.equal((mm.stdout.match(/-->\|/g) ?? []).length, 6)
    assert.equal((await zoo(dir, ['lineage', 'vit/pre', '--format', 'svg'])).code, 2)

    const names = async (...args: string[]): Promise<string[]> => {
      const r = await zoo(dir, ['find', ...args, '--json'])
      assert.equal(r.code, 0, r.stderr)
      return (JSON.parse(r.stdout) as { models: Array<{ name: string }> }).models.map((m) => m.name).sort()
    }
    assert.deepEqual(await names('ancestor=vit/pre'), ['vit/ft-a', 'vit/ft-b', 'vit/ft-c', 'vit/soup'])
    assert.deepEqual(await names('parent=vit/pre', 'seed>=3'), ['vit/ft-b', 'vit/ft-c'])
    assert.deepEqual(await names('relation=soup'), ['vit/soup'])
    assert.deepEqual(await names('relation='), ['vit/pre'])
    assert.deepEqual(await names('parent~vit/ft-*'), ['vit/soup'])
    assert.deepEqual(await names('parent~ft-b'), ['vit/soup']) // a substring

    // cards: Hugging Face front matter and the terminal card with its plot and children
    const card = await readFile(join(dir, 'models/vit/soup/v1/README.md'), 'utf8')
    assert.match(card, /^---\nbase_model:\n- "vit\/ft-a@v1"\n- "vit\/ft-b@v1"\n- "vit\/ft-c@v1"\nbase_model_relation: merge\ndatasets:\n- "glyphs"\n/)
    assert.match(card, /model-index:\n- name: "vit\/soup"\n {2}results:/)
    assert.match(card, /## Metrics[\s\S]*\| test_acc \| 0\.314 \| 0\.314 \(max\) \| 1 \|/)
    assert.match(card, /git zoo get vit\/soup@v1/)
    const show = await zoo(dir, ['show', 'vit/pre'])
    assert.equal(show.code, 0, show.stderr)
    assert.match(show.stdout, /\(verified\)/)
    assert.match(show.stdout, /test_acc over epochs 0-1/)
    assert.match(show.stdout, /fine-tune -> vit\/ft-c@v1/)
    const sj = JSON.parse((await zoo(dir, ['show', 'vit/soup', '--json'])).stdout) as { seal_ok: boolean; parents: unknown[]; curve: { key: string } }
    assert.equal(sj.seal_ok, true)
    assert.equal(sj.parents.length, 3)
    assert.equal(sj.curve.key, 'test_acc')
  } finally { await cleanup() }
})

test('a hand-edited manifest that makes a cycle is refused, naming it; a broken seal link is reported', async () => {
  const { dir, cleanup } = await tempRepo()
  try {
    await family(dir)
    const prePath = join(dir, 'models/vit/pre/v1/manifest.json')
    const original = await readFile(prePath, 'utf8')
    const soup = JSON.parse(await readFile(join(dir, 'models/vit/soup/v1/manifest.json'), 'utf8')) as { seal: string }
    const pre = JSON.parse(original) as { parents: unknown[] }
    pre.parents = [{ name: 'vit/soup', version: 1, seal: soup.seal, relation: 'continued' }]
    await writeFile(prePath, JSON.stringify(pre, null, 2) + '\n')
    for (const target of ['vit/pre', 'vit/ft-a', 'vit/soup']) {
      const r = await zoo(dir, ['lineage', target])
      assert.equal(r.code, 1, `${target}: ${r.stdout}`)
      assert.match(r.stderr, /lineage cycle: .*vit\/pre@v1.*vit\/soup@v1|lineage cycle: .*vit\/soup@v1.*vit\/pre@v1/)
      assert.match(r.stderr, /models\/vit\/pre\/v1\/manifest\.json|models\/vit\/soup\/v1\/manifest\.json/)
    }
    // find terminates on the cyclic graph
    assert.equal((await zoo(dir, ['find', 'ancestor=vit/soup'])).code, 0)
    await writeFile(prePath, original)

    // a child that records a wrong parent seal: shown, exit 1
    const ftPath = join(dir, 'models/vit/ft-b/v1/manifest.json')
    const ft = JSON.parse(await readFile(ftPath, 'utf8')) as { parents: Array<{ seal: string }> }
    ft.parents[0]!.seal = soup.seal
    await writeFile(ftPath, JSON.stringify(ft, null, 2) + '\n')
    const r = await zoo(dir, ['lineage', 'vit/pre', '--json'])
    assert.equal(r.code, 1)
    const g = JSON.parse(r.stdout) as { problems: Array<{ model: string; problem: string }> }
    assert.ok(g.problems.some((p) => p.model === 'vit/ft-b@v1' && /records parent vit\/pre@v1 with seal/.test(p.problem)), JSON.stringify(g.problems))
    assert.ok(g.problems.some((p) => p.model === 'vit/ft-b@v1' && /does not match its seal/.test(p.problem)))
    const s = await zoo(dir, ['show', 'vit/ft-b'])
    assert.equal(s.code, 1)
    assert.match(s.stdout, /MISMATCH/)
  } finally { await cleanup() }
})
