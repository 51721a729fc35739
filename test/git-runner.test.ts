/**
 * src/git/git.ts, the one git runner, against real git: the caller's environment reaches every
 * variant (buffered, sync, streaming), a missing git is reported as E_GIT_MISSING, and the
 * remote-facing variant turns git's --progress lines into events and keeps them out of the output.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { git as gitCli, initRepo, tempDir, type TestRepo } from './helpers-git.js'
import { git, runGit, runGitRemote, runGitSync, parseGitProgress, ProgressSplitter, type GitProgress } from '../src/git/git.js'
import { CatFile } from '../src/git/catfile.js'
import { ZooError } from '../src/errors.js'

let repo: TestRepo
let work: { dir: string; cleanup: () => Promise<void> }
const env = { ...process.env }
/** Configuration that exists only in the environment (git reads GIT_CONFIG_COUNT/KEY/VALUE). */
const withConfig = { ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'zoo.probe', GIT_CONFIG_VALUE_0: 'from-env' }

before(async () => {
  repo = await initRepo()
  work = await tempDir('zoo-runner-')
  for (let i = 0; i < 20; i++) {
    await writeFile(join(repo.dir, `f${i}.txt`), `file ${i}\n`.repeat(50 + i))
    await gitCli(repo.dir, 'add', `f${i}.txt`)
    await gitCli(repo.dir, 'commit', '-q', '-m', `file ${i}`)
  }
})
after(async () => { await repo.cleanup(); await work.cleanup() })

describe('the caller\'s environment reaches git', () => {
  it('runGit, git and runGitSync pass env and nothing else', async () => {
    assert.equal((await git(repo.dir, ['config', '--get', 'zoo.probe'], { env: withConfig })).trim(), 'from-env')
    assert.equal(runGitSync(repo.dir, ['config', '--get', 'zoo.probe'], { env: withConfig }).stdout.trim(), 'from-env')
    // without it in env, git does not see it (no ambient defaults inside the runner)
    const r = await runGit(repo.dir, ['config', '--get', 'zoo.probe'], { env })
    assert.equal(r.code, 1)
    assert.equal(runGitSync(repo.dir, ['config', '--get', 'zoo.probe'], { env }).code, 1)
  })

  it('the streaming cat-file reads the repository env names (GIT_DIR)', async () => {
    const head = (await gitCli(repo.dir, 'rev-parse', 'HEAD:f3.txt')).trim()
    // started in an unrelated folder: only GIT_DIR in env can lead it to the object
    const cat = new CatFile(work.dir, { ...env, GIT_DIR: join(repo.dir, '.git') })
    try {
      const o = await cat.read(head)
      assert.equal(o?.type, 'blob')
      assert.equal(o?.bytes.toString(), 'file 3\n'.repeat(53))
      const h = await cat.head(head, 6)
      assert.equal(h?.bytes.toString(), 'file 3')
    } finally { await cat.close() }
  })

  it('a git that cannot be started is E_GIT_MISSING from every variant', async () => {
    const noGit = { ...env, PATH: work.dir }
    await assert.rejects(runGit(repo.dir, ['status'], { env: noGit }), (e: unknown) => e instanceof ZooError && e.code === 'E_GIT_MISSING' && /is git installed/.test(e.message))
    assert.throws(() => runGitSync(repo.dir, ['status'], { env: noGit }), (e: unknown) => e instanceof ZooError && e.code === 'E_GIT_MISSING')
    await assert.rejects(runGitRemote(repo.dir, ['fetch', 'origin'], { env: noGit }), (e: unknown) => e instanceof ZooError && e.code === 'E_GIT_MISSING')
    const cat = new CatFile(repo.dir, noGit)
    await assert.rejects(cat.read('HEAD'), (e: unknown) => e instanceof ZooError && e.code === 'E_GIT_MISSING')
    await cat.close()
  })

  it('a failing git names the command and git\'s message (E_GIT)', async () => {
    await assert.rejects(git(repo.dir, ['rev-parse', '--verify', 'no-such-ref'], { env }),
      (e: unknown) => e instanceof ZooError && e.code === 'E_GIT' && e.message.includes('`git rev-parse --verify no-such-ref` failed: fatal: Needed a single revision'))
  })
})

describe('remote-facing git: progress events, output kept clean', () => {
  it('a push reports "Writing objects" up to its total; the output keeps git\'s messages without progress lines', async () => {
    const bare = join(work.dir, 'push.git')
    await gitCli(work.dir, 'init', '-q', '--bare', bare)
    const seen: GitProgress[] = []
    const r = await runGitRemote(repo.dir, ['push', bare, 'main'], { env, onProgress: (p) => seen.push(p) })
    assert.equal(r.code, 0, r.stderr)
    const writing = seen.filter((p) => p.stage === 'Writing objects')
    assert.ok(writing.length > 0, `stages seen: ${[...new Set(seen.map((p) => p.stage))].join(', ')}`)
    const last = writing[writing.length - 1]!
    assert.equal(last.done, last.total)
    assert.equal(last.total, 62, 'the first commit and twenty more: 21 commits, 21 trees, 20 blobs')
    assert.match(r.stderr, new RegExp(`To ${bare.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`))
    assert.match(r.stderr, /\* \[new branch\] {6}main -> main/)
    assert.doesNotMatch(r.stderr, /% \(|\r/)
    assert.equal(await gitCli(bare, 'rev-parse', 'main'), await gitCli(repo.dir, 'rev-parse', 'HEAD'))
  })

  it('a clone over file:// reports "Receiving objects"; without onProgress git is not asked for progress', async () => {
    const seen: GitProgress[] = []
    const a = await runGitRemote(work.dir, ['clone', '--', `file://${repo.dir}`, join(work.dir, 'a')], { env, onProgress: (p) => seen.push(p) })
    assert.equal(a.code, 0, a.stderr)
    const receiving = seen.filter((p) => p.stage === 'Receiving objects')
    assert.equal(receiving[receiving.length - 1]?.done, 62)
    assert.match(a.stderr, /^Cloning into '.*a'\.\.\.\n/)
    assert.doesNotMatch(a.stderr, /% \(/)
    const b = await runGitRemote(work.dir, ['clone', '--', `file://${repo.dir}`, join(work.dir, 'b')], { env })
    assert.equal(b.code, 0, b.stderr)
    assert.equal(b.stderr, `Cloning into '${join(work.dir, 'b')}'...\n`)
  })

  it('progress lines split anywhere across chunks parse the same (git\'s real stderr, fed a byte at a time)', async () => {
    const raw = await new Promise<string>((resolve) => {
      const child = spawn('git', ['clone', '--progress', '--', `file://${repo.dir}`, join(work.dir, 'c')], { cwd: work.dir, env, stdio: ['ignore', 'ignore', 'pipe'] })
      let s = ''
      child.stderr.on('data', (d: Buffer) => { s += d.toString() })
      child.on('close', () => resolve(s))
    })
    assert.ok(raw.includes('\r'), 'git rewrote its progress lines in place')
    const whole: GitProgress[] = []
    const wholeSplit = new ProgressSplitter((p) => whole.push(p))
    wholeSplit.push(raw)
    const kept = wholeSplit.end()
    const bytes: GitProgress[] = []
    const byteSplit = new ProgressSplitter((p) => bytes.push(p))
    for (const ch of raw) byteSplit.push(ch)
    assert.equal(byteSplit.end(), kept)
    assert.deepEqual(bytes, whole)
    assert.ok(whole.some((p) => p.stage === 'Receiving objects' && p.done === p.total && p.total === 62))
    assert.doesNotMatch(kept, /% \(/)
  })

  it('parseGitProgress reads git\'s and the remote\'s lines, nothing else', () => {
    assert.deepEqual(parseGitProgress('Receiving objects:  45% (450/1000), 1.20 MiB | 3.00 MiB/s'), { stage: 'Receiving objects', percent: 45, done: 450, total: 1000 })
    assert.deepEqual(parseGitProgress('remote: Compressing objects: 100% (7/7), done.'), { stage: 'Compressing objects', percent: 100, done: 7, total: 7 })
    assert.equal(parseGitProgress('To /srv/zoo.git'), null)
    assert.equal(parseGitProgress('error: failed to push some refs to 50% (1/2)'), null)
  })
})
