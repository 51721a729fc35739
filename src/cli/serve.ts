/**
 * The resident query server (`git zoo serve`, hidden; spec/server.md): answers `find` and `ls` for
 * the native client (src/cli/front/git-zoo.c) so a warm query costs no node start. It listens on a
 * per-user Unix socket in a 0700 folder, answers one request at a time by running main() with an Io
 * built from the request (its cwd, environment, TTY flags and umask; stdout and stderr sent back as
 * frames), declines and exits when the client's build differs from its own, and exits after an idle
 * time. Every request behaves as a fresh process would: nothing of one request is kept for the next
 * (the catalog checks its cache's freshness on every query, as in a process of its own).
 */
import { linkSync, mkdirSync, chmodSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Io } from './command.js'
import { processHost } from '../host.js'
import {
  FRAME_DECLINE, FRAME_ERR, FRAME_EXIT, FRAME_JSON, FRAME_OUT, FRAME_PAGER, MAX_REQUEST,
  answers, buildIdPath, decodeRequest, idleMs, frame, socketDir, socketPath, unsafeDir, type Request,
} from './front/protocol.js'

/** The commands the server answers; anything else is declined (the client runs node). */
const SERVED = new Set(['find', 'ls'])
/** Testing hooks that act on the process (crash, pause, injected faults): such requests run in node. */
const PROCESS_HOOKS = ['GIT_ZOO_CRASH_AT', 'GIT_ZOO_PAUSE_AT', 'GIT_ZOO_FAULTS']

function readBuildId(root: string): string | undefined {
  try { return readFileSync(buildIdPath(root), 'utf8').trim() || undefined } catch { return undefined }
}

/** The bundle's entry, whose inode changes with every `npm run build` (build-cli.mjs renames dist/cli/ into place). */
function bundleStamp(root: string): string {
  try { const s = statSync(join(root, 'dist', 'cli', 'main.js')); return `${s.ino}:${s.mtimeMs}` } catch { return 'none' }
}

export interface ServeOptions {
  /** What answers a request: main() of src/cli/main.ts, the function a node process runs. */
  main: (argv: string[], io: Io) => Promise<number>
  root: string
  env: NodeJS.ProcessEnv
  uid: number
  /** Aborted on SIGINT/SIGTERM: the server stops and removes its socket. */
  signal?: AbortSignal
  /** Notes about starting and stopping (stderr of `git zoo serve`). */
  note: (text: string) => void
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

  // listen on a name of our own, then link it to serve.sock: link() fails when another server's
  // socket is there, so two servers starting at once cannot both take the name
  const own = join(dir, `serve.${process.pid}.sock`)
  try { unlinkSync(own) } catch { /* none */ }
  const server = createServer({ allowHalfOpen: false })
  await listen(server, own)
  let taken = false
  for (let attempt = 0; attempt < 2 && !taken; attempt++) {
    try { linkSync(own, path); taken = true } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') { server.close(); try { unlinkSync(own) } catch { /* gone */ } throw e }
      if (await answers(path)) break
      try { unlinkSync(path) } catch { /* another start removed it */ } // a dead server's socket
    }
  }
  try { unlinkSync(own) } catch { /* gone */ }
  if (!taken) { server.close(); o.note('git zoo: a server already answers\n'); return 0 }
  const ino = statSync(path).ino

  const started = Date.now()
  let served = 0
  let lastDone = Date.now()
  let busy = false
  const queue: Array<{ req: Request; sock: Socket }> = []
  const unread = new Set<Socket>()
  let timer: NodeJS.Timeout | undefined
  let stopped!: () => void
  const done = new Promise<void>((resolve) => { stopped = resolve })
  let stopping = false

  const stop = (why: string): void => {
    if (stopping) return
    stopping = true
    if (timer) clearTimeout(timer)
    // remove the socket only while it is still ours (a server started after us may hold the name)
    try { if (statSync(path).ino === ino) unlinkSync(path) } catch { /* gone */ }
    server.close()
    for (const q of queue.splice(0)) q.sock.end(frame(FRAME_DECLINE, 'stopping'))
    for (const sock of unread) sock.destroy() // connected, request not complete: nothing to answer
    o.note(`git zoo: server ${process.pid} stopped: ${why}\n`)
    stopped()
  }
  const arm = (): void => {
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => stop(`idle for ${idle / 1000} s`), idle)
  }
  o.signal?.addEventListener('abort', () => stop('signalled'), { once: true })

  const status = (): object => ({
    running: true, pid: process.pid, build, socket: path, served,
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    idleSeconds: busy ? 0 : Math.round((Date.now() - lastDone) / 1000),
    idleLimitSeconds: idle / 1000,
  })

  const fresh = (): boolean => readBuildId(o.root) === build && bundleStamp(o.root) === stamp

  async function answer(req: Request, sock: Socket): Promise<void> {
    const send = (type: number, payload: Buffer | string): void => { if (!sock.destroyed) sock.write(frame(type, payload)) }
    // status and stop are answered whatever the asker's build (status shows the server's)
    if (req.kind === 'status') { send(FRAME_JSON, JSON.stringify(status())); sock.end(frame(FRAME_EXIT, '0')); return }
    if (req.kind === 'stop') { stop('asked to stop'); sock.end(frame(FRAME_EXIT, '0')); return }
    if (req.build !== build || !fresh()) {
      // the socket is removed before the answer leaves: the node that runs the command next starts a new server
      stop('a client of another build asked; this one is stale')
      sock.end(frame(FRAME_DECLINE, 'stale'))
      return
    }
    // node options (loaders, heap limits) apply to a process of its own: such a request runs in node
    const nodeOptions = (req.env.NODE_OPTIONS ?? '') !== (process.env.NODE_OPTIONS ?? '')
    if (req.kind !== 'query' || !SERVED.has(req.argv[0] ?? '') || PROCESS_HOOKS.some((k) => req.env[k]) || nodeOptions) {
      sock.end(frame(FRAME_DECLINE, 'not served'))
      return
    }
    const aborted = new AbortController()
    const onClose = (): void => { aborted.abort(new Error('the client went away')) }
    sock.once('close', onClose)
    const env: NodeJS.ProcessEnv = { ...req.env }
    // as processIo() does for a process of its own
    env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
    const io: Io = {
      cwd: req.cwd, env,
      out: (t) => send(FRAME_OUT, t),
      err: (t) => send(FRAME_ERR, t),
      tty: req.errTty,
      outTty: req.outTty,
      host: processHost(),
      stdin: async () => '',
      killSelf: () => { process.kill(process.pid, 'SIGKILL') },
      signal: aborted.signal,
      pageOnClient: (cmd, text) => { send(FRAME_PAGER, cmd); send(FRAME_OUT, text) },
    }
    // the request's umask, for any file a query writes (the catalog's cache), as its own process would have
    const before = process.umask(req.umask)
    let code: number
    try {
      code = await o.main(req.argv, io)
    } catch (e) {
      send(FRAME_ERR, `git zoo: internal error: ${(e as Error)?.stack ?? String(e)}\nThis is a bug in git-zoo; please report it with the command you ran.\n`)
      code = 70
    } finally {
      process.umask(before)
      sock.off('close', onClose)
    }
    served++
    if (!sock.destroyed) sock.end(frame(FRAME_EXIT, String(code)))
  }

  async function drain(): Promise<void> {
    if (busy) return
    busy = true
    if (timer) clearTimeout(timer)
    try {
      while (queue.length && !stopping) {
        const { req, sock } = queue.shift()!
        await answer(req, sock)
      }
    } finally {
      busy = false
      lastDone = Date.now()
      if (!stopping) arm()
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
      if (stopping) { sock.end(frame(FRAME_DECLINE, 'stopping')); return }
      queue.push({ req, sock })
      void drain()
    }
    sock.on('data', onData)
  })
  arm()
  o.note(`git zoo: server ${process.pid} listening on ${path} (build ${build.slice(0, 12)}, idle exit after ${idle / 1000} s)\n`)
  await done
  return 0
}
