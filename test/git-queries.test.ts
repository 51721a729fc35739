/**
 * The git questions a command asks before its commit, answered with fewer git processes:
 * settings from one `git config -l -z` per command (Repo.configValues), HEAD and the tree's
 * dirtiness from one `git status --porcelain=v2 --branch`. Every answer must be the one git gives:
 * checked here against git itself, and through `git zoo add` with a logging git on PATH.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { git, tempRepo, zoo } from './cli.js'
import { Repo } from '../src/repo.js'
import { runGit } from '../src/git/git.js'
import { processHost } from '../src/host.js'

const realGit = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim()

test('settings read from one `git config -l` answer as git does (last value, booleans, subsections, unset), and a change is seen at once', async () => {
  const r = await tempRepo('zoo-gitq-')
  try {
    const cfg = (...a: string[]): Promise<string> => git(r.dir, 'config', ...a)
    await cfg('zoo.flagYes', 'yes'); await cfg('zoo.flagOff', 'off'); await cfg('zoo.flagNum', '2'); await cfg('zoo.flagBad', 'maybe')
    await cfg('--add', 'zoo.multi', 'first'); await cfg('--add', 'zoo.multi', 'second')
    await cfg('remote.MixedCase.url', 'https://example.invalid/x.git')
    await writeFile(join(r.dir, '.git', 'config'), (await readFile(join(r.dir, '.git', 'config'), 'utf8')) + '[zoo]\n\tbare\n')
    const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' }
    const repo = await Repo.open(r.dir, { env, host: processHost() })
    const asks: string[][] = [
      ['config', 'user.name'], ['config', '--get', 'user.email'], ['config', '--get', 'zoo.multi'], ['config', '--get', 'zoo.none'],
      ['config', '--type=bool', '--get', 'zoo.flagyes'], ['config', '--bool', '--get', 'zoo.FLAGOFF'], ['config', '--type=bool', '--get', 'zoo.flagNum'],
      ['config', '--type=bool', '--get', 'zoo.flagBad'], ['config', '--type=bool', '--get', 'zoo.bare'], ['config', '--get', 'zoo.bare'],
      ['config', '--get', 'remote.MixedCase.url'], ['config', '--get', 'remote.mixedcase.url'], ['config', '--get', 'REMOTE.MixedCase.URL'],
    ]
    for (const a of asks) {
      const mine = await repo.runGit(a)
      const theirs = await runGit(r.dir, a, { env })
      assert.equal(mine.code, theirs.code, `git ${a.join(' ')}: exit ${mine.code}, git says ${theirs.code}`)
      if (theirs.code === 0) assert.equal(mine.stdout, theirs.stdout, `git ${a.join(' ')}`)
    }
    // a setting written by another process is seen by the next read of the same Repo
    await cfg('user.name', 'Someone Else')
    assert.equal((await repo.runGit(['config', 'user.name'])).stdout, 'Someone Else\n')
    // ... and one written through the Repo too
    await repo.git(['config', '--local', 'zoo.store', '/elsewhere'])
    assert.equal(await repo.storeRoot(), '/elsewhere')
  } finally { await r.cleanup() }
})

test('git zoo add asks git for its settings once and records origin (insteadOf applied, credentials removed), HEAD and dirtiness as git sees them', async () => {
  const r = await tempRepo('zoo-gitq-add-')
  const bin = await mkdtemp(join(tmpdir(), 'zoo-gitq-bin-'))
  try {
    const log = join(bin, 'calls.log')
    // a git on PATH that logs each call, then runs the real one
    await writeFile(join(bin, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(log)}\nexec ${JSON.stringify(realGit)} "$@"\n`)
    await chmod(join(bin, 'git'), 0o755)
    // only this repository's settings: an insteadOf rule in the machine's own config would rightly
    // send the origin URL to `git remote get-url`
    const env = { PATH: `${bin}:${process.env.PATH}`, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' }
    assert.equal((await zoo(r.dir, ['init', '-q'])).code, 0)
    await git(r.dir, 'commit', '-q', '-m', 'zoo')
    await git(r.dir, 'remote', 'add', 'origin', 'lab:models.git')
    await git(r.dir, 'config', 'url.https://tok:en@git.example.invalid/.insteadOf', 'lab:')
    await writeFile(join(r.dir, 'tracked.txt'), 'one\n')
    await git(r.dir, 'add', 'tracked.txt')
    await git(r.dir, 'commit', '-q', '-m', 'code')
    const head = (await git(r.dir, 'rev-parse', 'HEAD')).trim()
    await writeFile(join(r.dir, 'w.bin'), Buffer.alloc(1024, 3))

    const a = await zoo(r.dir, ['add', 'w.bin', '--name', 'q/a'], env)
    assert.equal(a.code, 0, a.stderr)
    const m = JSON.parse(await readFile(join(r.dir, 'models', 'q', 'a', 'v1', 'manifest.json'), 'utf8'))
    assert.deepEqual(m.code, { repo: 'https://git.example.invalid/models.git', commit: head, dirty: false })
    assert.match(m.promoter, /^Test Researcher <researcher@example.invalid>$/)
    const calls = (await readFile(log, 'utf8')).trim().split('\n')
    const before = calls.slice(0, calls.findIndex((c) => c.startsWith('update-index') || c.startsWith('commit')))
    assert.deepEqual(before.filter((c) => c.startsWith('config')), ['config -l -z'], `settings asked one by one:\n${before.join('\n')}`)
    assert.equal(before.filter((c) => c.startsWith('--no-optional-locks status')).length, 1)
    assert.ok(!before.some((c) => c.startsWith('rev-parse --verify')), 'HEAD comes from the status')

    // without an insteadOf rule the URL is read from the settings, credentials removed
    await git(r.dir, 'config', '--remove-section', 'url.https://tok:en@git.example.invalid/')
    await git(r.dir, 'remote', 'set-url', 'origin', 'https://user:pw@git.example.invalid/lab/models.git')
    await writeFile(log, '')
    const b = await zoo(r.dir, ['add', 'w.bin', '--name', 'q/b'], env)
    assert.equal(b.code, 0, b.stderr)
    const mb = JSON.parse(await readFile(join(r.dir, 'models', 'q', 'b', 'v1', 'manifest.json'), 'utf8'))
    assert.equal(mb.code.repo, 'https://git.example.invalid/lab/models.git')
    assert.ok(!(await readFile(log, 'utf8')).includes('remote get-url'))

    // a tracked change outside the zoo's folders: refused naming the file; --allow-dirty records it
    await writeFile(join(r.dir, 'tracked.txt'), 'two\n')
    const headNow = (await git(r.dir, 'rev-parse', 'HEAD')).trim()
    const d = await zoo(r.dir, ['add', 'w.bin', '--name', 'q/c'], env)
    assert.equal(d.code, 1, d.stderr)
    assert.match(d.stderr, /uncommitted changes[^]* M tracked\.txt/)
    const e = await zoo(r.dir, ['add', 'w.bin', '--name', 'q/c', '--allow-dirty'], env)
    assert.equal(e.code, 0, e.stderr)
    const mc = JSON.parse(await readFile(join(r.dir, 'models', 'q', 'c', 'v1', 'manifest.json'), 'utf8'))
    assert.equal(mc.code.dirty, true)
    assert.equal(mc.code.commit, headNow)
  } finally { await r.cleanup(); await rm(bin, { recursive: true, force: true }) }
})
