/**
 * Helpers for printing, the CLI's output conventions (spec/cli.md, "Output"):
 *   - `--json`: exactly one JSON document on stdout (printJson); a failure prints
 *     { "error": { "code", "message" } } there instead (main.ts reportError);
 *   - a command that changes something ends with one summary line on stderr (summary), like
 *     `git commit` does, whether or not stderr is a terminal; `-q/--quiet` silences it;
 *   - progress bars only on a terminal (Progress).
 */
import type { Io } from './command.js'

/** The one line a command prints when it succeeded (stderr; nothing with --quiet or --json). */
export function summary(io: Io, line: string): void {
  if (!io.quiet && !io.json) io.err(line.endsWith('\n') ? line : line + '\n')
}

export function printJson(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + '\n')
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`
}

/** A progress bar drawn on stderr only when it is a TTY and the work is long. */
export class Progress {
  private last = 0
  private readonly start = Date.now()
  /** `format` writes the amounts (default: bytes). */
  constructor(private readonly io: Io, public label: string, public total: number, private readonly format: (n: number) => string = humanBytes) {}
  update(done: number): void {
    if (!this.io.tty) return
    const now = Date.now()
    if (now - this.start < 500 || now - this.last < 100) return
    this.last = now
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0
    const width = 30
    const filled = Math.round(frac * width)
    this.io.err(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${this.format(done)}/${this.format(this.total)}\x1b[K`)
  }
  done(): void {
    if (this.io.tty && this.last !== 0) this.io.err('\r\x1b[K')
  }
}

/**
 * After a promotion commit: a one-line warning when git did not sign it (every promotion is meant
 * to be a signed commit; `git zoo init --sign` sets that up). Not silenced by --quiet; not printed
 * with --json, whose document says it (`add`: "signed").
 */
export async function warnIfUnsigned(io: Io, repo: import('../repo.js').Repo, commit: string): Promise<void> {
  if (io.json) return // the JSON says it (add: "signed")
  const { isSignedCommit } = await import('../promote/signing.js')
  if (!(await isSignedCommit(repo, commit))) io.err(`git zoo: warning: promotion ${commit.slice(0, 12)} is not signed; \`git zoo init --sign\` sets up signed promotions\n`)
}
