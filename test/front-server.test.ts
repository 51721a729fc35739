/**
 * The native front and the query server (spec/server.md), through the real wrapper bin/git-zoo (and
 * `git zoo` with a linked bin folder on PATH): a served find or ls prints the same bytes and exits
 * with the same status as node does (GIT_ZOO_SERVER=0), sees promotions made between two requests,
 * keeps repositories and environments apart, and every way the server can be missing, dead, stale
 * or unsafe ends in node answering. Each run has its own XDG_RUNTIME_DIR; every server a test
 * starts is stopped after it. No fixed sleeps: servers are waited for by polling their status or
 * pid, with generous bounds.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, ROOT, git, run, tempRepo, type Run } from './cli.js'
import { answers, frame } from '../src/cli/front/protocol.js'
import { CLIENT, WRAPPER, alive, hasClient, runtime, serverStatus, serversOf, stopAll, waitFor, type Runtime, type Status } from './server-kit.js'

// as .ci/run checks: a cc that compiles a file using the socket headers (a cc without libc6-dev cannot)
const hasCc = spawnSync('cc', ['-x', 'c', '-o', '/dev/null', '-'], { input: '#include <sys/socket.h>\nint main(void){return 0;}\n', stdio: ['pipe', 'ignore', 'ignore'] }).status === 0
const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0

/**
 * A `git` that waits until the file `go` appears (it makes `waiting` first) and then runs the real
 * git: a served query that asks git (GIT_DIR set makes the catalog ask it) is held mid-request.
 */
function slowGit(): { bin: string; waiting: string; go: string; env: (repo: string) => NodeJS.ProcessEnv } {
  const bin = mkdtempSync(join(tmpdir(), 'zoo-slow-git-'))
  const real = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim()
  const waiting = join(bin, 'waiting')
  const go = join(bin, 'go')
  writeFileSync(join(bin, 'git'), `#!/bin/sh\n: > '${waiting}'\nwhile [ ! -e '${go}' ]; do sleep 0.02; done\nexec '${real}' "$@"\n`, { mode: 0o755 })
  return { bin, waiting, go, env: (repo) => ({ PATH: `${bin}:${process.env.PATH}`, GIT_DIR: join(repo, '.git'), GIT_WORK_TREE: repo }) }
}

describe('query server and native front', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  const rt: Runtime = { dir: '', env: {}, pids: new Set() } // made in before()
  const wrap = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => run(WRAPPER, args, { cwd, env: { ...rt.env, ...env } })
  const viaNode = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => run(process.execPath, [BIN, ...args], { cwd, env: { ...rt.env, ...env, GIT_ZOO_SERVER: '0' } })
  const status = (r: Runtime = rt): Promise<Status> => serverStatus(r)
  const running = (r = rt, not?: number): Promise<Status> => waitFor('a server to answer', async () => { const s = await status(r); return s.running && s.pid !== not ? s : undefined })
  /** Run `args` through the wrapper and through node; both must print the same and exit the same. */
  const same = async (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => {
    const served = await wrap(cwd, args, env)
    const direct = await viaNode(cwd, args, env)
    assert.deepEqual(served, direct, `git zoo ${args.join(' ')}: served and node runs differ`)
    return served
  }
  let a: { dir: string; cleanup: () => Promise<void> }
  let b: { dir: string; cleanup: () => Promise<void> }
  const extra: string[] = []
  /**
   * A served `find name~alpha` in repo a, held in a slow git until release() (which the caller must
   * reach whatever fails): the running server, the held query's env, and its pending result.
   */
  async function holdServedFind(): Promise<{ st: Status; env: NodeJS.ProcessEnv; held: Promise<Run>; release: () => void }> {
    await wrap(a.dir, ['ls'])
    const st = await running()
    const slow = slowGit()
    extra.push(slow.bin)
    const env = slow.env(a.dir)
    const release = (): void => { writeFileSync(slow.go, '') }
    const held = wrap(a.dir, ['find', 'name~alpha'], env)
    try {
      await waitFor('the served find to wait in git', () => existsSync(slow.waiting) ? true : undefined)
    } catch (e) { release(); throw e }
    return { st, env, held, release }
  }

  async function zooWith(names: string[]): Promise<{ dir: string; cleanup: () => Promise<void> }> {
    const r = await tempRepo('zoo-front-')
    assert.equal((await viaNode(r.dir, ['init'])).code, 0)
    writeFileSync(join(r.dir, '.gitignore'), '.zoo/cache/\n*.bin\n')
    await git(r.dir, 'add', '.gitignore', '.zoo')
    await git(r.dir, 'commit', '-q', '-m', 'zoo')
    for (const n of names) await add(r.dir, n)
    return r
  }
  async function add(dir: string, name: string): Promise<void> {
    writeFileSync(join(dir, 'w.bin'), Buffer.from(`weights of ${name}`))
    const r = await viaNode(dir, ['add', 'w.bin', '--name', name, '--seed', String(name.length)])
    assert.equal(r.code, 0, r.stderr)
  }

  before(async () => {
    Object.assign(rt, runtime())
    a = await zooWith(['lab/alpha', 'lab/beta'])
    b = await zooWith(['other/gamma'])
  })
  after(async () => {
    if (rt.dir) await stopAll(rt)
    await a?.cleanup(); await b?.cleanup()
    for (const d of extra) rmSync(d, { recursive: true, force: true })
  })

  it('a find that node answered starts the server; the next ones are served with the same output, errors and exit codes', async () => {
    assert.equal((await status()).running, false)
    const first = await wrap(a.dir, ['find', 'name~lab'])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /lab\/alpha@v1/)
    const st = await running()
    const notRepo = mkdtempSync(join(tmpdir(), 'zoo-not-a-repo-'))
    extra.push(notRepo)
    const cases: Array<[string, string[], number]> = [
      [a.dir, ['find', 'name~lab'], 0],
      [a.dir, ['ls'], 0],
      [a.dir, ['ls', '--json'], 0],
      [a.dir, ['find', 'seed>3', '--json', '--sort', '-name'], 0],
      [a.dir, ['find', 'name=nobody'], 0],
      [a.dir, ['find'], 2],
      [a.dir, ['find', 'nosuchfield>1', '--json'], 2],
      [a.dir, ['ls', '--limit', '-1'], 2],
      [a.dir, ['ls', '--bogus'], 2],
      [notRepo, ['ls'], 2],
      [notRepo, ['find', 'name~x', '--json'], 2],
    ]
    for (const [cwd, args, code] of cases) {
      const r = await same(cwd, args)
      assert.equal(r.code, code, `git zoo ${args.join(' ')}: ${r.stderr}`)
    }
    const after1 = await status()
    assert.equal(after1.pid, st.pid)
    assert.equal(after1.served - st.served, cases.length, 'every case above was answered by the server')
    // --help and other commands go to node
    assert.equal((await same(a.dir, ['find', '--help'])).code, 0)
    assert.equal((await same(a.dir, ['log'])).code, 0)
    assert.equal((await status()).served, after1.served)
  })

  it('`git zoo` through a linked bin folder on PATH is served too', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'zoo-linked-bin-'))
    extra.push(bin)
    symlinkSync(WRAPPER, join(bin, 'git-zoo')) // as npm links a package's bin
    await wrap(a.dir, ['ls']) // a server runs
    const st = await running()
    const r = await run('git', ['zoo', 'find', 'name~alpha'], { cwd: a.dir, env: { ...rt.env, PATH: `${bin}:${process.env.PATH}` } })
    assert.deepEqual(r, await viaNode(a.dir, ['find', 'name~alpha']))
    assert.equal((await status()).served, st.served + 1)
  })

  it('sees a promotion made between two served finds, and keeps two repositories apart', async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    const before1 = await same(a.dir, ['find', 'name~lab/'])
    assert.doesNotMatch(before1.stdout, /lab\/delta/)
    await add(a.dir, 'lab/delta')
    const after1 = await same(a.dir, ['find', 'name~lab/'])
    assert.match(after1.stdout, /lab\/delta@v1/)
    for (let i = 0; i < 2; i++) {
      assert.match((await same(b.dir, ['ls'])).stdout, /other\/gamma@v1/)
      const la = await same(a.dir, ['ls', '--json'])
      assert.deepEqual((JSON.parse(la.stdout) as { models: Array<{ name: string }> }).models.map((m) => m.name), ['lab/alpha', 'lab/beta', 'lab/delta'])
    }
    assert.equal((await status()).served, st.served + 2 + 4)
  })

  it('honours the environment of each request: GIT_DIR/GIT_WORK_TREE from outside the repository, a bad setting', async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    const outside = mkdtempSync(join(tmpdir(), 'zoo-outside-'))
    extra.push(outside)
    const env = { GIT_DIR: join(b.dir, '.git'), GIT_WORK_TREE: b.dir }
    const r = await same(outside, ['ls'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /other\/gamma@v1/)
    const bad = await same(a.dir, ['ls'], { GIT_ZOO_CATALOG_CHECK: 'sometimes' })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /GIT_ZOO_CATALOG_CHECK/)
    assert.equal((await same(a.dir, ['ls'])).code, 0) // and the next request is itself again
    assert.equal((await status()).served, st.served + 3)
    // what applies to a process of its own runs in node: NODE_OPTIONS, the crash and pause points
    assert.equal((await same(a.dir, ['ls'], { NODE_OPTIONS: '--no-warnings' })).code, 0)
    assert.equal((await same(a.dir, ['ls'], { GIT_ZOO_PAUSE_AT: 'no-such-point', GIT_ZOO_PAUSE_FILE: join(outside, 'go') })).code, 0)
    assert.equal((await status()).served, st.served + 3)
  })

  it('a killed server (its socket left behind) is replaced: the find runs in node, then a new server answers', async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    process.kill(st.pid, 'SIGKILL')
    await waitFor('the killed server to be gone', () => alive(st.pid) ? undefined : true)
    assert.ok(existsSync(st.socket), 'the dead server left its socket file')
    await same(a.dir, ['find', 'name~beta'])
    const next = await running(rt, st.pid)
    assert.notEqual(next.pid, st.pid)
    const r = await same(a.dir, ['find', 'name~beta'])
    assert.match(r.stdout, /lab\/beta@v1/)
    assert.equal((await status()).served, next.served + 1)
  })

  it('a client of another build makes the server exit, and node answers', { skip: hasCc ? false : 'no C compiler to build a second client' }, async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    // a second installation: its own client (another build id) beside a bin/git-zoo.js that is this one
    const other = mkdtempSync(join(tmpdir(), 'zoo-other-build-'))
    extra.push(other)
    mkdirSync(join(other, 'dist', 'front'), { recursive: true })
    mkdirSync(join(other, 'bin'))
    symlinkSync(BIN, join(other, 'bin', 'git-zoo.js'))
    const cc = spawnSync('cc', ['-O2', '-o', join(other, 'dist', 'front', 'git-zoo'), '-DGZ_BUILD_ID="another-build"', `-DGZ_NODE="${process.execPath}"`, join(ROOT, 'src', 'cli', 'front', 'git-zoo.c')], { encoding: 'utf8' })
    assert.equal(cc.status, 0, cc.stderr)
    const r = await run(join(other, 'dist', 'front', 'git-zoo'), ['find', 'name~alpha'], { cwd: a.dir, env: rt.env })
    assert.deepEqual(r, await viaNode(a.dir, ['find', 'name~alpha']))
    await waitFor('the stale server to exit', () => alive(st.pid) ? undefined : true)
    // node, having answered, started a server of this build: the real client is served again
    const next = await running(rt, st.pid)
    await same(a.dir, ['ls'])
    assert.equal((await status()).served, next.served + 1)
  })

  it('a socket folder others may enter (mode 0755) is not used', async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    const folder = join(rt.dir, 'git-zoo')
    chmodSync(folder, 0o755)
    try {
      const r = await same(a.dir, ['find', 'name~alpha'])
      assert.match(r.stdout, /lab\/alpha@v1/)
      const s = await run(process.execPath, [BIN, 'server', 'status', '--json'], { cwd: tmpdir(), env: rt.env })
      assert.match((JSON.parse(s.stdout) as Status).why ?? '', /mode 0755, not 0700/)
    } finally { chmodSync(folder, 0o700) }
    assert.equal((await status()).served, st.served, 'nothing was asked of the server')
  })

  it('a served ls on a terminal pages on the user\'s terminal, as node does; --no-pager and a pager that cannot start print it', { skip: hasScript ? false : 'util-linux script is not installed' }, async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    const onTty = (cmd: string, args: string, pager: string): Promise<Run> =>
      run('script', ['-qec', `${cmd} ${args}`, '/dev/null'], { cwd: a.dir, env: { ...rt.env, GIT_PAGER: pager } })
    const served = async (args: string, pager: string, file?: string): Promise<{ tty: string; paged: string | undefined }> => {
      const r = await onTty(WRAPPER, args, pager)
      assert.equal(r.code, 0, r.stdout)
      const paged = file && existsSync(file) ? readFileSync(file, 'utf8') : undefined
      if (file) rmSync(file, { force: true })
      return { tty: r.stdout, paged }
    }
    const direct = async (args: string, pager: string, file?: string): Promise<{ tty: string; paged: string | undefined }> => {
      const r = await onTty(`env GIT_ZOO_SERVER=0 ${process.execPath} ${BIN}`, args, pager)
      assert.equal(r.code, 0, r.stdout)
      const paged = file && existsSync(file) ? readFileSync(file, 'utf8') : undefined
      if (file) rmSync(file, { force: true })
      return { tty: r.stdout, paged }
    }
    const file = join(a.dir, 'paged.bin')
    // through the pager (it saves what it reads, and reads LESS as the client set it)
    const pager = `echo "LESS=$LESS" > ${file}; cat >> ${file}`
    const p = await served('ls', pager, file)
    assert.match(p.paged ?? '', /^LESS=FRX\n[^]*lab\/alpha@v1/)
    assert.doesNotMatch(p.tty, /lab\/alpha/, 'the listing went to the pager, not to the terminal')
    assert.deepEqual(p, await direct('ls', pager, file))
    // --no-pager: straight to the terminal
    const n = await served('ls --no-pager', pager, file)
    assert.equal(n.paged, undefined)
    assert.match(n.tty, /lab\/alpha@v1/)
    // a pager that cannot start: printed all the same
    const broken = await served('find name~beta', 'no-such-pager-xyz')
    assert.match(broken.tty, /lab\/beta@v1/)
    assert.equal((await status()).served, st.served + 3)
  })

  it('a query held in git holds up neither status nor other queries (the client runs node after GIT_ZOO_SERVER_WAIT ms)', { timeout: 120_000 }, async () => {
    const { st, env, held, release } = await holdServedFind()
    try {
      const during = await status() // answered while the query runs, not behind it
      assert.equal(during.pid, st.pid)
      assert.equal(during.served, st.served)
      // the server is busy: this client gets no first frame within 100 ms and node answers
      const other = await wrap(a.dir, ['find', 'name~beta'], { GIT_ZOO_SERVER_WAIT: '100' })
      assert.deepEqual(other, await viaNode(a.dir, ['find', 'name~beta']))
    } finally { release() } // the held git goes on, whatever failed
    assert.deepEqual(await held, await viaNode(a.dir, ['find', 'name~alpha'], env))
    assert.equal((await status()).served, st.served + 1, 'the held query was served, the other one (given up on) was dropped')
  })

  it('a request with a malformed umask is refused, not run with umask 0', { timeout: 120_000 }, async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    const body = Buffer.from(['query', st.build, a.dir, '0', '0', 'zz', '0', '1', 'ls', `PATH=${process.env.PATH}`].map((f) => f + '\0').join(''))
    const head = Buffer.alloc(4)
    head.writeUInt32BE(body.length)
    const got = await new Promise<Buffer>((res, rej) => {
      const s = connect(st.socket)
      let all = Buffer.alloc(0)
      s.on('connect', () => s.write(Buffer.concat([head, body])))
      s.on('data', (c: Buffer) => { all = Buffer.concat([all, c]) })
      s.on('error', rej)
      s.on('close', () => res(all))
    })
    assert.equal(got.length, 0, 'the connection is closed without an answer')
    assert.equal((await status()).served, st.served)
  })

  it('SIGTERM lets the query being answered finish, then the server exits', { timeout: 120_000 }, async () => {
    const { st, env, held, release } = await holdServedFind()
    try {
      process.kill(st.pid, 'SIGTERM')
      await waitFor('the server to stop accepting (socket removed)', () => existsSync(st.socket) ? undefined : true)
      assert.ok(alive(st.pid), 'it waits for the running query')
    } finally { release() }
    assert.deepEqual(await held, await viaNode(a.dir, ['find', 'name~alpha'], env))
    await waitFor('the server to exit', () => alive(st.pid) ? undefined : true)
  })

  it('three servers started at once over a dead server\'s socket: exactly one survives and answers', { timeout: 120_000 }, async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    process.kill(st.pid, 'SIGKILL')
    await waitFor('the killed server to be gone', () => alive(st.pid) ? undefined : true)
    assert.ok(existsSync(st.socket), 'the dead server left its socket file')
    // the first is held where it has found the socket dead and not yet taken its name; the other two
    // start and come to the same step (their own sockets listen) before it goes on
    const pause = join(rt.dir, 'serve-link.paused')
    const serveWith = (env: NodeJS.ProcessEnv) => spawn(process.execPath, [BIN, 'serve'], { cwd: tmpdir(), env: { ...process.env, ...rt.env, ...env }, stdio: ['ignore', 'ignore', 'ignore'] })
    const kids = [serveWith({ GIT_ZOO_PAUSE_AT: 'serve-link', GIT_ZOO_PAUSE_FILE: pause })]
    rt.pids.add(kids[0]!.pid!)
    await waitFor('the first server to pause before taking the name', () => existsSync(pause) ? true : undefined)
    kids.push(serveWith({}), serveWith({}))
    for (const k of kids) rt.pids.add(k.pid!)
    // (held at the lock its own socket stays; had it not waited, it would answer on serve.sock)
    for (const k of kids.slice(1)) {
      await waitFor('a later server to come to the step', async () => existsSync(join(rt.dir, 'git-zoo', `serve.${k.pid}.sock`)) || k.exitCode !== null || await answers(st.socket) ? true : undefined)
    }
    rmSync(pause)
    const codes = kids.map((k) => new Promise<number | null>((res) => k.on('exit', (c) => res(c))))
    const lost = await waitFor('two of the three to exit', async () => {
      const done = await Promise.all(codes.map((c) => Promise.race([c, Promise.resolve('running' as const)])))
      return done.filter((c) => c !== 'running').length === 2 ? done : undefined
    })
    assert.deepEqual(lost.filter((c) => c !== 'running'), [0, 0], 'the others exit with 0: a server already answers')
    const survivor = kids[lost.indexOf('running')]!
    const next = await running(rt, st.pid)
    assert.equal(next.pid, survivor.pid)
    await same(a.dir, ['ls'])
    assert.equal((await status()).served, next.served + 1)
  })

  it('a server started from a shell with NODE_OPTIONS runs without them: it serves every other shell', { timeout: 120_000 }, async () => {
    await run(process.execPath, [BIN, 'server', 'stop'], { cwd: tmpdir(), env: rt.env })
    await waitFor('no server process left', () => serversOf(rt.dir).length ? undefined : true)
    assert.equal((await wrap(a.dir, ['ls'], { NODE_OPTIONS: '--no-warnings' })).code, 0) // node answers and starts one
    const st = await running()
    assert.ok(!readFileSync(`/proc/${st.pid}/environ`, 'utf8').split('\0').some((e) => e.startsWith('NODE_OPTIONS=')))
    await same(a.dir, ['ls'])
    assert.equal((await status()).served, st.served + 1)
    await same(a.dir, ['ls'], { NODE_OPTIONS: '--no-warnings' }) // this one sets it: node
    assert.equal((await status()).served, st.served + 1)
  })

  it('`git zoo server stop` stops it and removes the socket; GIT_ZOO_SERVER=0 starts none', async () => {
    await wrap(a.dir, ['ls'])
    const st = await running()
    const human = await run(process.execPath, [BIN, 'server'], { cwd: tmpdir(), env: rt.env })
    assert.match(human.stdout, new RegExp(`^server ${st.pid}: build ${st.build.slice(0, 12)}, \\d+ requests? served, up \\d+ s, idle \\d+ s of 600 s; socket ${st.socket}\\n$`))
    const bogus = await run(process.execPath, [BIN, 'server', 'restart'], { cwd: tmpdir(), env: rt.env })
    assert.equal(bogus.code, 2)
    assert.match(bogus.stderr, /unknown action 'restart' for `git zoo server`; give status or stop/)
    const stop = await run(process.execPath, [BIN, 'server', 'stop', '--json'], { cwd: tmpdir(), env: rt.env })
    assert.equal(stop.code, 0, stop.stderr)
    assert.deepEqual(JSON.parse(stop.stdout), { stopped: true, pid: st.pid })
    await waitFor('the server to exit', () => alive(st.pid) ? undefined : true)
    assert.ok(!existsSync(st.socket))
    await waitFor('no server process left', () => serversOf(rt.dir).length ? undefined : true)
    const r = await wrap(a.dir, ['ls'], { GIT_ZOO_SERVER: '0' })
    assert.equal(r.code, 0)
    assert.deepEqual(serversOf(rt.dir), [], 'node answered and started no server')
    assert.equal((await status()).running, false)
    // while without it, node starts one (the check above can see it)
    await wrap(a.dir, ['ls'])
    assert.equal(serversOf(rt.dir).length, 1)
    await running()
  })
})

describe('the client when the server fails', { skip: hasClient ? false : 'dist/front/git-zoo is not built' }, () => {
  it('runs node when the server closes or declines before any output; after output began it says so and exits 70', async () => {
    const r = runtime()
    const repo = await tempRepo('zoo-front-')
    const folder = join(r.dir, 'git-zoo')
    mkdirSync(folder, { mode: 0o700 })
    // a stand-in for the server on the socket, answering every request with `reply`
    let reply: (sock: Socket) => void = (sock) => sock.destroy()
    let asked = 0
    const fake = createServer((sock) => {
      let got = Buffer.alloc(0)
      sock.on('data', (c: Buffer) => {
        got = Buffer.concat([got, c])
        if (got.length >= 4 && got.length >= 4 + got.readUInt32BE(0)) { asked++; reply(sock) }
      })
      sock.on('error', () => {})
    })
    await new Promise<void>((res) => fake.listen(join(folder, 'serve.sock'), res))
    try {
      const env = { ...r.env, GIT_ZOO_SERVER: '1' }
      const direct = await run(process.execPath, [BIN, 'ls'], { cwd: repo.dir, env: { ...env, GIT_ZOO_SERVER: '0' } })
      for (const how of [(sock: Socket) => sock.destroy(), (sock: Socket) => sock.end(frame(0x73, 'stale'))]) {
        reply = how
        const before1 = asked
        const ls = await run(WRAPPER, ['ls'], { cwd: repo.dir, env })
        assert.equal(asked, before1 + 1, 'the client asked the stand-in')
        assert.deepEqual(ls, direct, 'node answered instead')
      }
      reply = (sock) => { sock.write(frame(0x6f, 'MODEL\npartial')); sock.destroy() }
      const cut = await run(WRAPPER, ['ls'], { cwd: repo.dir, env })
      assert.equal(cut.code, 70)
      assert.equal(cut.stdout, 'MODEL\npartial')
      assert.match(cut.stderr, /^git zoo: internal error: the query server closed the connection before the command finished;.*GIT_ZOO_SERVER=0/)
      reply = (sock) => { sock.write(frame(0x65, 'note\n')); sock.end(frame(0x78, '3')) }
      const code = await run(WRAPPER, ['find', 'x=1'], { cwd: repo.dir, env })
      assert.deepEqual(code, { code: 3, stdout: '', stderr: 'note\n' }, 'frames reach fd 1/2 and the exit frame is the status')
      // a begin frame, then two pager frames: the second is ignored, the listing goes through the first
      reply = (sock) => { sock.write(frame(0x62, '')); sock.write(frame(0x70, 'cat')); sock.write(frame(0x70, 'cat; echo twice')); sock.write(frame(0x6f, 'listed\n')); sock.end(frame(0x78, '0')) }
      assert.deepEqual(await run(WRAPPER, ['ls'], { cwd: repo.dir, env }), { code: 0, stdout: 'listed\n', stderr: '' })
      // a server that accepts and says nothing (busy): after GIT_ZOO_SERVER_WAIT ms node answers
      reply = () => { /* silent */ }
      const before2 = asked
      assert.deepEqual(await run(WRAPPER, ['ls'], { cwd: repo.dir, env: { ...env, GIT_ZOO_SERVER_WAIT: '50' } }), direct)
      assert.equal(asked, before2 + 1)
    } finally {
      await new Promise<void>((res) => fake.close(() => res()))
      rmSync(r.dir, { recursive: true, force: true })
      await repo.cleanup()
    }
  })
})

describe('query server lifetime and the build without a compiler', () => {
  it('exits after GIT_ZOO_SERVER_IDLE seconds without requests and removes its socket', { skip: hasClient ? false : 'dist/front/git-zoo is not built' }, async () => {
    const r = runtime()
    try {
      const child = spawn(process.execPath, [BIN, 'serve'], { cwd: tmpdir(), env: { ...process.env, ...r.env, GIT_ZOO_SERVER_IDLE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] })
      r.pids.add(child.pid!)
      let stderr = ''
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
      const code = await Promise.race([
        new Promise<number | null>((res) => child.on('exit', (c) => res(c))),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`the server did not exit within 60 s: ${stderr}`)), 60_000).unref()),
      ])
      assert.equal(code, 0, stderr)
      assert.match(stderr, /listening on .*serve\.sock/)
      assert.match(stderr, /stopped: idle for 1 s/)
      assert.ok(!existsSync(join(r.dir, 'git-zoo', 'serve.sock')))
    } finally {
      for (const pid of r.pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
      rmSync(r.dir, { recursive: true, force: true })
    }
  })

  it('a bad GIT_ZOO_SERVER_IDLE: `git zoo serve` refuses it (exit 2), and a find starts no server', { skip: hasClient ? false : 'dist/front/git-zoo is not built' }, async () => {
    const r = runtime()
    const repo = await tempRepo('zoo-front-')
    try {
      const env = { ...r.env, GIT_ZOO_SERVER_IDLE: 'soon' }
      const serve = await run(process.execPath, [BIN, 'serve'], { cwd: tmpdir(), env })
      assert.equal(serve.code, 2)
      assert.match(serve.stderr, /GIT_ZOO_SERVER_IDLE must be a number of seconds above 0, not "soon"/)
      const ls = await run(WRAPPER, ['ls'], { cwd: repo.dir, env })
      assert.deepEqual(ls, await run(process.execPath, [BIN, 'ls'], { cwd: repo.dir, env: { ...env, GIT_ZOO_SERVER: '0' } }))
      assert.deepEqual(serversOf(r.dir), [])
    } finally {
      for (const pid of serversOf(r.dir)) process.kill(pid, 'SIGKILL')
      rmSync(r.dir, { recursive: true, force: true })
      await repo.cleanup()
    }
  })

  it('the client takes its package folder from GIT_ZOO_FRONT_ROOT and removes it before running node', { skip: hasClient ? false : 'dist/front/git-zoo is not built' }, async () => {
    const pkg = mkdtempSync(join(tmpdir(), 'zoo-front-root-'))
    try {
      mkdirSync(join(pkg, 'bin'))
      writeFileSync(join(pkg, 'bin', 'git-zoo.js'), 'process.stdout.write(JSON.stringify({ argv: process.argv.slice(2), root: process.env.GIT_ZOO_FRONT_ROOT ?? null }))\n')
      const r = await run(CLIENT, ['log', 'a b'], { cwd: tmpdir(), env: { GIT_ZOO_FRONT_ROOT: pkg } })
      assert.deepEqual(r, { code: 0, stdout: JSON.stringify({ argv: ['log', 'a b'], root: null }), stderr: '' })
    } finally { rmSync(pkg, { recursive: true, force: true }) }
  })

  it('bin/git-zoo runs node when there is no client; the build without a compiler makes none and says so', async () => {
    const pkg = mkdtempSync(join(tmpdir(), 'zoo-no-cc-'))
    const r = runtime()
    const repo = await tempRepo('zoo-front-')
    try {
      // a package folder without dist/front/: the wrapper's node path
      mkdirSync(join(pkg, 'bin'))
      copyFileSync(WRAPPER, join(pkg, 'bin', 'git-zoo'))
      chmodSync(join(pkg, 'bin', 'git-zoo'), 0o755)
      symlinkSync(BIN, join(pkg, 'bin', 'git-zoo.js'))
      const env = { ...r.env, GIT_ZOO_SERVER: '0' }
      const viaWrapper = await run(join(pkg, 'bin', 'git-zoo'), ['ls'], { cwd: repo.dir, env })
      const direct = await run(process.execPath, [BIN, 'ls'], { cwd: repo.dir, env })
      assert.deepEqual(viaWrapper, direct)
      assert.equal((await run(join(pkg, 'bin', 'git-zoo'), ['--version'], { cwd: repo.dir, env })).code, 0)
      // the build script in that folder: with no compiler, a note and no dist/front/; with one, the client
      mkdirSync(join(pkg, 'scripts'))
      mkdirSync(join(pkg, 'src', 'cli', 'front'), { recursive: true })
      mkdirSync(join(pkg, 'dist', 'cli'), { recursive: true })
      copyFileSync(join(ROOT, 'scripts', 'build-front.mjs'), join(pkg, 'scripts', 'build-front.mjs'))
      copyFileSync(join(ROOT, 'src', 'cli', 'front', 'git-zoo.c'), join(pkg, 'src', 'cli', 'front', 'git-zoo.c'))
      writeFileSync(join(pkg, 'dist', 'cli', 'main.js'), '// a bundle\n')
      const none = await run(process.execPath, [join(pkg, 'scripts', 'build-front.mjs')], { cwd: pkg, env: { CC: 'no-such-compiler-xyz' } })
      assert.equal(none.code, 0, none.stderr)
      assert.match(none.stderr, /native front: not built \(no C compiler: `no-such-compiler-xyz` does not run/)
      assert.ok(!existsSync(join(pkg, 'dist', 'front')))
      const off = await run(process.execPath, [join(pkg, 'scripts', 'build-front.mjs')], { cwd: pkg, env: { GIT_ZOO_NO_FRONT: '1' } })
      assert.match(off.stderr, /not built \(GIT_ZOO_NO_FRONT=1\)/)
      if (hasCc) {
        const built = await run(process.execPath, [join(pkg, 'scripts', 'build-front.mjs')], { cwd: pkg, env: {} })
        assert.equal(built.code, 0, built.stderr)
        const id = readFileSync(join(pkg, 'dist', 'front', 'build-id'), 'utf8').trim()
        assert.match(id, /^[0-9a-f]{32}$/)
        assert.ok(readFileSync(join(pkg, 'dist', 'front', 'git-zoo')).includes(Buffer.from(id)), 'the build id is compiled into the client')
        assert.equal(readFileSync(join(pkg, 'dist', 'front', '.npmignore'), 'utf8'), '*\n', 'npm pack leaves the machine\'s binary out')
        // a changed bundle is another build
        writeFileSync(join(pkg, 'dist', 'cli', 'main.js'), '// another bundle\n')
        await run(process.execPath, [join(pkg, 'scripts', 'build-front.mjs')], { cwd: pkg, env: {} })
        assert.notEqual(readFileSync(join(pkg, 'dist', 'front', 'build-id'), 'utf8').trim(), id)
      }
    } finally {
      rmSync(pkg, { recursive: true, force: true })
      rmSync(r.dir, { recursive: true, force: true })
      await repo.cleanup()
    }
  })
})
