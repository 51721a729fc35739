/**
 * What every command module in src/cli/commands/ exports. main.ts imports a command's module only
 * when that command runs, so hooks and small commands start fast.
 */
import type { FlagSpecs, Parsed } from './args.js'
import type { Host } from '../host.js'
import type { StoreFault } from '../cas/faulty.js'

export interface Io {
  /** The working directory the command was started in. */
  cwd: string
  env: NodeJS.ProcessEnv
  out: (text: string) => void
  err: (text: string) => void
  /** Whether stderr is a TTY (progress bars only then). */
  tty: boolean
  /** `-q/--quiet` was given: no summary line on success (src/cli/output.ts summary()). */
  quiet?: boolean
  /** `--json` was given: stdout holds one JSON document, so no summary line either. */
  json?: boolean
  /** Whether stdout is a TTY (long listings go through the pager only then: src/cli/pager.ts). */
  outTty?: boolean
  /** The terminal's width in columns when stderr is a TTY (a served request: the client's terminal). */
  columns?: number
  /**
   * Aborted with an InterruptedError when SIGINT or SIGTERM arrives (src/cli/interrupt.ts). Commands
   * that set `interrupted` pass it down to the domain code that loops; absent in in-process tests.
   */
  signal?: AbortSignal
  /** Called by main before an interruptible command runs: on a signal, wait for it to unwind. */
  cooperate?: () => void
  /** The running process (pid, host name, node version), for locks and recorded environments. */
  host: Host
  /**
   * Ask the person at the terminal a question (on stderr) and return their answer; absent when stdin
   * or stderr is not a terminal (scripts, CI, tests), where commands must not wait for anyone.
   */
  ask?: (question: string) => Promise<string>
  /** Standard input as text ('' when it is a terminal); the pre-push hook reads git's ref lines. */
  stdin: () => Promise<string>
  /** Kill this process at once with SIGKILL, as a power cut would (named crash points only). */
  killSelf: () => void
  /**
   * Set by the query server (src/cli/serve.ts, spec/server.md): the pager runs in the client, on the
   * user's terminal, with `text` as its input (src/cli/pager.ts calls this instead of spawning it).
   */
  pageOnClient?: (cmd: string, text: string) => void
  /**
   * Set by the query server: the request runs in the server's process, whose environment (the AWS
   * credential chain, say) is not the asker's. Work that would reach the network calls it before any
   * output; it throws, the server declines the request and the client runs it in node.
   */
  declineServed?: (why: string) => never
  /** Store faults to inject (GIT_ZOO_FAULTS, a testing hook: src/cas/faulty.ts); Repo.open takes them from here. */
  storeFaults?: StoreFault[]
  /** Crash and pause points for the store handles (GIT_ZOO_CRASH_AT / GIT_ZOO_PAUSE_AT): Repo.open takes them from here. */
  storeCrashPoint?: (name: string) => void | Promise<void>
}

export interface Command {
  /** Full help text shown by --help (usage line, description, flags, examples). */
  help: string
  flags: FlagSpecs
  /**
   * Set by commands that honour `io.signal`: what to tell the user after an interruption (after
   * "git zoo: interrupted; "), e.g. "nothing was committed, run the same command again to resume".
   * Commands without it are stopped at once on a signal (they write nothing that needs cleaning).
   */
  interrupted?: string
  /** Returns the exit code. Throws ZooError for failures (mapped to exit codes by main). */
  run(args: Parsed, io: Io): Promise<number>
}
