/**
 * Pull integration (spec/teams.md, "Pull integration") through the real CLI and real git: a bare
 * repository as origin, clones in temp folders promoting concurrently, a folder as the zoo remote.
 * Each test asserts what a user sees: exit codes, messages, versions on disk, bytes from `get`,
 * `verify`, and that no conflict state is left behind.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { readFile, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeNpy } from '../src/demo/data.js'
import { rewriteText, rewriteTodo } from '../src/promote/integrate.js'
import { dataset, permModel } from './eval-fixtures.js'
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
  for (const f of ['MERGE_HEAD', 'rebase-merge', 'rebase-apply', 'zoo-pull.json']) assert.ok(!existsSync(join(dir, '.git', f)), `${f} left in ${dir}`)
  assert.equal(await git(dir, 'status', '--porcelain', '--untracked-files=no'), '')
}

async function verifyOk(dir: string, extra: string[] = []): Promise<void> {
  const r = await zoo(dir, ['verify', '--json', ...extra])
  assert.equal(r.code, 0, `verify ${extra.join(' ')} in ${dir}:\n${r.stdout}${r.stderr}`)
}

describe('rewriting references (pure functions)', () => {
  it('renames each name@vN and seal once, by what it named originally (a chain v3->v4, v4->v5)', () => {
    const state = {
      renumbered: [
        { name: 'x/net', from: 3, to: 4, old_seal: 'bafyold3aaaaaaaaaaaaaaaaaaaa', seal: 'bafynew4aaaaaaaaaaaaaaaaaaaa' },
        { name: 'x/net', from: 4, to: 5, old_seal: 'bafyold4aaaaaaaaaaaaaaaaaaaa', seal: 'bafynew5aaaaaaaaaaaaaaaaaaaa' },
      ],
      seals: {
        bafyold3aaaaaaaaaaaaaaaaaaaa: { name: 'x/net', version: 4, seal: 'bafynew4aaaaaaaaaaaaaaaaaaaa' },
        bafyold4aaaaaaaaaaaaaaaaaaaa: { name: 'x/net', version: 5, seal: 'bafynew5aaaaaaaaaaaaaaaaaaaa' },
      },
    }
    const msg = 'zoo: promote x/net@v4\n\nfine-tune of x/net@v3, not x/net@v30 nor y/x/net@v3x nor other@v3\n\nZoo-Model: x/net@v4\nZoo-Seal: bafyold4aaaaaaaaaaaaaaaaaaaa\n'
    assert.equal(rewriteText(msg, state),
      'zoo: promote x/net@v5\n\nfine-tune of x/net@v4, not x/net@v30 nor y/x/net@v3x nor other@v3\n\nZoo-Model: x/net@v5\nZoo-Seal: bafynew5aaaaaaaaaaaaaaaaaaaa\n')
  })
  it('turns the picks of zoo commits into replay steps and leaves the others', () => {
    const todo = 'pick 1a2b3c4 zoo: promote x@v1\npick 9f8e7d6 notes\n# comment\n'
    assert.equal(rewriteTodo(todo, ['1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d'], 'ZOO'),
      'exec ZOO pull --replay 1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d\npick 9f8e7d6 notes\n# comment\n')
  })
})

describe('git zoo pull', { concurrency: 2 }, () => {
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

    it('promotions of different models just integrate (rebase, and merge with --no-rebase)', async () => {
      const t = await team()
      try {
        const a = await t.clone('alice')
        const b = await t.clone('bob')
        await promote(a, 'team/a', 1)
        await ok(zoo(a, ['push']), 'alice push')
        await promote(b, 'team/b', 2)
        await writeFile(join(b, 'notes.txt'), 'bob\n')
        await git(b, 'add', 'notes.txt')
        await git(b, 'commit', '-q', '-m', 'notes')
        const pull = JSON.parse((await ok(zoo(b, ['pull', '--json']), 'bob pull')).stdout)
        assert.equal(pull.action, 'rebase')
        assert.deepEqual(pull.renumbered, [])
        await noConflictState(b)
        assert.deepEqual([await versions(b, 'team/a'), await versions(b, 'team/b')], [[1], [1]])
        assert.equal((await git(b, 'rev-list', '--merges', '--count', 'HEAD')).trim(), '0', 'rebased: no merge commit')
        await ok(zoo(b, ['push']), 'bob push')
        await verifyOk(b)

        // now alice has a new promotion and bob's history is merged in
        await promote(b, 'team/c', 3)
        await ok(zoo(b, ['push']), 'bob push c')
        await promote(a, 'team/d', 4)
        const merge = JSON.parse((await ok(zoo(a, ['pull', '--no-rebase', '--json']), 'alice pull --no-rebase')).stdout)
        assert.equal(merge.action, 'merge')
        await noConflictState(a)
        assert.equal((await git(a, 'rev-list', '--merges', '--count', 'HEAD')).trim(), '1', 'merged')
        for (const m of ['team/a', 'team/b', 'team/c', 'team/d']) assert.deepEqual(await versions(a, m), [1], m)
        assert.equal(await readFile(join(a, 'notes.txt'), 'utf8'), 'bob\n')
        await verifyOk(a)
        // --ff-only refuses a diverged history with a clear code and changes nothing
        await promote(b, 'team/e', 5)
        await ok(zoo(b, ['pull']), 'bob pull (fast-forward)')
        await ok(zoo(a, ['push']), 'alice push merge')
        const head = await git(b, 'rev-parse', 'HEAD')
        await promote(b, 'team/f', 6)
        const ff = await zoo(b, ['pull', '--ff-only'])
        assert.equal(ff.code, 1, ff.stderr)
        assert.match(ff.stderr, /diverged.*git zoo pull --rebase/s)
        assert.notEqual(await git(b, 'rev-parse', 'HEAD'), head)
        await noConflictState(b)
      } finally { await t.cleanup() }
    })

    it('three clones, one behind by two promotions, all promote the same name', async () => {
      const t = await team()
      try {
        const [c1, c2, c3] = [await t.clone('c1'), await t.clone('c2'), await t.clone('c3')]
        const v1 = await promote(c1, 'tri/net', 10)
        const v2 = await promote(c1, 'tri/net', 11)
        await ok(zoo(c1, ['push']), 'c1 push')
        const x2 = await promote(c2, 'tri/net', 20)
        // c2 merges (--no-rebase): its promotion is renumbered before the merge, which replaces nothing
        const p2 = JSON.parse((await ok(zoo(c2, ['pull', '--no-rebase', '--json']), 'c2 pull --no-rebase')).stdout)
        assert.equal(p2.action, 'merge')
        assert.deepEqual(p2.renumbered.map((r: { from: number; to: number }) => [r.from, r.to]), [[1, 3]])
        assert.equal((await git(c2, 'rev-list', '--merges', '--count', 'HEAD')).trim(), '1')
        await noConflictState(c2)
        await ok(zoo(c2, ['push']), 'c2 push')
        // c3 is behind by c1's two promotions and c2's one, and promotes twice itself
        const x3a = await promote(c3, 'tri/net', 30)
        const x3b = await promote(c3, 'tri/net', 31)
        assert.deepEqual([x3a.version, x3b.version], [1, 2])
        const p3 = await ok(zoo(c3, ['pull']), 'c3 pull')
        assert.match(p3.stderr, /tri\/net@v1 is now @v4/)
        assert.match(p3.stderr, /tri\/net@v2 is now @v5/)
        await ok(zoo(c3, ['push']), 'c3 push')
        await ok(zoo(c1, ['pull']), 'c1 pull')
        assert.deepEqual(await versions(c1, 'tri/net'), [1, 2, 3, 4, 5])
        // each version holds the bytes its promoter added (verify checks every object against them)
        const want = [v1, v2, x2, x3a, x3b]
        for (const [i, v] of want.entries()) {
          const m = JSON.parse(await readFile(join(c1, `models/tri/net/v${i + 1}/manifest.json`), 'utf8'))
          assert.equal(m.files[0].sha256, createHash('sha256').update(v.bytes).digest('hex'), `v${i + 1}`)
        }
        assert.ok((await getBytes(c1, 'tri/net@v5')).equals(x3b.bytes))
        for (const d of [c1, c3]) { await verifyOk(d); await noConflictState(d) }
        // the audit finds unsigned promotions (nobody signs here) but no merge that replaced a sealed version
        const audit = JSON.parse((await zoo(c1, ['verify', '--signatures', '--json'])).stdout) as { problems: Array<{ problem: string }> }
        assert.ok(audit.problems.length > 0 && audit.problems.every((p) => /signature unsigned/.test(p.problem)), JSON.stringify(audit.problems, null, 1))
      } finally { await t.cleanup() }
    })

    it('a pull killed right after a replayed commit is finished by --continue without promoting twice', async () => {
      const t = await team()
      try {
        const a = await t.clone('alice')
        const b = await t.clone('bob')
        await promote(a, 'crash/net', 1)
        await ok(zoo(a, ['push']), 'alice push')
        const mine = await promote(b, 'crash/net', 2)
        // uncommitted tracked changes would be overwritten: refused before anything moves
        const head = await git(b, 'rev-parse', 'HEAD')
        const config = await readFile(join(b, '.zoo', 'config.json'), 'utf8')
        await writeFile(join(b, '.zoo', 'config.json'), config.replace(/\n$/, ' \n'))
        const dirty = await zoo(b, ['pull'])
        assert.equal(dirty.code, 1, dirty.stderr)
        assert.match(dirty.stderr, /commit or stash them first/)
        assert.equal(await git(b, 'rev-parse', 'HEAD'), head)
        await writeFile(join(b, '.zoo', 'config.json'), config)
        await noConflictState(b)
        const killed = await zoo(b, ['pull'], { GIT_ZOO_CRASH_AT: 'pull-after-replay-commit' })
        assert.equal(killed.code, 1, killed.stderr)
        assert.match(killed.stderr, /crash point pull-after-replay-commit/)
        assert.match(killed.stderr, /git zoo pull --continue/)
        assert.ok(existsSync(join(b, '.git', 'rebase-merge')), 'the rebase stopped')
        const cont = JSON.parse((await ok(zoo(b, ['pull', '--continue', '--json']), 'continue')).stdout)
        assert.deepEqual(cont.renumbered.map((r: { from: number; to: number }) => [r.from, r.to]), [[1, 2]])
        await noConflictState(b)
        assert.deepEqual(await versions(b, 'crash/net'), [1, 2])
        assert.equal((await git(b, 'rev-list', '--count', 'origin/main..HEAD')).trim(), '1', 'one replayed promotion')
        assert.ok((await getBytes(b, 'crash/net@v2')).equals(mine.bytes))
        await verifyOk(b)
      } finally { await t.cleanup() }
    })

    it('a promotion commit that also changes other files: a conflict there is resolved by the user, then --continue', async () => {
      const t = await team()
      try {
        const a = await t.clone('alice')
        const b = await t.clone('bob')
        await promote(a, 'mixed/net', 1)
        await writeFile(join(a, 'notes.txt'), 'alice\n')
        await git(a, 'add', 'notes.txt')
        await git(a, 'commit', '-q', '-m', 'alice notes')
        await ok(zoo(a, ['push']), 'alice push')
        const mine = await promote(b, 'mixed/net', 2)
        // bob folds a notes file into his promotion commit (the hook lets a non-model file through)
        await writeFile(join(b, 'notes.txt'), 'bob\n')
        await git(b, 'add', 'notes.txt')
        await git(b, 'commit', '-q', '--amend', '--no-edit')
        const stop = await zoo(b, ['pull'])
        assert.equal(stop.code, 1, stop.stderr)
        assert.match(stop.stderr, /outside the model versions do not apply.*resolve them.*git zoo pull --continue/s)
        const early = await zoo(b, ['pull', '--continue'])
        assert.equal(early.code, 1, early.stderr)
        assert.match(early.stderr, /resolve the conflicts outside the zoo first.*notes\.txt/s)
        await writeFile(join(b, 'notes.txt'), 'alice and bob\n')
        await git(b, 'add', 'notes.txt')
        const cont = JSON.parse((await ok(zoo(b, ['pull', '--continue', '--json']), 'continue')).stdout)
        assert.deepEqual(cont.renumbered.map((r: { from: number; to: number }) => [r.from, r.to]), [[1, 2]])
        await noConflictState(b)
        assert.deepEqual(await versions(b, 'mixed/net'), [1, 2])
        assert.equal((await git(b, 'rev-list', '--count', 'origin/main..HEAD')).trim(), '1', 'one replayed commit')
        assert.deepEqual((await git(b, 'show', '--name-only', '--format=', 'HEAD')).trim().split('\n').sort(),
          ['models/mixed/net/v2/README.md', 'models/mixed/net/v2/manifest.json', 'notes.txt'])
        assert.equal(await readFile(join(b, 'notes.txt'), 'utf8'), 'alice and bob\n')
        assert.equal(JSON.parse(await readFile(join(b, 'models/mixed/net/v2/manifest.json'), 'utf8')).files[0].sha256, createHash('sha256').update(mine.bytes).digest('hex'))
        await verifyOk(b)
      } finally { await t.cleanup() }
    })

    it('evaluation records and a local fine-tune chain are carried to the new numbers', async () => {
      const t = await team()
      try {
        const a = await t.clone('alice')
        const b = await t.clone('bob')
        const onnx = join(t.work, 'net.onnx')
        await writeFile(onnx, permModel())
        const { x, y, n } = dataset()
        await writeFile(join(b, 'd.x.npy'), encodeNpy(x, [n, 8]))
        await writeFile(join(b, 'd.y.npy'), encodeNpy(y, [n]))
        await writeFile(join(b, '.git', 'info', 'exclude'), 'd.*.npy\n')
        await promote(a, 'cls/net', 1)
        await ok(zoo(a, ['push']), 'alice push')
        const base = JSON.parse((await ok(zoo(b, ['add', onnx, '--name', 'cls/net', '--json']), 'bob add onnx')).stdout)
        const ev = JSON.parse((await ok(zoo(b, ['eval', 'cls/net', '--data', 'd.x.npy', '--json']), 'bob eval')).stdout)
        assert.equal(ev.recorded, true)
        const ft = await promote(b, 'cls/net', 5, ['--parent', 'cls/net@v1', '-m', 'fine-tune of cls/net@v1'])
        const side = await promote(b, 'cls/side', 6, ['--parent', `cls/net@v1=distilled`])
        assert.equal(ft.version, 2)
        const pull = JSON.parse((await ok(zoo(b, ['pull', '--json']), 'bob pull')).stdout)
        assert.deepEqual(pull.renumbered.map((r: { name: string; from: number; to: number }) => `${r.name}@v${r.from}->v${r.to}`), ['cls/net@v1->v2', 'cls/net@v2->v3'])
        await noConflictState(b)
        const m2 = JSON.parse(await readFile(join(b, 'models/cls/net/v2/manifest.json'), 'utf8'))
        const m3 = JSON.parse(await readFile(join(b, 'models/cls/net/v3/manifest.json'), 'utf8'))
        const s1 = JSON.parse(await readFile(join(b, 'models/cls/side/v1/manifest.json'), 'utf8'))
        assert.equal(m2.files[0].sha256, base.files[0].sha256)
        assert.equal(pull.renumbered[0].old_seal, base.seal)
        assert.deepEqual(m3.parents.map((p: { name: string; version: number; seal: string }) => [p.name, p.version, p.seal]), [['cls/net', 2, m2.seal]])
        assert.equal(m3.message, 'fine-tune of cls/net@v2', 'the message names the version by its new number')
        assert.match(await git(b, 'log', '-1', '--format=%B', '--', 'models/cls/net/v3'), /^zoo: promote cls\/net@v3\n\nfine-tune of cls\/net@v2\n/)
        assert.deepEqual(s1.parents.map((p: { version: number; seal: string; relation: string }) => [p.version, p.seal, p.relation]), [[2, m2.seal, 'distilled']])
        assert.notEqual(s1.seal, side.seal, 'the re-parented version is re-sealed')
        // the evaluation record moved with its model and names the new seal
        const evals = await readdir(join(b, 'models/cls/net/v2/evals'))
        assert.equal(evals.length, 1)
        const rec = JSON.parse(await readFile(join(b, 'models/cls/net/v2/evals', evals[0]!), 'utf8'))
        assert.deepEqual([rec.model.version, rec.model.seal], [2, m2.seal])
        assert.ok(!existsSync(join(b, 'models/cls/net/v1/evals')), 'alice\'s v1 has no evaluation of bob\'s')
        const evalMsg = await git(b, 'log', '-1', '--format=%B', '--', 'models/cls/net/v2/evals')
        assert.match(evalMsg, /^Zoo-Model: cls\/net@v2$/m)
        assert.match(evalMsg, new RegExp(`^Zoo-Seal: ${m2.seal}$`, 'm'))
        const show = await ok(zoo(b, ['show', 'cls/net@v2', '--json']), 'show')
        assert.match(show.stdout, new RegExp(m2.seal))
        await verifyOk(b)
        await ok(zoo(b, ['push']), 'bob push')
      } finally { await t.cleanup() }
    })
  })

  describe('signed promotions and plain git pull conflicts', { concurrency: 3 }, () => {
    let keys: { dir: string; cleanup: () => Promise<void> }
    let alice: SshKey
    let bob: SshKey
    let anchor: string
    before(async () => {
      keys = await tempDir('zoo-team-keys-')
      ;[alice, bob] = await Promise.all([sshKey(keys.dir, 'alice'), sshKey(keys.dir, 'bob')])
      anchor = join(keys.dir, 'anchor')
      await writeFile(anchor, signerLine('alice@example.invalid', alice))
    })
    after(async () => { await keys.cleanup() })

    async function signing(dir: string, key: SshKey): Promise<void> {
      await git(dir, 'config', 'gpg.ssh.allowedSignersFile', anchor)
      await useSigningKey(dir, key)
    }

    it('signed promotions are signed again on integration: verify --signatures and git verify-commit pass', async () => {
      const t = await team(async (founder) => {
        await git(founder, 'config', 'user.email', 'alice@example.invalid')
        await signing(founder, alice)
        await writeFile(join(founder, '.zoo', 'allowed_signers'), signerLine('alice@example.invalid', alice) + signerLine('bob@example.invalid', bob))
      })
      try {
        const a = await t.clone('alice')
        const b = await t.clone('bob')
        await signing(a, alice)
        await signing(b, bob)
        await promote(a, 'sig/net', 1)
        await ok(zoo(a, ['push']), 'alice push')
        const mine = await promote(b, 'sig/net', 2)
        const before = (await git(b, 'rev-parse', 'HEAD')).trim()
        const pull = await ok(zoo(b, ['pull']), 'bob pull')
        assert.match(pull.stderr, /sig\/net@v1 is now @v2/)
        const head = (await git(b, 'rev-parse', 'HEAD')).trim()
        assert.notEqual(head, before)
        const vc = await gitRun(b, ['-c', `gpg.ssh.allowedSignersFile=${join(b, '.zoo/allowed_signers')}`, 'verify-commit', head])
        assert.equal(vc.code, 0, vc.stderr)
        assert.match(vc.stderr, /Good "git" signature for bob@example\.invalid/)
        assert.equal(JSON.parse(await readFile(join(b, 'models/sig/net/v2/manifest.json'), 'utf8')).files[0].sha256, createHash('sha256').update(mine.bytes).digest('hex'))
        await verifyOk(b, ['--signatures'])
        await ok(zoo(b, ['push']), 'bob push')
        await ok(zoo(a, ['pull']), 'alice pull')
        await verifyOk(a, ['--signatures'])
      } finally { await t.cleanup() }
    })

    const plain: Record<string, string[]> = {
      '--rebase': ['pull', '--rebase'],
      '--no-rebase': ['pull', '--no-rebase'],
      '--rebase (apply backend)': ['-c', 'rebase.backend=apply', 'pull', '--rebase'],
    }
    for (const [how, args] of Object.entries(plain)) {
      it(`a plain git pull ${how} that stops on models/: the hook names git zoo pull --continue, which resolves it`, async () => {
        const t = await team()
        try {
          const a = await t.clone('alice')
          const b = await t.clone('bob')
          const va = await promote(a, 'plain/net', 1)
          await ok(zoo(a, ['push']), 'alice push')
          const vb = await promote(b, 'plain/net', 2)
          await writeFile(join(b, 'notes.txt'), 'bob\n')
          await git(b, 'add', 'notes.txt')
          await git(b, 'commit', '-q', '-m', 'notes')
          const gp = await gitRun(b, args)
          assert.notEqual(gp.code, 0, 'git stops on the add/add conflict')
          assert.match(gp.stdout + gp.stderr, /CONFLICT \(add\/add\).*models\/plain\/net\/v1\/manifest\.json/)
          // taking the other side is refused by the hook, which names the command that resolves it
          await git(b, 'checkout', '--theirs', '--', 'models/plain/net/v1')
          await git(b, 'add', 'models')
          const commit = await gitRun(b, ['commit', '--no-edit'], undefined, { GIT_EDITOR: 'true' })
          assert.equal(commit.code, 1, commit.stderr)
          assert.match(commit.stderr, /commit refused/)
          assert.match(commit.stderr, /fix: git zoo pull --continue/)
          const cont = await ok(zoo(b, ['pull', '--continue', '--json']), 'git zoo pull --continue')
          const cj = JSON.parse(cont.stdout)
          assert.deepEqual(cj.renumbered.map((r: { from: number; to: number }) => [r.from, r.to]), [[1, 2]])
          await noConflictState(b)
          assert.deepEqual(await versions(b, 'plain/net'), [1, 2])
          assert.equal(await readFile(join(b, 'notes.txt'), 'utf8'), 'bob\n')
          assert.ok((await getBytes(b, 'plain/net@v1')).equals(va.bytes))
          assert.ok((await getBytes(b, 'plain/net@v2')).equals(vb.bytes))
          await verifyOk(b)
          await ok(zoo(b, ['push']), 'bob push')
          await ok(zoo(a, ['pull']), 'alice pull')
          assert.deepEqual(await versions(a, 'plain/net'), [1, 2])
          await verifyOk(a)
        } finally { await t.cleanup() }
      })
    }

    it('--abort goes back to where the pull began; a conflict outside models/ stops the pull until --continue', async () => {
      const t = await team()
      try {
        const a = await t.clone('alice')
        const b = await t.clone('bob')
        await promote(a, 'ab/net', 1)
        await ok(zoo(a, ['push']), 'alice push')
        await promote(b, 'ab/net', 2)
        const head = await git(b, 'rev-parse', 'HEAD')
        assert.notEqual((await gitRun(b, ['pull', '--rebase'])).code, 0)
        await ok(zoo(b, ['pull', '--abort']), 'abort')
        await noConflictState(b)
        assert.equal(await git(b, 'rev-parse', 'HEAD'), head)
        const nothing = await zoo(b, ['pull', '--continue'])
        assert.equal(nothing.code, 2, nothing.stderr)
        assert.match(nothing.stderr, /nothing to continue/)

        // a conflict outside models/ stops the integration; --continue finishes it after the user resolves
        await writeFile(join(a, 'notes.txt'), 'alice\n')
        await git(a, 'add', 'notes.txt')
        await git(a, 'commit', '-q', '-m', 'alice notes')
        await ok(zoo(a, ['push']), 'alice push notes')
        await writeFile(join(b, 'notes.txt'), 'bob\n')
        await git(b, 'add', 'notes.txt')
        await git(b, 'commit', '-q', '-m', 'bob notes')
        const stop = await zoo(b, ['pull'])
        assert.equal(stop.code, 1, stop.stderr)
        assert.match(stop.stderr, /CONFLICT \(add\/add\).*notes\.txt/)
        assert.match(stop.stderr, /resolve it.*git zoo pull --continue/s)
        const again = await zoo(b, ['pull'])
        assert.equal(again.code, 1, again.stderr)
        assert.match(again.stderr, /in progress.*git zoo pull --continue/s)
        await writeFile(join(b, 'notes.txt'), 'alice and bob\n')
        await git(b, 'add', 'notes.txt')
        const cont = JSON.parse((await ok(zoo(b, ['pull', '--continue', '--json']), 'continue')).stdout)
        assert.deepEqual(cont.renumbered.map((r: { from: number; to: number }) => [r.from, r.to]), [[1, 2]])
        await noConflictState(b)
        assert.deepEqual(await versions(b, 'ab/net'), [1, 2])
        assert.equal(await readFile(join(b, 'notes.txt'), 'utf8'), 'alice and bob\n')
        await verifyOk(b)
      } finally { await t.cleanup() }
    })
  })
})
