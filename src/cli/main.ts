/**
 * `git zoo` entry point: argv -> command module (imported lazily) -> exit code.
 * With bin/git-zoo.js and the CLI's own helpers (interrupt.ts: the SIGINT/SIGTERM handlers), the
 * only code that touches process.*: `processIo()` wraps the process (cwd, env, stdout/stderr,
 * stdin, TTY, its Host) into the Io every command takes, and all layers below get what they need
 * from it as arguments (spec/architecture.md). `cli()` is what bin/git-zoo.js runs.
 */
import { ZooError, UsageError, interruption, type InterruptedError } from '../errors.js'
import { installInterrupts } from './interrupt.js'
import { parseArgs } from './args.js'
import type { Command, Io } from './command.js'
import { processHost } from '../host.js'

/** The Io of this process: what bin/git-zoo.js hands to main(). */
export function processIo(): Io {
  // The S3 SDK warns on stderr under Node < 22 on every run; that would pollute hook and --json output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  return {
    cwd: process.cwd(),
    env: process.env,
    out: (t) => { process.stdout.write(t) },
    err: (t) => { process.stderr.write(t) },
    tty: Boolean(process.stderr.isTTY),
    host: processHost(),
    stdin: async () => {
      if (process.stdin.isTTY) return ''
      const chunks: Buffer[] = []
      for await (const c of process.stdin) chunks.push(c as Buffer)
      return Buffer.concat(chunks).toString('utf8')
    },
    killSelf: () => { process.kill(process.pid, 'SIGKILL') },
  }
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
  'hook-pre-commit': 'run by the pre-commit hook (internal)',
  'hook-pre-push': 'run by the pre-push hook (internal)',
}

const HIDDEN = new Set(['hook-pre-commit', 'hook-pre-push'])

export function mainHelp(): string {
  const names = Object.keys(COMMANDS).filter((n) => !HIDDEN.has(n))
  const width = Math.max(...names.map((n) => n.length))
  return [
    'usage: git zoo <command> [<args>] [--help]',
    '',
    'A model zoo in a git repository: content-addressed checkpoints, sealed promotions, lineage.',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n]}`),
    '',
    'Run `git zoo <command> --help` for a command\'s flags and examples.',
    '',
  ].join('\n')
}

export async function loadCommand(name: string): Promise<Command> {
  const mod = await import(`./commands/${name}.js`) as { command: Command }
  return mod.command
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0] && Object.hasOwn(COMMANDS, rest[0])) return main([rest[0], '--help'], io)
    io.out(mainHelp())
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === 'version') {
    const { version } = await import('../version.js')
    io.out(`git-zoo ${version}\n`)
    return 0
  }
  try {
    if (!Object.hasOwn(COMMANDS, name)) {
      throw new UsageError(`'${name}' is not a git zoo command; see \`git zoo --help\``, 'E_USAGE', { command: name })
    }
    const command = await loadCommand(name)
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(command.help.endsWith('\n') ? command.help : command.help + '\n')
      return 0
    }
    const args = parseArgs(rest, command.flags, name)
    if (command.interrupted !== undefined) io.cooperate?.()
    try {
      return await command.run(args, io)
    } catch (err) {
      // after a signal, whatever failed failed because of it (a killed git child, an aborted read)
      const stop = interruption(err) ?? (io.signal?.aborted ? interruption(io.signal.reason) : undefined)
      if (stop) return reportInterrupted(stop, command.interrupted, err, io)
      throw err
    }
  } catch (err) {
    return reportError(err, io, Object.hasOwn(COMMANDS, name) && !HIDDEN.has(name) ? name : undefined)
  }
}

function reportInterrupted(stop: InterruptedError, what: string | undefined, err: unknown, io: Io): number {
  // a progress bar may be half drawn on the terminal's line (with the ^C the terminal echoed)
  io.err(`${io.tty ? '\r\x1b[K' : ''}git zoo: interrupted${what ? `; ${what}` : ''}\n`)
  if (io.env.GIT_ZOO_DEBUG && err !== stop) io.err(`${(err as Error)?.stack ?? String(err)}\n`)
  return stop.exitCode
}

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
  return code
}

/**
 * Print a failure and return its exit status. A usage error (exit 2) that does not already say
 * where to look points to the help of the command that was run (`git zoo <command> --help`), or to
 * `git zoo --help` when no command was recognised.
 */
export function reportError(err: unknown, io: Io, command?: string): number {
  if (err instanceof ZooError) {
    io.err(`git zoo: ${err.message}\n`)
    if (err.code === 'E_USAGE' && !err.message.includes('--help')) {
      io.err(`run \`git zoo ${command ? `${command} ` : ''}--help\` for usage\n`)
    }
    if (io.env.GIT_ZOO_DEBUG) io.err(`${err.code} ${JSON.stringify(err.data)}\n${err.stack}\n`)
    return err.exitCode
  }
  const e = err as NodeJS.ErrnoException
  if (e && typeof e === 'object' && typeof e.code === 'string' && e.syscall) {
    io.err(`git zoo: ${e.syscall} failed on ${e.path ?? 'a file'}: ${e.code} (${e.message})\n`)
    return 3
  }
  io.err(`git zoo: internal error: ${e?.stack ?? String(err)}\nThis is a bug in git-zoo; please report it with the command you ran.\n`)
  return 70
}
