/**
 * What every command module in src/cli/commands/ exports. main.ts imports a command's module only
 * when that command runs, so hooks and small commands start fast.
 */
import type { FlagSpecs, Parsed } from './args.js'

export interface Io {
  /** The working directory the command was started in. */
  cwd: string
  env: NodeJS.ProcessEnv
  out: (text: string) => void
  err: (text: string) => void
  /** Whether stderr is a TTY (progress bars only then). */
  tty: boolean
}

export interface Command {
  /** One line: what it does. */
  summary: string
  /** Full help text shown by --help (usage line, description, flags, examples). */
  help: string
  flags: FlagSpecs
  /** Returns the exit code. Throws ZooError for failures (mapped to exit codes by main). */
  run(args: Parsed, io: Io): Promise<number>
}
