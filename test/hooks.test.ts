/**
 * The pre-commit hook through real `git commit`: raw weights under misleading names, changes to
 * sealed versions, stray files, missing objects, the schema, retirement; chaining and uninstall;
 * and the hook's start-up cost (reported, not asserted).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile, rm, mkdir, stat, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { initRepo, zoo, git, gitRun, BIN, safetensorsBytes, npyBytes, pickleBytes } from './helpers-git.js'

async function zooRepo(): Promise<{ dir: string; cleanup: () => Promise<void>; head: () => Promise<string> }> {
  const r = await initRepo()
  const init = await zoo(r.dir, ['init'])
  assert.equal(init.code, 0, init.stderr)
  await git(r.dir, 'commit', '-q', '-m', 'zoo init')
  return { ...r, head: async () => (await git(r.dir, 'rev-parse', 'HEAD')).trim() }
}

async function promote(dir: string, name: string, extra: string[] = []): Promise<void> {
  const ckpt = join(dir, '.git', `ckpt-${name.replaceAll('/', '-')}.safetensors`)
  await writeFile(ckpt, safetensorsBytes(32))
  const cfg = join(dir, '.git', 'train.yaml')
  await writeFile(cfg, 'lr: 0.1\n')
  const r = await zoo(dir, ['add', ckpt, '--name', name, '--config', cfg, '--seed', '2', ...extra])
  assert.equal(r.code, 0, r.stderr)
}

test('raw weights are refused by their bytes whatever their names; other files pass', async () => {
  const z = await zooRepo()
  try {
    await writeFile(join(z.dir, 'notes.txt'), safetensorsBytes(64))
    await writeFile(join(z.dir, 'data.csv'), npyBytes(100))
    await writeFile(join(z.dir, 'README'), pickleBytes(2000))
    await writeFile(join(z.dir, 'train.py'), 'print("hello")\n')
    await git(z.dir, 'add', '.')
    const head = await z.head()
    const c = await gitRun(z.dir, ['commit', '-m', 'results'])
    assert.equal(c.code, 1)
    assert.equal(await z.head(), head, 'nothing committed')
    for (const [path, format] of [['notes.txt', 'safetensors'], ['data.csv', 'npy'], ['README', 'pickle']]) {
      assert.match(c.stderr, new RegExp(`  ${path}: is raw model weights by its content \\(${format}, \\d+ bytes\\)`))
      assert.match(c.stderr, new RegExp(`fix: git rm --cached -- ${path} && git zoo add ${path} --name <model>`))
    }
    assert.doesNotMatch(c.stderr, /train\.py/)
    const json = JSON.parse((await zoo(z.dir, ['hook-pre-commit', '--json'])).stdout)
    assert.deepEqual(json.problems.map((p: { path: string; kind: string }) => `${p.kind} ${p.path}`).sort(), ['weights README', 'weights data.csv', 'weights notes.txt'])
    await git(z.dir, 'rm', '-q', '--cached', 'notes.txt', 'data.csv', 'README')
    const ok = await gitRun(z.dir, ['commit', '-q', '-m', 'code only'])
    assert.equal(ok.code, 0, ok.stderr)
    // what counts is the staged blob, not the work tree: weights staged, then the file overwritten
    await writeFile(join(z.dir, 'later.txt'), safetensorsBytes(16))
    await git(z.dir, 'add', 'later.txt')
    await writeFile(join(z.dir, 'later.txt'), 'just text now\n')
    const hidden = await gitRun(z.dir, ['commit', '-q', '-m', 'sneaky'])
    assert.equal(hidden.code, 1)
    assert.match(hidden.stderr, /later\.txt: is raw model weights by its content \(safetensors/)
    await git(z.dir, 'add', 'later.txt')
    assert.equal((await gitRun(z.dir, ['commit', '-q', '-m', 'text after all'])).code, 0)
    // a short pickle (a config) and a text file that merely starts like one are not weights
    await writeFile(join(z.dir, 'small.pkl'), pickleBytes(10))
    await writeFile(join(z.dir, 'looks.txt'), 'NUMPY is not \x93NUMPY\n')
    await git(z.dir, 'add', 'small.pkl', 'looks.txt')
    assert.equal((await gitRun(z.dir, ['commit', '-q', '-m', 'small things'])).code, 0)
  } finally { await z.cleanup() }
})

test('a sealed version cannot be edited, deleted, renamed or added to; a new one must be whole', async () => {
  const z = await zooRepo()
  try {
    await promote(z.dir, 'h/m')
    const v1 = join(z.dir, 'models/h/m/v1')
    const head = await z.head()
    const refused = async (what: string, pattern: RegExp): Promise<void> => {
      const c = await gitRun(z.dir, ['commit', '-q', '-m', what])
      assert.equal(c.code, 1, `${what}: ${c.stderr}`)
      assert.match(c.stderr, pattern, what)
      assert.equal(await z.head(), head)
      await git(z.dir, 'reset', '-q', '--hard', 'HEAD')
      await git(z.dir, 'clean', '-qfd', 'models')
    }
    const m = JSON.parse(await readFile(join(v1, 'manifest.json'), 'utf8'))
    await writeFile(join(v1, 'manifest.json'), JSON.stringify({ ...m, seed: 3 }, null, 2) + '\n')
    await git(z.dir, 'add', '-A')
    await refused('edit the manifest', /models\/h\/m\/v1\/manifest\.json: modifies the sealed version h\/m@v1[^]*fix: git restore --staged --worktree --source=HEAD -- models\/h\/m\/v1\/manifest\.json/)
    await writeFile(join(v1, 'README.md'), '# better card\n')
    await git(z.dir, 'add', '-A')
    await refused('edit the card', /README\.md: modifies the sealed version h\/m@v1/)
    await git(z.dir, 'rm', '-q', join(v1, 'train.yaml'))
    await refused('delete the config', /train\.yaml: deletes the sealed version h\/m@v1[^]*git zoo retire h\/m@v1 --reason/)
    await git(z.dir, 'rm', '-q', '-r', v1)
    await refused('delete the version', /manifest\.json: deletes the sealed version h\/m@v1/)
    await git(z.dir, 'mv', v1, join(z.dir, 'models/h/m/v2'))
    await refused('rename v1 to v2', /deletes the sealed version h\/m@v1[^]*models\/h\/m\/v2\/manifest\.json: .*sits in models\/h\/m\/v2\//)
    await writeFile(join(v1, 'extra.txt'), 'note\n')
    await git(z.dir, 'add', '-A')
    await refused('add to a sealed folder', /extra\.txt: adds a file to the sealed version h\/m@v1[^]*fix: git rm --cached -- models\/h\/m\/v1\/extra\.txt/)
    await mkdir(join(z.dir, 'models/h/loose'), { recursive: true })
    await writeFile(join(z.dir, 'models/h/loose/notes.md'), 'hi\n')
    await git(z.dir, 'add', '-A')
    await refused('a file outside version folders', /models\/h\/loose\/notes\.md: models\/ holds only model version folders/)
    await mkdir(join(z.dir, 'models/h/m/v2'), { recursive: true })
    await writeFile(join(z.dir, 'models/h/m/v2/README.md'), '# v2\n')
    await git(z.dir, 'add', '-A')
    await refused('a version folder without a manifest', /v2\/README\.md: models\/h\/m\/v2\/ has no manifest\.json/)
    // the config snapshot of a new version must match its digest
    await git(z.dir, 'reset', '-q', '--soft', 'HEAD~1')
    await writeFile(join(v1, 'train.yaml'), 'lr: 0.2\n')
    await git(z.dir, 'add', '-A')
    const cfg = JSON.parse((await zoo(z.dir, ['hook-pre-commit', '--json'])).stdout)
    assert.deepEqual(cfg.problems.map((p: { kind: string; path: string }) => `${p.kind} ${p.path}`), ['config models/h/m/v1/train.yaml'])
  } finally { await z.cleanup() }
})

test('a new manifest must have its objects in the local store and meet the schema as of HEAD', async () => {
  const z = await zooRepo()
  try {
    await promote(z.dir, 's/m')
    await git(z.dir, 'reset', '-q', '--soft', 'HEAD~1') // staged again, not committed
    assert.equal((await zoo(z.dir, ['hook-pre-commit'])).code, 0)
    await rm(join(z.dir, '.git', 'zoo'), { recursive: true })
    const gone = await gitRun(z.dir, ['commit', '-q', '-m', 'promote without objects'])
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, /models\/s\/m\/v1\/manifest\.json: (\d+ of \d+ objects it references are missing|its file tree cannot be read) from the local store/)
    assert.match(gone.stderr, /fix: git zoo fetch s\/m@v1/)
    // the schema in HEAD requires a metric this manifest lacks
    await writeFile(join(z.dir, '.zoo/schema.json'), JSON.stringify({ required: ['metrics.test_acc'], properties: { seed: { type: 'integer', minimum: 10 } } }))
    await git(z.dir, 'commit', '-q', '-m', 'schema', '--', '.zoo/schema.json')
    const s = JSON.parse((await zoo(z.dir, ['hook-pre-commit', '--json'])).stdout)
    const schema = s.problems.find((p: { kind: string }) => p.kind === 'schema')
    assert.match(schema.problem, /metrics\.test_acc is required by \.zoo\/schema\.json; seed must be >= 10/)
  } finally { await z.cleanup() }
})

test('retirement: the hook allows exactly a valid RETIRED.json, and nothing after it', async () => {
  const z = await zooRepo()
  try {
    await promote(z.dir, 'r/m')
    const seal = JSON.parse(await readFile(join(z.dir, 'models/r/m/v1/manifest.json'), 'utf8')).seal as string
    const file = join(z.dir, 'models/r/m/v1/RETIRED.json')
    const record = { zoo: 1, name: 'r/m', version: 1, seal: 'bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', reason: 'x', retired_by: 'me', retired: 'now' }
    await writeFile(file, JSON.stringify(record))
    await git(z.dir, 'add', file)
    const bad = await gitRun(z.dir, ['commit', '-q', '-m', 'retire wrongly'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /RETIRED\.json: not a valid retirement: its seal .* is not the sealed manifest's/)
    await git(z.dir, 'rm', '-q', '--cached', file)
    await rm(file)
    const r = await zoo(z.dir, ['retire', 'r/m@v1', '--reason', 'superseded'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(await readFile(file, 'utf8')).seal, seal)
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), reason: 'never mind' }))
    await git(z.dir, 'add', file)
    const edit = await gitRun(z.dir, ['commit', '-q', '-m', 'unretire'])
    assert.equal(edit.code, 1)
    assert.match(edit.stderr, /RETIRED\.json: modifies the sealed version r\/m@v1/)
  } finally { await z.cleanup() }
})

test('hooks chain the user\'s own and uninstall puts it back; the hook fails clearly without git-zoo', async () => {
  const r = await initRepo()
  try {
    const hooks = join(r.dir, '.git', 'hooks')
    const mine = '#!/bin/sh\necho my-hook-ran >&2\n[ ! -e "$(git rev-parse --show-toplevel)/BLOCK" ]\n'
    await writeFile(join(hooks, 'pre-commit'), mine, { mode: 0o755 })
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    await git(r.dir, 'commit', '-q', '-m', 'init')
    await writeFile(join(r.dir, 'BLOCK'), '')
    await writeFile(join(r.dir, 'notes.txt'), safetensorsBytes(8))
    await git(r.dir, 'add', 'notes.txt')
    const blocked = await gitRun(r.dir, ['commit', '-q', '-m', 'x'])
    assert.equal(blocked.code, 1)
    assert.match(blocked.stderr, /my-hook-ran/)
    assert.doesNotMatch(blocked.stderr, /raw model weights/, 'the user\'s hook ran first and stopped the commit')
    await rm(join(r.dir, 'BLOCK'))
    const zoo1 = await gitRun(r.dir, ['commit', '-q', '-m', 'x'])
    assert.equal(zoo1.code, 1)
    assert.match(zoo1.stderr, /my-hook-ran[^]*notes\.txt: is raw model weights/)
    const u = await zoo(r.dir, ['uninstall', '--json'])
    assert.equal(u.code, 0, u.stderr)
    assert.deepEqual(JSON.parse(u.stdout).hooks, [{ hook: 'pre-commit', action: 'restored' }, { hook: 'pre-push', action: 'removed' }])
    assert.equal(await readFile(join(hooks, 'pre-commit'), 'utf8'), mine)
    await assert.rejects(stat(join(hooks, 'pre-commit.zoo-chained')))
    await assert.rejects(stat(join(hooks, 'pre-push')))
    const again = await zoo(r.dir, ['uninstall', '--json'])
    assert.deepEqual(JSON.parse(again.stdout).hooks.map((h: { action: string }) => h.action), ['unchanged', 'unchanged'])
    assert.equal(await readFile(join(hooks, 'pre-commit'), 'utf8'), mine, 'a hook that is not ours is never removed')
    // installed again, with the git-zoo binary gone: a clear message, not a silent pass
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    const hook = join(hooks, 'pre-commit')
    await writeFile(hook, (await readFile(hook, 'utf8')).replace(BIN, '/nonexistent/git-zoo.js'))
    await chmod(hook, 0o755)
    const missing = await gitRun(r.dir, ['commit', '-q', '-m', 'x'], undefined, { PATH: '/usr/bin:/bin' })
    assert.notEqual(missing.code, 0)
    assert.match(missing.stderr, /git-zoo is not installed or not on PATH/)
  } finally { await r.cleanup() }
})

test('the hook costs little when nothing zoo-related is staged (figure reported)', async (t) => {
  const r = await initRepo()
  try {
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    await git(r.dir, 'commit', '-q', '-m', 'init')
    const time = (args: string[]): number => {
      const s = process.hrtime.bigint()
      execFileSync(process.execPath, args, { cwd: r.dir, stdio: 'ignore' })
      return Number(process.hrtime.bigint() - s) / 1e6
    }
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!
    const measure = async (label: string): Promise<void> => {
      const base: number[] = []; const hook: number[] = []
      for (let i = 0; i < 21; i++) { base.push(time(['-e', '0'])); hook.push(time([BIN, 'hook-pre-commit'])) }
      const b = median(base); const h = median(hook)
      const bMin = Math.min(...base); const hMin = Math.min(...hook)
      // interleaved runs; on a loaded machine the minimum is the steadier figure
      t.diagnostic(`hook-pre-commit, ${label}: median ${h.toFixed(1)} ms vs node -e 0 ${b.toFixed(1)} ms = ${(h / b).toFixed(2)}x; ` +
        `fastest ${hMin.toFixed(1)} vs ${bMin.toFixed(1)} ms = ${(hMin / bMin).toFixed(2)}x`)
    }
    await measure('nothing staged')
    await writeFile(join(r.dir, 'train.py'), 'print(1)\n')
    await git(r.dir, 'add', 'train.py')
    await measure('one source file staged')
  } finally { await r.cleanup() }
})
