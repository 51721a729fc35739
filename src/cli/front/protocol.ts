/**
 * The server's wire format and its socket's place (spec/server.md). One request per connection,
 * then frames until the exit frame; the native client (src/cli/front/git-zoo.c) and
 * `git zoo server status|stop` speak it, the server (src/cli/serve.ts) answers it.
 *
 * Request: a 4-byte big-endian length, then that many bytes of NUL-terminated strings:
 *   kind ("query": find and ls; "run": add, get and verify, started in two steps; "status"; "stop"),
 *   build id, cwd, stdout is a TTY ("0"/"1"), stderr is a TTY, umask (octal), the terminal's width
 *   (columns of stderr when it is a TTY, else "0"), argc, the argc arguments, then every environment
 *   entry ("NAME=value") to the end.
 * Frames (server to client): one type byte, a 4-byte big-endian payload length, the payload:
 *   'o' bytes for stdout, 'e' bytes for stderr, 'j' a JSON document (status), 'x' the exit code
 *   (decimal) and the end, 'p' a pager command: the client runs it (sh -c, LESS=FRX and LV=-c
 *   unless set) and the stdout frames that follow are its input (a second 'p' is ignored), 's' declined (stale build,
 *   or a request the server does not take): the client runs the command through node instead, 'b' the server
 *   began the request (sent before anything else of a request it takes; a client that gets no first frame
 *   within GIT_ZOO_SERVER_WAIT ms, default 500, runs node instead: the server is busy).
 * Control bytes (client to server, after the request; single bytes, no frame):
 *   'g' go-ahead: a "run" request starts only when the client answers its 'b' with 'g'. A client that
 *   gave up waiting closes instead, and the server drops the request: a command that writes never runs
 *   twice. A server that gets no 'g' within GO_AHEAD_MS sends 's' and drops the request.
 *   'i' / 't' the client got SIGINT / SIGTERM: the server aborts the request's io.signal with the
 *   InterruptedError node's own handlers use (src/cli/interrupt.ts).
 * A malformed request (a umask that is not octal, too few fields) is refused: the connection is closed.
 */
import { lstatSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { UsageError } from '../../errors.js'

export const FRAME_OUT = 0x6f // 'o'
export const FRAME_ERR = 0x65 // 'e'
export const FRAME_JSON = 0x6a // 'j'
export const FRAME_EXIT = 0x78 // 'x'
export const FRAME_DECLINE = 0x73 // 's'
export const FRAME_PAGER = 0x70 // 'p'
export const FRAME_BEGIN = 0x62 // 'b'
/** Control bytes from the client: the go-ahead of a "run" request, and the signals it got. */
export const CTL_GO = 0x67 // 'g'
export const CTL_SIGINT = 0x69 // 'i'
export const CTL_SIGTERM = 0x74 // 't'
/** How long the server waits for the client's go-ahead after its 'b' before it drops the request. */
export const GO_AHEAD_MS = 10_000

/** Requests larger than this are refused (an environment of 16 MiB is not a shell's). */
export const MAX_REQUEST = 16 * 1024 * 1024

export interface Request {
  kind: string
  build: string
  cwd: string
  outTty: boolean
  errTty: boolean
  umask: number
  /** The terminal's width when stderr is a TTY, else 0. */
  columns: number
  argv: string[]
  env: Record<string, string>
}

/** The per-user folder holding the socket: $XDG_RUNTIME_DIR/git-zoo, else /tmp/git-zoo-<uid>. */
export function socketDir(env: NodeJS.ProcessEnv, uid: number): string {
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'git-zoo') : join('/tmp', `git-zoo-${uid}`)
}

export function socketPath(dir: string): string { return join(dir, 'serve.sock') }

/** dist/front/build-id: written by scripts/build-front.mjs with the client, which has it compiled in. */
export function buildIdPath(root: string): string { return join(root, 'dist', 'front', 'build-id') }
/** The build id of the installation at `root` (undefined when no client is built). */
export function readBuildId(root: string): string | undefined {
  try { return readFileSync(buildIdPath(root), 'utf8').trim() || undefined } catch { return undefined }
}
/** The native client built by scripts/build-front.mjs. */
export function clientPath(root: string): string { return join(root, 'dist', 'front', 'git-zoo') }

/** Whether something answers on the socket at `path`. */
export function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/**
 * Why `dir` must not be used (undefined when it is safe): it must be a real folder (not a link)
 * owned by `uid`, readable and writable by nobody else (mode 0700), the same test the client makes.
 */
export function unsafeDir(dir: string, uid: number): string | undefined {
  let st
  try { st = lstatSync(dir) } catch (e) { return `${dir} cannot be read (${(e as NodeJS.ErrnoException).code})` }
  if (!st.isDirectory()) return `${dir} is not a folder`
  if (st.uid !== uid) return `${dir} belongs to uid ${st.uid}, not ${uid}`
  if ((st.mode & 0o777) !== 0o700) return `${dir} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, not 0700`
  return undefined
}

export function encodeRequest(r: Request): Buffer {
  const fields = [r.kind, r.build, r.cwd, r.outTty ? '1' : '0', r.errTty ? '1' : '0', r.umask.toString(8), String(r.columns), String(r.argv.length), ...r.argv,
    ...Object.entries(r.env).map(([k, v]) => `${k}=${v}`)]
  const body = Buffer.from(fields.map((f) => f + '\0').join(''), 'utf8')
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length)
  return Buffer.concat([head, body])
}

/** A request from its body (without the length); throws on a malformed one. */
export function decodeRequest(body: Buffer): Request {
  const parts = body.toString('utf8').split('\0')
  if (parts.pop() !== '') throw new Error('the request does not end with a NUL')
  const [kind, build, cwd, outTty, errTty, umask, columns, argc] = parts
  const n = Number(argc)
  if (umask === undefined || !/^[0-7]{1,4}$/.test(umask)) throw new Error('the umask is not an octal number')
  if (columns === undefined || !/^\d{1,5}$/.test(columns)) throw new Error('the terminal width is not a number')
  if (kind === undefined || !Number.isInteger(n) || n < 0 || parts.length < 8 + n) throw new Error('the request is cut short')
  const env: Record<string, string> = {}
  for (const e of parts.slice(8 + n)) {
    const eq = e.indexOf('=')
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1)
  }
  return { kind, build: build!, cwd: cwd!, outTty: outTty === '1', errTty: errTty === '1', umask: parseInt(umask, 8), columns: Number(columns), argv: parts.slice(8, 8 + n), env }
}

export function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  const head = Buffer.alloc(5)
  head[0] = type
  head.writeUInt32BE(body.length, 1)
  return Buffer.concat([head, body])
}

/** Splits a byte stream into frames as it arrives. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0)
  push(chunk: Buffer): Array<{ type: number; payload: Buffer }> {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    const out: Array<{ type: number; payload: Buffer }> = []
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1)
      if (this.buf.length < 5 + len) break
      out.push({ type: this.buf[0]!, payload: this.buf.subarray(5, 5 + len) })
      this.buf = this.buf.subarray(5 + len)
    }
    return out
  }
}

/** The server's idle time before it exits, unless GIT_ZOO_SERVER_IDLE says otherwise. */
export const DEFAULT_IDLE_SECONDS = 600

/** The idle time in ms from GIT_ZOO_SERVER_IDLE (seconds), default 10 minutes. */
export function idleMs(env: NodeJS.ProcessEnv): number {
  const v = env.GIT_ZOO_SERVER_IDLE
  if (v === undefined || v === '') return DEFAULT_IDLE_SECONDS * 1000
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`GIT_ZOO_SERVER_IDLE must be a number of seconds above 0, not ${JSON.stringify(v)}`, 'E_USAGE')
  return n * 1000
}
