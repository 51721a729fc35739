/**
 * The resident query server (`git zoo serve`, hidden; spec/server.md): answers `find` and `ls` for
 * the native client (src/cli/front/git-zoo.c) so a warm query costs no node start. It listens on a
 * per-user Unix socket in a 0700 folder, answers one request at a time by running main() with an Io
 * built from the request (its cwd, environment, TTY flags and umask; stdout and stderr sent back as
 * frames), declines and exits when the client's build differs from its own, and exits after an idle
 * time. Nothing of one request is kept for the next (the catalog checks its cache's freshness on every
 * query); what a process of its own would see differently (node options, testing hooks that act on the
 * process, a lazy clone's fetch with the server's credentials) is declined, and node answers it.
 * Status and stop are answered at once, also while a query runs; a query whose client went away is aborted.
 */
import { closeSync, linkSync, mkdirSync, chmodSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { availableParallelism } from 'node:os'
import type { Command, Io } from './command.js'
import { processHost } from '../host.js'
import { InterruptedError, interruption } from '../errors.js'
import { servedDecline } from './served.js'
import {
  CTL_GO, CTL_SIGINT, CTL_SIGTERM, GO_AHEAD_MS, FRAME_BEGIN, FRAME_DECLINE, FRAME_ERR, FRAME_EXIT, FRAME_JSON, FRAME_OUT, FRAME_PAGER, MAX_REQUEST,
  answers, buildIdPath, decodeRequest, idleMs, frame, readBuildId, socketDir, socketPath, unsafeDir, type Request,
} from './front/protocol.js'

/** Read-only queries the server answers as soon as it takes them (request kind "query"). */
const QUERIES = new Set(['find', 'ls'])
/** Commands that write: started only on the client's go-ahead (request kind "run"), so they never run twice. */
const RUNS = new Set(['add', 'get', 'verify'])
/** Testing hooks that act on the process (crash, pause, injected faults): such requests run in node. */
const PROCESS_HOOKS = ['GIT_ZOO_CRASH_AT', 'GIT_ZOO_PAUSE_AT', 'GIT_ZOO_FAULTS']

/**
 * How long a stopping server lets the request it is answering finish (or, signalled, unwind) before it
 * exits anyway; `git zoo serve`'s own interrupt handling waits longer (src/cli/commands/serve.ts).
 */
export const FINISH_MS = 10_000

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' } }

/**
 * Take serve.lock in `dir` (O_EXCL, holding our pid) for the check-remove-link of the socket's name:
 * two servers starting over a dead socket would otherwise both remove it and link their own. A lock
 * whose pid is dead (a server killed while holding it) is replaced. Returns the release function.
 */
async function lock(dir: string): Promise<() => void> {
  const path = join(dir, 'serve.lock')
  const end = Date.now() + FINISH_MS
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => { try { if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path) } catch { /* gone */ } }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    let holder = ''
    try { holder = readFileSync(path, 'utf8') } catch { continue } // released meanwhile
    const pid = Number(holder)
    // an empty file is a holder between open and write: wait for it, unless that lasts
    if ((holder !== '' && Number.isInteger(pid) && pid > 0 && !alive(pid)) || Date.now() > end) {
      try { if (readFileSync(path, 'utf8') === holder) unlinkSync(path) } catch { /* gone */ }
      continue
    }
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The bundle's entry, whose inode changes with every `npm run build` (build-cli.mjs renames dist/cli/ into place). */
function bundleStamp(root: string): string {
  try { const s = statSync(join(root, 'dist', 'cli', 'main.js')); return `${s.ino}:${s.mtimeMs}` } catch { return 'none' }
}

/** A request taken from a connection, waiting in the queue or being answered. */
interface Entry {
  req: Request
  sock: Socket
  /** The client's go-ahead came (a "run" request starts only then). */
  go: boolean
  onGo?: () => void
  /** The client forwarded SIGINT or SIGTERM. */
  onSignal?: (sig: 'SIGINT' | 'SIGTERM') => void
  /** A signal that came with or right after the go-ahead, before the request's handler was set. */
  pending?: 'SIGINT' | 'SIGTERM'
  /** The request ended: signals after it are no one's. */
  over?: boolean
}

export interface ServeOptions {
  /** What answers a request: main() of src/cli/main.ts, the function a node process runs. */
  main: (argv: string[], io: Io) => Promise<number>
  /** A command's module (main.ts loadCommand): whether it cleans up after an interrupt (`interrupted`). */
  loadCommand: (name: string) => Promise<Command>
  root: string
  env: NodeJS.ProcessEnv
  uid: number
  /** Aborted on SIGINT/SIGTERM: the server stops and removes its socket. */
  signal?: AbortSignal
  /** Notes about starting and stopping (stderr of `git zoo serve`). */
  note: (text: string) => void
  /** Crash and pause points (src/cli/crash.ts): `serve-link` fires holding serve.lock, before the socket's name is taken. */
  crashPoint?: (name: string) => void | Promise<void>
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => { server.off('error', reject); resolve() })
  })
}

/**
 * Run the server until it is idle, stopped, stale or signalled. Returns the exit code: 0, also when
 * another server already answers (a start raced with another), 1 when the socket folder is unsafe
 * or no client is built.
 */
export async function serve(o: ServeOptions): Promise<number> {
  const idle = idleMs(o.env)
  const build = readBuildId(o.root)
  if (build === undefined) { o.note(`git zoo: no native client is built (${buildIdPath(o.root)} is missing); run \`npm run build\`\n`); return 1 }
  const stamp = bundleStamp(o.root)
  const dir = socketDir(o.env, o.uid)
  try {
    mkdirSync(dir, { mode: 0o700 })
    chmodSync(dir, 0o700) // whatever the umask
  } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e }
  const unsafe = unsafeDir(dir, o.uid)
  if (unsafe) { o.note(`git zoo: not serving: ${unsafe}; remove it or set XDG_RUNTIME_DIR to a private folder\n`); return 1 }
  const path = socketPath(dir)

  // listen on a name of our own, then link it to serve.sock under serve.lock: a socket there that
  // answers is another server's (we exit), one that does not is a dead server's (replaced)
  const own = join(dir, `serve.${process.pid}.sock`)
  try { unlinkSync(own) } catch { /* none */ }
  const server = createServer({ allowHalfOpen: false })
  await listen(server, own)
  const ino = statSync(own).ino
  let taken = false
  const release = await lock(dir)
  try {
    if (!(await answers(path))) {
      await o.crashPoint?.('serve-link')
      try { unlinkSync(path) } catch { /* none */ }
      linkSync(own, path)
      taken = true
    }
  } catch (e) {
    server.close(); try { unlinkSync(own) } catch { /* gone */ }
    throw e
  } finally { release() }
  try { unlinkSync(own) } catch { /* gone */ }
  // the name must hold our socket now; anything else means another server took it: leave it that one
  if (taken) { try { taken = statSync(path).ino === ino } catch { taken = false } }
  if (!taken) { server.close(); o.note('git zoo: a server already answers\n'); return 0 }

  const started = Date.now()
  let served = 0
  let lastDone = Date.now()
  let busy = false
  /** The socket of the query being answered (undefined between queries). */
  let current: Socket | undefined
  /** The request being answered (undefined between requests). */
  let answering: Entry | undefined
  const queue: Entry[] = []
  const unread = new Set<Socket>()
  let timer: NodeJS.Timeout | undefined
  let stopped!: () => void
  const done = new Promise<void>((resolve) => { stopped = resolve })
  let stopping = false

  let idleDone: (() => void) | undefined
  /** Stop accepting, decline what is queued, let the running query finish (at most FINISH_MS), then end. */
  const stop = (why: string): void => {
    if (stopping) return
    stopping = true
    if (timer) clearTimeout(timer)
    // remove the socket only while it is still ours (a server started after us may hold the name)
    try { if (statSync(path).ino === ino) unlinkSync(path) } catch { /* gone */ }
    server.close()
    for (const q of queue.splice(0)) q.sock.end(frame(FRAME_DECLINE, 'stopping'))
    for (const sock of unread) sock.destroy() // connected, request not complete: nothing to answer
    const finish = (): void => { o.note(`git zoo: server ${process.pid} stopped: ${why}\n`); stopped() }
    if (!busy) { finish(); return }
    const bound = setTimeout(() => { idleDone = undefined; finish() }, FINISH_MS)
    idleDone = () => { clearTimeout(bound); finish() }
  }
  // the timer keeps running while a query runs: a query that never ends whose client went away
  // (one that does not honour its abort) ends the server rather than keeping it forever
  const arm = (): void => {
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => {
      if (!busy) stop(`idle for ${idle / 1000} s`)
      else if (current?.destroyed) stop(`a query whose client went away did not end within ${idle / 1000} s`)
      else arm()
    }, idle)
  }
  o.signal?.addEventListener('abort', () => {
    stop('signalled')
    // an add, get or verify being answered is interrupted as its client's own signal would interrupt
    // it: it unwinds (nothing committed, temp files removed) and its exit frame (130 or 143, node's
    // message) reaches the client before the server exits; one not started yet is aborted as soon as
    // it starts (or declined, without its go-ahead). A find or ls (quick, read-only) finishes
    if (answering?.req.kind !== 'run') return
    const reason = interruption(o.signal!.reason)
    const sig = reason?.signal ?? 'SIGTERM'
    if (answering?.onSignal) answering.onSignal(sig)
    else if (answering && !answering.over) answering.pending ??= sig
  }, { once: true })

  const status = (): object => ({
    running: true, pid: process.pid, build, socket: path, served,
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    idleSeconds: busy ? 0 : Math.round((Date.now() - lastDone) / 1000),
    idleLimitSeconds: idle / 1000,
  })

  const fresh = (): boolean => readBuildId(o.root) === build && bundleStamp(o.root) === stamp

  async function answer(entry: Entry): Promise<void> {
    const { req, sock } = entry
    const send = (type: number, payload: Buffer | string): void => { if (!sock.destroyed) sock.write(frame(type, payload)) }
    if (sock.destroyed) return // the client gave up waiting (and ran node)
    if (req.build !== build || !fresh()) {
      // the socket is removed before the answer leaves: the node that runs the command next starts a new server
      stop('a client of another build asked; this one is stale')
      sock.end(frame(FRAME_DECLINE, 'stale'))
      return
    }
    const name = req.argv[0] ?? ''
    const twoStep = req.kind === 'run'
    // node options (loaders, heap limits) apply to a process of its own: such a request runs in node
    // (the server itself is started without NODE_OPTIONS, src/cli/front/control.ts)
    const nodeOptions = (req.env.NODE_OPTIONS ?? '') !== ''
    const taken = (req.kind === 'query' && QUERIES.has(name)) || (twoStep && RUNS.has(name))
    if (!taken || PROCESS_HOOKS.some((k) => req.env[k]) || nodeOptions) {
      sock.end(frame(FRAME_DECLINE, 'not served'))
      return
    }
    const aborted = new AbortController()
    // a client killed (-9) or gone: the request is aborted as a SIGTERM would abort it (its output goes nowhere)
    const onClose = (): void => { if (!aborted.signal.aborted) aborted.abort(new InterruptedError('SIGTERM')) }
    sock.once('close', onClose)
    // a request declined midway (it would reach the network with this process's credentials) prints nothing more
    let declined: string | undefined
    let wrote = false
    /** Set once the exit frame went out early (an interrupted command that does not clean up): later output is dropped. */
    let ended = false
    const write = (type: number, t: string): void => { if (declined === undefined && !ended) { wrote = true; send(type, t) } }
    const env: NodeJS.ProcessEnv = { ...req.env }
    // as processIo() does for a process of its own
    env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    env.ORT_DISABLE_TELEMETRY ??= '1'
    // what the request starts (git, its hooks, a hook's own `git zoo ...`) runs in node: this server is busy with it
    env.GIT_ZOO_SERVER = '0'
    // tests: a pause point set in the server's own environment (never the asker's: those requests run in node)
    if (twoStep && o.env.GIT_ZOO_SERVED_PAUSE_AT) {
      env.GIT_ZOO_PAUSE_AT = o.env.GIT_ZOO_SERVED_PAUSE_AT
      if (o.env.GIT_ZOO_SERVED_PAUSE_FILE) env.GIT_ZOO_PAUSE_FILE = o.env.GIT_ZOO_SERVED_PAUSE_FILE
    }
    const io: Io = {
      cwd: req.cwd, env,
      out: (t) => write(FRAME_OUT, t),
      err: (t) => write(FRAME_ERR, t),
      tty: req.errTty,
      outTty: req.outTty,
      ...(req.errTty && req.columns > 0 ? { columns: req.columns } : {}),
      host: processHost(),
      stdin: async () => '',
      killSelf: () => { throw new Error('crash points are not served (the request runs in node)') },
      signal: aborted.signal,
      pageOnClient: (cmd, text) => { write(FRAME_PAGER, cmd); write(FRAME_OUT, text) },
      declineServed: (why) => {
        if (!wrote) declined = why
        throw new Error(`not answered in the server: ${why}`)
      },
    }
    if (twoStep) {
      // what a process of its own has and this one has not (a terminal to sign on, credentials to fetch with): node runs it
      const why = servedDecline(req.argv)
      if (why !== undefined) { if (!sock.destroyed) sock.end(frame(FRAME_DECLINE, why)); return }
    }
    send(FRAME_BEGIN, '')
    if (twoStep && !(await goAhead(entry))) {
      // the client gave up before it saw our begin (it runs node), or said nothing: never run it here too
      if (!sock.destroyed) sock.end(frame(FRAME_DECLINE, 'no go-ahead'))
      return
    }
    // stopped while waiting for the go-ahead: nothing ran, its client runs node (as a queued request's does)
    if (stopping) { if (!sock.destroyed) sock.end(frame(FRAME_DECLINE, 'stopping')); return }
    // a command that honours io.signal (its `interrupted` text) cleans up after an interrupt; any other is
    // ended at once, as node's handlers do (src/cli/interrupt.ts). Loaded after the begin frame: a cold
    // module load must not make the client give up waiting
    const cooperative = await o.loadCommand(name).then((c) => c.interrupted !== undefined, () => false) // a load error: main reports it
    // the client's Ctrl-C / SIGTERM: abort as node's own handlers do (src/cli/interrupt.ts); a command that
    // does not clean up (no `interrupted`) ends at once, as it would in node, and finishes here unseen
    entry.onSignal = (sig) => {
      if (aborted.signal.aborted) return // a second signal is the client's to act on (it exits at once)
      const reason = new InterruptedError(sig)
      aborted.abort(reason)
      if (!cooperative && !ended) {
        write(FRAME_ERR, 'git zoo: interrupted\n')
        ended = true
        if (!sock.destroyed) sock.end(frame(FRAME_EXIT, String(reason.exitCode)))
      }
    }
    // a signal that came with the go-ahead (before this handler was set): as if it came just now
    if (entry.pending) entry.onSignal(entry.pending)
    // the request's umask, for any file it writes, as its own process would have (requests run one at a time)
    const before = process.umask(req.umask)
    let code: number
    try {
      code = await o.main(req.argv, io)
    } catch (e) {
      if (declined === undefined) write(FRAME_ERR, `git zoo: internal error: ${(e as Error)?.stack ?? String(e)}\nThis is a bug in git-zoo; please report it with the command you ran.\n`)
      code = 70
    } finally {
      process.umask(before)
      sock.off('close', onClose)
      entry.onSignal = undefined
      entry.over = true
    }
    if (declined !== undefined) { if (!sock.destroyed) sock.end(frame(FRAME_DECLINE, declined)); return }
    served++
    if (!ended && !sock.destroyed) {
      const sent = new Promise<void>((resolve) => sock.end(frame(FRAME_EXIT, String(code)), resolve))
      // a stopping server exits next: the exit frame must have left first
      if (stopping) await Promise.race([sent, new Promise((r) => setTimeout(r, FINISH_MS).unref())])
    }
  }

  /** Wait for the client's go-ahead byte after our begin frame: false when it closed, or sent nothing within GO_AHEAD_MS. */
  function goAhead(entry: Entry): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean): void => { clearTimeout(timer); entry.sock.off('close', gone); entry.onGo = undefined; resolve(ok) }
      const gone = (): void => done(false)
      const timer = setTimeout(() => done(false), GO_AHEAD_MS)
      if (entry.sock.destroyed) { done(false); return }
      entry.sock.once('close', gone)
      if (entry.go) { done(true); return }
      entry.onGo = () => done(true)
    })
  }

  async function drain(): Promise<void> {
    if (busy) return
    busy = true
    try {
      while (queue.length && !stopping) {
        const entry = queue.shift()!
        current = entry.sock
        answering = entry
        await answer(entry)
        answering = undefined
      }
    } finally {
      busy = false
      current = undefined
      answering = undefined
      lastDone = Date.now()
      if (!stopping) arm()
      else idleDone?.()
    }
  }

  server.on('connection', (sock) => {
    sock.on('error', () => { /* the client went away; its request is dropped */ })
    if (stopping) { sock.destroy(); return }
    unread.add(sock)
    sock.once('close', () => unread.delete(sock))
    let buf: Buffer = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      if (buf.length < 4) return
      const len = buf.readUInt32BE(0)
      if (len > MAX_REQUEST) { sock.destroy(); return }
      if (buf.length < 4 + len) return
      sock.off('data', onData)
      unread.delete(sock)
      let req: Request
      try { req = decodeRequest(buf.subarray(4, 4 + len)) } catch { sock.destroy(); return }
      // status and stop are answered at once, not behind a running query, whatever the asker's build
      if (req.kind === 'status') { sock.write(frame(FRAME_JSON, JSON.stringify(status()))); sock.end(frame(FRAME_EXIT, '0')); return }
      if (req.kind === 'stop') { stop('asked to stop'); sock.end(frame(FRAME_EXIT, '0')); return }
      if (stopping) { sock.end(frame(FRAME_DECLINE, 'stopping')); return }
      const entry: Entry = { req, sock, go: false }
      // after the request, single control bytes: the go-ahead, the client's signals
      const control = (bytes: Buffer): void => {
        for (const c of bytes) {
          if (c === CTL_GO && !entry.go) { entry.go = true; entry.onGo?.() }
          else if (c === CTL_SIGINT || c === CTL_SIGTERM) {
            const sig = c === CTL_SIGINT ? 'SIGINT' : 'SIGTERM'
            if (entry.onSignal) entry.onSignal(sig)
            else if (entry.go && !entry.over) entry.pending ??= sig // the go-ahead's continuation has not run yet
          }
        }
      }
      sock.on('data', control)
      if (buf.length > 4 + len) control(buf.subarray(4 + len))
      // a client that gave up waiting is dropped from the queue (it runs node)
      sock.once('close', () => { const i = queue.indexOf(entry); if (i >= 0) queue.splice(i, 1) })
      queue.push(entry)
      void drain()
    }
    sock.on('data', onData)
  })
  // kept from one request to the next (requests run one at a time: never shared by two): the slabs of
  // cleanly closed rings (memory shared with worker threads is freed only by every thread's garbage
  // collector: a server allocating new ones for every request grew by ~100 MiB per get), and the hashing
  // workers, one booted now (the whole-file sha256 worker every add and get of a large file starts), and
  // the commands' modules; GIT_ZOO_SERVER_WARM=0: no workers kept nor modules loaded ahead, to measure what they buy
  const { keepSlabs, keepWorkers } = await import('../cas/hash-pool.js')
  keepSlabs(120 * 1024 * 1024)
  if (o.env.GIT_ZOO_SERVER_WARM !== '0') {
    keepWorkers(availableParallelism() + 1, 1)
    // the commands' modules loaded now, not by the first request (40 ms of CPU for the first verify)
    setImmediate(() => { for (const name of [...RUNS, ...QUERIES]) void o.loadCommand(name).catch(() => { /* its request reports it */ }) })
  }
  arm()
  o.note(`git zoo: server ${process.pid} listening on ${path} (build ${build.slice(0, 12)}, idle exit after ${idle / 1000} s)\n`)
  await done
  return 0
}
