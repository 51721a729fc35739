/**
 * Bad input refused before it is sealed, through the real binary: random bytes named .safetensors
 * and a truncated ONNX file are refused (exit 1, nothing committed), --allow-malformed stores them
 * as opaque bytes recorded as malformed; the pre-commit hook refuses a large non-zoo file whatever
 * its bytes, naming `git zoo add`, with policy.max_blob_bytes honoured.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { initRepo, zoo, git, gitRun, safetensorsBytes } from './helpers-git.js'
import { permModel } from './eval-fixtures.js'

async function zooRepo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await initRepo()
  assert.equal((await zoo(r.dir, ['init'])).code, 0)
  await git(r.dir, 'add', '-A')
  await git(r.dir, 'commit', '-q', '-m', 'zoo')
  return r
}

test('a name its bytes contradict and a truncated ONNX are refused before sealing; --allow-malformed records them as opaque', async () => {
  const r = await zooRepo()
  try {
    const head = (await git(r.dir, 'rev-parse', 'HEAD')).trim()
    await writeFile(join(r.dir, '..', `${r.dir.split('/').pop()}-r.safetensors`), randomBytes(4096))
    const fake = join(r.dir, '..', `${r.dir.split('/').pop()}-r.safetensors`)
    const refused = await zoo(r.dir, ['add', fake, '--name', 'bad/random'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /its name says safetensors but its bytes are not in any format git-zoo knows \(as safetensors: the header length field says \d+ bytes but the file has 4088 after it\); nothing was promoted for bad\/random\. .*--allow-malformed/)
    const onnx = Buffer.from(permModel())
    const cut = join(r.dir, '..', `${r.dir.split('/').pop()}-cut.onnx`)
    await writeFile(cut, onnx.subarray(0, Math.floor(onnx.length * 0.6)))
    const truncated = await zoo(r.dir, ['add', cut, '--name', 'bad/onnx', '--json'])
    assert.equal(truncated.code, 1)
    // the ONNX reader says what is wrong with the bytes: a field runs past the end of the file
    assert.match(truncated.stderr, /cut\.onnx: its name says onnx but its bytes are not in any format git-zoo knows \(as onnx: protobuf: field 7 of \d+ bytes at \d+ runs past its message/)
    // --json failures are one JSON document naming the code
    assert.equal(JSON.parse(truncated.stdout).error.code, 'E_MALFORMED')
    // nothing was sealed or committed
    assert.equal((await git(r.dir, 'rev-parse', 'HEAD')).trim(), head)
    assert.equal((await gitRun(r.dir, ['ls-files', 'models'])).stdout, '')
    // a good file of the same names goes in
    const good = join(r.dir, '..', `${r.dir.split('/').pop()}-g.safetensors`)
    await writeFile(good, safetensorsBytes(16))
    assert.equal((await zoo(r.dir, ['add', good, '--name', 'good/st'])).code, 0)
    // --allow-malformed: stored as opaque bytes, recorded as such, byte-exact on get
    const allowed = await zoo(r.dir, ['add', fake, '--name', 'bad/random', '--allow-malformed'])
    assert.equal(allowed.code, 0, allowed.stderr)
    assert.match(allowed.stderr, /warning: .*stored as opaque bytes \(--allow-malformed\)/)
    const m = JSON.parse(await readFile(join(r.dir, 'models/bad/random/v1/manifest.json'), 'utf8'))
    assert.equal(m.files[0].format, 'unknown')
    assert.match(m.files[0].malformed, /its name says safetensors/)
    const show = await zoo(r.dir, ['show', 'bad/random'])
    assert.match(show.stdout, /\(opaque: its name says safetensors/)
    const out = join(r.dir, '..', `${r.dir.split('/').pop()}-out`)
    assert.equal((await zoo(r.dir, ['get', 'bad/random', '--out', out])).code, 0)
    assert.deepEqual(await readFile(join(out, `${r.dir.split('/').pop()}-r.safetensors`)), await readFile(fake))
  } finally { await r.cleanup() }
})

test('the pre-commit hook refuses a non-zoo file over policy.max_blob_bytes (default 10 MiB), naming git zoo add', async () => {
  const r = await zooRepo()
  try {
    // random bytes: nothing in them says weights; only the size gives them away
    await writeFile(join(r.dir, 'blob.dat'), randomBytes(10 * 1024 * 1024 + 1))
    await git(r.dir, 'add', 'blob.dat')
    const c = await gitRun(r.dir, ['commit', '-q', '-m', 'a big file'])
    assert.equal(c.code, 1)
    assert.match(c.stderr, /blob\.dat: is 10485761 bytes, over policy\.max_blob_bytes \(10485760\)/)
    assert.match(c.stderr, /fix: git rm --cached -- blob\.dat && git zoo add blob\.dat --name <model>/)
    // 10 MiB exactly passes; a lower limit in .zoo/config.json refuses a small file too
    await writeFile(join(r.dir, 'blob.dat'), randomBytes(10 * 1024 * 1024))
    await git(r.dir, 'add', 'blob.dat')
    assert.equal((await gitRun(r.dir, ['commit', '-q', '-m', 'ten MiB'])).code, 0)
    const config = JSON.parse(await readFile(join(r.dir, '.zoo/config.json'), 'utf8'))
    await writeFile(join(r.dir, '.zoo/config.json'), JSON.stringify({ ...config, policy: { ...config.policy, max_blob_bytes: 1000 } }, null, 2))
    await git(r.dir, 'add', '.zoo/config.json')
    assert.equal((await gitRun(r.dir, ['commit', '-q', '-m', 'limit'])).code, 0)
    await writeFile(join(r.dir, 'notes.txt'), 'x'.repeat(1001))
    await git(r.dir, 'add', 'notes.txt')
    const small = await zoo(r.dir, ['hook-pre-commit', '--json'])
    assert.equal(small.code, 1)
    const j = JSON.parse(small.stdout)
    assert.deepEqual(j.problems.map((p: { kind: string; path: string }) => [p.kind, p.path]), [['size', 'notes.txt']])
  } finally { await r.cleanup() }
})
