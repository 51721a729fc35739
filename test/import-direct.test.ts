/**
 * An import's commits made with plumbing (spec/import.md, "Cheap commits"): each batch's blobs and
 * trees go into git as one pack, exactly its paths are staged, HEAD moves in one update-ref, and
 * the result is what `git commit` gives: a clean `git status`, the user's own staged changes left
 * staged, signed commits when git signs, the user's hooks still run (then through `git commit`),
 * a kill before HEAD moves leaves nothing a rerun does not finish, and a commit made meanwhile is
 * built on.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { BIN, git, run, tempRepo, zoo, type Run } from './cli.js'
import { sshKey, signerLine, useSigningKey } from './helpers-git.js'

/** `n` Ray-style trials (two checkpoints each, a config and a result file) under `<dir>/runs`. */
async function population(dir: string, n: number): Promise<string> {
  const src = join(dir, 'runs')
  for (let i = 0; i < n; i++) {
    const t = join(src, `NN_tune_trainable_a1b2c_${String(i).padStart(5, '0')}_${i}_seed=${i}_2021-03-01`)
    for (const e of [0, 1]) {
      await mkdir(join(t, `checkpoint_00000${e}`), { recursive: true })
      await writeFile(join(t, `checkpoint_00000${e}`, 'checkpoints'), Buffer.alloc(512 + i, e + 3 * i))
    }
    await writeFile(join(t, 'params.json'), JSON.stringify({ seed: i, 'model::type': 'CNN' }))
    await writeFile(join(t, 'result.json'), [0, 1].map((e) => JSON.stringify({ epoch: e, test_acc: 0.5 + 0.01 * i + 0.1 * e })).join('\n') + '\n')
  }
  return src
}

/** A zoo with `n` trials to import beside it (outside the work tree). */
async function setup(n: number, before?: (dir: string) => Promise<void>): Promise<{ dir: string; src: string; cleanup: () => Promise<void> }> {
  const repo = await tempRepo()
  const work = await mkdtemp(join(tmpdir(), 'zoo-direct-'))
  await before?.(repo.dir)
  const init = await zoo(repo.dir, ['init'])
  assert.equal(init.code, 0, init.stderr)
  await git(repo.dir, 'add', '-A')
  await git(repo.dir, 'commit', '-q', '-m', 'zoo')
  return { dir: repo.dir, src: await population(work, n), cleanup: async () => { await repo.cleanup(); await rm(work, { recursive: true, force: true }) } }
}

async function ok(r: Promise<Run>, what: string): Promise<Run> {
  const x = await r
  assert.equal(x.code, 0, `${what}: exit ${x.code}\n${x.stderr}`)
  return x
}

const countObjects = async (dir: string): Promise<Record<string, number>> =>
  Object.fromEntries((await git(dir, 'count-objects', '-v')).trim().split('\n').map((l) => { const [k, v] = l.split(': '); return [k!, Number(v)] }))

const manifests = async (dir: string): Promise<number> =>
  (await git(dir, 'ls-tree', '-r', '--name-only', 'HEAD', 'models/')).split('\n').filter((l) => l.endsWith('/manifest.json')).length

test('an import commits each batch as one pack, merged at the end: status clean, no scratch ref, the user\'s staged file left staged', async () => {
  const z = await setup(40)
  try {
    await writeFile(join(z.dir, 'notes.txt'), 'mine\n')
    await git(z.dir, 'add', 'notes.txt')
    const loose = (await countObjects(z.dir)).count!
    const r = await ok(zoo(z.dir, ['import', z.src, '--prefix', 'mz', '--batch', '20', '--allow-dirty', '--json']), 'import')
    const out = JSON.parse(r.stdout) as { promoted: number; commits: string[] }
    assert.equal(out.promoted, 40)
    assert.equal(out.commits.length, 2)
    assert.deepEqual((await git(z.dir, 'log', '-3', '--format=%H %s')).trim().split('\n'),
      [`${out.commits[1]} zoo: import 20 models from runs`, `${out.commits[0]} zoo: import 20 models from runs`, (await git(z.dir, 'rev-parse', 'HEAD~2')).trim() + ' zoo'])
    assert.equal((await git(z.dir, 'reflog', '-1', '--format=%gs')).trim(), 'commit: zoo: import 20 models from runs')
    assert.equal(await manifests(z.dir), 40)
    // each batch wrote one pack, merged into one at the end (loose objects of before too)
    const objects = await countObjects(z.dir)
    assert.ok(loose > 0)
    assert.equal(objects.count, 0, `loose objects: ${JSON.stringify(objects)}`)
    assert.equal(objects.packs, 1, `packs: ${JSON.stringify(objects)}`)
    assert.equal((await git(z.dir, 'for-each-ref', 'refs/zoo/')).trim(), '', 'no scratch ref is left')
    // the work tree and index match HEAD, but for the user's own staged file, still staged and not committed
    assert.equal(await git(z.dir, 'status', '--porcelain'), 'A  notes.txt\n')
    assert.equal((await run('git', ['cat-file', '-e', 'HEAD:notes.txt'], { cwd: z.dir })).code, 128)
    await ok(run('git', ['fsck', '--no-dangling', '--no-progress'], { cwd: z.dir }), 'git fsck')
    await ok(zoo(z.dir, ['verify']), 'verify')
    const found = JSON.parse((await ok(zoo(z.dir, ['find', 'test_acc>0.905', '--json']), 'find')).stdout) as { models: unknown[] }
    assert.equal(found.models.length, 9, 'trials 31 to 39 end above 0.905')
  } finally { await z.cleanup() }
})

test('with a pre-commit hook of the user\'s, every batch goes through git commit and the hook runs for it', async () => {
  let log = ''
  const z = await setup(40, async (dir) => {
    log = join(dir, '..', `${dir.split('/').pop()}-hook-runs`)
    await writeFile(join(dir, '.git', 'hooks', 'pre-commit'), `#!/bin/sh\necho ran >> ${log}\n`, { mode: 0o755 })
  })
  try {
    const runs = async (): Promise<number> => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length
    const before = await runs()
    const r = await ok(zoo(z.dir, ['import', z.src, '--prefix', 'mz', '--batch', '20', '--json']), 'import')
    assert.equal((JSON.parse(r.stdout) as { commits: string[] }).commits.length, 2)
    assert.equal(await runs() - before, 2, 'the user\'s hook ran once per batch')
    assert.equal(await git(z.dir, 'status', '--porcelain'), '')
    assert.equal(await manifests(z.dir), 40)
    await rm(log, { force: true })
  } finally { await z.cleanup() }
})

test('when git signs commits (commit.gpgsign, an ssh key), every batch commit is signed', async () => {
  const keys = await mkdtemp(join(tmpdir(), 'zoo-direct-keys-'))
  const z = await setup(24)
  try {
    const key = await sshKey(keys, 'alice')
    const signers = join(keys, 'allowed_signers')
    await writeFile(signers, signerLine('researcher@example.invalid', key))
    await useSigningKey(z.dir, key)
    const loose = (await countObjects(z.dir)).count!
    const r = await ok(zoo(z.dir, ['import', z.src, '--prefix', 'mz', '--json']), 'import')
    const { commits } = JSON.parse(r.stdout) as { commits: string[] }
    assert.equal(commits.length, 1)
    assert.equal((await countObjects(z.dir)).count, loose + 1, 'made with plumbing: the commit is the one loose object written')
    const v = await run('git', ['-c', `gpg.ssh.allowedSignersFile=${signers}`, 'verify-commit', commits[0]!], { cwd: z.dir })
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.stderr, /Good "git" signature for researcher@example\.invalid/)
  } finally { await z.cleanup(); await rm(keys, { recursive: true, force: true }) }
})

for (const point of ['after-write', 'before-commit']) {
  test(`killed at ${point} (files written${point === 'before-commit' ? ' and staged' : ''}, HEAD not moved): verify passes, the rerun finishes it, nothing is left over`, async () => {
    const z = await setup(20)
    try {
      const head = (await git(z.dir, 'rev-parse', 'HEAD')).trim()
      const killed = await zoo(z.dir, ['import', z.src, '--prefix', 'mz'], { GIT_ZOO_CRASH_AT: point })
      assert.notEqual(killed.code, 0)
      assert.match(killed.stderr, new RegExp(`crash point ${point}`))
      assert.equal((await git(z.dir, 'rev-parse', 'HEAD')).trim(), head, 'HEAD did not move')
      assert.equal((await git(z.dir, 'diff', '--cached', '--name-only')).split('\n').filter(Boolean).length, point === 'before-commit' ? 60 : 0, 'what was staged')
      await ok(zoo(z.dir, ['verify']), 'verify after the kill')
      const again = await ok(zoo(z.dir, ['import', z.src, '--prefix', 'mz', '--json']), 'import again')
      assert.equal((JSON.parse(again.stdout) as { promoted: number }).promoted, 20)
      assert.equal(await git(z.dir, 'status', '--porcelain'), '')
      assert.equal((await git(z.dir, 'for-each-ref', 'refs/zoo/')).trim(), '')
      assert.equal(await manifests(z.dir), 20)
      await ok(zoo(z.dir, ['verify']), 'verify after the rerun')
    } finally { await z.cleanup() }
  })
}

test('a commit made while the batch is staged: the batch is built again on it', async () => {
  const z = await setup(20)
  const marker = join(z.src, '..', 'paused')
  try {
    const child = spawn(process.execPath, [BIN, 'import', z.src, '--prefix', 'mz', '--json'],
      { cwd: z.dir, env: { ...process.env, GIT_ZOO_DEBUG: '', GIT_ZOO_PAUSE_AT: 'before-commit', GIT_ZOO_PAUSE_FILE: marker } })
    let stdout = '', stderr = ''
    child.stdout.setEncoding('utf8').on('data', (t: string) => { stdout += t })
    child.stderr.setEncoding('utf8').on('data', (t: string) => { stderr += t })
    const done = new Promise<number>((res) => child.on('close', (code) => res(code ?? -1)))
    let ended = false
    void done.then(() => { ended = true })
    while (!existsSync(marker)) {
      assert.ok(!ended, `the import ended before its pause: ${stderr}`)
      await new Promise((r) => setTimeout(r, 10))
    }
    // someone else's commit lands (through plumbing, so the index the import staged stays as it is)
    const mine = (await git(z.dir, 'commit-tree', 'HEAD^{tree}', '-p', 'HEAD', '-m', 'meanwhile')).trim()
    await git(z.dir, 'update-ref', 'HEAD', mine)
    await rm(marker)
    assert.equal(await done, 0, stderr)
    const { commits } = JSON.parse(stdout) as { commits: string[] }
    assert.equal((await git(z.dir, 'rev-parse', 'HEAD')).trim(), commits[0])
    assert.equal((await git(z.dir, 'rev-parse', 'HEAD^')).trim(), mine, 'built on the commit made meanwhile')
    assert.equal(await git(z.dir, 'status', '--porcelain'), '')
    assert.equal((await git(z.dir, 'for-each-ref', 'refs/zoo/')).trim(), '')
    assert.equal(await manifests(z.dir), 20)
  } finally { await z.cleanup() }
})

test('a file git would store with other bytes (a clean filter on the cards) goes through git commit: status clean', async () => {
  const z = await setup(24)
  try {
    await git(z.dir, 'config', 'filter.mark.clean', "sed -e 's/^/> /'")
    await writeFile(join(z.dir, '.git', 'info', 'attributes'), 'models/**/README.md filter=mark\n')
    const r = await ok(zoo(z.dir, ['import', z.src, '--prefix', 'mz', '--json']), 'import')
    assert.equal((JSON.parse(r.stdout) as { commits: string[] }).commits.length, 1)
    assert.equal(await git(z.dir, 'status', '--porcelain'), '')
    const card = (await git(z.dir, 'ls-tree', '-r', '--name-only', 'HEAD', 'models/')).split('\n').find((p) => p.endsWith('/README.md'))!
    assert.match(await git(z.dir, 'show', `HEAD:${card}`), /^> /, 'the card was committed through its filter')
  } finally { await z.cleanup() }
})
