/**
 * Stages (spec/stages.md) through the real binary and real git: `git zoo tag` writes a chain of
 * annotated tags, <model>@<stage> resolves in get/show, ls/find/lineage/log show stages, signed
 * moves are judged with real ssh-keygen keys, the crash points of the write step, and the tags
 * travelling with `git zoo push` / plain `git pull`, including two people moving one stage.
 */
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, tempDir, zoo, git, gitRun, sshKey, useSigningKey, signerLine, safetensorsBytes, type SshKey } from './helpers-git.js'

let keys: { dir: string; cleanup: () => Promise<void> }
let alice: SshKey
let mallory: SshKey

before(async () => {
  keys = await tempDir('zoo-stage-keys-')
  ;[alice, mallory] = await Promise.all([sshKey(keys.dir, 'alice'), sshKey(keys.dir, 'mallory')])
})
after(async () => { await keys.cleanup() })

async function ok(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await zoo(dir, args, env)
  assert.equal(r.code, 0, `git zoo ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

/** A zoo with two versions of m/a (different weights). */
async function zooWithTwo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const repo = await initRepo()
  await ok(repo.dir, ['init'])
  await git(repo.dir, 'add', '-A')
  await git(repo.dir, 'commit', '-q', '-m', 'zoo')
  for (const fill of [1, 2]) {
    const f = join(repo.dir, '..', `${repo.dir.split('/').pop()}-w${fill}.safetensors`)
    await writeFile(f, safetensorsBytes(32, fill))
    await ok(repo.dir, ['add', f, '--name', 'm/a', '--seed', String(fill)])
  }
  return repo
}

// independent zoos in temp folders: run side by side (the machine waits on git and node start-up)
describe('stages', { concurrency: true }, () => {
  it('tag gives a version a stage; <model>@<stage> resolves in show and get; moving it keeps every move as a tag', async () => {
    const z = await zooWithTwo()
    try {
      const t1 = JSON.parse(await ok(z.dir, ['tag', 'm/a@v1', 'prod', '-m', 'first release', '--json']))
      assert.deepEqual({ ...t1, seal: typeof t1.seal }, { name: 'm/a', stage: 'prod', version: 1, previous: null, seal: 'string', tag: 'zoo-stage/m/a@prod/1', signed: false })
      const show1 = JSON.parse(await ok(z.dir, ['show', 'm/a@prod', '--json']))
      assert.equal(show1.version, 1)
      assert.deepEqual(show1.stages, ['prod'])
      // moving the stage: a new tag, the old one stays
      const t2 = await zoo(z.dir, ['tag', 'm/a@v2', 'prod'])
      assert.equal(t2.code, 0, t2.stderr)
      assert.match(t2.stderr, /m\/a@prod -> v2 \(was v1\) in tag zoo-stage\/m\/a@prod\/2, unsigned/)
      assert.deepEqual((await git(z.dir, 'tag', '--list', 'zoo-stage/*')).trim().split('\n'), ['zoo-stage/m/a@prod/1', 'zoo-stage/m/a@prod/2'])
      // the tag is annotated, on the promotion commit of v2, naming the tag before it
      const v2commit = (await git(z.dir, 'log', '-1', '--format=%H', '--', 'models/m/a/v2/manifest.json')).trim()
      assert.equal((await git(z.dir, 'rev-parse', 'zoo-stage/m/a@prod/2^{commit}')).trim(), v2commit)
      const body = await git(z.dir, 'cat-file', '-p', 'zoo-stage/m/a@prod/2')
      const first = (await git(z.dir, 'rev-parse', 'zoo-stage/m/a@prod/1')).trim()
      assert.match(body, new RegExp(`^Zoo-Stage-Previous: ${first}$`, 'm'))
      assert.match(body, /^Zoo-Stage-Was: m\/a@v1$/m)
      // the same stage again changes nothing
      const again = await zoo(z.dir, ['tag', 'm/a@v2', 'prod'])
      assert.equal(again.code, 0)
      assert.match(again.stderr, /already names v2; nothing changed/)
      assert.equal((await git(z.dir, 'tag', '--list', 'zoo-stage/*')).trim().split('\n').length, 2)
      // get by stage writes v2's bytes
      const out = join(z.dir, '..', `${z.dir.split('/').pop()}-out`)
      await ok(z.dir, ['get', 'm/a@prod', '--out', out])
      const written = await readFile(join(out, `${z.dir.split('/').pop()}-w2.safetensors`))
      assert.deepEqual(written, safetensorsBytes(32, 2))
      // a stage can be set from another stage; --delete ends it; a deleted stage no longer resolves
      await ok(z.dir, ['tag', 'm/a@prod', 'staging'])
      assert.equal(JSON.parse(await ok(z.dir, ['show', 'm/a@staging', '--json'])).version, 2)
      const del = await zoo(z.dir, ['tag', '--delete', 'm/a', 'staging'])
      assert.equal(del.code, 0, del.stderr)
      const gone = await zoo(z.dir, ['show', 'm/a@staging'])
      assert.equal(gone.code, 2)
      assert.match(gone.stderr, /model m\/a has no stage staging \(it was deleted\)/)
      const listing = JSON.parse(await ok(z.dir, ['tag', '--json']))
      assert.deepEqual(listing.stages.map((s: { name: string; stage: string; version: number; moves: number }) => [s.name, s.stage, s.version, s.moves]), [['m/a', 'prod', 2, 2]])
    } finally { await z.cleanup() }
  })

  it('ls, find stage=..., lineage and log show stages; log lists every move', async () => {
    const z = await zooWithTwo()
    try {
      await ok(z.dir, ['tag', 'm/a@v1', 'prod'])
      await ok(z.dir, ['tag', 'm/a@v2', 'candidate', '-m', 'try it on 5% of traffic'])
      const ls = await ok(z.dir, ['ls'])
      assert.match(ls, /^MODEL\s.*stage$/m)
      assert.match(ls, /^m\/a@v2\s.*candidate$/m)
      // v1 is not the latest version, yet stage=prod finds it
      const found = JSON.parse(await ok(z.dir, ['find', 'stage=prod', '--json']))
      assert.deepEqual(found.models.map((m: { name: string; version: number; stages: string[] }) => [m.name, m.version, m.stages]), [['m/a', 1, ['prod']]])
      assert.equal(JSON.parse(await ok(z.dir, ['find', 'stage=', '--json'])).total, 0)
      assert.equal(JSON.parse(await ok(z.dir, ['find', 'stage~cand*', '--json'])).models[0].version, 2)
      // --parent takes a stage too
    const w = join(z.dir, '..', `${z.dir.split('/').pop()}-w1.safetensors`)
    await ok(z.dir, ['add', w, '--name', 'm/child', '--parent', 'm/a@prod=fine-tune'])
    assert.deepEqual(JSON.parse(await ok(z.dir, ['show', 'm/child', '--json'])).parents.map((p: { name: string; version: number }) => [p.name, p.version]), [['m/a', 1]])
    const lineage = JSON.parse(await ok(z.dir, ['lineage', 'm/a@prod', '--json', '--ancestors']))
      assert.deepEqual(lineage.nodes, [{ name: 'm/a', version: 1, seal: lineage.nodes[0].seal, stages: ['prod'] }])
      await ok(z.dir, ['tag', 'm/a@v2', 'prod'])
      const log = JSON.parse(await ok(z.dir, ['log', 'm/a@prod', '--json']))
      assert.deepEqual(log.entries.map((e: { kind: string; stage: { version: number; previous: number | null } }) => [e.kind, e.stage.version, e.stage.previous]), [['stage', 2, 1], ['stage', 1, null]])
      assert.equal(log.entries[0].author, 'Test Researcher <researcher@example.invalid>')
      assert.equal(log.entries[0].signature.status, 'unsigned')
      const text = await ok(z.dir, ['log', 'm/a'])
      assert.match(text, /stage m\/a@candidate -> v2\n    by Test Researcher <researcher@example\.invalid>; signature: unsigned; tag zoo-stage\/m\/a@candidate\/1\n    try it on 5% of traffic/)
      assert.match(text, /promoted m\/a@v1/)
      // a tag made by hand that skips the chain does not count, and log and verify say so
      const seal1 = JSON.parse(await ok(z.dir, ['show', 'm/a@v1', '--json'])).seal
      const v1commit = (await git(z.dir, 'log', '-1', '--format=%H', '--', 'models/m/a/v1/manifest.json')).trim()
      await git(z.dir, 'tag', '-a', 'zoo-stage/m/a@prod/3', '-m', `zoo: stage m/a@prod = v1\n\nZoo-Stage: m/a@prod\nZoo-Stage-Move: 3\nZoo-Stage-Action: set\nZoo-Model: m/a@v1\nZoo-Seal: ${seal1}\nZoo-Stage-Previous: none\n`, v1commit)
      assert.equal(JSON.parse(await ok(z.dir, ['show', 'm/a@prod', '--json'])).version, 2)
      assert.match(await ok(z.dir, ['log', 'm/a@prod']), /DOES NOT HOLD UP: its Zoo-Stage-Previous \(none\) is not the tag before it/)
      const audit = await zoo(z.dir, ['verify', '--signatures', '--json'])
      assert.equal(audit.code, 1)
      const stageIssues = JSON.parse(audit.stdout).problems.filter((p: { model: string }) => p.model === 'm/a@prod').map((p: { problem: string }) => p.problem)
      assert.ok(stageIssues.some((p: string) => /stage move zoo-stage\/m\/a@prod\/3 does not hold up/.test(p)), stageIssues.join('\n'))
      assert.ok(stageIssues.some((p: string) => /stage move zoo-stage\/m\/a@prod\/1 by .* is not signed by an allowed signer \(signature: unsigned/.test(p)), stageIssues.join('\n'))
    } finally { await z.cleanup() }
  })

  it('a signed move is judged by .zoo/allowed_signers: good for a listed key, unknown key for another', async () => {
    const z = await zooWithTwo()
    try {
      await writeFile(join(z.dir, '.zoo', 'allowed_signers'), signerLine('researcher@example.invalid', alice))
      await git(z.dir, 'add', '.zoo/allowed_signers')
      await git(z.dir, 'commit', '-q', '-m', 'signers')
      await useSigningKey(z.dir, alice)
      const t = JSON.parse(await ok(z.dir, ['tag', 'm/a@v1', 'prod', '--json']))
      assert.equal(t.signed, true)
      const vt = await gitRun(z.dir, ['-c', `gpg.ssh.allowedSignersFile=${join(z.dir, '.zoo/allowed_signers')}`, 'verify-tag', 'zoo-stage/m/a@prod/1'])
      assert.equal(vt.code, 0, vt.stderr)
      await useSigningKey(z.dir, mallory)
      await ok(z.dir, ['tag', 'm/a@v2', 'prod'])
      await useSigningKey(z.dir, null)
      await ok(z.dir, ['tag', 'm/a@v1', 'prod'])
      const log = JSON.parse(await ok(z.dir, ['log', 'm/a@prod', '--json']))
      assert.deepEqual(log.entries.map((e: { signature: { status: string; ok: boolean } }) => [e.signature.status, e.signature.ok]),
        [['unsigned', false], ['unknown key', false], ['good', true]])
      assert.equal(log.entries[2].signature.signer, 'researcher@example.invalid')
      const audit = JSON.parse((await zoo(z.dir, ['verify', '--signatures', '--json'])).stdout).problems.filter((p: { model: string }) => p.model === 'm/a@prod')
      assert.deepEqual(audit.map((p: { path: string }) => p.path), ['refs/tags/zoo-stage/m/a@prod/2', 'refs/tags/zoo-stage/m/a@prod/3'])
      const text = await ok(z.dir, ['log', 'm/a@prod'])
      assert.match(text, /signed, good \(researcher@example\.invalid\); tag zoo-stage\/m\/a@prod\/1/)
      // a zoo that requires signing refuses an unsigned move before writing anything
      const config = JSON.parse(await readFile(join(z.dir, '.zoo/config.json'), 'utf8'))
      await writeFile(join(z.dir, '.zoo/config.json'), JSON.stringify({ ...config, policy: { ...config.policy, require_signed: true } }, null, 2))
      const refused = await zoo(z.dir, ['tag', 'm/a@v2', 'prod'])
      assert.equal(refused.code, 1)
      assert.match(refused.stderr, /requires signed promotions .* git has no signing key/)
      assert.equal((await git(z.dir, 'tag', '--list', 'zoo-stage/*')).trim().split('\n').length, 3)
    } finally { await z.cleanup() }
  })

  it('bad stage input is refused with its code: a bad name (2), an unknown stage (2), a retired version (1)', async () => {
    const z = await zooWithTwo()
    try {
      const bad = await zoo(z.dir, ['tag', 'm/a@v1', 'Prod'])
      assert.equal(bad.code, 2)
      assert.match(bad.stderr, /invalid stage name "Prod"/)
      const asVersion = await zoo(z.dir, ['tag', 'm/a@v1', 'v2'])
      assert.equal(asVersion.code, 2)
      const unknown = await zoo(z.dir, ['get', 'm/a@nope', '--out', join(z.dir, '..', 'nope-out')])
      assert.equal(unknown.code, 2)
      assert.match(unknown.stderr, /model m\/a has no stage nope; `git zoo tag m\/a@vN nope` sets it/)
      await ok(z.dir, ['retire', 'm/a@v1', '--reason', 'leaked test split'])
      const retired = await zoo(z.dir, ['tag', 'm/a@v1', 'prod'])
      assert.equal(retired.code, 1)
      assert.match(retired.stderr, /m\/a@v1 is retired \(leaked test split\)/)
      assert.equal((await git(z.dir, 'tag', '--list', 'zoo-stage/*')).trim(), '')
      const delNone = await zoo(z.dir, ['tag', '--delete', 'm/a@prod'])
      assert.equal(delNone.code, 2)
    } finally { await z.cleanup() }
  })

  it('crash points of the tag write step: killed before the write leaves no tag; killed after it, a rerun changes nothing', async () => {
    const z = await zooWithTwo()
    try {
      // a killed `git zoo tag` leaves its message folder (zoo-tag-*) in TMPDIR: one that cleanup removes
      const tmp = join(z.dir, '..', 'tmp')
      await mkdir(tmp)
      const before = await zoo(z.dir, ['tag', 'm/a@v1', 'prod'], { GIT_ZOO_CRASH_AT: 'tag-before-write', TMPDIR: tmp })
      assert.notEqual(before.code, 0)
      assert.match(before.stderr, /crash point tag-before-write/)
      assert.equal((await git(z.dir, 'tag', '--list', 'zoo-stage/*')).trim(), '')
      assert.equal((await zoo(z.dir, ['show', 'm/a@prod'])).code, 2)
      const after = await zoo(z.dir, ['tag', 'm/a@v1', 'prod'], { GIT_ZOO_CRASH_AT: 'tag-after-write', TMPDIR: tmp })
      assert.notEqual(after.code, 0)
      assert.match(after.stderr, /crash point tag-after-write/)
      assert.equal((await git(z.dir, 'tag', '--list', 'zoo-stage/*')).trim(), 'zoo-stage/m/a@prod/1')
      const rerun = await zoo(z.dir, ['tag', 'm/a@v1', 'prod'])
      assert.equal(rerun.code, 0)
      assert.match(rerun.stderr, /already names v1; nothing changed/)
      assert.equal(JSON.parse(await ok(z.dir, ['show', 'm/a@prod', '--json'])).version, 1)
    } finally { await z.cleanup() }
  })

  it('stages travel: git zoo push sends them, plain git pull fetches them, and two people moving one stage are reconciled', async () => {
    const t = await tempDir('zoo-stage-remote-')
    try {
      const origin = join(t.dir, 'origin.git')
      await git(t.dir, 'init', '-q', '--bare', '-b', 'main', origin)
      const a = await zooWithTwo()
      try {
        await ok(a.dir, ['remote', 'add', 'origin', join(t.dir, 'objects')])
        await git(a.dir, 'add', '-A')
        await git(a.dir, 'commit', '-q', '-m', 'zoo remote')
        await git(a.dir, 'remote', 'add', 'origin', origin)
        await ok(a.dir, ['tag', 'm/a@v1', 'prod'])
        await ok(a.dir, ['push'])
        assert.match(await git(a.dir, 'ls-remote', origin), /refs\/tags\/zoo-stage\/m\/a@prod\/1/)
        const b = join(t.dir, 'b')
        await ok(t.dir, ['clone', origin, b])
        await git(b, 'config', 'user.name', 'Bob')
        await git(b, 'config', 'user.email', 'bob@example.invalid')
        assert.equal(JSON.parse(await ok(b, ['show', 'm/a@prod', '--json'])).version, 1)
        // a moves prod (no new commit): plain git pull fetches the new tag
        await ok(a.dir, ['tag', 'm/a@v2', 'prod'])
        await ok(a.dir, ['push'])
        await git(b, 'pull', '-q')
        assert.equal(JSON.parse(await ok(b, ['show', 'm/a@prod', '--json'])).version, 2)
        // both move prod as their third move: the second push is refused, pull makes b's move again after a's
        await ok(a.dir, ['tag', 'm/a@v1', 'prod'])
        await ok(b, ['tag', 'm/a@v2', 'canary'])
        await ok(b, ['tag', 'm/a@v1', 'prod', '-m', 'roll back'])
        await ok(b, ['tag', 'm/a@v2', 'prod', '-m', 'bob says v2'])
        await ok(a.dir, ['push'])
        const refused = await zoo(b, ['push'])
        assert.equal(refused.code, 1)
        assert.match(refused.stderr, /holds other moves of m\/a@prod .*run `git zoo pull`/)
        const pulled = await zoo(b, ['pull'])
        assert.equal(pulled.code, 0, pulled.stderr)
        assert.match(pulled.stderr, /stage m\/a@prod was moved on origin too; your move \(zoo-stage\/m\/a@prod\/3\) was no longer needed/)
        assert.match(pulled.stderr, /your move \(zoo-stage\/m\/a@prod\/4\) was made again after theirs as zoo-stage\/m\/a@prod\/4/)
        assert.equal((await git(b, 'rev-parse', 'zoo-stage/m/a@prod/3')).trim(), (await git(a.dir, 'rev-parse', 'zoo-stage/m/a@prod/3')).trim())
        await ok(b, ['push'])
        await git(a.dir, 'pull', '-q')
        const log = JSON.parse(await ok(a.dir, ['log', 'm/a@prod', '--json']))
        assert.deepEqual(log.entries.map((e: { author: string; stage: { version: number; problem: string | null } }) => [e.author.split(' ')[0], e.stage.version, e.stage.problem]),
          [['Bob', 2, null], ['Test', 1, null], ['Test', 2, null], ['Test', 1, null]])
        assert.match(log.entries[0].message, /bob says v2/)
        assert.equal(JSON.parse(await ok(a.dir, ['show', 'm/a@canary', '--json'])).version, 2)
      } finally { await a.cleanup() }
    } finally { await t.cleanup() }
  })
})
