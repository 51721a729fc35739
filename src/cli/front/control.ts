/** Asking the query server for its status or to stop (`git zoo server`), and starting it (after a query node answered). */
import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import {
  FRAME_DECLINE, FRAME_EXIT, FRAME_JSON, FrameReader, answers, buildIdPath, clientPath, encodeRequest, idleMs, socketDir, socketPath, unsafeDir,
} from './protocol.js'

export type ServerStatus =
  | { running: false; socket: string; why: string }
  | { running: true; pid: number; build: string; socket: string; served: number; uptimeSeconds: number; idleSeconds: number; idleLimitSeconds: number }

/** How long `git zoo server` waits for a server's answer to status or stop. */
const ASK_LIMIT_MS = 5000

/** Send a `status` or `stop` request; a server that does not answer is reported as not running, with why. */
export function askServer(env: NodeJS.ProcessEnv, uid: number, kind: 'status' | 'stop'): Promise<ServerStatus> {
  const dir = socketDir(env, uid)
  const path = socketPath(dir)
  if (!existsSync(path)) return Promise.resolve({ running: false, socket: path, why: `no socket at ${path}` })
  const unsafe = unsafeDir(dir, uid)
  if (unsafe) return Promise.resolve({ running: false, socket: path, why: `not used: ${unsafe}` })
  return new Promise((resolve) => {
    const s = connect(path)
    const reader = new FrameReader()
    let status: ServerStatus = { running: false, socket: path, why: 'the server closed the connection without an answer' }
    s.once('connect', () => s.write(encodeRequest({ kind, build: '', cwd: '/', outTty: false, errTty: false, umask: 0o22, columns: 0, argv: [], env: {} })))
    s.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.type === FRAME_JSON) status = JSON.parse(f.payload.toString('utf8')) as ServerStatus
        else if (f.type === FRAME_EXIT && kind === 'stop') status = { running: false, socket: path, why: 'stopped' }
        else if (f.type === FRAME_DECLINE) status = { running: false, socket: path, why: `the server declined (${f.payload.toString('utf8')})` }
      }
    })
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ running: false, socket: path, why: `${path} does not answer (${e.code}): a server that died left it; the next find replaces it` }))
    s.once('close', () => resolve(status))
    // the server answers status and stop at once, whatever request it is running: silence means it is stuck
    s.setTimeout(ASK_LIMIT_MS, () => {
      status = { running: false, socket: path, why: `${path} accepted but did not answer within ${ASK_LIMIT_MS / 1000} s` }
      s.destroy()
    })
  })
}

/**
 * After node answered a find or ls itself: start the server, detached, when the native client is
 * built (nothing else talks to it), the socket folder is safe and no server answers. The caller
 * checks GIT_ZOO_SERVER first.
 */
export async function startServer(root: string, execPath: string, env: NodeJS.ProcessEnv, uid: number): Promise<void> {
  if (!existsSync(clientPath(root)) || !existsSync(buildIdPath(root))) return
  try { idleMs(env) } catch { return } // a server that would refuse to start (`git zoo serve` says why)
  const dir = socketDir(env, uid)
  if (existsSync(dir) && unsafeDir(dir, uid)) return
  if (await answers(socketPath(dir))) return
  const { spawn } = await import('node:child_process')
  // node options (a loader, a heap limit) are the starting shell's, not every shell's: the server runs without
  // them, and requests that set NODE_OPTIONS run in node (src/cli/serve.ts)
  const { NODE_OPTIONS: _options, ...serverEnv } = env
  const child = spawn(execPath, [join(root, 'bin', 'git-zoo.js'), 'serve'], { detached: true, stdio: 'ignore', cwd: '/', env: serverEnv })
  child.on('error', () => { /* no server then; node answers */ })
  child.unref()
}
