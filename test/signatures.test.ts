/**
 * Signed promotions with real keys (ssh-keygen), real `git commit -S` and `git verify-commit`:
 * good, unknown signer, unsigned, tampered, a commit adding its own key to .zoo/allowed_signers,
 * a --no-verify bypass, require_signed, retirement, and the audit log.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile, appendFile, stat, readdir, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  initRepo, tempDir, zoo, git, gitRun, sshKey, useSigningKey, signerLine, safetensorsBytes, type SshKey,
} from './helpers-git.js'
import { processCtx } from './cli.js'

let keys: { dir: string; cleanup: () => Promise<void> }
let alice: SshKey
let bob: SshKey
let mallory: SshKey
let anchor: string

before(async () => {
  keys = await tempDir('zoo-keys-')
  ;[alice, bob, mallory] = await Promise.all([sshKey(keys.dir, 'alice'), sshKey(keys.dir, 'bob'), sshKey(keys.dir, 'mallory')])
  // the verifier's own trust anchor: the founder's key, outside the repository
  anchor = join(keys.dir, 'anchor_signers')
  await writeFile(anchor, signerLine('alice@example.invalid', alice))
})
after(async () => { await keys.cleanup() })

async function filesUnder(dir: string): Promise<string[]> {
  const all = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])
  return all.filter((e) => !e.isDirectory()).map((e) => e.name)
}

interface Verify { ok: boolean; problems: Array<{ model: string; path: string | null; object: string | null; problem: string }> }

async function verifySigs(dir: string): Promise<Verify> {
  const r = await zoo(dir, ['verify', '--signatures', '--json'])
  const v = JSON.parse(r.stdout) as Verify
  assert.equal(r.code, v.ok ? 0 : 1, r.stderr)
  return v
}

/** A zoo whose .zoo/allowed_signers lists alice and bob, committed and signed by alice. */
async function signedZoo(): Promise<{ dir: string; cleanup: () => Promise<void>; ckpt: string }> {
  const repo = await initRepo({ name: 'Alice', email: 'alice@example.invalid' })
  const { dir } = repo
  await git(dir, 'config', 'gpg.ssh.allowedSignersFile', anchor)
  await useSigningKey(dir, alice)
  const init = await zoo(dir, ['init'])
  assert.equal(init.code, 0, init.stderr)
  await writeFile(join(dir, '.zoo', 'allowed_signers'), signerLine('alice@example.invalid', alice) + signerLine('bob@example.invalid', bob))
  await git(dir, 'add', '.zoo', '.gitignore')
  await git(dir, 'commit', '-q', '-m', 'zoo: set up, signers alice and bob')
  const ckpt = join(dir, '..', `${dir.split('/').pop()}-ckpt.safetensors`)
  await writeFile(ckpt, safetensorsBytes(64))
  return { ...repo, ckpt }
}

async function add(dir: string, ckpt: string, name: string, extra: string[] = []): Promise<{ code: number; commit?: string; stderr: string }> {
  const r = await zoo(dir, ['add', ckpt, '--name', name, '--seed', '1', '--json', ...extra])
  return { code: r.code, stderr: r.stderr, ...(r.code === 0 ? { commit: JSON.parse(r.stdout).commit as string } : {}) }
}

test('a user with signing configured gets a signed promotion that git verify-commit accepts', async () => {
  const z = await signedZoo()
  try {
    const a = await add(z.dir, z.ckpt, 'sig/good', ['-m', 'best run so far'])
    assert.equal(a.code, 0, a.stderr)
    const vc = await gitRun(z.dir, ['-c', `gpg.ssh.allowedSignersFile=${join(z.dir, '.zoo/allowed_signers')}`, 'verify-commit', a.commit!])
    assert.equal(vc.code, 0, vc.stderr)
    assert.match(vc.stderr, /Good "git" signature for alice@example\.invalid/)
    const body = await git(z.dir, 'log', '-1', '--format=%B', a.commit!)
    assert.match(body, /^Zoo-Model: sig\/good@v1$/m)
    assert.match(body, /^Zoo-Seal: bafy/m)
    assert.match(body, /^Zoo-Code: [0-9a-f]{40}$/m)
    assert.deepEqual(await verifySigs(z.dir), { ok: true, problems: [] })
    const log = await zoo(z.dir, ['log', '--json'])
    assert.equal(log.code, 0, log.stderr)
    const entries = JSON.parse(log.stdout).entries
    assert.equal(entries.length, 1)
    assert.equal(entries[0].kind, 'promotion')
    assert.deepEqual(entries[0].models.map((m: { name: string; version: number }) => `${m.name}@v${m.version}`), ['sig/good@v1'])
    assert.equal(entries[0].signature.status, 'good')
    assert.equal(entries[0].signature.signer, 'alice@example.invalid')
    assert.equal(entries[0].message, 'best run so far')
    assert.match(entries[0].author, /^Alice </)
    const text = await zoo(z.dir, ['log', 'sig/good'])
    assert.match(text.stdout, /promoted sig\/good@v1\n\s+by Alice <alice@example\.invalid>; signed, good \(alice@example\.invalid\)\n\s+best run so far/)
  } finally { await z.cleanup() }
})

test('unknown signer, unsigned and tampered promotions are each reported; good ones are not', async () => {
  const z = await signedZoo()
  try {
    assert.equal((await add(z.dir, z.ckpt, 'sig/ok')).code, 0)
    await useSigningKey(z.dir, bob)
    assert.equal((await add(z.dir, z.ckpt, 'sig/by-bob')).code, 0)
    await useSigningKey(z.dir, mallory)
    const unknown = await add(z.dir, z.ckpt, 'sig/unknown')
    assert.equal(unknown.code, 0, unknown.stderr)
    await useSigningKey(z.dir, null)
    const unsigned = await add(z.dir, z.ckpt, 'sig/unsigned')
    assert.equal(unsigned.code, 0, unsigned.stderr)
    await useSigningKey(z.dir, alice)
    const good = await add(z.dir, z.ckpt, 'sig/tampered')
    // rewrite the signed commit object's content, keeping its signature header
    const object = await git(z.dir, 'cat-file', 'commit', good.commit!)
    assert.match(object, /^gpgsig -----BEGIN SSH SIGNATURE-----/m)
    const forged = object.replace('zoo: promote sig/tampered@v1', 'zoo: promote sig/tampered@v1 (approved)')
    const id = (await gitRun(z.dir, ['hash-object', '-t', 'commit', '-w', '--stdin'], forged)).stdout.trim()
    assert.notEqual(id, good.commit)
    await git(z.dir, 'update-ref', 'refs/heads/main', id)
    assert.notEqual((await gitRun(z.dir, ['verify-commit', id])).code, 0)

    const v = await verifySigs(z.dir)
    assert.equal(v.ok, false)
    const by = (model: string): string[] => v.problems.filter((p) => p.model === model).map((p) => p.problem)
    assert.deepEqual(by('sig/ok@v1'), [])
    assert.deepEqual(by('sig/by-bob@v1'), [])
    assert.equal(by('sig/unknown@v1').length, 1)
    assert.match(by('sig/unknown@v1')[0]!, /signature unknown key/)
    assert.match(by('sig/unsigned@v1')[0]!, /signature unsigned/)
    assert.match(by('sig/tampered@v1')[0]!, /signature bad/)
    assert.equal(v.problems.length, 3, JSON.stringify(v.problems, null, 1))
    assert.equal(v.problems.find((p) => p.model === 'sig/tampered@v1')!.object, id)

    const log = JSON.parse((await zoo(z.dir, ['log', '--json'])).stdout).entries as Array<{ models: Array<{ name: string }>; signature: { status: string } }>
    const status = Object.fromEntries(log.map((e) => [e.models[0]!.name, e.signature.status]))
    assert.deepEqual(status, { 'sig/ok': 'good', 'sig/by-bob': 'good', 'sig/unknown': 'unknown key', 'sig/unsigned': 'unsigned', 'sig/tampered': 'bad' })
  } finally { await z.cleanup() }
})

test('a commit adding its own key to .zoo/allowed_signers cannot authorise itself or what follows', async () => {
  const z = await signedZoo()
  try {
    // (1) a promotion that adds its signer's key in the same commit
    await useSigningKey(z.dir, mallory)
    const promo = await add(z.dir, z.ckpt, 'sig/self')
    assert.equal(promo.code, 0, promo.stderr)
    await appendFile(join(z.dir, '.zoo', 'allowed_signers'), signerLine('mallory@example.invalid', mallory))
    await git(z.dir, 'add', '.zoo/allowed_signers')
    await git(z.dir, 'commit', '-q', '--amend', '--no-edit') // one signed commit: the promotion and the key
    const self = { commit: (await git(z.dir, 'rev-parse', 'HEAD')).trim() }
    assert.deepEqual((await git(z.dir, 'show', '--name-only', '--format=', self.commit)).trim().split('\n').sort(),
      ['.zoo/allowed_signers', 'models/sig/self/v1/README.md', 'models/sig/self/v1/manifest.json'])
    // its own tree names mallory, yet it is judged by its parent's list
    assert.equal((await gitRun(z.dir, ['-c', `gpg.ssh.allowedSignersFile=${join(z.dir, '.zoo/allowed_signers')}`, 'verify-commit', self.commit])).code, 0)
    let v = await verifySigs(z.dir)
    assert.deepEqual(v.problems.map((p) => [p.model, p.object]), [['sig/self@v1', self.commit]])
    assert.match(v.problems[0]!.problem, /unknown key.*as of its parent/)

    // (2) the key added first in a commit of its own, then a promotion signed with it
    const z2 = await signedZoo()
    try {
      await useSigningKey(z2.dir, mallory)
      await appendFile(join(z2.dir, '.zoo', 'allowed_signers'), signerLine('mallory@example.invalid', mallory))
      await git(z2.dir, 'commit', '-q', '-am', 'add a colleague')
      const keyCommit = (await git(z2.dir, 'rev-parse', 'HEAD')).trim()
      const later = await add(z2.dir, z2.ckpt, 'sig/later')
      assert.equal(later.code, 0, later.stderr)
      v = await verifySigs(z2.dir)
      const objects = v.problems.map((p) => p.object).sort()
      assert.deepEqual(objects, [keyCommit, later.commit].sort())
      assert.match(v.problems.find((p) => p.object === keyCommit)!.problem, /change to \.zoo\/allowed_signers with signature unknown key/)
      assert.match(v.problems.find((p) => p.object === later.commit)!.problem, /untrusted signers list/)
      // bob adding carol properly (signed by an allowed signer) is fine, and carol may then promote
      await git(z2.dir, 'reset', '-q', '--hard', 'HEAD~2')
      const carol = await sshKey(keys.dir, `carol-${Date.now()}`)
      await useSigningKey(z2.dir, bob)
      await appendFile(join(z2.dir, '.zoo', 'allowed_signers'), signerLine('carol@example.invalid', carol))
      await git(z2.dir, 'commit', '-q', '-am', 'add carol')
      await useSigningKey(z2.dir, carol)
      assert.equal((await add(z2.dir, z2.ckpt, 'sig/carol')).code, 0)
      assert.deepEqual(await verifySigs(z2.dir), { ok: true, problems: [] })
    } finally { await z2.cleanup() }
  } finally { await z.cleanup() }
})

test('--no-verify bypasses of the hook are caught by verify --signatures', async () => {
  const z = await signedZoo()
  try {
    const a = await add(z.dir, z.ckpt, 'nv/base')
    assert.equal(a.code, 0, a.stderr)
    const manifestPath = join(z.dir, 'models/nv/base/v1/manifest.json')
    // (1) an edit to a sealed version, signed by an allowed signer, hook skipped
    const m = JSON.parse(await readFile(manifestPath, 'utf8'))
    m.metrics = { acc: 0.99 }
    await writeFile(manifestPath, JSON.stringify(m, null, 2) + '\n')
    assert.equal((await gitRun(z.dir, ['commit', '-qam', 'better numbers'])).code, 1, 'the hook refuses it')
    await git(z.dir, 'commit', '-q', '--no-verify', '-am', 'better numbers')
    const edit = (await git(z.dir, 'rev-parse', 'HEAD')).trim()
    // (2) an unsealed manifest (copied and renamed by hand) and (3) raw weights, hook skipped
    await git(z.dir, 'mv', 'models/nv/base/v1', 'models/nv/base/v2')
    await writeFile(join(z.dir, 'weights.safetensors.bak'), (await readFile(z.ckpt)))
    await git(z.dir, 'add', 'weights.safetensors.bak')
    await git(z.dir, 'commit', '-q', '--no-verify', '-m', 'v2 by hand')
    const byHand = (await git(z.dir, 'rev-parse', 'HEAD')).trim()

    const v = await verifySigs(z.dir)
    const at = (sha: string): string[] => v.problems.filter((p) => p.object === sha).map((p) => `${p.model}: ${p.problem}`)
    assert.ok(at(edit).some((p) => /^nv\/base@v1: modifies the sealed version/.test(p)), at(edit).join('\n'))
    assert.ok(at(edit).every((p) => !/signature/.test(p)), 'signed by alice: only the rule is broken')
    const h = at(byHand).join('\n')
    assert.match(h, /nv\/base@v1: deletes the sealed version/)
    assert.match(h, /nv\/base@v2: .*(seal mismatch|is nv\/base@v1 but sits in)/)
    assert.match(h, /nv\/base@v2: not a recorded promotion/)
    assert.match(h, /weights\.safetensors\.bak: is raw model weights by its content \(safetensors/)
    assert.equal(at(a.commit!).length, 0)
  } finally { await z.cleanup() }
})

test('require_signed refuses an unsigned promotion before anything is committed', async () => {
  const z = await signedZoo()
  try {
    const cfg = JSON.parse(await readFile(join(z.dir, '.zoo/config.json'), 'utf8'))
    cfg.policy = { ...cfg.policy, require_signed: true }
    await writeFile(join(z.dir, '.zoo/config.json'), JSON.stringify(cfg, null, 2) + '\n')
    await git(z.dir, 'commit', '-q', '-am', 'require signed promotions')
    const head = (await git(z.dir, 'rev-parse', 'HEAD')).trim()
    await useSigningKey(z.dir, null)
    const r = await zoo(z.dir, ['add', z.ckpt, '--name', 'pol/unsigned'])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /requires signed promotions/)
    assert.equal((await git(z.dir, 'rev-parse', 'HEAD')).trim(), head)
    assert.equal(await git(z.dir, 'status', '--porcelain'), '')
    await assert.rejects(stat(join(z.dir, 'models')), 'no folder was even created')
    // a signing key that cannot sign: the commit fails and the promotion is rolled back
    await git(z.dir, 'config', 'user.signingkey', join(keys.dir, 'no-such-key.pub'))
    const broken = await zoo(z.dir, ['add', z.ckpt, '--name', 'pol/broken'])
    assert.equal(broken.code, 1, broken.stderr)
    assert.equal((await git(z.dir, 'rev-parse', 'HEAD')).trim(), head)
    assert.equal(await git(z.dir, 'status', '--porcelain'), '')
    assert.deepEqual(await filesUnder(join(z.dir, 'models')), [])
    // with a key, it is signed even though commit.gpgsign is off
    await git(z.dir, 'config', 'user.signingkey', alice.pub)
    const ok = await add(z.dir, z.ckpt, 'pol/signed')
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal((await git(z.dir, 'log', '-1', '--format=%G?', ok.commit!)).trim(), 'G')
    // and a retirement is refused the same way when git cannot sign
    await gitRun(z.dir, ['config', '--unset', 'user.signingkey'])
    const ret = await zoo(z.dir, ['retire', 'pol/signed@v1', '--reason', 'test'])
    assert.equal(ret.code, 1)
    assert.equal((await git(z.dir, 'rev-parse', 'HEAD')).trim(), ok.commit)
    assert.equal(await git(z.dir, 'status', '--porcelain'), '')
  } finally { await z.cleanup() }
})

test('retire records why in a signed commit of its own; the seal and lineage stay', async () => {
  const z = await signedZoo()
  try {
    const a = await add(z.dir, z.ckpt, 'ret/m')
    assert.equal(a.code, 0)
    const manifestBefore = await readFile(join(z.dir, 'models/ret/m/v1/manifest.json'), 'utf8')
    assert.equal((await zoo(z.dir, ['retire', 'ret/m', '--reason', 'x'])).code, 2, 'a version must be named')
    assert.equal((await zoo(z.dir, ['retire', 'ret/m@v1'])).code, 2, '--reason is required')
    assert.equal((await zoo(z.dir, ['retire', 'ret/m@v9', '--reason', 'x'])).code, 2, 'a version the zoo does not have is a usage error')
    const r = await zoo(z.dir, ['retire', 'ret/m@v1', '--reason', 'trained on the leaked test split', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const j = JSON.parse(r.stdout)
    assert.equal(j.seal, JSON.parse(manifestBefore).seal)
    assert.equal(await readFile(join(z.dir, 'models/ret/m/v1/manifest.json'), 'utf8'), manifestBefore)
    const record = JSON.parse(await readFile(join(z.dir, 'models/ret/m/v1/RETIRED.json'), 'utf8'))
    assert.equal(record.reason, 'trained on the leaked test split')
    assert.match(record.retired_by, /alice@example\.invalid/)
    assert.deepEqual((await git(z.dir, 'show', '--name-only', '--format=', j.commit)).trim().split('\n'), ['models/ret/m/v1/RETIRED.json'])
    assert.match(await git(z.dir, 'log', '-1', '--format=%B', j.commit), /^Zoo-Retire: ret\/m@v1\nZoo-Seal: bafy/m)
    assert.equal((await zoo(z.dir, ['retire', 'ret/m@v1', '--reason', 'again'])).code, 1, 'a retirement is final')
    assert.deepEqual(await verifySigs(z.dir), { ok: true, problems: [] })
    const { Repo } = await import('../src/repo.js')
    const repo = await Repo.open(z.dir, processCtx())
    assert.notEqual(await repo.retirement('ret/m', 1), null)
    const log = JSON.parse((await zoo(z.dir, ['log', 'ret/m', '--json'])).stdout).entries
    assert.deepEqual(log.map((e: { kind: string; signature: { status: string } }) => [e.kind, e.signature.status]), [['retirement', 'good'], ['promotion', 'good']])
    assert.equal(log[0].message, 'trained on the leaked test split')
    // the model is still there to get
    assert.equal((await zoo(z.dir, ['get', 'ret/m@v1', '--out', join(z.dir, '..', `${z.dir.split('/').pop()}-out`)])).code, 0)
    // a retirement record written by hand, without the trailer, is reported
    const b = await add(z.dir, z.ckpt, 'ret/n')
    assert.equal(b.code, 0)
    const seal = JSON.parse(await readFile(join(z.dir, 'models/ret/n/v1/manifest.json'), 'utf8')).seal
    await writeFile(join(z.dir, 'models/ret/n/v1/RETIRED.json'), JSON.stringify({ zoo: 1, name: 'ret/n', version: 1, seal, reason: 'quiet', retired_by: 'x', retired: 'now' }, null, 2) + '\n')
    await git(z.dir, 'add', 'models/ret/n/v1/RETIRED.json')
    await git(z.dir, 'commit', '-q', '-m', 'retire quietly')
    const v = await verifySigs(z.dir)
    assert.deepEqual(v.problems.map((p) => p.model), ['ret/n@v1'])
    assert.match(v.problems[0]!.problem, /not a recorded retirement/)
  } finally { await z.cleanup() }
})

test('evaluation records: the hook accepts a valid one beside a sealed version; the audit wants its trailers', async () => {
  const z = await signedZoo()
  try {
    assert.equal((await add(z.dir, z.ckpt, 'ev/m')).code, 0)
    const m = JSON.parse(await readFile(join(z.dir, 'models/ev/m/v1/manifest.json'), 'utf8'))
    const data = 'd'.repeat(64)
    const record = (seal: string): string => JSON.stringify({
      zoo_eval: 1, model: { name: 'ev/m', version: 1, seal, file: m.files[0].path, file_sha256: m.files[0].sha256 },
      data: { sha256: data, source: 'test.npy', n: 10 }, classes: 2, output: { name: 'logits', kind: 'logits' },
      metrics: { accuracy: 0.5 }, predictions_sha256: 'e'.repeat(64), created: '2025-01-01T00:00:00Z',
    }, null, 2) + '\n'
    const path = `models/ev/m/v1/evals/${data}.json`
    await mkdir(join(z.dir, 'models/ev/m/v1/evals'), { recursive: true })
    await writeFile(join(z.dir, path), record('bafyreigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'))
    await git(z.dir, 'add', path)
    const bad = await gitRun(z.dir, ['commit', '-q', '-m', 'eval'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /not a valid evaluation record/)
    await writeFile(join(z.dir, path), record(m.seal))
    await git(z.dir, 'add', path)
    const msg = `zoo: evaluate ev/m@v1 on test.npy\n\nZoo-Model: ev/m@v1\nZoo-Seal: ${m.seal}\nZoo-Eval-Data: ${data}\n`
    const ok = await gitRun(z.dir, ['commit', '-q', '-F', '-'], msg)
    assert.equal(ok.code, 0, ok.stderr)
    assert.deepEqual(await verifySigs(z.dir), { ok: true, problems: [] })
    const log = JSON.parse((await zoo(z.dir, ['log', '--json'])).stdout).entries
    assert.deepEqual(log.map((e: { kind: string }) => e.kind), ['evaluation', 'promotion'])
    // the same kind of record committed without trailers is reported
    const data2 = 'f'.repeat(64)
    const path2 = `models/ev/m/v1/evals/${data2}.json`
    await writeFile(join(z.dir, path2), record(m.seal).replaceAll(data, data2))
    await git(z.dir, 'add', path2)
    await git(z.dir, 'commit', '-q', '-m', 'eval quietly')
    const v = await verifySigs(z.dir)
    assert.equal(v.problems.length, 1)
    assert.match(v.problems[0]!.problem, /not a recorded evaluation/)
  } finally { await z.cleanup() }
})
