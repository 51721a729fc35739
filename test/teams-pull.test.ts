/**
 * Pull integration (spec/teams.md, "Pull integration") through the real CLI and real git: a bare
 * repository as origin, clones in temp folders promoting concurrently, a folder as the zoo remote.
 * Each test asserts what a user sees: exit codes, messages, versions on disk, bytes from `get`,
 * `verify`, and that no conflict state is left behind.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  tempDir, zoo, git, gitRun, sshKey, useSigningKey, signerLine, safetensorsBytes, type Run, type SshKey,
} from './helpers-git.js'

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  assert.doesNotMatch(r.stderr, /commit refused/, `${what}: the pre-commit hook refused a commit`)
  return r
}

interface Team { work: string; bare: string; cleanup: () => Promise<void>; clone: (name: string) => Promise<string> }

/** A bare origin and a zoo remote folder; `clone(name)` makes a clone with an identity. */
async function team(setup?: (dir: string) => Promise<void>): Promise<Team> {
  const { dir: work, cleanup } = await tempDir('zoo-team-')
  const bare = join(work, 'origin.git')
  await git(work, 'init', '-q', '--bare', '-b', 'main', bare)
  const first = join(work, 'founder')
  await git(work, 'init', '-q', '-b', 'main', first)
  await identity(first, 'founder')
  await git(first, 'remote', 'add', 'origin', bare)
  await ok(zoo(first, ['init']), 'init')
  await ok(zoo(first, ['remote', 'add', 'origin', join(work, 'zoo-objects')]), 'remote add')
  await setup?.(first)
  await git(first, 'add', '-A')
  await git(first, 'commit', '-q', '-m', 'zoo set up')
  await git(first, 'push', '-q', '-u', 'origin', 'main')
  const clone = async (name: string): Promise<string> => {
    const r = await zoo(work, ['clone', bare, name])
    assert.equal(r.code, 0, r.stderr)
    const dir = join(work, name)
    await identity(dir, name)
    return dir
  }
  return { work, bare, cleanup, clone }
}

async function identity(dir: string, name: string): Promise<void> {
  await git(dir, 'config', 'user.name', name)
  await git(dir, 'config', 'user.email', `${name}@example.invalid`)
  await git(dir, 'config', 'commit.gpgsign', 'false')
}

/** Promote a small safetensors file (its values start at `fill`) as `name`; returns the bytes and version. */
async function promote(dir: string, name: string, fill: number, extra: string[] = []): Promise<{ bytes: Buffer; version: number; seal: string }> {
  const bytes = safetensorsBytes(32, fill)
  const file = join(dir, '..', `${dir.split('/').pop()}-${fill}.safetensors`)
  await writeFile(file, bytes)
  const r = JSON.parse((await ok(zoo(dir, ['add', file, '--name', name, '--json', ...extra]), `add ${name}`)).stdout)
  return { bytes, version: r.version, seal: r.seal }
}

async function versions(dir: string, name: string): Promise<number[]> {
  const names = await readdir(join(dir, 'models', name)).catch(() => [] as string[])
  return names.filter((n) => /^v\d+$/.test(n)).map((n) => Number(n.slice(1))).sort((a, b) => a - b)
}

async function getBytes(dir: string, ref: string): Promise<Buffer> {
  const out = join(dir, '..', `get-${dir.split('/').pop()}-${ref.replace(/[/@]/g, '_')}`)
  await ok(zoo(dir, ['get', ref, '--out', out]), `get ${ref}`)
  const files = await readdir(out)
  assert.equal(files.length, 1)
  return readFile(join(out, files[0]!))
}

/** No merge or rebase in progress, nothing unmerged, no pull state, clean tracked tree. */
async function noConflictState(dir: string): Promise<void> {
  for (const f of ['MERGE_HEAD', 'rebase-merge', 'rebase-apply', 'REBASE_HEAD', 'zoo-pull.json']) assert.ok(!existsSync(join(dir, '.git', f)), `${f} left in ${dir}`)
  assert.equal(await git(dir, 'status', '--porcelain', '--untracked-files=no'), '')
}

async function verifyOk(dir: string, extra: string[] = []): Promise<void> {
  const r = await zoo(dir, ['verify', '--json', ...extra])
  assert.equal(r.code, 0, `verify ${extra.join(' ')} in ${dir}:\n${r.stdout}${r.stderr}`)
}

describe('git zoo pull integrates concurrent promotions', { concurrency: 3 }, () => {
  it('two clones promote the same model: the second pull renumbers, push succeeds, both see both versions', async () => {
    const t = await team()
    try {
      const a = await t.clone('alice')
      const b = await t.clone('bob')
      const va = await promote(a, 'silero/vad', 1)
      const vb = await promote(b, 'silero/vad', 2)
      assert.equal(va.version, 1)
      assert.equal(vb.version, 1)
      await ok(zoo(a, ['push']), 'alice push')
      // bob's push is refused by git: the message names the command that integrates
      const refused = await zoo(b, ['push'])
      assert.notEqual(refused.code, 0)
      assert.equal(refused.code, 1, refused.stderr)
      assert.match(refused.stderr, /run `git zoo pull`/)
      assert.match(refused.stderr, /E_PUSH_NOT_FAST_FORWARD|has commits you do not have/)

      // a warm catalog cache before the renumbering
      const lsBefore = JSON.parse((await ok(zoo(b, ['ls', '--all-versions', '--json']), 'ls before')).stdout)
      assert.deepEqual(lsBefore.models.map((r: { seal: string }) => r.seal), [vb.seal])
      const pull = await ok(zoo(b, ['pull']), 'bob pull')
      assert.match(pull.stderr, /silero\/vad@v1 is now @v2/)
      await noConflictState(b)
      assert.deepEqual(await versions(b, 'silero/vad'), [1, 2])
      const moved = JSON.parse(await readFile(join(b, 'models/silero/vad/v2/manifest.json'), 'utf8'))
      assert.equal(moved.version, 2)
      assert.notEqual(moved.seal, vb.seal, 're-sealed')
      assert.match(await readFile(join(b, 'models/silero/vad/v2/README.md'), 'utf8'), /silero\/vad@?v?2|v2/)
      const msg = await git(b, 'log', '-1', '--format=%B')
      assert.match(msg, /^zoo: promote silero\/vad@v2$/m)
      assert.match(msg, /^Zoo-Model: silero\/vad@v2$/m)
      assert.match(msg, new RegExp(`^Zoo-Seal: ${moved.seal}$`, 'm'))
      assert.match(msg, /^Zoo-Code: [0-9a-f]{40}$/m)
      await ok(zoo(b, ['push']), 'bob push after pull')
      await verifyOk(b)

      const pa = await ok(zoo(a, ['pull', '--json']), 'alice pull')
      const pj = JSON.parse(pa.stdout)
      assert.equal(pj.action, 'fast-forward')
      assert.deepEqual(pj.renumbered, [])
      assert.deepEqual(await versions(a, 'silero/vad'), [1, 2])
      assert.ok((await getBytes(a, 'silero/vad@v1')).equals(va.bytes), 'v1 is alice\'s bytes')
      assert.ok((await getBytes(a, 'silero/vad@v2')).equals(vb.bytes), 'v2 is bob\'s bytes')
      assert.ok((await getBytes(b, 'silero/vad@v1')).equals(va.bytes))
      assert.ok((await getBytes(b, 'silero/vad@v2')).equals(vb.bytes))
      await verifyOk(a)
      await noConflictState(a)
      // the catalog follows the renumbering
      const ls = JSON.parse((await ok(zoo(b, ['ls', '--all-versions', '--json']), 'ls')).stdout)
      const rows = ls.models as Array<{ name: string; version: number; seal: string }>
      assert.deepEqual(rows.map((r) => `${r.name}@v${r.version} ${r.seal}`).sort(), [`silero/vad@v1 ${va.seal}`, `silero/vad@v2 ${moved.seal}`])
    } finally { await t.cleanup() }
  })
})
