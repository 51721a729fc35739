/**
 * The fixed cost of `git zoo add` (issue 11): the git processes a promotion of one small file
 * starts, and that its commit hands the pre-commit hook the diff it checked, so git starts no second
 * node, in a sha1 and in a sha256 repository (the object format, learned when the repository is
 * opened, makes the blob ids the hook compares). Counted with a logging git and a logging node on
 * PATH; no timing involved.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git, run, zoo, BIN } from './cli.js'

const realGit = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim()

/**
 * A folder on PATH whose git logs each call to git.log and runs the real one, and a git-zoo that
 * logs to node.log, which the zoo's pre-commit hook runs; a zoo in `format`, its set-up committed
 * (as `git zoo init --sign` leaves it).
 */
async function loggedZoo(format: 'sha1' | 'sha256'): Promise<{ dir: string; env: NodeJS.ProcessEnv; calls: (name: string) => Promise<string[]>; cleanup: () => Promise<void> }> {
  const work = await mkdtemp(join(tmpdir(), 'zoo-startup-'))
  const bin = join(work, 'bin')
  const dir = join(work, 'zoo')
  await git(work, 'init', '-q', '-b', 'main', `--object-format=${format}`, dir)
  for (const [k, v] of [['user.name', 'Test Researcher'], ['user.email', 'researcher@example.invalid'], ['commit.gpgsign', 'false']]) await git(dir, 'config', k!, v!)
  await run('mkdir', [bin], { cwd: work })
  await writeFile(join(bin, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(join(work, 'git.log'))}\nexec ${JSON.stringify(realGit)} "$@"\n`)
  await writeFile(join(bin, 'git-zoo'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(join(work, 'node.log'))}\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`)
  await chmod(join(bin, 'git'), 0o755)
  await chmod(join(bin, 'git-zoo'), 0o755)
  const env = { PATH: `${bin}:${process.env.PATH}` }
  const init = await zoo(dir, ['init', '-q'], env)
  assert.equal(init.code, 0, init.stderr)
  await git(dir, 'commit', '-q', '-m', 'zoo set-up')
  // the hook runs the package's bin/git-zoo: here, the logging one
  const hook = join(dir, '.git', 'hooks', 'pre-commit')
  const text = await readFile(hook, 'utf8')
  const zooLine = /^zoo=.*$/m.exec(text)
  assert.ok(zooLine, 'the pre-commit hook names the git-zoo it runs')
  await writeFile(hook, text.replace(zooLine[0], `zoo=${JSON.stringify(join(bin, 'git-zoo'))}`))
  return {
    dir, env,
    calls: async (name) => (await readFile(join(work, name), 'utf8').catch(() => '')).split('\n').filter(Boolean),
    cleanup: async () => { await rm(work, { recursive: true, force: true }) },
  }
}

describe('git zoo add of one small file', () => {
  it('starts 7 gits of its own (none asks twice; one cat-file looks HEAD and the paths up and reads the commit back), and says whether its commit is signed from the commit it read back', async () => {
    const z = await loggedZoo('sha1')
    try {
      await writeFile(join(z.dir, 'w.bin'), Buffer.alloc(1024, 3))
      await writeFile(join(z.dir, '..', 'git.log'), '')
      const a = await zoo(z.dir, ['add', 'w.bin', '--name', 'q/a'], z.env)
      assert.equal(a.code, 0, a.stderr)
      const head = (await git(z.dir, 'rev-parse', 'HEAD')).trim()
      assert.match(a.stderr, new RegExp(`^git zoo: warning: promotion ${head.slice(0, 12)} is not signed`, 'm'))
      assert.match(a.stderr, new RegExp(`^git zoo: promoted q/a@v1 \\(1 file, 1\\.0 KiB new\\) in ${head.slice(0, 12)}$`, 'm'))
      const calls = await z.calls('git.log')
      const words = calls.map((c) => c.split(' ').slice(0, 2).join(' '))
      // the order of the gits the code starts one after another is fixed; the three it starts
      // together (the code revision's status and the settings, and the versions' ls-tree) log in
      // whatever order the scheduler gives them, so that group is compared as a set of calls
      const inOrder = (a: string[]): string[] => a
      const together = (a: string[]): string[] => [...a].sort()
      const shape = (w: string[]): string[][] => [inOrder(w.slice(0, 1)), together(w.slice(1, 4)), inOrder(w.slice(4))]
      assert.deepEqual(shape(words), shape(['rev-parse --show-object-format',
        'config -l', '--no-optional-locks status', 'ls-tree -d',
        'cat-file --batch', 'update-index --add', 'commit -q']), calls.join('\n'))
      // --json reads the same recorded state
      await writeFile(join(z.dir, 'w.bin'), Buffer.alloc(1024, 4))
      const j = await zoo(z.dir, ['add', 'w.bin', '--name', 'q/a', '--json'], z.env)
      assert.equal(j.code, 0, j.stderr)
      const out = JSON.parse(j.stdout) as { version: number; commit: string; signed: boolean }
      assert.deepEqual([out.version, out.commit, out.signed], [2, (await git(z.dir, 'rev-parse', 'HEAD')).trim(), false])
    } finally { await z.cleanup() }
  })

  for (const format of ['sha1', 'sha256'] as const) {
    it(`in a ${format} repository, its commit starts no node for the pre-commit hook; a plain git commit of a model still does, and is refused`, async () => {
      const z = await loggedZoo(format)
      try {
        await writeFile(join(z.dir, 'w.bin'), Buffer.alloc(1024, 5))
        const a = await zoo(z.dir, ['add', 'w.bin', '--name', 'q/b'], z.env)
        assert.equal(a.code, 0, a.stderr)
        assert.equal((await git(z.dir, 'cat-file', '-t', 'HEAD:models/q/b/v1/manifest.json')).trim(), 'blob')
        assert.deepEqual(await z.calls('node.log'), [], 'the hook ran git zoo')
        // a manifest edited by hand: the hook (through node) refuses it
        const path = join(z.dir, 'models', 'q', 'b', 'v1', 'manifest.json')
        await writeFile(path, (await readFile(path, 'utf8')).replace('"q/b"', '"q/c"'))
        await git(z.dir, 'add', path)
        const c = await run('git', ['commit', '-q', '-m', 'edit'], { cwd: z.dir, env: z.env })
        assert.notEqual(c.code, 0, 'a tampered manifest was committed')
        assert.deepEqual(await z.calls('node.log'), ['hook-pre-commit'])
      } finally { await z.cleanup() }
    })
  }
})
