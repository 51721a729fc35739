/**
 * The audit of merge commits (`git zoo verify --signatures`, src/promote/signatures.ts): a merge
 * that only combines its parents passes; one that changes models/ or .zoo/allowed_signers itself,
 * or drops a sealed version of a parent for the other's (two branches promoting the same
 * name@vN), is reported. All merges' diffs come from one `git diff-tree --stdin`, so each report
 * must land on the right merge and parent. Real git, real ssh-keygen keys, real `git zoo add`.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { appendFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initRepo, tempDir, zoo, git, sshKey, useSigningKey, signerLine, safetensorsBytes, type SshKey } from './helpers-git.js'

let keys: { dir: string; cleanup: () => Promise<void> }
let alice: SshKey
let mallory: SshKey

before(async () => {
  keys = await tempDir('zoo-merge-keys-')
  ;[alice, mallory] = await Promise.all([sshKey(keys.dir, 'alice'), sshKey(keys.dir, 'mallory')])
})
after(async () => { await keys.cleanup() })

interface Problem { model: string; path: string | null; object: string | null; problem: string }

async function audit(dir: string): Promise<Problem[]> {
  const r = await zoo(dir, ['verify', '--signatures', '--json'])
  const v = JSON.parse(r.stdout) as { ok: boolean; problems: Problem[] }
  assert.equal(r.code, v.ok ? 0 : 1, r.stderr)
  return v.problems
}

test('merges: clean ones pass; a merge\'s own changes and a dropped sealed version are reported on the right merge and parent', async () => {
  const repo = await initRepo({ name: 'Alice', email: 'alice@example.invalid' })
  const { dir } = repo
  try {
    const anchor = join(keys.dir, 'anchor')
    await writeFile(anchor, signerLine('alice@example.invalid', alice))
    await git(dir, 'config', 'gpg.ssh.allowedSignersFile', anchor)
    await useSigningKey(dir, alice)
    assert.equal((await zoo(dir, ['init'])).code, 0)
    await writeFile(join(dir, '.zoo', 'allowed_signers'), signerLine('alice@example.invalid', alice))
    await git(dir, 'add', '.zoo', '.gitignore')
    await git(dir, 'commit', '-q', '-m', 'zoo: set up')
    const add = async (name: string, fill: number): Promise<void> => {
      const ckpt = join(keys.dir, `${name.replaceAll('/', '-')}-${fill}.safetensors`)
      await writeFile(ckpt, safetensorsBytes(32, fill))
      const r = await zoo(dir, ['add', ckpt, '--name', name, '--seed', '1'])
      assert.equal(r.code, 0, r.stderr)
    }
    const head = async (): Promise<string> => (await git(dir, 'rev-parse', 'HEAD')).trim()

    // 1. two branches promote different models; the merge only combines them
    await add('m/a', 1)
    await git(dir, 'checkout', '-q', '-b', 'side')
    await add('m/b', 2)
    await git(dir, 'checkout', '-q', 'main')
    await add('m/c', 3)
    await git(dir, 'merge', '-q', '--no-ff', '-m', 'merge side', 'side')
    assert.deepEqual(await audit(dir), [])

    // 2. two branches promote m/f@v1 with different weights; the merge keeps the other side's
    await git(dir, 'checkout', '-q', '-b', 'side3')
    await add('m/f', 6)
    const theirs = await head()
    await git(dir, 'checkout', '-q', 'main')
    await add('m/f', 7)
    const ours = await head()
    await git(dir, 'merge', '-q', '--no-ff', '-X', 'theirs', '-m', 'merge side3', 'side3')
    const replacing = await head()

    // 3. an evil merge: it adds a file to a sealed version and a signer, matching neither parent
    //    (last: commits after it would be judged by the signers list it wrote, and fail)
    await git(dir, 'checkout', '-q', '-b', 'side2')
    await add('m/d', 4)
    await git(dir, 'checkout', '-q', 'main')
    await add('m/e', 5)
    await git(dir, 'merge', '-q', '--no-ff', '--no-commit', 'side2')
    await writeFile(join(dir, 'models', 'm', 'a', 'v1', 'notes.txt'), 'slipped in by the merge\n')
    await appendFile(join(dir, '.zoo', 'allowed_signers'), signerLine('mallory@example.invalid', mallory))
    await git(dir, 'add', 'models/m/a/v1/notes.txt', '.zoo/allowed_signers')
    await git(dir, 'commit', '-q', '--no-verify', '-m', 'merge side2')
    const evil = await head()

    const problems = await audit(dir)
    const byMerge = (sha: string): Problem[] => problems.filter((p) => p.object === sha)
    assert.equal(byMerge(evil).length + byMerge(replacing).length, problems.length, JSON.stringify(problems, null, 2))
    assert.deepEqual(byMerge(evil).map((p) => [p.model, p.path, p.problem]).sort(), [
      ['.zoo/allowed_signers', '.zoo/allowed_signers', 'the merge commit changes this itself (it matches none of its parents); promote on a branch and merge, never edit models/ in a merge'],
      ['m/a@v1', 'models/m/a/v1/notes.txt', 'the merge commit changes this itself (it matches none of its parents); promote on a branch and merge, never edit models/ in a merge'],
    ])
    const replaced = byMerge(replacing)
    assert.ok(replaced.length > 0)
    for (const p of replaced) {
      assert.equal(p.model, 'm/f@v1')
      assert.match(p.problem, new RegExp(`^the merge replaces models/m/f/v1/\\S+ of the sealed version in parent ${ours.slice(0, 12)} \\(did two branches promote the same version\\?\\)$`))
    }
    assert.ok(replaced.some((p) => p.path === 'models/m/f/v1/manifest.json'))
    assert.ok(!problems.some((p) => p.problem.includes(theirs.slice(0, 12))), 'the side whose version was kept is not blamed')
  } finally {
    await repo.cleanup()
  }
})
