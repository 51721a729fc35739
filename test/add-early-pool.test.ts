/**
 * add starts its hashing workers (and their ring of slabs) before it opens the store and runs its
 * checks (src/promote/promote.ts, earlyPool). The ways a promotion of a large file (WORKER_THRESHOLD
 * and up) ends, through the real binary: refused before anything is stored (no pack written while
 * the workers were already up), failed after the file's chunks were stored (nothing committed; the
 * rerun stores no byte again), and a success whose bytes come back exactly.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, zoo, git, safetensorsBytes } from './helpers-git.js'

/** Over WORKER_THRESHOLD (16 MiB): the files that take the worker path. */
const FLOATS = 5 * 1024 * 1024

async function packs(dir: string): Promise<string[]> {
  const at = join(dir, '.git', 'zoo', 'packs')
  return (await readdir(at).catch(() => [] as string[])).filter((f) => f.endsWith('.pack'))
}

test('a large add whose workers start early: refused before storing, failed after storing, then resumed byte-exact', { timeout: 120_000 }, async () => {
  const r = await initRepo()
  try {
    assert.equal((await zoo(r.dir, ['init'])).code, 0)
    await git(r.dir, 'add', '-A')
    await git(r.dir, 'commit', '-q', '-m', 'zoo')
    const head = (await git(r.dir, 'rev-parse', 'HEAD')).trim()

    // refused before anything is stored: 20 MiB of random bytes named .safetensors
    const fake = join(r.dir, '..', `${r.dir.split('/').pop()}-big.safetensors`)
    await writeFile(fake, randomBytes(20 * 1024 * 1024))
    const refused = await zoo(r.dir, ['add', fake, '--name', 'bad/random', '--json'])
    assert.equal(refused.code, 1, refused.stderr)
    assert.equal(JSON.parse(refused.stdout).error.code, 'E_MALFORMED')
    assert.deepEqual(await packs(r.dir), [], 'nothing is stored before the refusal')

    // fails after the file's chunks are stored: a parent that does not exist
    const file = join(r.dir, '..', `${r.dir.split('/').pop()}-model.safetensors`)
    const bytes = safetensorsBytes(FLOATS, 3)
    assert.ok(bytes.length > 16 * 1024 * 1024)
    await writeFile(file, bytes)
    const failed = await zoo(r.dir, ['add', file, '--name', 'net/a', '--parent', 'no/such-model', '--json'])
    assert.notEqual(failed.code, 0)
    assert.equal(JSON.parse(failed.stdout).error.code, 'E_UNKNOWN_MODEL', failed.stdout)
    assert.equal((await git(r.dir, 'rev-parse', 'HEAD')).trim(), head, 'nothing is committed')
    assert.ok((await packs(r.dir)).length > 0, 'the chunks were stored before the parent was looked up')

    // succeeds, storing nothing again, and the bytes come back exactly
    const ok = await zoo(r.dir, ['add', file, '--name', 'net/a', '--json'])
    assert.equal(ok.code, 0, ok.stderr)
    const out = JSON.parse(ok.stdout)
    assert.equal(out.stored_bytes, 0)
    assert.equal(out.files[0].sha256, createHash('sha256').update(bytes).digest('hex'))
    const dest = join(r.dir, '..', `${r.dir.split('/').pop()}-out`)
    assert.equal((await zoo(r.dir, ['get', 'net/a', '--out', dest])).code, 0)
    assert.deepEqual(await readFile(join(dest, `${r.dir.split('/').pop()}-model.safetensors`)), bytes)
  } finally { await r.cleanup() }
})
