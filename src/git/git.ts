/**
 * The one place that starts git (spec/architecture.md, "Card packages"). Every variant takes the
 * environment from its caller, so the user's config, signing keys, credential helpers and
 * transports (GIT_SSH_COMMAND, GIT_ASKPASS, GIT_CONFIG_GLOBAL ...) apply and nothing here reads
 * process.env:
 *   - runGit / git: run to completion, output buffered (most reads and writes);
 *   - runGitSync: the same, synchronously (the pre-commit hook's hot path and the catalog's
 *     rare fallback, which run before anything else could overlap);
 *   - spawnGit: a long-lived child whose stdout is streamed (`cat-file --batch`, blob heads);
 *   - runGitRemote: the operations that face a remote (clone, fetch, pull, push), with git's
 *     `--progress` lines turned into progress events and kept out of the output shown afterwards.
 */
import { execFile, spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process'
import { resolve } from 'node:path'
import { constants as osConstants } from 'node:os'
import type { Readable, Writable } from 'node:stream'
import { ZooError, UsageError } from '../errors.js'

export type GitEnv = NodeJS.ProcessEnv

export interface GitResult { stdout: string; stderr: string; code: number }

export interface RunOptions {
  env: GitEnv
  input?: string | Buffer
  /** Largest stdout accepted (default 1 GiB); more is an E_GIT error. */
  maxBuffer?: number
  /**
   * An interruption (spec/teams.md): its abort sends git SIGTERM (git removes its lock files) and,
   * once git has exited, the run rejects with the signal's reason.
   */
  signal?: AbortSignal
}

/** The exit code a shell reports for a git killed by `signal`: 128 + its number. */
function signalCode(signal: NodeJS.Signals | null | undefined): number {
  return 128 + (signal ? osConstants.signals[signal] ?? 0 : 0)
}

const MAX_BUFFER = 1 << 30

function missing(err: Error): ZooError {
  return new ZooError(`could not run git: ${err.message}; is git installed and on PATH?`, 'E_GIT_MISSING', {}, { cause: err })
}

/** The error for a git run that exited non-zero: the command and git's own message. */
export function gitFailed(args: readonly string[], r: GitResult): ZooError {
  return new ZooError(`\`git ${args.join(' ')}\` failed: ${r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`}`, 'E_GIT', { args: [...args], code: r.code })
}

/**
 * Run git and return its output; never throws for a non-zero exit (see `git()` for that). A git
 * killed by a signal from elsewhere (Ctrl-C reaches the whole process group) reports code 128 + the
 * signal's number, as a shell would.
 */
export function runGit(cwd: string, args: readonly string[], opts: RunOptions): Promise<GitResult> {
  return new Promise((resolvePromise, reject) => {
    if (opts.signal?.aborted) { reject(opts.signal.reason); return }
    const child = execFile('git', args, { cwd, env: opts.env, maxBuffer: opts.maxBuffer ?? MAX_BUFFER, encoding: 'utf8', ...(opts.signal ? { signal: opts.signal } : {}) },
      (err, stdout, stderr) => {
        if (err && opts.signal?.aborted) { reject(opts.signal.reason); return }
        const killedBy = (err as { signal?: NodeJS.Signals | null } | null)?.signal
        if (err && killedBy) { resolvePromise({ stdout, stderr, code: signalCode(killedBy) }); return }
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          if ((err as { code?: unknown }).code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
            reject(new ZooError(`\`git ${args.join(' ')}\` printed more than ${opts.maxBuffer ?? MAX_BUFFER} bytes`, 'E_GIT', { args: [...args] }, { cause: err }))
          } else reject(missing(err))
          return
        }
        resolvePromise({ stdout, stderr, code: err ? (err as { code: number }).code : 0 })
      })
    child.stdin!.on('error', () => { /* git may exit before reading all of its input; the exit code tells */ })
    child.stdin!.end(opts.input)
  })
}

/** Run git; throw a ZooError naming the command and git's message when it fails. */
export async function git(cwd: string, args: readonly string[], opts: RunOptions): Promise<string> {
  const r = await runGit(cwd, args, opts)
  if (r.code !== 0) throw gitFailed(args, r)
  return r.stdout
}

/** runGit, synchronously: for the pre-commit hook's single run and the catalog's fallback. */
export function runGitSync(cwd: string, args: readonly string[], opts: RunOptions): GitResult {
  const r = spawnSync('git', args, { cwd, env: opts.env, input: opts.input, encoding: 'utf8', maxBuffer: opts.maxBuffer ?? MAX_BUFFER })
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOBUFS') {
      throw new ZooError(`\`git ${args.join(' ')}\` printed more than ${opts.maxBuffer ?? MAX_BUFFER} bytes`, 'E_GIT', { args: [...args] }, { cause: r.error })
    }
    throw missing(r.error)
  }
  return { stdout: r.stdout, stderr: r.stderr, code: r.status ?? 128 }
}

export type GitChild = ChildProcessByStdio<Writable, Readable, Readable>

/**
 * Start a git that streams: stdin and stdout are pipes the caller drives, stderr is collected and
 * handed to `onExit`. A git that cannot start reports through `onError` (with E_GIT_MISSING).
 */
export function spawnGit(cwd: string, args: readonly string[], opts: { env: GitEnv; onError: (err: ZooError) => void; onExit?: (code: number | null, stderr: string) => void }): GitChild {
  const child = spawn('git', args, { cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < 65536) stderr += d.toString() })
  child.on('error', (err) => opts.onError(missing(err)))
  child.on('close', (code) => opts.onExit?.(code, stderr))
  child.stdin.on('error', () => { /* reported through close */ })
  return child
}

export interface RepoInfo {
  /** The working tree's top folder. */
  root: string
  /** The repository's git dir (shared by worktrees: the common dir). */
  commonDir: string
}

/**
 * Each repository's object format (sha1 or sha256) by its common dir, fixed when it was created:
 * findRepo learns it with the same git that finds the repository (src/zoo/commit.ts needs it for
 * blob ids), so no git process asks again.
 */
const objectFormats = new Map<string, string>()

/** The object format findRepo learned for the repository at `commonDir`; undefined when it did not open it. */
export function knownObjectFormat(commonDir: string): string | undefined { return objectFormats.get(commonDir) }

export async function findRepo(cwd: string, env: GitEnv): Promise<RepoInfo> {
  const r = await runGit(cwd, ['rev-parse', '--show-object-format', '--show-toplevel', '--git-common-dir'], { env })
  if (r.code !== 0) {
    throw new UsageError(`not inside a git repository (${cwd}); run \`git init\` first, or cd into your repository`, 'E_NOT_A_REPO', { cwd })
  }
  const [format, root, common] = r.stdout.trim().split('\n')
  if (!root || common === undefined) throw new UsageError('this is a bare repository; git zoo needs a working tree', 'E_NOT_A_REPO', { cwd })
  const commonDir = resolve(root, common)
  if (format === 'sha1' || format === 'sha256') objectFormats.set(commonDir, format)
  return { root, commonDir }
}

// ---- operations that face a remote ----

/** One of git's progress lines: `Receiving objects:  45% (450/1000), 1.2 MiB | 3 MiB/s`. */
export interface GitProgress {
  /** What git is doing: "Receiving objects", "Resolving deltas", "Writing objects" ... */
  stage: string
  percent: number
  done: number
  total: number
}

/** The commands that take `--progress` (git prints progress only to a terminal without it). */
const PROGRESS_COMMANDS = new Set(['clone', 'fetch', 'pull', 'push'])

const PROGRESS_LINE = /^(?:remote: )?([A-Za-z][A-Za-z ]*?):\s+(\d{1,3})% \((\d+)\/(\d+)\)/

/** Parse one progress line; null for anything else. */
export function parseGitProgress(line: string): GitProgress | null {
  const m = PROGRESS_LINE.exec(line)
  if (!m) return null
  return { stage: m[1]!, percent: Number(m[2]), done: Number(m[3]), total: Number(m[4]) }
}

/**
 * Split git's stderr into progress updates (lines git rewrites in place with \r) and the lines to
 * keep. Feed chunks to `push`; `end()` returns the kept text.
 */
export class ProgressSplitter {
  private pending = ''
  private kept = ''
  constructor(private readonly onProgress: (p: GitProgress) => void) {}

  push(chunk: string): void {
    this.pending += chunk
    for (;;) {
      const i = this.pending.search(/[\r\n]/)
      if (i === -1) return
      const line = this.pending.slice(0, i)
      const sep = this.pending[i]
      this.pending = this.pending.slice(i + 1)
      this.line(line, sep === '\n')
    }
  }

  end(): string {
    if (this.pending) this.line(this.pending, false)
    this.pending = ''
    return this.kept
  }

  private line(line: string, final: boolean): void {
    const p = parseGitProgress(line)
    if (p) { this.onProgress(p); return }
    // a progress line ends with ", done." on its last rewrite; other lines are git's messages
    if (/^(?:remote: )?[A-Za-z][A-Za-z ]*:\s+\d{1,3}% \(/.test(line) || /^(?:remote: )?(?:Enumerating|Counting|Compressing) objects: \d+(?:, done\.)?\s*$/.test(line)) return
    if (line.trim() === '' && !final) return
    this.kept += line + '\n'
  }
}

export interface RemoteRunOptions {
  env: GitEnv
  /** Progress events; when given, `--progress` is passed so git reports even without a terminal. */
  onProgress?: (p: GitProgress) => void
  /** As in RunOptions: an abort sends git SIGTERM and, once it has exited, rejects with the reason. */
  signal?: AbortSignal
}

/**
 * Run clone, fetch, pull or push. Output is buffered like runGit's, with progress lines removed
 * from stderr (they went to `onProgress`).
 */
export function runGitRemote(cwd: string, args: readonly string[], opts: RemoteRunOptions): Promise<GitResult> {
  const [sub, ...rest] = args
  if (sub === undefined || !PROGRESS_COMMANDS.has(sub)) throw new Error(`runGitRemote runs clone, fetch, pull or push, not ${sub}`)
  const full = opts.onProgress ? [sub, '--progress', ...rest] : [...args]
  return new Promise((resolvePromise, reject) => {
    if (opts.signal?.aborted) { reject(opts.signal.reason); return }
    const child = spawn('git', full, { cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.signal ? { signal: opts.signal } : {}) })
    const split = new ProgressSplitter(opts.onProgress ?? (() => {}))
    const out: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d: string) => split.push(d))
    // an abort makes spawn emit an AbortError 'error' too; the 'close' after git's exit answers
    child.on('error', (err) => { if (!opts.signal?.aborted) reject(missing(err)) })
    child.on('close', (code, signal) => {
      if (opts.signal?.aborted) { reject(opts.signal.reason); return }
      resolvePromise({ stdout: Buffer.concat(out).toString('utf8'), stderr: split.end(), code: code ?? (signal ? signalCode(signal) : 1) })
    })
  })
}

// ---- a commit's objects in one pack ----

/** A path as fast-import reads it: C-quoted when it holds a newline, a backslash or a double quote, or starts with one. */
function fastImportPath(path: string): string {
  if (!/[\n"\\]/.test(path)) return path
  return `"${path.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`
}

/**
 * Write `files` (new blobs at their paths) on top of `base`'s tree (a commit id, or null for an
 * empty tree) with one `git fast-import`: the blobs and every tree on their paths go into one pack
 * (loose objects below `fastimport.unpackLimit`), and git reads only the trees on those paths, not
 * the rest of the commit. fast-import builds trees only for a commit: it makes a scratch commit on
 * `scratchRef` (the caller deletes that ref); the new root tree's id is returned.
 */
export async function writeTreeOver(cwd: string, base: string | null, files: ReadonlyArray<{ path: string; data: Uint8Array }>,
                                    scratchRef: string, opts: { env: GitEnv; signal?: AbortSignal }): Promise<string> {
  // fast-import deltifies a blob against the blob before it only: files of one name go together
  // (manifest after manifest, card after card), as `git repack` would pair them; in the order given,
  // its deltas paired unlike files and a later repack kept them (5,000 models: 14.1 MB packed, not 6 MB)
  const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1)
  const order = files.map((f, i) => ({ f, i, name: baseName(f.path) })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.i - b.i))
  const parts: Uint8Array[] = []
  for (const { f, i } of order) parts.push(Buffer.from(`blob\nmark :${i + 1}\ndata ${f.data.length}\n`), f.data, Buffer.from('\n'))
  const mark = files.length + 1
  let commit = `reset ${scratchRef}\ncommit ${scratchRef}\nmark :${mark}\ncommitter git-zoo <git-zoo> 0 +0000\ndata 0\n${base ? `from ${base}\n` : ''}`
  files.forEach((f, i) => { commit += `M 100644 :${i + 1} ${fastImportPath(f.path)}\n` })
  parts.push(Buffer.from(`${commit}\nls :${mark} ""\ndone\n`))
  const args = ['fast-import', '--quiet', '--done', '--force']
  const r = await runGit(cwd, args, { env: opts.env, input: Buffer.concat(parts), ...(opts.signal ? { signal: opts.signal } : {}) })
  if (r.code !== 0) throw gitFailed(args, r)
  const m = /^040000 tree ([0-9a-f]{40,64})\t/m.exec(r.stdout)
  if (!m) throw new ZooError(`\`git fast-import\` did not name the tree it wrote: ${r.stdout.trim() || r.stderr.trim()}`, 'E_GIT', { args })
  return m[1]!
}
