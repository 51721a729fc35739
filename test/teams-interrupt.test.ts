/**
 * Interruptions through the real CLI: SIGINT (Ctrl-C) and SIGTERM sent to `git zoo` processes at
 * named points (GIT_ZOO_PAUSE_AT makes the command write a marker file and wait there, so each
 * signal lands exactly where it is meant to, with no sleeps), and `kill -9` (GIT_ZOO_CRASH_AT).
 * Each case checks what a user sees: the exit code, the one-line message, the time to stop, no
 * temporary files, a store that verifies, and that the same command then succeeds and resumes.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { BIN, git, run, tempRepo, zoo, type Run } from './cli.js'
import { dataset, permModel } from './eval-fixtures.js'
import { encodeNpy } from '../src/demo/data.js'

/** Seconds from each signal to the process's exit, reported at the end. */
const stops: Array<[string, number]> = []
after(() => {
  const worst = Math.max(...stops.map(([, s]) => s))
  console.log(`# seconds from signal to exit: ${stops.map(([w, s]) => `${w} ${s.toFixed(2)}`).join(', ')}; worst ${worst.toFixed(2)}`)
})

let work: string
before(async () => { work = await mkdtemp(join(tmpdir(), 'zoo-interrupt-')) })
after(async () => { await rm(work, { recursive: true, force: true }) })

interface Paused { child: ChildProcess; done: Promise<Run & { signal: NodeJS.Signals | null }>; marker: string }

/**
 * Start `git zoo <args>` (through `git` itself with `viaGit`, in its own process group as a shell
 * would start it) paused at `point`; resolves once the command has written its marker file.
 */
async function startPaused(cwd: string, args: string[], point: string, opts: { env?: NodeJS.ProcessEnv; viaGit?: boolean } = {}): Promise<Paused> {
  const marker = join(await mkdtemp(join(work, 'pause-')), 'paused')
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_ZOO_DEBUG: '', ...opts.env, GIT_ZOO_PAUSE_AT: point, GIT_ZOO_PAUSE_FILE: marker }
  const child = opts.viaGit
    ? spawn('git', ['zoo', ...args], { cwd, env: { ...env, PATH: `${await binDir()}:${env.PATH}` }, detached: true })
    : spawn(process.execPath, [BIN, ...args], { cwd, env, detached: true })
  let stdout = '', stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (t: string) => { stdout += t })
  child.stderr!.setEncoding('utf8').on('data', (t: string) => { stderr += t })
  const done = new Promise<Run & { signal: NodeJS.Signals | null }>((res) => {
    child.on('close', (code, signal) => res({ code: code ?? -1, signal, stdout, stderr }))
  })
  // wait for the marker (or for the command to end without reaching the point: a test failure)
  let ended = false
  void done.then(() => { ended = true })
  while (!existsSync(marker)) {
    if (ended) { const r = await done; assert.fail(`the command ended before reaching ${point} (exit ${r.code}):\n${r.stderr}`) }
    await new Promise((r) => setTimeout(r, 10))
  }
  return { child, done, marker }
}

/** Send `sig` (to the whole process group with `group`, as a terminal's Ctrl-C does) and wait for the exit. */
async function interrupt(p: Paused, sig: NodeJS.Signals, what: string, group = false): Promise<Run & { signal: NodeJS.Signals | null }> {
  const t0 = performance.now()
  if (group) process.kill(-p.child.pid!, sig)
  else p.child.kill(sig)
  const r = await p.done
  const secs = (performance.now() - t0) / 1000
  stops.push([what, secs])
  assert.ok(secs < 10, `${what}: stopping took ${secs.toFixed(2)} s`)
  return r
}

/** A folder holding `git-zoo` (a link to bin/git-zoo.js) and node, for `git zoo` through git. */
let bin: Promise<string> | undefined
/** A folder with `git-zoo` and `node` in it, made once; concurrent tests wait for the same making. */
function binDir(): Promise<string> {
  bin ??= (async () => {
    const dir = join(work, 'bin')
    await mkdir(dir, { recursive: true })
    await symlink(BIN, join(dir, 'git-zoo'))
    await symlink(process.execPath, join(dir, 'node'))
    return dir
  })()
  return bin
}

/** Every file under `dir` (recursive), relative to it. */
async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name), rel ? `${rel}/${e.name}` : e.name)
      else out.push(rel ? `${rel}/${e.name}` : e.name)
    }
  }
  await walk(dir, '')
  return out
}

/** What an interrupted command must not leave: temp files, unindexed packs, promotion message files. */
async function leftovers(repoDir: string): Promise<string[]> {
  const files = await allFiles(repoDir)
  const set = new Set(files)
  return files.filter((f) => /\.tmp$/.test(f) || /ZOO_PROMOTE_MSG/.test(f) || /\.lock$/.test(f) || f.includes('zoo/locks/') ||
    (f.endsWith('.pack') && f.includes('/zoo/packs/') && !set.has(f.slice(0, -5) + '.idx')))
}

async function ok(p: Promise<Run>, what: string): Promise<Run> {
  const r = await p
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}${r.stdout}`)
  return r
}

async function newZoo(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const r = await tempRepo('zoo-int-')
  await ok(zoo(r.dir, ['init']), 'init')
  await git(r.dir, 'add', '-A')
  await git(r.dir, 'commit', '-q', '-m', 'zoo')
  return r
}

/** Random bytes into a file outside the repository (so the work tree stays clean). */
async function weights(name: string, size: number): Promise<string> {
  const path = join(await mkdtemp(join(work, 'w-')), name)
  await writeFile(path, randomBytes(size))
  return path
}

async function assertClean(dir: string, what: string): Promise<void> {
  assert.deepEqual(await leftovers(dir), [], `${what}: leftovers`)
  const status = await git(dir, 'status', '--porcelain', '--untracked-files=all')
  assert.equal(status, '', `${what}: the work tree or index changed`)
  await ok(zoo(dir, ['verify']), `${what}: verify`)
}

const MiB = 1024 * 1024

describe('Ctrl-C and SIGTERM stop commands cleanly; the same command resumes', { concurrency: 4 }, () => {
  for (const point of ['after-chunk', 'after-file', 'after-flush', 'before-commit']) {
    it(`add, SIGINT at ${point}: exit 130, nothing committed, no leftovers; the rerun stores only what is missing`, async () => {
      const r = await newZoo()
      try {
        // at after-chunk the first file is big enough for the worker-thread hashing pool (its workers
        // must end too); the other points use smaller files, to keep the test fast
        const aSize = point === 'after-chunk' ? 17 * MiB : 4 * MiB, bSize = 3 * MiB
        const a = await weights('a.bin', aSize), b = await weights('b.bin', bSize)
        const head = await git(r.dir, 'rev-parse', 'HEAD')
        const p = await startPaused(r.dir, ['add', a, b, '--name', 'm', '--json'], point)
        const res = await interrupt(p, 'SIGINT', `add@${point}`)
        assert.equal(res.code, 130, res.stderr)
        assert.match(res.stderr, /git zoo: interrupted; nothing was committed, run the same command again to resume\n$/)
        // --json: the failure's document, nothing else (spec/cli.md)
        assert.deepEqual(JSON.parse(res.stdout), { error: { code: 'E_INTERRUPTED', message: 'interrupted; nothing was committed, run the same command again to resume' } })
        assert.equal(await git(r.dir, 'rev-parse', 'HEAD'), head, 'nothing committed')
        await assertClean(r.dir, `add@${point}`)
        const packs = await readdir(join(r.dir, '.git', 'zoo', 'packs'))
        const before = new Map(await Promise.all(packs.map(async (n) => [n, (await stat(join(r.dir, '.git', 'zoo', 'packs', n))).size] as const)))
        const again = JSON.parse((await ok(zoo(r.dir, ['add', a, b, '--name', 'm', '--json']), 'add again')).stdout)
        assert.equal(again.version, 1)
        // what the interrupted run stored is indexed and not written again
        const total = aSize + bSize
        if (point === 'after-chunk') assert.ok(again.stored_bytes < total, `stored ${again.stored_bytes}`)
        else if (point === 'after-file') assert.ok(again.stored_bytes >= bSize && again.stored_bytes < bSize + MiB, `stored ${again.stored_bytes}`)
        else assert.ok(again.stored_bytes < 64 * 1024, `stored ${again.stored_bytes}`)
        for (const [n, size] of before) assert.equal((await stat(join(r.dir, '.git', 'zoo', 'packs', n))).size, size, `pack ${n} unchanged`)
        assert.deepEqual(await leftovers(r.dir), [], 'leftovers after the rerun')
        if (point === 'after-chunk') {
          const out = join(work, `out-${point}`)
          await ok(zoo(r.dir, ['get', 'm', '--out', out]), 'get')
          assert.deepEqual(await readFile(join(out, 'a.bin')), await readFile(a))
        }
      } finally { await r.cleanup() }
    })
  }

  for (const point of ['after-chunk', 'hook-pre-commit']) {
    it(`\`git zoo add\` run through git, Ctrl-C to the process group at ${point}: no "waitpid" from git, exit as by SIGINT`, async () => {
      const r = await newZoo()
      try {
        const a = await weights('a.bin', 4 * MiB)
        const head = await git(r.dir, 'rev-parse', 'HEAD')
        const p = await startPaused(r.dir, ['add', a, '--name', 'm'], point, { viaGit: true })
        const res = await interrupt(p, 'SIGINT', `git zoo add (process group) at ${point}`, true)
        assert.equal(await git(r.dir, 'rev-parse', 'HEAD'), head, 'nothing committed')
        assert.doesNotMatch(res.stderr, /waitpid|died of signal/)
        assert.match(res.stderr, /git zoo: interrupted; nothing was committed/)
        // git re-raises the signal on itself once git-zoo has exited: the shell sees 130
        assert.ok(res.signal === 'SIGINT' || res.code === 130, `exit ${res.code} ${res.signal}`)
        await assertClean(r.dir, 'git zoo add')
        await ok(run('git', ['zoo', 'add', a, '--name', 'm'], { cwd: r.dir, env: { PATH: `${await binDir()}:${process.env.PATH}` } }), 'git zoo add again')
      } finally { await r.cleanup() }
    })
  }

  it('SIGTERM once git commit has made the promotion commit: the promotion stands (exit 0, files kept)', async () => {
    const r = await newZoo()
    try {
      // a post-commit hook marks the moment the commit exists and holds git there until released
      await writeFile(join(r.dir, '.git', 'hooks', 'post-commit'),
        '#!/bin/sh\necho landed > "$GIT_ZOO_PAUSE_FILE"\nwhile [ -f "$GIT_ZOO_PAUSE_FILE" ]; do sleep 0.02; done\n', { mode: 0o755 })
      const a = await weights('a.bin', 1 * MiB)
      const p = await startPaused(r.dir, ['add', a, '--name', 'm', '--json'], 'no-such-point')
      p.child.kill('SIGTERM')
      await rm(p.marker)
      const res = await p.done
      assert.equal(res.code, 0, res.stderr)
      assert.equal(JSON.parse(res.stdout).version, 1)
      assert.match(await git(r.dir, 'log', '-1', '--format=%s'), /^zoo: promote m@v1\n$/)
      assert.ok(existsSync(join(r.dir, 'models', 'm', 'v1', 'manifest.json')), 'the committed manifest stays in the work tree')
      await assertClean(r.dir, 'add with SIGTERM after the commit')
    } finally { await r.cleanup() }
  })

  it('retire, Ctrl-C while its commit runs the pre-commit hook: exit 130, not retired, nothing left', async () => {
    const r = await newZoo()
    try {
      await ok(zoo(r.dir, ['add', await weights('a.bin', 1000), '--name', 'm']), 'add')
      const p = await startPaused(r.dir, ['retire', 'm@v1', '--reason', 'superseded'], 'hook-pre-commit')
      const res = await interrupt(p, 'SIGINT', 'retire (process group)', true)
      assert.equal(res.code, 130, res.stderr)
      assert.match(res.stderr, /git zoo: interrupted; the version was not retired \(nothing was committed\)/)
      assert.ok(!existsSync(join(r.dir, 'models', 'm', 'v1', 'RETIRED.json')))
      await assertClean(r.dir, 'retire')
      await ok(zoo(r.dir, ['retire', 'm@v1', '--reason', 'superseded']), 'retire again')
    } finally { await r.cleanup() }
  })

  it('get, SIGINT and SIGTERM with the files written but not renamed: exit 130 / 143, no file, no temp file', async () => {
    const r = await newZoo()
    try {
      const a = await weights('a.bin', 2 * MiB)
      await ok(zoo(r.dir, ['add', a, '--name', 'm']), 'add')
      for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
        const out = join(work, `get-${sig}`)
        const p = await startPaused(r.dir, ['get', 'm', '--out', out], 'get-file-written')
        assert.ok((await readdir(out)).some((n) => n.endsWith('.tmp')), 'the temp file exists while paused')
        const res = await interrupt(p, sig, `get ${sig}`)
        assert.equal(res.code, code, res.stderr)
        assert.match(res.stderr, /git zoo: interrupted; no file was written, run the same command again\n$/)
        assert.ok(!existsSync(out), 'the folder get created is gone')
        await ok(zoo(r.dir, ['get', 'm', '--out', out]), 'get again')
        assert.deepEqual(await readdir(out), ['a.bin'])
        assert.deepEqual(await readFile(join(out, 'a.bin')), await readFile(a))
      }
    } finally { await r.cleanup() }
  })

  it('kill -9 in the middle of get: the next get removes the hidden temp file', async () => {
    const r = await newZoo()
    try {
      const a = await weights('a.bin', 2 * MiB)
      await ok(zoo(r.dir, ['add', a, '--name', 'm']), 'add')
      const out = join(work, 'get-kill')
      const killed = await zoo(r.dir, ['get', 'm', '--out', out], { GIT_ZOO_CRASH_AT: 'get-file-written' })
      assert.notEqual(killed.code, 0)
      const temps = (await readdir(out, { withFileTypes: true })).filter((e) => e.name.endsWith('.tmp'))
      assert.equal(temps.length, 1, 'kill -9 leaves the temp file behind')
      assert.equal(temps[0]!.name.startsWith('.a.bin.'), true)
      await ok(zoo(r.dir, ['get', 'm', '--out', out]), 'get again')
      assert.deepEqual(await readdir(out), ['a.bin'])
    } finally { await r.cleanup() }
  })

  it('kill -9 in the middle of add: the next add indexes the dead writer\'s pack and stores only the rest', async () => {
    const r = await newZoo()
    try {
      // a.bin is over the store's 4 MiB write buffer, so most of it reached the pack file
      const a = await weights('a.bin', 10 * MiB), b = await weights('b.bin', 2 * MiB)
      const killed = await zoo(r.dir, ['add', a, b, '--name', 'm'], { GIT_ZOO_CRASH_AT: 'after-file' })
      assert.notEqual(killed.code, 0)
      const packs = join(r.dir, '.git', 'zoo', 'packs')
      assert.deepEqual((await readdir(packs)).filter((n) => n.endsWith('.idx')), [], 'kill -9 leaves the pack without its index')
      assert.equal((await readdir(packs)).filter((n) => n.endsWith('.pack')).length, 1)
      const again = JSON.parse((await ok(zoo(r.dir, ['add', a, b, '--name', 'm', '--json']), 'add again')).stdout)
      assert.ok(again.stored_bytes >= 2 * MiB && again.stored_bytes <= 4.5 * MiB, `stored ${again.stored_bytes}: b.bin and the tail of a.bin`)
      await assertClean(r.dir, 'add after kill -9')
    } finally { await r.cleanup() }
  })

  it('eval, SIGINT while the model is copied out: exit 130, its temp folder removed, nothing recorded', async () => {
    const r = await newZoo()
    try {
      const { x, y, n } = dataset()
      const data = await mkdtemp(join(work, 'data-'))
      await writeFile(join(data, 'd.x.npy'), encodeNpy(x, [n, 8]))
      await writeFile(join(data, 'd.y.npy'), encodeNpy(y, [n]))
      const model = await mkdtemp(join(work, 'onnx-'))
      await writeFile(join(model, 'model.onnx'), permModel())
      await ok(zoo(r.dir, ['add', join(model, 'model.onnx'), '--name', 'e']), 'add')
      const tmp = await mkdtemp(join(work, 'tmpdir-'))
      const head = await git(r.dir, 'rev-parse', 'HEAD')
      const p = await startPaused(r.dir, ['eval', 'e', '--data', join(data, 'd.x.npy')], 'get-file-written', { env: { TMPDIR: tmp } })
      assert.equal((await readdir(tmp)).filter((d) => d.startsWith('git-zoo-eval-')).length, 1, 'the model is copied to a temp folder')
      const res = await interrupt(p, 'SIGINT', 'eval')
      assert.equal(res.code, 130, res.stderr)
      assert.match(res.stderr, /git zoo: interrupted; nothing was recorded/)
      assert.deepEqual(await readdir(tmp), [], 'the temp folder is removed')
      assert.equal(await git(r.dir, 'rev-parse', 'HEAD'), head)
      await ok(zoo(r.dir, ['eval', 'e', '--data', join(data, 'd.x.npy')], { TMPDIR: tmp }), 'eval again')
    } finally { await r.cleanup() }
  })

  it('import, SIGINT after the first model\'s file: exit 130, no commit; the rerun imports the rest', async () => {
    const r = await newZoo()
    try {
      const runs = await mkdtemp(join(work, 'runs-'))
      for (const n of ['a', 'b']) {
        await mkdir(join(runs, n), { recursive: true })
        await writeFile(join(runs, n, 'model.bin'), randomBytes(2 * MiB))
      }
      const head = await git(r.dir, 'rev-parse', 'HEAD')
      const p = await startPaused(r.dir, ['import', runs, '--layout', 'generic', '--json'], 'after-file')
      const res = await interrupt(p, 'SIGINT', 'import')
      assert.equal(res.code, 130, res.stderr)
      assert.match(res.stderr, /git zoo: interrupted; the models of the commit in progress were not committed/)
      assert.equal(await git(r.dir, 'rev-parse', 'HEAD'), head)
      await assertClean(r.dir, 'import')
      const again = JSON.parse((await ok(zoo(r.dir, ['import', runs, '--layout', 'generic', '--json']), 'import again')).stdout)
      assert.equal(again.promoted, 2)
      assert.ok(again.stored_bytes < 2.5 * MiB, `stored ${again.stored_bytes}: the first model's bytes were kept`)
      await assertClean(r.dir, 'import rerun')
    } finally { await r.cleanup() }
  })
})

describe('interrupted transfers resume', { concurrency: 2 }, () => {
  /** Clone A with a path zoo remote and a bare git remote; a model of several chunks added. */
  async function shared(): Promise<{ a: string; objects: string; bare: string; cleanup: () => Promise<void> }> {
    const base = await mkdtemp(join(work, 'share-'))
    const bare = join(base, 'origin.git')
    const objects = join(base, 'objects')
    await git(base, 'init', '-q', '--bare', '-b', 'main', bare)
    const a = await newZoo()
    await git(a.dir, 'remote', 'add', 'origin', bare)
    await ok(zoo(a.dir, ['remote', 'add', 'origin', objects]), 'remote add')
    await git(a.dir, 'add', '-A')
    await git(a.dir, 'commit', '-q', '-m', 'remote')
    await ok(zoo(a.dir, ['add', await weights('a.bin', 3 * MiB), '--name', 'm']), 'add')
    return { a: a.dir, objects, bare, cleanup: async () => { await a.cleanup(); await rm(base, { recursive: true, force: true }) } }
  }

  it('push, SIGINT mid-upload and SIGTERM before the refs: exit 130 / 143, no ref pushed, the rerun skips what was uploaded', async () => {
    const s = await shared()
    try {
      const p = await startPaused(s.a, ['push', '--jobs', '1'], 'transfer-object')
      const res = await interrupt(p, 'SIGINT', 'push mid-upload')
      assert.equal(res.code, 130, res.stderr)
      assert.match(res.stderr, /git zoo: interrupted; the objects uploaded so far are kept on the zoo remote/)
      assert.equal((await git(s.a, 'ls-remote', s.bare)).trim(), '', 'no ref was pushed')
      assert.deepEqual(await leftovers(s.a), [])
      assert.deepEqual((await allFiles(s.objects)).filter((f) => f.includes('.tmp')), [])
      const p2 = await startPaused(s.a, ['push', '--jobs', '1'], 'push-before-refs')
      const res2 = await interrupt(p2, 'SIGTERM', 'push before refs')
      assert.equal(res2.code, 143, res2.stderr)
      assert.equal((await git(s.a, 'ls-remote', s.bare)).trim(), '', 'no ref was pushed')
      const again = JSON.parse((await ok(zoo(s.a, ['push', '--json']), 'push again')).stdout)
      assert.equal(again.objects, 0, 'everything was uploaded by the interrupted runs')
      assert.ok(again.skipped_objects > 0 || again.models === 0)
      assert.notEqual((await git(s.a, 'ls-remote', s.bare)).trim(), '')
    } finally { await s.cleanup() }
  })

  it('pull, SIGINT mid-fetch: exit 130, the store verifies; the rerun fetches only the rest', async () => {
    const s = await shared()
    try {
      await ok(zoo(s.a, ['push']), 'push')
      const b = join(dirname(s.objects), 'b')
      await ok(zoo(dirname(s.objects), ['clone', s.bare, b, '--lazy']), 'clone')
      await git(b, 'config', 'user.name', 'B'); await git(b, 'config', 'user.email', 'b@example.invalid')
      await ok(zoo(s.a, ['add', await weights('c.bin', 3 * MiB), '--name', 'n']), 'add n')
      await ok(zoo(s.a, ['push']), 'push n')
      await git(b, 'config', '--unset', 'zoo.lazy')
      const p = await startPaused(b, ['pull', '--jobs', '1'], 'transfer-object')
      const res = await interrupt(p, 'SIGINT', 'pull mid-fetch')
      assert.equal(res.code, 130, res.stderr)
      assert.match(res.stderr, /git zoo: interrupted; the objects fetched so far are kept; run `git zoo pull` again to resume/)
      assert.deepEqual(await leftovers(b), [])
      const again = JSON.parse((await ok(zoo(b, ['pull', '--json']), 'pull again')).stdout)
      assert.ok(again.skipped_objects > 0, `the rerun skipped what was fetched: ${JSON.stringify(again)}`)
      await ok(zoo(b, ['verify']), 'verify')
      await ok(zoo(b, ['get', 'n', '--out', join(b, '..', 'n-out')]), 'get n')
    } finally { await s.cleanup() }
  })
})
