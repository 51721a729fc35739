/**
 * SIGINT (Ctrl-C) and SIGTERM: one AbortController per process, aborted with an InterruptedError.
 *
 * - A command that declares `interrupted` (see command.ts) gets the signal through `io.signal`, stops
 *   at its next check, runs its `finally` blocks (temp files removed, the store's open pack indexed,
 *   the work tree rolled back) and exits 130 (SIGINT) or 143 (SIGTERM) with a one-line message.
 * - Any other command is stopped at once with the same message and exit code: they only read, or
 *   write single files atomically, so nothing of theirs needs cleaning up.
 * - If an interruptible command has not unwound within `graceMs` (5 s, or what it asked for with
 *   longerGrace), or a second signal arrives (a
 *   second or more after the first: git forwards the terminal's Ctrl-C, so `git zoo` receives it
 *   twice at once), the process exits at once (what is left is what `kill -9` would leave: the next
 *   run or gc cleans it).
 * When git runs us as `git zoo`, the terminal's Ctrl-C reaches git and us together; git forwards the
 * signal, waits for us, then re-raises it on itself. Exiting promptly with the conventional code
 * is all git needs (spec/teams.md, "Interruptions").
 */
import { InterruptedError } from '../errors.js'

export interface Interrupts {
  signal: AbortSignal
  /** The running command honours the signal: give it time to clean up. */
  cooperate(): void
  /** Remove the handlers (after the command finished). */
  dispose(): void
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const
/** A signal this soon after the first is the same interruption delivered twice, not a second one. */
const REPEAT_MS = 1000
/** How long an interruptible command has to unwind by default. */
const GRACE_MS = 5000
/** A longer grace a running command asked for (longerGrace): the process's, as its handlers are. */
let asked = 0

/**
 * The running command may need up to `ms` to unwind after a signal (`git zoo serve` lets the request it
 * is answering unwind and its answer reach the client, src/cli/serve.ts FINISH_MS): the handlers wait
 * that long, not the default, before they exit at once. A grace passed to installInterrupts still wins.
 */
export function longerGrace(ms: number): void { asked = Math.max(asked, ms) }

export function installInterrupts(err: (text: string) => void, opts: { graceMs?: number } = {}): Interrupts {
  const controller = new AbortController()
  let cooperative = false
  const exitNow = (reason: InterruptedError, why: string): never => {
    err(`git zoo: interrupted${why}\n`)
    process.exit(reason.exitCode)
  }
  let first = 0
  const handler = (sig: NodeJS.Signals): void => {
    const reason = new InterruptedError(sig === 'SIGTERM' ? 'SIGTERM' : 'SIGINT')
    if (controller.signal.aborted) {
      // `git zoo` under git gets Ctrl-C twice at once: from the terminal and forwarded by git
      if (Date.now() - first < REPEAT_MS) return
      exitNow(reason, ' again; stopping at once (run `git zoo gc` later to drop what was left half-written)')
    }
    first = Date.now()
    controller.abort(reason)
    if (!cooperative) exitNow(reason, '')
    const grace = opts.graceMs ?? Math.max(GRACE_MS, asked)
    setTimeout(() => exitNow(reason, `; cleaning up took over ${grace / 1000} s, stopping at once`), grace).unref()
  }
  for (const s of SIGNALS) process.on(s, handler)
  return {
    signal: controller.signal,
    cooperate: () => { cooperative = true },
    dispose: () => { for (const s of SIGNALS) process.off(s, handler) },
  }
}
