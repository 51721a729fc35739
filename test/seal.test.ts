/**
 * The seal: the float rule, and every field of a manifest mutated after sealing is caught by the
 * pre-commit hook (staged), by `verify` (working tree) and by `verify --signatures` (committed with
 * --no-verify). The figure: mutations detected / tried, for each.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, zoo, git, safetensorsBytes } from './helpers-git.js'
import { computeSeal, parseManifest, serializeManifest, sealBytes, type Manifest, type ManifestBody } from '../src/manifest/manifest.js'

const BODY: ManifestBody = {
  zoo: 1, name: 'f/m', version: 1, params: {}, metrics: { acc: 1 }, files: [], parents: [], env: {},
  promoter: 'A <a@x>', created: '2025-01-01T00:00:00.000Z',
}

test('the float rule: integral numbers seal as CBOR integers, others as float64; 1.0 and 1 are one value', () => {
  const text = (acc: string): string => JSON.stringify({ ...BODY, seal: 'x' }).replace('"acc":1', `"acc":${acc}`)
  const sealOf = (acc: string): string => { const m = JSON.parse(text(acc)) as Manifest; return computeSeal(m) }
  assert.equal(sealOf('1.0'), sealOf('1'))
  assert.equal(sealOf('1e0'), sealOf('1'))
  assert.notEqual(sealOf('0.1'), sealOf('0.10000000000000002'))
  const hex = (acc: number): string => Buffer.from(sealBytes({ ...BODY, metrics: { acc } })).toString('hex')
  assert.ok(hex(1).includes('6361636301'), 'acc: 1 is the CBOR integer 1')
  assert.ok(hex(0.1).includes('636163 63fb3fb999999999999a'.replace(' ', '')), 'acc: 0.1 is float64')
  assert.ok(hex(2 ** 53).includes('fb4340000000000000'), '2^53 is beyond the safe integers: float64')
  assert.ok(hex(2 ** 53 - 1).includes('1b001fffffffffffff'), '2^53-1 is a CBOR integer')
  // the written form round-trips exactly: parse(serialize(m)) gives the same numbers and seal
  const m: ManifestBody = { ...BODY, metrics: { acc: 0.1 + 0.2, loss: 1e-7, big: 1e21 } }
  const sealed = { ...m, seal: computeSeal(m) }
  const again = parseManifest(serializeManifest(sealed as Manifest))
  assert.deepEqual(again.metrics, sealed.metrics)
  assert.equal(computeSeal(again), sealed.seal)
})

interface Mutation { field: string; mutate: (m: Record<string, any>) => void }

const OTHER_CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

const MUTATIONS: Mutation[] = [
  { field: 'code revision', mutate: (m) => { m.code.commit = m.code.commit.replace(/^./, (c: string) => (c === 'a' ? 'b' : 'a')) } },
  { field: 'code dirty flag', mutate: (m) => { m.code.dirty = true } },
  { field: 'config digest', mutate: (m) => { m.config.sha256 = m.config.sha256.replace(/^./, (c: string) => (c === 'a' ? 'b' : 'a')) } },
  { field: 'seed', mutate: (m) => { m.seed += 1 } },
  { field: 'final metric', mutate: (m) => { m.metrics.acc = 0.97 } },
  { field: 'per-epoch metric', mutate: (m) => { m.history[0].acc = 0.99 } },
  { field: 'dataset', mutate: (m) => { m.dataset = 'glyphs@2' } },
  { field: 'a hyperparameter', mutate: (m) => { m.params.lr = 0.3 } },
  { field: 'chunk root', mutate: (m) => { m.files[0].root = OTHER_CID } },
  { field: 'file size', mutate: (m) => { m.files[0].size += 1 } },
  { field: 'file sha256', mutate: (m) => { m.files[0].sha256 = m.files[0].sha256.replace(/^./, (c: string) => (c === 'a' ? 'b' : 'a')) } },
  { field: 'parent seal', mutate: (m) => { m.parents[0].seal = OTHER_CID } },
  { field: 'parent relation', mutate: (m) => { m.parents[0].relation = 'merge' } },
  { field: 'environment', mutate: (m) => { m.env.gpu = 'none' } },
  { field: 'promoter', mutate: (m) => { m.promoter = 'Mallory <m@x>' } },
  { field: 'time', mutate: (m) => { m.created = '2020-01-01T00:00:00.000Z' } },
  { field: 'an added field', mutate: (m) => { m.approved = true } },
]

test('every field mutated after sealing is detected by the hook, verify and verify --signatures', async (t) => {
  const r = await initRepo()
  try {
    const { dir } = r
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await git(dir, 'commit', '-q', '-m', 'init')
    const ckpt = join(dir, '.git', 'w.safetensors')
    await writeFile(ckpt, safetensorsBytes(64))
    await writeFile(join(dir, '.git', 'cfg.yaml'), 'lr: 0.1\n')
    await writeFile(join(dir, '.git', 'metrics.json'), JSON.stringify([{ epoch: 1, acc: 0.5 }, { epoch: 2, acc: 0.75 }]))
    const p = await zoo(dir, ['add', ckpt, '--name', 'seal/parent', '--seed', '1'])
    assert.equal(p.code, 0, p.stderr)
    await writeFile(ckpt, safetensorsBytes(64, 1))
    const c = await zoo(dir, ['add', ckpt, '--name', 'seal/child', '--parent', 'seal/parent@v1', '--config', join(dir, '.git', 'cfg.yaml'),
      '--metrics', join(dir, '.git', 'metrics.json'), '--seed', '7', '--dataset', 'glyphs@1', '--param', 'lr=0.1', '--env', 'gpu=a100'])
    assert.equal(c.code, 0, c.stderr)
    const rel = 'models/seal/child/v1/manifest.json'
    const file = join(dir, rel)
    const original = await readFile(file, 'utf8')
    const promoted = (await git(dir, 'rev-parse', 'HEAD')).trim()
    const mutated = (mu: Mutation): string => {
      const m = JSON.parse(original)
      mu.mutate(m)
      return JSON.stringify(m, null, 2) + '\n'
    }
    const hookKinds = async (): Promise<string[]> => {
      const h = await zoo(dir, ['hook-pre-commit', '--json'])
      assert.ok(h.stdout, `hook-pre-commit printed nothing: exit ${h.code} ${h.stderr}`)
      const j = JSON.parse(h.stdout)
      assert.equal(h.code, j.ok ? 0 : 1)
      return j.problems.filter((x: { path: string }) => x.path === rel).map((x: { kind: string }) => x.kind)
    }
    let sealedHook = 0; let verified = 0; let stagedHook = 0; let audited = 0
    for (const mu of MUTATIONS) {
      assert.notEqual(mutated(mu), original, mu.field)
      await writeFile(file, mutated(mu))
      await git(dir, 'add', rel)
      if ((await hookKinds()).includes('sealed')) sealedHook++
      else assert.fail(`hook missed a change to the sealed ${mu.field}`)
      const v = await zoo(dir, ['verify', 'seal/child@v1', '--json'])
      if (v.code === 1 && /seal mismatch/.test(v.stdout)) verified++
      else assert.fail(`verify missed ${mu.field}: exit ${v.code} ${v.stdout} ${v.stderr}`)
      // committed past the hook, signed or not, the audit replays the rules
      await git(dir, 'commit', '-q', '--no-verify', '-m', `edit ${mu.field}`)
      const a = await zoo(dir, ['verify', '--signatures', '--json'])
      const problems = JSON.parse(a.stdout).problems as Array<{ model: string; problem: string }>
      if (problems.some((x) => x.model === 'seal/child@v1' && /modifies the sealed version/.test(x.problem))) audited++
      else assert.fail(`verify --signatures missed ${mu.field}: ${a.stdout}`)
      await git(dir, 'reset', '-q', '--hard', promoted)
    }
    // the same mutations before the first commit: the seal itself gives them away
    await git(dir, 'reset', '-q', '--soft', 'HEAD~1')
    assert.deepEqual(await hookKinds(), [])
    for (const mu of MUTATIONS) {
      await writeFile(file, mutated(mu))
      await git(dir, 'add', rel)
      const kinds = await hookKinds()
      if (kinds.includes('seal')) stagedHook++
      else assert.fail(`hook missed ${mu.field} on a new manifest: ${kinds}`)
    }
    // re-sealed after the edit: valid on its own, but the hook still sees the config snapshot
    const m = JSON.parse(mutated(MUTATIONS[2]!))
    delete m.seal
    m.seal = computeSeal(m)
    await writeFile(file, serializeManifest(m))
    await git(dir, 'add', rel)
    assert.deepEqual(await hookKinds(), [])
    const h = JSON.parse((await zoo(dir, ['hook-pre-commit', '--json'])).stdout)
    assert.deepEqual(h.problems.map((x: { kind: string }) => x.kind), ['config'])
    const n = MUTATIONS.length
    t.diagnostic(`mutations detected: hook on a sealed version ${sealedHook}/${n}, verify ${verified}/${n}, verify --signatures after --no-verify ${audited}/${n}, hook on a new manifest ${stagedHook}/${n}`)
  } finally { await r.cleanup() }
})
