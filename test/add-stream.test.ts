/**
 * `git zoo add` streams its files into the store while it checks the repository (issue 11,
 * src/promote/promote.ts sealPromotion). A check that fails meanwhile stops the stream and is
 * reported exactly as before (code, message, exit status, nothing committed); what was stored stays
 * as unreferenced objects that gc removes, and the next add works. The pause point `add-checked`
 * holds the checks' answer until the stream has visibly written a pack: no timing involved.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdir, readFile, rm, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, zoo, git, safetensorsBytes, BIN, type Run } from './helpers-git.js'

/** 5 Mi float32s: a 20 MiB safetensors file, over the worker threshold (16 MiB). */
const FLOATS = 5 * 1024 * 1024

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false)

async function packs(dir: string): Promise<string[]> {
  return (await readdir(join(dir, '.git', 'zoo', 'packs')).catch(() => [] as string[])).filter((f) => f.endsWith('.pack'))
}

/** Wait until `cond` holds, checking every 20 ms; fails when `exited` settles first (the command ended without getting there). */
async function until(cond: () => Promise<boolean>, exited: { done: boolean; run?: Run }, what: string): Promise<void> {
  for (;;) {
    if (await cond()) return
    if (exited.done) assert.fail(`the add ended before ${what}: exit ${exited.run!.code}\n${exited.run!.stderr}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** `git zoo <args>` in `cwd` as a child, its end recorded in the returned `state`. */
function start(cwd: string, args: string[], env: NodeJS.ProcessEnv): { state: { done: boolean; run?: Run }; ended: Promise<Run> } {
  const state: { done: boolean; run?: Run } = { done: false }
  const ended = new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, GIT_ZOO_SERVER: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = '', stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d })
    child.stderr.on('data', (d: Buffer) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => { state.run = { code: code ?? -1, stdout, stderr }; state.done = true; resolve(state.run) })
  })
  return { state, ended }
}

const DIRTY = /^git zoo: the working tree has uncommitted changes, so the code revision would not say what produced this model:\n M train\.py\ncommit them first, or pass --allow-dirty to record the tree as dirty with a digest of the diff\n/

describe('add streams while it checks', () => {
  it('a dirty tree found while 20 MiB stream in: E_DIRTY as before, nothing committed, gc removes the chunks, the next add works', { timeout: 120_000 }, async () => {
    const r = await initRepo()
    try {
      assert.equal((await zoo(r.dir, ['init', '-q'])).code, 0)
      await writeFile(join(r.dir, 'train.py'), 'print("train")\n')
      await git(r.dir, 'add', '-A')
      await git(r.dir, 'commit', '-q', '-m', 'zoo and code')
      const head = (await git(r.dir, 'rev-parse', 'HEAD')).trim()
      await writeFile(join(r.dir, 'train.py'), 'print("train harder")\n')
      const file = join(r.dir, '..', `${r.dir.split('/').pop()}-m.safetensors`)
      const bytes = safetensorsBytes(FLOATS, 5)
      await writeFile(file, bytes)

      // the checks' answer (the dirty tree) waits at add-checked until the stream has written a pack
      const pause = join(r.dir, '..', `${r.dir.split('/').pop()}-pause`)
      const add = start(r.dir, ['add', file, '--name', 'net/a', '--json'], { GIT_ZOO_PAUSE_AT: 'add-checked', GIT_ZOO_PAUSE_FILE: pause })
      await until(() => exists(pause), add.state, 'the pause at add-checked')
      await until(async () => (await packs(r.dir)).length > 0, add.state, 'a pack was written')
      await rm(pause)
      const refused = await add.ended
      assert.equal(refused.code, 1, refused.stderr)
      assert.match(refused.stderr, /paused at add-checked/)
      assert.match(refused.stderr.replace(/^git zoo: paused at .*\n/m, ''), DIRTY)
      assert.equal(JSON.parse(refused.stdout).error.code, 'E_DIRTY')
      assert.equal((await git(r.dir, 'rev-parse', 'HEAD')).trim(), head, 'nothing is committed')
      assert.equal(await git(r.dir, 'status', '--porcelain'), ' M train.py\n', 'no manifest left in the work tree or the index')
      assert.equal(await exists(join(r.dir, 'models')), false)

      // the same refusal without a pause, for a small file too: the message and status of today
      await writeFile(join(r.dir, '..', 'small.bin'), Buffer.alloc(4096, 1))
      const small = await zoo(r.dir, ['add', join(r.dir, '..', 'small.bin'), '--name', 'net/s'])
      assert.equal(small.code, 1, small.stderr)
      assert.match(small.stderr, DIRTY)

      // what the stopped stream stored is referenced by nothing: gc removes it
      const gc = await zoo(r.dir, ['gc', '--grace', '0', '--json'])
      assert.equal(gc.code, 0, gc.stderr)
      const freed = JSON.parse(gc.stdout) as { removed_objects: number; removed_bytes: number }
      assert.ok(freed.removed_objects > 0 && freed.removed_bytes > 0, gc.stdout)
      assert.deepEqual(await packs(r.dir), [], 'no pack is left')

      // with the code committed the add works, storing the bytes again, and they come back exactly
      await git(r.dir, 'commit', '-q', '-am', 'train harder')
      const ok = await zoo(r.dir, ['add', file, '--name', 'net/a', '--json'])
      assert.equal(ok.code, 0, ok.stderr)
      const out = JSON.parse(ok.stdout) as { version: number; stored_bytes: number; files: Array<{ sha256: string }> }
      assert.equal(out.version, 1)
      assert.ok(out.stored_bytes >= bytes.length, `stored again: ${out.stored_bytes}`)
      assert.equal(out.files[0]!.sha256, createHash('sha256').update(bytes).digest('hex'))
      const dest = join(r.dir, '..', `${r.dir.split('/').pop()}-out`)
      assert.equal((await zoo(r.dir, ['get', 'net/a', '--out', dest])).code, 0)
      assert.deepEqual(await readFile(join(dest, `${r.dir.split('/').pop()}-m.safetensors`)), bytes)
    } finally { await r.cleanup() }
  })

  it('a bad --license found while the file streams: the usage error of today (exit 2), nothing committed', { timeout: 60_000 }, async () => {
    const r = await initRepo()
    try {
      assert.equal((await zoo(r.dir, ['init', '-q'])).code, 0)
      await git(r.dir, 'add', '-A')
      await git(r.dir, 'commit', '-q', '-m', 'zoo')
      const head = (await git(r.dir, 'rev-parse', 'HEAD')).trim()
      const file = join(r.dir, '..', `${r.dir.split('/').pop()}-l.safetensors`)
      await writeFile(file, safetensorsBytes(FLOATS, 6))
      const bad = await zoo(r.dir, ['add', file, '--name', 'net/l', '--license', 'not a licence', '--json'])
      assert.equal(bad.code, 2, bad.stderr)
      assert.match(bad.stderr, /^git zoo: --license "not a licence" is not a licence id; use an SPDX id/m)
      assert.equal(JSON.parse(bad.stdout).error.code, 'E_USAGE')
      assert.equal((await git(r.dir, 'rev-parse', 'HEAD')).trim(), head)
      assert.equal(await git(r.dir, 'status', '--porcelain'), '')
      // and the add that passes its checks at the same pause goes on to commit
      const pause = join(r.dir, '..', `${r.dir.split('/').pop()}-pause`)
      const add = start(r.dir, ['add', file, '--name', 'net/l', '--json'], { GIT_ZOO_PAUSE_AT: 'add-checked', GIT_ZOO_PAUSE_FILE: pause })
      await until(() => exists(pause), add.state, 'the pause at add-checked')
      await rm(pause)
      const ok = await add.ended
      assert.equal(ok.code, 0, ok.stderr)
      assert.equal(JSON.parse(ok.stdout).version, 1)
      assert.notEqual((await git(r.dir, 'rev-parse', 'HEAD')).trim(), head)
    } finally { await r.cleanup() }
  })
})
