/**
 * The cost of a zoo commit and of a big import (spec/import.md "How it goes fast", spec/seal.md
 * "Commits the zoo makes"): a promotion checks its own files in-process and its commit starts no
 * hook process of the zoo's, while the user's chained hook still runs and every commit the user
 * makes gets the full check; an import's worker threads store exactly what `git zoo add` stores,
 * and its batches all record the code revision the import started from.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile, mkdir, readdir, mkdtemp, rm, cp } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { tempRepo, zoo, git, run, BIN } from './cli.js'
import { encodeSafetensors } from '../src/formats/safetensors.js'

async function initZoo(dir: string): Promise<void> {
  assert.equal((await zoo(dir, ['init'])).code, 0)
  await git(dir, 'add', '-A')
  await git(dir, 'commit', '-q', '-m', 'zoo')
}

/** NODE_OPTIONS that log every node process started (its arguments) to `log`. */
async function nodeLogger(dir: string, log: string): Promise<NodeJS.ProcessEnv> {
  const script = join(dir, 'log-node.cjs')
  await writeFile(script, `require('fs').appendFileSync(${JSON.stringify(log)}, process.argv.slice(2).join(' ') + '\\n')\n`)
  return { NODE_OPTIONS: `--require ${script}` }
}

async function lines(path: string): Promise<string[]> {
  try { return (await readFile(path, 'utf8')).split('\n').filter(Boolean) } catch { return [] }
}

test('a promotion commits without the zoo hook process; the user\'s hook still runs; users\' commits get the full check', async () => {
  const { dir, cleanup } = await tempRepo()
  const work = await mkdtemp(join(tmpdir(), 'zoo-commit-'))
  try {
    const runs = join(work, 'user-hook-runs')
    await writeFile(join(dir, '.git', 'hooks', 'pre-commit'), `#!/bin/sh\necho ran >> ${runs}\n`, { mode: 0o755 })
    await initZoo(dir)
    assert.equal((await lines(runs)).length, 1, 'the user\'s hook is chained')
    const log = join(work, 'node-processes')
    const env = await nodeLogger(work, log)
    await writeFile(join(work, 'a.bin'), Buffer.alloc(5000, 7))
    const a = await zoo(dir, ['add', join(work, 'a.bin'), '--name', 'm'], env)
    assert.equal(a.code, 0, a.stderr)
    const started = await lines(log)
    assert.equal(started.filter((l) => l.startsWith('add ')).length, 1, `the logger sees node processes: ${started.join('; ')}`)
    assert.deepEqual(started.filter((l) => l.includes('hook-pre-commit')), [], 'the promotion commit started no zoo hook process')
    assert.equal((await lines(runs)).length, 2, 'the user\'s pre-commit hook ran for the promotion commit')
    assert.deepEqual((await readdir(join(dir, '.git'))).filter((n) => n.startsWith('zoo-verified')), [], 'no token is left behind')
    assert.equal((await zoo(dir, ['verify'])).code, 0)

    // a user's commit of a copied (so misplaced) version: refused by the full check, also when
    // GIT_ZOO_VERIFIED names a token that does not describe what git is committing
    await cp(join(dir, 'models', 'm', 'v1'), join(dir, 'models', 'm', 'v2'), { recursive: true })
    await git(dir, 'add', 'models/m/v2/manifest.json')
    const token = join(dir, '.git', 'zoo-verified.stale')
    await writeFile(token, await git(dir, 'diff', '--cached', '--raw', '-z', '--no-renames', '--no-abbrev', '--ignore-submodules=all'))
    await git(dir, 'add', 'models/m/v2')
    for (const extra of [{}, { GIT_ZOO_VERIFIED: token }]) {
      await writeFile(log, '')
      const c = await run('git', ['commit', '-q', '-m', 'copy'], { cwd: dir, env: { ...env, ...extra } })
      assert.equal(c.code, 1, c.stderr)
      assert.match(c.stderr, /models\/m\/v2\/manifest\.json: the manifest is m@v1 but sits in models\/m\/v2\//)
      assert.equal((await lines(log)).filter((l) => l.includes('hook-pre-commit')).length, 1, 'the full check ran')
    }
    assert.equal((await git(dir, 'log', '-1', '--format=%s')).trim(), 'zoo: promote m@v1')
  } finally { await cleanup(); await rm(work, { recursive: true, force: true }) }
})

test('import through worker threads stores what add stores; every batch records the import\'s code revision', async () => {
  const { dir, cleanup } = await tempRepo()
  const src = await mkdtemp(join(tmpdir(), 'zoo-src-'))
  try {
    await initZoo(dir)
    const trials: string[] = []
    for (const i of [0, 1, 2]) {
      const t = join(src, 'tune_zoo_mnist_uniform', `NN_tune_trainable_a1b2c_0000${i}_${i}_seed=${i + 1}_2021-03-01`)
      trials.push(t)
      for (const e of [0, 1, 2]) {
        const ck = join(t, `checkpoint_${String(e).padStart(6, '0')}`)
        await mkdir(ck, { recursive: true })
        // one small file (one chunk) and one cut at its tensors (several chunks and a tree node)
        await writeFile(join(ck, 'checkpoints'), Buffer.alloc(2048, e + 10 * i))
        const t1 = new Float32Array(100_000).map((_, k) => Math.sin(k + i)), t2 = new Float32Array(100_000).map((_, k) => Math.cos(k * (e + 1)))
        await writeFile(join(ck, 'model.safetensors'), encodeSafetensors([
          { name: 'body', dtype: 'F32', shape: [100_000], data: new Uint8Array(t1.buffer) },
          { name: 'head', dtype: 'F32', shape: [100_000], data: new Uint8Array(t2.buffer) }]))
      }
      await writeFile(join(t, 'params.json'), JSON.stringify({ seed: i + 1, 'model::type': 'CNN' }))
      await writeFile(join(t, 'result.json'), [0, 1, 2].map((e) => JSON.stringify({ epoch: e, test_acc: 0.5 + 0.1 * e })).join('\n') + '\n')
    }
    const head = (await git(dir, 'rev-parse', 'HEAD')).trim()
    const r = await zoo(dir, ['import', src, '--prefix', 'mz', '--batch', '2', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { promoted: number; commits: string[]; models: Array<{ name: string }> }
    assert.equal(out.promoted, 3)
    assert.equal(out.commits.length, 2)
    type Files = Array<{ path: string; size: number; sha256: string; root: string; format: string; epoch?: number }>
    // `show --json` gives a version's complete view (a trajectory's checkpoint entries live in its node)
    const shown = async (name: string): Promise<{ code: { commit: string }; files: Files }> => {
      const s = await zoo(dir, ['show', name, '--json'])
      assert.equal(s.code, 0, s.stderr)
      return JSON.parse(s.stdout) as { code: { commit: string }; files: Files }
    }
    const manifests = await Promise.all(out.models.map((m) => shown(`${m.name}@v1`)))
    assert.deepEqual(manifests.map((m) => m.code.commit), [head, head, head], 'both batches record the revision the import started from')
    // the same run folder through `git zoo add` (read and hashed on the main thread)
    const a = await zoo(dir, ['add', trials[1]!, '--name', 'added'])
    assert.equal(a.code, 0, a.stderr)
    const added = await shown('added@v1')
    const pick = (fs: Files): unknown[] => fs.filter((f) => f.epoch !== undefined).map(({ path, size, sha256, root, format, epoch }) => ({ path, size, sha256, root, format, epoch }))
    assert.equal(pick(manifests[1]!.files).length, 6)
    assert.deepEqual(pick(manifests[1]!.files), pick(added.files))
    assert.ok(manifests[1]!.files.some((f) => f.path.endsWith('model.safetensors') && f.format === 'safetensors' && f.root.startsWith('bafy')), 'a file of several chunks has a tree node')
    const v = await zoo(dir, ['verify', '--json'])
    assert.equal(v.code, 0, v.stdout + v.stderr)
    // the import ran on worker threads too: a CPU profile per thread (main and each worker); a
    // worker not found beside the built code would leave one
    const profiles = join(src, 'profiles')
    const again = await run(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profiles, BIN, 'import', src, '--prefix', 'mz2', '--json'], { cwd: dir })
    assert.equal(again.code, 0, again.stderr)
    assert.ok((await readdir(profiles)).length >= 2, `threads profiled: ${(await readdir(profiles)).join(', ')}`)
  } finally { await cleanup(); await rm(src, { recursive: true, force: true }) }
})
