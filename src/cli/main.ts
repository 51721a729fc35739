/**
 * `git zoo` entry point: argv -> command module (imported lazily) -> exit code.
 * With bin/git-zoo.js and the CLI's own helpers (interrupt.ts: the SIGINT/SIGTERM handlers), the
 * only code that touches process.*: `processIo()` wraps the process (cwd, env, stdout/stderr,
 * stdin, TTY, its Host) into the Io every command takes, and all layers below get what they need
 * from it as arguments (spec/architecture.md). `cli()` is what bin/git-zoo.js runs.
 */
import { ZooError, UsageError, interruption, diskFull, type InterruptedError } from '../errors.js'
import { installInterrupts } from './interrupt.js'
import { parseArgs, nearest, GLOBAL_FLAGS } from './args.js'
import type { Command, Io } from './command.js'
import { processHost } from '../host.js'

/** The Io of this process: what bin/git-zoo.js hands to main(). */
export function processIo(): Io {
  // The S3 SDK warns on stderr under Node < 22 on every run; that would pollute hook and --json output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  // onnxruntime-node (eval, ONNX inspection) starts Microsoft's telemetry client in every process that
  // opens a session, which leaves mat-debug-<pid>.log and .ses in TMPDIR; off unless the user set it.
  process.env.ORT_DISABLE_TELEMETRY ??= '1'
  return {
    cwd: process.cwd(),
    env: process.env,
    out: (t) => { process.stdout.write(t) },
    err: (t) => { process.stderr.write(t) },
    tty: Boolean(process.stderr.isTTY),
    outTty: Boolean(process.stdout.isTTY),
    ...(process.stderr.isTTY && process.stderr.columns > 0 ? { columns: process.stderr.columns } : {}),
    host: processHost(),
    ...(process.stdin.isTTY && process.stderr.isTTY ? { ask: askOnTerminal } : {}),
    stdin: async () => {
      if (process.stdin.isTTY) return ''
      const chunks: Buffer[] = []
      for await (const c of process.stdin) chunks.push(c as Buffer)
      return Buffer.concat(chunks).toString('utf8')
    },
    killSelf: () => { process.kill(process.pid, 'SIGKILL') },
  }
}

/** A question on stderr, the answer read from the terminal (Io.ask). */
async function askOnTerminal(question: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises')
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try { return await rl.question(question) } finally { rl.close() }
}

/** Every command, with its one-line summary (kept here so `git zoo --help` loads no command). */
export const COMMANDS: Record<string, string> = {
  init: 'set this git repository up as a zoo (idempotent)',
  add: 'seal checkpoint files as a new version of a model and commit the promotion',
  get: 'write a model\'s files, every byte verified',
  verify: 're-hash objects of models (default: all); --repair restores damaged ones, --signatures checks promotions',
  gc: 'remove objects that nothing needs any more (locally, or from a zoo remote)',
  log: 'promotions: who promoted what, when, why, signature status',
  retire: 'retire a sealed model version, recording why',
  tag: 'give a model version a stage (prod, staging, ...), or list the stages',
  uninstall: 'remove the zoo\'s git hooks (keeps your own)',
  remote: 'add, list or remove zoo remotes (where objects live)',
  push: 'upload missing objects to the zoo remote, then push git refs',
  pull: 'git pull (local promotions that clash are renumbered), then fetch missing objects',
  fetch: 'fetch objects of models from a zoo remote',
  clone: 'git clone a zoo, set it up and fetch its objects',
  ls: 'list models',
  find: 'find models by metrics and generating factors',
  show: 'show a model card in the terminal',
  lineage: 'draw a model\'s ancestors and descendants',
  import: 'promote a whole directory of runs in one commit',
  eval: 'evaluate an ONNX model on a labelled dataset',
  agree: 'hard agreement rate of two models on a dataset',
  diff: 'compare two models: config, params, metrics and weights',
  soup: 'average compatible models (model soup, epoch averaging) into a new model',
  export: 'export a population\'s weights as a dataset (train/val/test .npz), or --format hf: one model for the Hugging Face Hub',
  ui: 'look at the zoo in a browser (read-only web app), or export it as a static site',
  server: 'the server that answers find, ls, add, get and verify without starting node: status, stop',
  serve: 'run the server (internal)',
  'hook-pre-commit': 'run by the pre-commit hook (internal)',
  'hook-pre-push': 'run by the pre-push hook (internal)',
}

const HIDDEN = new Set(['hook-pre-commit', 'hook-pre-push', 'serve'])

/** The commands a user is shown (help, manual pages, suggestions). */
export function visibleCommands(): string[] { return Object.keys(COMMANDS).filter((n) => !HIDDEN.has(n)) }

/** The flags every command takes: in `git zoo help` and each manual page's GLOBAL OPTIONS (src/cli/manpages.ts). */
export const GLOBAL_HELP = `global flags (every command):
  -q, --quiet  no summary line on success (warnings and errors are still printed)
  --json       (commands that have it) one JSON document on stdout; a failure prints
               { "error": { "code", "message" } } there too, with the same exit status
  --help       this help; \`git zoo help <command>\` prints it too
`

export function mainHelp(): string {
  const names = visibleCommands()
  const width = Math.max(...names.map((n) => n.length))
  return [
    'usage: git zoo <command> [<args>] [--help]',
    '',
    'A model zoo in a git repository: content-addressed checkpoints, sealed promotions, lineage.',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n]}`),
    '',
    GLOBAL_HELP,
    'Run `git zoo <command> --help` (or `git zoo help <command>`) for a command\'s flags and examples;',
    '`git help zoo` and `man git-zoo` show the manual.',
    '',
  ].join('\n')
}

/** Commands bundled into the entry this process runs (dist/cli/hot-<name>.js: scripts/build-cli.mjs). */
const BUNDLED = new Map<string, Command>()

/** Called by a hot entry: `name` runs the command bundled with it, not a copy imported from commands/. */
export function bundleCommand(name: string, command: Command): void { BUNDLED.set(name, command) }

/**
 * A command's module, `commands/<name>.js` beside this file: in dist/src/cli/ (tsc) and in the
 * bundle dist/cli/ (scripts/build-cli.mjs makes each command an entry point of that name), so only
 * the command that runs is loaded. A URL, not a path pattern, so the bundler leaves it to run time.
 */
export async function loadCommand(name: string): Promise<Command> {
  const bundled = BUNDLED.get(name)
  if (bundled) return bundled
  const mod = await import(new URL(`./commands/${name}.js`, import.meta.url).href) as { command: Command }
  return mod.command
}

/** Whether the user asked for JSON: `--json` before any `--`. */
function wantsJson(args: string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).includes('--json')
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0] !== undefined) {
      if (Object.hasOwn(COMMANDS, rest[0])) return main([rest[0], '--help'], io)
      return reportError(unknownCommand(rest[0]), io, undefined, false)
    }
    io.out(mainHelp())
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === 'version') {
    const { version } = await import('../version.js')
    io.out(`git-zoo ${version}\n`)
    return 0
  }
  const json = wantsJson(rest)
  try {
    if (!Object.hasOwn(COMMANDS, name)) throw unknownCommand(name)
    const command = await loadCommand(name)
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(command.help.endsWith('\n') ? command.help : command.help + '\n')
      return 0
    }
    const args = parseArgs(rest, { ...GLOBAL_FLAGS, ...command.flags }, name)
    // a testing hook: faults injected into the local store (src/cas/faulty.ts, spec/reliability.md)
    // (imported only then: hooks and small commands load no store code)
    if (io.env.GIT_ZOO_FAULTS) io = { ...io, storeFaults: (await import('../cas/faulty.js')).parseStoreFaults(io.env.GIT_ZOO_FAULTS) }
    // named crash and pause points reach the store handles through the Repo (src/cli/crash.ts)
    if (io.env.GIT_ZOO_CRASH_AT || io.env.GIT_ZOO_PAUSE_AT) io = { ...io, storeCrashPoint: (await import('./crash.js')).crashPoints(io) }
    const cio: Io = { ...io, quiet: args.flags.quiet === true, json: args.flags.json === true }
    if (command.interrupted !== undefined) io.cooperate?.()
    try {
      return await command.run(args, cio)
    } catch (err) {
      // after a signal, whatever failed failed because of it (a killed git child, an aborted read)
      const stop = interruption(err) ?? (io.signal?.aborted ? interruption(io.signal.reason) : undefined)
      if (stop) return reportInterrupted(stop, command.interrupted, err, io, json)
      throw err
    }
  } catch (err) {
    return reportError(err, io, Object.hasOwn(COMMANDS, name) && !HIDDEN.has(name) ? name : undefined, json)
  }
}

/** A usage error for a command git zoo does not have, suggesting the nearest one. */
function unknownCommand(name: string): UsageError {
  const near = nearest(name, visibleCommands())
  return new UsageError(`'${name}' is not a git zoo command; ${near ? `did you mean \`git zoo ${near}\`? ` : ''}see \`git zoo help\``,
    'E_USAGE', { command: name, ...(near ? { suggestion: near } : {}) })
}

function reportInterrupted(stop: InterruptedError, what: string | undefined, err: unknown, io: Io, json: boolean): number {
  // a progress bar may be half drawn on the terminal's line (with the ^C the terminal echoed)
  const message = `interrupted${what ? `; ${what}` : ''}`
  io.err(`${io.tty ? '\r\x1b[K' : ''}git zoo: ${message}\n`)
  if (json) printJsonError(io, stop.code, message)
  if (io.env.GIT_ZOO_DEBUG && err !== stop) io.err(`${(err as Error)?.stack ?? String(err)}\n`)
  return stop.exitCode
}

/** `--json` failures: { "error": { "code", "message" } } on stdout (the human message is on stderr). */
function printJsonError(io: Io, code: string, message: string): void {
  io.out(JSON.stringify({ error: { code, message } }, null, 2) + '\n')
}

/** Commands the server answers (src/cli/serve.ts): node answering one of them starts a server. */
const STARTS_SERVER = new Set(['find', 'ls', 'add', 'get', 'verify'])
/** Commands whose process exits as soon as they return and their output is flushed (cli). */
const PROMPT_EXIT = new Set(['add', 'get', 'verify'])

/**
 * The process entry point (bin/git-zoo.js): the real stdio, and SIGINT/SIGTERM handlers that abort
 * `io.signal` (src/cli/interrupt.ts). Returns the exit code.
 */
export async function cli(argv: string[]): Promise<number> {
  const io = processIo()
  const interrupts = installInterrupts(io.err)
  const code = await main(argv, { ...io, signal: interrupts.signal, cooperate: interrupts.cooperate })
  // an interrupted command may leave idle handles (workers, sockets) behind: do not wait for them
  if (interrupts.signal.aborted) process.exit(code)
  interrupts.dispose()
  // node answered a command the server takes itself: start the server for the next ones (spec/server.md)
  if (STARTS_SERVER.has(argv[0] ?? '') && io.env.GIT_ZOO_SERVER !== '0') {
    const [{ startServer }, { PROJECT_ROOT }] = await Promise.all([import('./front/control.js'), import('../version.js')])
    await startServer(PROJECT_ROOT, process.execPath, io.env, process.getuid?.() ?? 0).catch(() => { /* node answers the next one too */ })
  }
  // the data path's commands leave nothing behind once they return (their stores closed, their
  // workers stopped, their gits reaped; a server they started runs detached): once the output is
  // flushed, the process ends at once, without node's tear-down of its heaps and threads (~10-20 ms)
  if (PROMPT_EXIT.has(argv[0] ?? '')) {
    await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => { s.write('', () => resolve()) })))
    process.exit(code)
  }
  return code
}

/**
 * Print a failure and return its exit status. A usage error (exit 2) that does not already say
 * where to look points to the help of the command that was run (`git zoo <command> --help`), or to
 * `git zoo help` when no command was recognised. With `json`, stdout gets
 * { "error": { "code", "message" } } as well (E_IO for a failed system call, E_INTERNAL for a bug).
 */
export function reportError(err: unknown, io: Io, command?: string, json = false): number {
  const e = err as NodeJS.ErrnoException
  if (!(err instanceof ZooError) && e && typeof e === 'object' && (e.code === 'ENOSPC' || e.code === 'EDQUOT')) {
    // a full disk the code below did not anticipate: name the folder (E_DISK_FULL)
    err = diskFull(e, e.path ?? io.cwd)
  } else if (!(err instanceof ZooError) && e && typeof e === 'object' && typeof e.code === 'string' && e.syscall) {
    // a failed system call the code below did not anticipate: an operational error (exit 3)
    err = new ZooError(`${e.syscall} failed on ${e.path ?? 'a file'}: ${e.code} (${e.message})`, 'E_IO', { path: e.path ?? null, errno: e.code }, { cause: e })
  }
  if (err instanceof ZooError) {
    io.err(`git zoo: ${err.message}\n`)
    if (err.code === 'E_USAGE' && !err.message.includes('--help') && !err.message.includes('git zoo help')) {
      io.err(`run \`git zoo ${command ? `${command} --help` : 'help'}\` for usage\n`)
    }
    if (io.env.GIT_ZOO_DEBUG) io.err(`${err.code} ${JSON.stringify(err.data)}\n${err.stack}\n`)
    if (json) printJsonError(io, err.code, err.message)
    return err.exitCode
  }
  const bug = new ZooError(`internal error: ${e?.message ?? String(err)}`, 'E_INTERNAL', {}, { cause: err })
  io.err(`git zoo: internal error: ${e?.stack ?? String(err)}\nThis is a bug in git-zoo; please report it with the command you ran.\n`)
  if (json) printJsonError(io, bug.code, bug.message)
  return bug.exitCode
}
