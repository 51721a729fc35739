/**
 * add, get and verify answered by the resident server (spec/server.md) through the real wrapper
 * bin/git-zoo: the same stdout, stderr, exit status and bytes on disk as node (GIT_ZOO_SERVER=0);
 * the two-step start (a client that gave up never leads to a second run); Ctrl-C, SIGTERM and kill -9
 * of the client mid-add (held at a pause point set in the server's own environment); a pre-commit hook's
 * `git zoo` runs in node instead of waiting on the busy server; what a process of its own has and the
 * server has not (signing, fetching, NODE_OPTIONS, crash hooks) runs in node. Each describe has its own
 * XDG_RUNTIME_DIR and stops its servers; no fixed sleeps except where a test needs a signal to come
 * over a second after the first (the client's own rule).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, ROOT, run, type Run } from './cli.js'
import { sshKey } from './helpers-git.js'
import { FrameReader, encodeRequest, frame, readBuildId } from '../src/cli/front/protocol.js'
import { WRAPPER, hasClient, runtime, serverStatus, stopAll, waitFor, type Runtime, type Status } from './server-kit.js'

/** Commits made with these dates are the same commits in two repositories made alike. */
const FIXED = { GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' }

/** An add's output with what differs between two runs of it (the manifest's `created` time) masked: its seal and commit. */
const masked = (r: Run): Run => {
  const m = (t: string): string => t.replace(/bafy[a-z2-7]{20,}/g, '<seal>').replace(/\b[0-9a-f]{40}\b/g, '<commit>').replace(/\b[0-9a-f]{12}\b/g, '<commit12>')
  return { code: r.code, stdout: m(r.stdout), stderr: m(r.stderr) }
}

/** Bytes that are the same in both twins and not all alike (17 MiB: over the size where add and get use hashing workers). */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(((i / 4) * 2654435761 + seed) >>> 0, i)
  return b
}

interface Served {
  rt: Runtime
  dirs: string[]
  wrap: (cwd: string, args: string[], env?: NodeJS.ProcessEnv) => Promise<Run>
  viaNode: (cwd: string, args: string[], env?: NodeJS.ProcessEnv) => Promise<Run>
  /** Start `git zoo serve` under this runtime with `env` added to its own environment; returns its status once it answers. */
  start: (env?: NodeJS.ProcessEnv) => Promise<Status>
  status: () => Promise<Status>
  /** A zoo committed with fixed dates (two made alike hold the same commits). */
  newZoo: () => Promise<string>
  cleanup: () => Promise<void>
}

function served(): Served {
  const rt = runtime()
  const dirs: string[] = []
  const env = (e: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...rt.env, ...FIXED, ...e })
  const wrap = (cwd: string, args: string[], e: NodeJS.ProcessEnv = {}): Promise<Run> => run(WRAPPER, args, { cwd, env: env(e) })
  const viaNode = (cwd: string, args: string[], e: NodeJS.ProcessEnv = {}): Promise<Run> => run(process.execPath, [BIN, ...args], { cwd, env: { ...env(e), GIT_ZOO_SERVER: '0' } })
  const status = (): Promise<Status> => serverStatus(rt)
  const start = async (e: NodeJS.ProcessEnv = {}): Promise<Status> => {
    const child = spawn(process.execPath, [BIN, 'serve'], { cwd: tmpdir(), env: { ...process.env, ...rt.env, ...e }, stdio: 'ignore', detached: true })
    child.unref()
    if (child.pid) rt.pids.add(child.pid)
    return waitFor('the server to answer', async () => { const s = await status(); return s.running ? s : undefined })
  }
  const gitIn = async (cwd: string, args: string[]): Promise<void> => {
    const r = await run('git', args, { cwd, env: FIXED })
    assert.equal(r.code, 0, `git ${args.join(' ')}: ${r.stderr}`)
  }
  const newZoo = async (): Promise<string> => {
    const dir = mkdtempSync(join(tmpdir(), 'zoo-served-'))
    dirs.push(dir)
    await gitIn(dir, ['init', '-q', '-b', 'main'])
    for (const [k, v] of [['user.name', 'Test Researcher'], ['user.email', 'researcher@example.invalid'], ['commit.gpgsign', 'false']]) await gitIn(dir, ['config', k!, v!])
    const r = await viaNode(dir, ['init', '-q'])
    assert.equal(r.code, 0, r.stderr)
    writeFileSync(join(dir, '.gitignore'), '*.bin\nout*/\n')
    writeFileSync(join(dir, 'train.py'), 'print("train")\n')
    await gitIn(dir, ['add', '-A'])
    await gitIn(dir, ['commit', '-q', '-m', 'zoo'])
    return dir
  }
  const cleanup = async (): Promise<void> => {
    await stopAll(rt)
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
  return { rt, dirs, wrap, viaNode, start, status, newZoo, cleanup }
}

const versions = (zoo: string, name: string): string[] => readdirSync(join(zoo, 'models', ...name.split('/'))).sort()
const commits = async (zoo: string): Promise<number> => Number((await run('git', ['rev-list', '--count', 'HEAD'], { cwd: zoo })).stdout.trim())


/** `cmd args` started in `cwd` with `env` added: the process, and its exit code with what it printed once it ends. */
function startRun(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env } })
  let stdout = '', stderr = ''
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const done = new Promise<Run>((res) => child.on('close', (code, sig) => res({ code: code ?? (sig ? 128 : 1), stdout, stderr })))
  return { child, done }
}

describe('add, get and verify through the server', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  let s!: Served // made in before(): a skipped describe leaves no folder behind
  before(async () => { s = served(); await s.start() })
  after(async () => { await s?.cleanup() })

  it('print what node prints, exit alike and write the same bytes (add, --json, errors, a dirty tree; get; verify)', { timeout: 180_000 }, async () => {
    const [p, q] = [await s.newZoo(), await s.newZoo()] // p: served, q: node
    const big = pattern(17 * 1024 * 1024, 7)
    for (const z of [p, q]) { writeFileSync(join(z, 'small.bin'), pattern(1024, 1)); writeFileSync(join(z, 'big.bin'), big) }
    const before1 = (await s.status()).served
    const adds: Array<[string[], number]> = [
      [['add', 'small.bin', '--name', 'm/small', '--seed', '1'], 0],
      [['add', 'big.bin', '--name', 'm/big', '--param', 'lr=0.1', '--json'], 0],
      [['add', 'small.bin', '--name', 'm/small', '-q'], 0],
      [['add', 'missing.bin', '--name', 'm/x'], 2],
      [['add', 'missing.bin', '--name', 'm/x', '--json'], 2],
      [['add', 'small.bin'], 2],
    ]
    for (const [args, code] of adds) {
      const a = await s.wrap(p, args), b = await s.viaNode(q, args)
      assert.equal(a.code, code, `served git zoo ${args.join(' ')}: ${a.stderr}`)
      assert.deepEqual(masked(a), masked(b), `git zoo ${args.join(' ')}: served and node runs differ`)
    }
    // a dirty tree: refused alike, nothing committed
    for (const z of [p, q]) writeFileSync(join(z, 'train.py'), 'print("changed")\n')
    const dirty = [await s.wrap(p, ['add', 'small.bin', '--name', 'm/dirty']), await s.viaNode(q, ['add', 'small.bin', '--name', 'm/dirty'])]
    assert.equal(dirty[0]!.code, 1)
    assert.match(dirty[0]!.stderr, /uncommitted changes/)
    assert.deepEqual(dirty[0], dirty[1])
    for (const z of [p, q]) writeFileSync(join(z, 'train.py'), 'print("train")\n')
    // the same promotions: commits, manifests (but their `created` time, the seal over it and the code commit after it)
    assert.equal(await commits(p), await commits(q))
    assert.deepEqual(versions(p, 'm/small'), ['v1', 'v2'])
    const manifest = (z: string, n: string): string => readFileSync(join(z, 'models', 'm', n, 'v1', 'manifest.json'), 'utf8').replace(/"(created|seal|commit)": "[^"]*"/g, '"$1": ""')
    assert.equal(manifest(p, 'big'), manifest(q, 'big'))
    assert.equal(manifest(p, 'small'), manifest(q, 'small'))

    // get and verify in one zoo, served then node: the same output and the same bytes
    const reads: Array<[string[], number, string?]> = [
      [['get', 'm/big', '--out', 'out-big'], 0, 'out-big/big.bin'],
      [['get', 'm/small@v1', '--out', 'out-small', '--json'], 0, 'out-small/small.bin'],
      [['get', 'm/nobody'], 2],
      [['verify'], 0],
      [['verify', 'm/big', '--json'], 0],
      [['verify', 'm/nobody'], 2],
    ]
    for (const [args, code, file] of reads) {
      const a = await s.wrap(p, args)
      assert.equal(a.code, code, `served git zoo ${args.join(' ')}: ${a.stderr}`)
      const gotA = file ? readFileSync(join(p, file)) : undefined
      if (file) rmSync(join(p, file.split('/')[0]!), { recursive: true })
      const b = await s.viaNode(p, args)
      assert.deepEqual(a, b, `git zoo ${args.join(' ')}: served and node runs differ`)
      if (file) assert.ok(gotA!.equals(readFileSync(join(p, file))), `${file}: the same bytes`)
    }
    assert.ok(readFileSync(join(p, 'out-big', 'big.bin')).equals(big))
    assert.equal((await s.status()).served, before1 + adds.length + 1 + reads.length, 'every served run above was answered by the server')
  })

  it('the go-ahead: a client that gives up (GIT_ZOO_SERVER_WAIT=0) runs node and the server drops its request: one commit per add', { timeout: 120_000 }, async () => {
    const z = await s.newZoo()
    const before1 = await commits(z)
    for (let i = 0; i < 4; i++) {
      writeFileSync(join(z, `w${i}.bin`), pattern(512, i))
      const r = await s.wrap(z, ['add', `w${i}.bin`, '--name', `race/w${i}`], { GIT_ZOO_SERVER_WAIT: '0' })
      assert.equal(r.code, 0, r.stderr)
    }
    assert.equal(await commits(z), before1 + 4, 'exactly one commit per add')
    for (let i = 0; i < 4; i++) assert.deepEqual(versions(z, `race/w${i}`), ['v1'])
    // the server is there and serves the next one
    const st = await s.status()
    writeFileSync(join(z, 'next.bin'), pattern(512, 9))
    assert.equal((await s.wrap(z, ['add', 'next.bin', '--name', 'race/next'])).code, 0)
    assert.equal((await s.status()).served, st.served + 1)
    assert.equal(await commits(z), before1 + 5)
  })

  it('a request whose client closes after the begin frame, without the go-ahead, never runs', { timeout: 120_000 }, async () => {
    const z = await s.newZoo()
    writeFileSync(join(z, 'w.bin'), pattern(512, 3))
    const st = await s.status()
    const head = await commits(z)
    const req = encodeRequest({
      kind: 'run', build: readBuildId(ROOT)!, cwd: z, outTty: false, errTty: false, umask: 0o22, columns: 0,
      argv: ['add', 'w.bin', '--name', 'never/run'], env: { ...process.env, ...s.rt.env, GIT_ZOO_SERVER: '1' } as Record<string, string>,
    })
    const first = await new Promise<number>((res, rej) => {
      const sock = connect(st.socket)
      const reader = new FrameReader()
      sock.on('connect', () => sock.write(req))
      sock.on('data', (c: Buffer) => { const f = reader.push(c)[0]; if (f) { sock.destroy(); res(f.type) } })
      sock.on('error', rej)
    })
    assert.equal(String.fromCharCode(first), 'b', 'the server began the request and waits for the go-ahead')
    // the next request is answered after the dropped one: it had its turn and did not run
    writeFileSync(join(z, 'v.bin'), pattern(512, 4))
    assert.equal((await s.wrap(z, ['add', 'v.bin', '--name', 'then/run'])).code, 0)
    assert.equal((await s.status()).served, st.served + 1)
    assert.equal(await commits(z), head + 1)
    assert.ok(!existsSync(join(z, 'models', 'never')), 'the dropped add promoted nothing')
  })

  it('a pre-commit hook\'s `git zoo` runs in node (GIT_ZOO_SERVER=0), not waiting on the server busy with the add', { timeout: 120_000 }, async () => {
    const z = await s.newZoo()
    const out = join(z, '.git', 'hook-out')
    writeFileSync(join(z, '.git', 'hooks', 'pre-commit'), `#!/bin/sh\necho "server=$GIT_ZOO_SERVER" > '${out}'\n'${WRAPPER}' ls >> '${out}' 2>&1\necho "ls=$?" >> '${out}'\n`, { mode: 0o755 })
    writeFileSync(join(z, 'w.bin'), pattern(512, 5))
    const st = await s.status()
    // were the hook's ls to ask the busy server, it would wait this long (past the test's timeout) for a first frame
    const r = await s.wrap(z, ['add', 'w.bin', '--name', 'hooked/m'], { GIT_ZOO_SERVER_WAIT: '600000' })
    assert.equal(r.code, 0, r.stderr)
    assert.equal((await s.status()).served, st.served + 1, 'the add was served')
    const hook = readFileSync(out, 'utf8')
    assert.match(hook, /^server=0\n/)
    assert.match(hook, /\nls=0\n$/)
  })

  it('declines what a process of its own has (signing, NODE_OPTIONS, crash hooks, --repair, fetching): node runs it, same result', { timeout: 180_000 }, async () => {
    const z = await s.newZoo()
    writeFileSync(join(z, 'w.bin'), pattern(512, 6))
    assert.equal((await s.viaNode(z, ['add', 'w.bin', '--name', 'base/m'])).code, 0)
    const st = await s.status()
    const cases: Array<[string[], NodeJS.ProcessEnv]> = [
      [['verify'], { NODE_OPTIONS: '--no-warnings' }],
      [['verify'], { GIT_ZOO_CRASH_AT: 'no-such-point' }],
      [['get', 'base/m', '--out', 'out-g'], { GIT_ZOO_PAUSE_AT: 'no-such-point' }],
      [['verify', '--repair'], {}],
      [['verify', '--signatures'], {}],
    ]
    for (const [args, env] of cases) {
      const a = await s.wrap(z, args, env)
      rmSync(join(z, 'out-g'), { recursive: true, force: true })
      assert.deepEqual(a, await s.viaNode(z, args, env), `git zoo ${args.join(' ')} ${JSON.stringify(env)}`)
      rmSync(join(z, 'out-g'), { recursive: true, force: true })
    }
    // get of objects the local store lacks (a git clone, objects not fetched): it would fetch from zoo remotes
    const clone = mkdtempSync(join(tmpdir(), 'zoo-served-clone-'))
    s.dirs.push(clone)
    assert.equal((await run('git', ['clone', '-q', z, clone], { cwd: tmpdir() })).code, 0)
    const missing = await s.wrap(clone, ['get', 'base/m', '--out', 'out-g'])
    assert.notEqual(missing.code, 0)
    assert.deepEqual(missing, await s.viaNode(clone, ['get', 'base/m', '--out', 'out-g']))
    // a lazy clone fetches what get reads from the zoo remotes: declined before anything is read
    assert.equal((await run('git', ['config', 'zoo.lazy', 'true'], { cwd: clone })).code, 0)
    const lazy = await s.wrap(clone, ['get', 'base/m', '--out', 'out-g'])
    assert.notEqual(lazy.code, 0)
    assert.deepEqual(lazy, await s.viaNode(clone, ['get', 'base/m', '--out', 'out-g']))
    // a zoo whose commits git signs (a key could ask for its passphrase on the asker's terminal)
    const key = await sshKey(z, 'id_served')
    for (const [k, v] of [['gpg.format', 'ssh'], ['user.signingkey', key.pub], ['commit.gpgsign', 'true']]) assert.equal((await run('git', ['config', k!, v!], { cwd: z })).code, 0)
    writeFileSync(join(z, 'signed.bin'), pattern(512, 8))
    const signed = await s.wrap(z, ['add', 'signed.bin', '--name', 'signed/m', '--json'])
    assert.equal(signed.code, 0, signed.stderr)
    assert.equal((JSON.parse(signed.stdout) as { signed: boolean }).signed, true)
    assert.equal((await s.status()).served, st.served, 'every request above was declined and run in node')
    // and the server serves the next one as before
    assert.equal((await s.wrap(z, ['verify'])).code, 0)
    assert.equal((await s.status()).served, st.served + 1)
  })
})

describe('interrupting a served add', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  let s!: Served // made in before(): a skipped describe leaves no folder behind
  let pauseFile = ''
  before(async () => {
    s = served()
    pauseFile = join(s.rt.dir, 'paused')
    // a pause point in the server's own environment: every served add stops there until the file is removed or it is interrupted
    await s.start({ GIT_ZOO_SERVED_PAUSE_AT: 'after-file', GIT_ZOO_SERVED_PAUSE_FILE: pauseFile })
  })
  after(async () => { await s?.cleanup() })

  /** A served add of `file`, held at the pause point: its process and its result. */
  async function paused(z: string, file: string, name: string): Promise<{ child: ChildProcess; done: Promise<Run> }> {
    if (existsSync(pauseFile)) unlinkSync(pauseFile)
    const { child, done } = startRun(WRAPPER, ['add', file, '--name', name], z, { ...s.rt.env, ...FIXED })
    await waitFor('the served add to reach its pause point', () => existsSync(pauseFile) ? true : undefined)
    return { child, done }
  }
  /** Let a served add through the pause point as soon as it gets there. */
  async function addThrough(z: string, file: string, name: string): Promise<Run> {
    const { done } = await paused(z, file, name)
    unlinkSync(pauseFile)
    return done
  }

  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${sig} to the client: the server's add unwinds, exit ${code} with node's message, nothing committed, the store valid, add again succeeds`, { timeout: 120_000 }, async () => {
      const z = await s.newZoo()
      writeFileSync(join(z, 'a.bin'), pattern(3 * 1024 * 1024, 1))
      const head = await commits(z)
      const { child, done } = await paused(z, 'a.bin', 'int/m')
      child.kill(sig)
      const r = await done
      assert.equal(r.code, code, r.stderr)
      assert.match(r.stderr, /^git zoo: paused at after-file \(pid \d+\)\ngit zoo: interrupted; nothing was committed, run the same command again to resume\n$/)
      assert.equal(await commits(z), head)
      assert.equal(await s.status().then((st) => st.running), true, 'the server is still there')
      const v = await s.viaNode(z, ['verify'])
      assert.equal(v.code, 0, v.stderr)
      const again = await addThrough(z, 'a.bin', 'int/m')
      assert.equal(again.code, 0, again.stderr)
      assert.deepEqual(versions(z, 'int/m'), ['v1'])
      assert.equal(await commits(z), head + 1)
    })
  }

  it('a client killed (-9) mid-add: the server aborts that add and goes on; the store is valid and the add runs again', { timeout: 120_000 }, async () => {
    const z = await s.newZoo()
    writeFileSync(join(z, 'a.bin'), pattern(3 * 1024 * 1024, 2))
    const head = await commits(z)
    const st = await s.status()
    const { child, done } = await paused(z, 'a.bin', 'killed/m')
    child.kill('SIGKILL')
    await done
    // the aborted add unwinds in the server and counts as answered
    await waitFor('the server to finish the aborted add', async () => (await s.status()).served > st.served ? true : undefined)
    assert.equal(await commits(z), head)
    assert.equal((await s.viaNode(z, ['verify'])).code, 0)
    const again = await addThrough(z, 'a.bin', 'killed/m')
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(versions(z, 'killed/m'), ['v1'])
  })

  it('a busy server (an add held at its pause point): a second add gives up after GIT_ZOO_SERVER_WAIT, runs in node, and is never run again by the server', { timeout: 120_000 }, async () => {
    const z = await s.newZoo()
    writeFileSync(join(z, 'a.bin'), pattern(4096, 3))
    writeFileSync(join(z, 'b.bin'), pattern(4096, 4))
    const head = await commits(z)
    const st = await s.status()
    const held = await paused(z, 'a.bin', 'busy/a')
    try {
      const b = await s.wrap(z, ['add', 'b.bin', '--name', 'busy/b'], { GIT_ZOO_SERVER_WAIT: '200' })
      assert.equal(b.code, 0, b.stderr)
      assert.doesNotMatch(b.stderr, /paused at/, 'node ran it (the pause is the server\'s)')
    } finally { unlinkSync(pauseFile) }
    const a = await held.done
    assert.equal(a.code, 0, a.stderr)
    assert.equal(await commits(z), head + 2, 'one commit each')
    assert.deepEqual(versions(z, 'busy/a'), ['v1'])
    assert.deepEqual(versions(z, 'busy/b'), ['v1'])
    assert.equal((await s.status()).served, st.served + 1, 'the server ran the first add only; the second\'s request was dropped')
  })
})

describe('signalling the server mid-add', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  let s!: Served // made in before(): a skipped describe leaves no folder behind
  before(() => { s = served() })
  after(async () => { await s?.cleanup() })

  it('SIGTERM to the server while a served add holds its staged promotion: the add unwinds, its client exits 143 with node\'s message, nothing staged or committed, the server exits 143; the add then succeeds', { timeout: 120_000 }, async () => {
    const pauseFile = join(s.rt.dir, 'paused-commit')
    // a server of our own, to see how it ends
    const server = spawn(process.execPath, [BIN, 'serve'], {
      cwd: tmpdir(), env: { ...process.env, ...s.rt.env, GIT_ZOO_SERVED_PAUSE_AT: 'before-commit', GIT_ZOO_SERVED_PAUSE_FILE: pauseFile }, stdio: ['ignore', 'ignore', 'pipe'],
    })
    let serverErr = ''
    server.stderr!.on('data', (c: Buffer) => { serverErr += c.toString() })
    const serverDone = new Promise<number | null>((res) => server.on('close', (code) => res(code)))
    s.rt.pids.add(server.pid!)
    await waitFor('the server to answer', async () => { const st = await s.status(); return st.running && st.pid === server.pid ? st : undefined })
    const z = await s.newZoo()
    writeFileSync(join(z, 'a.bin'), pattern(3 * 1024 * 1024, 21))
    const head = await commits(z)
    const { done } = startRun(WRAPPER, ['add', 'a.bin', '--name', 'sig/m'], z, { ...s.rt.env, ...FIXED })
    await waitFor('the served add to reach before-commit', () => existsSync(pauseFile) ? true : undefined)
    // staged, not committed: what the signal must undo
    assert.match((await run('git', ['diff', '--cached', '--name-only'], { cwd: z })).stdout, /^models\/sig\/m\//m)
    server.kill('SIGTERM')
    const { code, stdout, stderr } = await done
    assert.equal(code, 143, stderr)
    assert.equal(stdout, '')
    assert.match(stderr, /^git zoo: paused at before-commit \(pid \d+\)\ngit zoo: interrupted; nothing was committed, run the same command again to resume\n$/)
    assert.equal(await serverDone, 143, serverErr)
    assert.match(serverErr, /server \d+ stopped: signalled\n/)
    assert.equal((await run('git', ['diff', '--cached', '--name-only'], { cwd: z })).stdout, '', 'nothing staged')
    assert.equal((await run('git', ['status', '--porcelain'], { cwd: z })).stdout, '', 'the work tree as before the add')
    assert.equal(await commits(z), head, 'nothing committed')
    const v = await s.viaNode(z, ['verify'])
    assert.equal(v.code, 0, v.stderr)
    const again = await s.wrap(z, ['add', 'a.bin', '--name', 'sig/m'])
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(versions(z, 'sig/m'), ['v1'])
    assert.equal(await commits(z), head + 1)
  })
})

describe('interrupting a served get', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  let s!: Served // made in before(): a skipped describe leaves no folder behind
  let pauseFile = ''
  before(async () => {
    s = served()
    pauseFile = join(s.rt.dir, 'paused')
    await s.start({ GIT_ZOO_SERVED_PAUSE_AT: 'get-file-written', GIT_ZOO_SERVED_PAUSE_FILE: pauseFile })
  })
  after(async () => { await s?.cleanup() })

  it('Ctrl-C while a served get holds its complete temp file: exit 130 with node\'s message, no file left; get again writes the same bytes', { timeout: 120_000 }, async () => {
    const z = await s.newZoo()
    const bytes = pattern(17 * 1024 * 1024, 11)
    writeFileSync(join(z, 'w.bin'), bytes)
    assert.equal((await s.viaNode(z, ['add', 'w.bin', '--name', 'got/m'])).code, 0)
    const { child, done } = startRun(WRAPPER, ['get', 'got/m', '--out', 'out-get'], z, s.rt.env)
    await waitFor('the served get to reach its pause point', () => existsSync(pauseFile) ? true : undefined)
    child.kill('SIGINT')
    const { code, stderr } = await done
    assert.equal(code, 130, stderr)
    assert.match(stderr, /\ngit zoo: interrupted; no file was written, run the same command again\n$/)
    assert.deepEqual(existsSync(join(z, 'out-get')) ? readdirSync(join(z, 'out-get')) : [], [], 'no file and no temporary file left')
    unlinkSync(pauseFile)
    const again = startRun(WRAPPER, ['get', 'got/m', '--out', 'out-get'], z, s.rt.env)
    await waitFor('the second get to reach its pause point', () => existsSync(pauseFile) ? true : undefined)
    unlinkSync(pauseFile) // and go on
    assert.equal((await again.done).code, 0)
    assert.ok(readFileSync(join(z, 'out-get', 'w.bin')).equals(bytes))
  })
})

describe('interrupting a served verify', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  let s!: Served // made in before(): a skipped describe leaves no folder behind
  let pauseFile = ''
  before(async () => {
    s = served()
    pauseFile = join(s.rt.dir, 'paused')
    await s.start({ GIT_ZOO_SERVED_PAUSE_AT: 'verify-window', GIT_ZOO_SERVED_PAUSE_FILE: pauseFile })
  })
  after(async () => { await s?.cleanup() })

  it('Ctrl-C while a served verify is held before its first window of chunks: exit 130 with a one-line message, and the server answers the next request at once', { timeout: 120_000 }, async () => {
    const z = await s.newZoo()
    writeFileSync(join(z, 'w.bin'), pattern(17 * 1024 * 1024, 13))
    assert.equal((await s.viaNode(z, ['add', 'w.bin', '--name', 'ver/m'])).code, 0)
    const st = await s.status()
    const { child, done } = startRun(WRAPPER, ['verify'], z, s.rt.env)
    await waitFor('the served verify to reach its pause point', () => existsSync(pauseFile) ? true : undefined)
    child.kill('SIGINT')
    const { code, stdout, stderr } = await done
    assert.equal(code, 130, stderr)
    assert.equal(stdout, '')
    assert.match(stderr, /^git zoo: paused at verify-window \(pid \d+\)\ngit zoo: interrupted; not every object was checked, run the same command again\n$/)
    unlinkSync(pauseFile) // left by the pause (interrupted, not let through)
    // node's own run, interrupted at the same point, says the same
    const nodePause = join(s.rt.dir, 'paused-node')
    const viaNode = startRun(process.execPath, [BIN, 'verify'], z, { ...s.rt.env, GIT_ZOO_SERVER: '0', GIT_ZOO_PAUSE_AT: 'verify-window', GIT_ZOO_PAUSE_FILE: nodePause })
    await waitFor('node\'s verify to reach its pause point', () => existsSync(nodePause) ? true : undefined)
    viaNode.child.kill('SIGINT')
    const { code: nodeCode, stderr: nodeErr } = await viaNode.done
    assert.equal(nodeCode, 130, nodeErr)
    assert.equal(nodeErr.replace(/pid \d+/, 'pid N'), stderr.replace(/pid \d+/, 'pid N'))
    // the verify unwound in the server (it no longer runs there): the next request is served, not
    // left to wait GIT_ZOO_SERVER_WAIT and run in node (bounded here so that a verify still running fails)
    const next = await s.wrap(z, ['ls'], { GIT_ZOO_SERVER_WAIT: '3000' })
    assert.equal(next.code, 0, next.stderr)
    assert.equal((await s.status()).served, st.served + 2, 'the interrupted verify and the ls were both answered by the server')
    // and a verify let through its pause point passes
    const again = startRun(WRAPPER, ['verify'], z, s.rt.env)
    await waitFor('the second verify to reach its pause point', () => existsSync(pauseFile) ? true : undefined)
    unlinkSync(pauseFile)
    const { code: againCode, stderr: againErr } = await again.done
    assert.equal(againCode, 0, againErr)
    assert.match(againErr, /git zoo verify: no problems\n$/)
  })
})

describe('a server running add, get and verify back to back', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  let s!: Served // made in before(): a skipped describe leaves no folder behind
  before(() => { s = served() })
  after(async () => { await s?.cleanup() })

  /** The server's threads, open file descriptors (what they name, numbers masked) and child processes, from /proc. */
  const held = (pid: number): { threads: number; fds: string[]; children: string[] } => {
    const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { return '(closed)' } })
    const tasks = readdirSync(`/proc/${pid}/task`)
    const children = tasks.flatMap((t) => { try { return readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(' ').filter(Boolean) } catch { return [] } })
    const cmd = (c: string): string => { try { return readFileSync(`/proc/${c}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() } catch { return '(gone)' } }
    return { threads: tasks.length, fds: fds.map((t) => t.replace(/\d+/g, 'N')).sort(), children: children.map(cmd) }
  }

  /** held(), once two looks 50 ms apart agree (a stopped worker thread winds down on its own), at most 3 s. */
  const settled = async (pid: number): Promise<ReturnType<typeof held>> => {
    let last = held(pid)
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 50))
      const now = held(pid)
      if (JSON.stringify(now) === JSON.stringify(last)) return now
      last = now
    }
    return last
  }

  it('leaks nothing: its threads, open files and child processes after the 6th round of add+get+verify of 20 MiB (BLAKE3, sha2-256, a get whose early workers guessed the wrong hash) are those after the 2nd', { timeout: 180_000, skip: existsSync('/proc/self/task') ? false : 'no /proc' }, async () => {
    const st = await s.start()
    // a BLAKE3 zoo (chunks hashed on the calling thread) and a sha2-256 one (chunks hashed by worker threads too)
    const blake3 = await s.newZoo()
    const sha2 = await s.newZoo()
    const config = join(sha2, '.zoo', 'config.json')
    const c = JSON.parse(readFileSync(config, 'utf8')) as { chunk_hash?: string }
    const { chunk_hash: _, ...older } = c // no key: sha2-256, as every zoo made before BLAKE3 (spec/format.md)
    writeFileSync(config, JSON.stringify(older, null, 2) + '\n')
    assert.equal((await run('git', ['commit', '-qam', 'sha2-256 chunks'], { cwd: sha2, env: FIXED })).code, 0)
    // a zoo switched to BLAKE3 after a sha2-256 model: get starts its workers for the wrong hash (test/get-early-workers.test.ts)
    const switched = await s.newZoo()
    writeFileSync(join(switched, '.zoo', 'config.json'), JSON.stringify(older, null, 2) + '\n')
    assert.equal((await run('git', ['commit', '-qam', 'sha2-256 chunks'], { cwd: switched, env: FIXED })).code, 0)
    writeFileSync(join(switched, 'old.bin'), pattern(20 * 1024 * 1024, 99))
    assert.equal((await s.viaNode(switched, ['add', 'old.bin', '--name', 'old/m', '-q'])).code, 0)
    writeFileSync(join(switched, '.zoo', 'config.json'), JSON.stringify(c, null, 2) + '\n')
    assert.equal((await run('git', ['commit', '-qam', 'blake3 chunks'], { cwd: switched, env: FIXED })).code, 0)
    const counts: Array<ReturnType<typeof held>> = []
    for (let round = 1; round <= 6; round++) {
      for (const z of [blake3, sha2]) {
        writeFileSync(join(z, 'w.bin'), pattern(20 * 1024 * 1024, 100 + round))
        for (const args of [['add', 'w.bin', '--name', 'leak/m', '-q'], ['get', 'leak/m', '--out', 'out-leak', '-q'], ['verify', 'leak/m', '-q']]) {
          const r = await s.wrap(z, args)
          assert.equal(r.code, 0, `round ${round}: git zoo ${args.join(' ')}: ${r.stderr}`)
        }
        rmSync(join(z, 'out-leak'), { recursive: true })
      }
      const old = await s.wrap(switched, ['get', 'old/m', '--out', 'out-leak', '-q'])
      assert.equal(old.code, 0, old.stderr)
      assert.ok(readFileSync(join(switched, 'out-leak', 'old.bin')).equals(pattern(20 * 1024 * 1024, 99)))
      rmSync(join(switched, 'out-leak'), { recursive: true })
      if (round === 2 || round === 6) counts.push(await settled(st.pid))
    }
    assert.equal((await s.status()).served, st.served + 42, 'every run was answered by that server')
    assert.deepEqual(counts[0]!.children, [], 'no child process left running (git, hooks: all reaped)')
    assert.deepEqual(counts[1]!.children, [], 'no child process left running after the 6th round')
    // a worker thread a command stopped may still be winding down when the server is looked at (its
    // own event loop: ~6 fds): one thread of slack; a leak per command or per round (28 commands
    // between the two looks) shows as many more
    const [a, b] = [counts[0]!, counts[1]!]
    assert.ok(b.threads <= a.threads + 1, `threads after the 6th round ${b.threads}, after the 2nd ${a.threads}`)
    assert.ok(b.fds.length <= a.fds.length + 8, `open files after the 6th round ${b.fds.length}, after the 2nd ${a.fds.length}:\n${b.fds.join('\n')}`)
    assert.deepEqual(b.fds.filter((f) => !f.startsWith('anon_inode:') && !f.startsWith('pipe:')), a.fds.filter((f) => !f.startsWith('anon_inode:') && !f.startsWith('pipe:')),
      'the same files and sockets open after the 2nd and the 6th round')
  })
})

describe('the client of add, get and verify, against a stand-in server', { skip: hasClient ? false : 'dist/front/git-zoo is not built (no C compiler)' }, () => {
  let rt!: Runtime // made in before(): a skipped describe leaves no folder behind
  /** What the stand-in does with each request; `got` collects the control bytes it received. */
  let reply: (sock: Socket, kind: string) => void = (sock) => sock.destroy()
  let got = ''
  const fake = createServer((sock) => {
    let buf = Buffer.alloc(0)
    let taken = false
    sock.on('data', (c: Buffer) => {
      if (taken) { got += c.toString('latin1'); return }
      buf = Buffer.concat([buf, c])
      if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return
      taken = true
      got += buf.subarray(4 + buf.readUInt32BE(0)).toString('latin1')
      reply(sock, buf.subarray(4).toString('utf8').split('\0')[0]!)
    })
    sock.on('error', () => {})
  })
  let repo = ''
  before(async () => {
    rt = runtime()
    const folder = join(rt.dir, 'git-zoo')
    mkdirSync(folder, { mode: 0o700 })
    chmodSync(folder, 0o700)
    repo = mkdtempSync(join(tmpdir(), 'zoo-served-fake-'))
    await new Promise<void>((res) => fake.listen(join(folder, 'serve.sock'), res))
  })
  after(async () => {
    await new Promise<void>((res) => fake.close(() => res()))
    rmSync(rt.dir, { recursive: true, force: true })
    rmSync(repo, { recursive: true, force: true })
  })
  const start = (args: string[]): { child: ChildProcess; done: Promise<Run> } => {
    const child = spawn(WRAPPER, args, { cwd: repo, env: { ...process.env, ...rt.env } })
    let stdout = '', stderr = ''
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
    return { child, done: new Promise<Run>((res) => child.on('close', (code) => res({ code: code ?? 1, stdout, stderr }))) }
  }

  it('sends a "run" request, the go-ahead only after the begin frame, and forwards Ctrl-C; a second one a second later ends it at once', { timeout: 60_000 }, async () => {
    let kind = ''
    got = ''
    reply = (sock, k) => { kind = k; sock.write(frame(0x62, '')) } // began; then silent (a command cleaning up slowly)
    const { child, done } = start(['add', 'w.bin', '--name', 'm'])
    await waitFor('the go-ahead', () => got.includes('g') ? true : undefined)
    assert.equal(kind, 'run')
    assert.equal(got, 'g')
    child.kill('SIGINT')
    await waitFor('the forwarded SIGINT', () => got === 'gi' ? true : undefined)
    // the client's rule: a signal within a second of the first is the same one delivered twice (git forwards Ctrl-C)
    await new Promise((r) => setTimeout(r, 1100))
    child.kill('SIGINT')
    const r = await done
    assert.deepEqual(r, { code: 130, stdout: '', stderr: 'git zoo: interrupted again; stopping at once (run `git zoo gc` later to drop what was left half-written)\n' })
  })

  it('SIGTERM with no answer within 5 s: the client stops waiting (exit 143); after the go-ahead a lost server is reported, never run again in node', { timeout: 60_000 }, async () => {
    got = ''
    reply = (sock) => { sock.write(frame(0x62, '')) }
    const t = start(['verify'])
    await waitFor('the go-ahead', () => got.includes('g') ? true : undefined)
    t.child.kill('SIGTERM')
    const r = await t.done
    assert.equal(got, 'gt')
    assert.deepEqual(r, { code: 143, stdout: '', stderr: 'git zoo: interrupted; cleaning up took over 5 s, stopping at once\n' })
    // began, got the go-ahead, then went away: the command may have run, so node does not run it again
    reply = (sock) => { sock.write(frame(0x62, '')); sock.once('data', () => sock.destroy()) }
    const lost = await start(['get', 'm']).done
    assert.equal(lost.code, 70)
    assert.equal(lost.stdout, '')
    assert.match(lost.stderr, /^git zoo: internal error: the server closed the connection before `git zoo get` finished; .*GIT_ZOO_SERVER=0/)
    // declined after the go-ahead (before any output): node runs it (here: not a repository, exit 2)
    reply = (sock) => { sock.write(frame(0x62, '')); sock.once('data', () => sock.end(frame(0x73, 'no'))) }
    const declined = await start(['verify']).done
    assert.equal(declined.code, 2)
    assert.match(declined.stderr, /not inside a git repository/)
  })
})
