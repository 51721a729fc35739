/**
 * Named crash points for reliability tests: `GIT_ZOO_CRASH_AT=<point>` (or a comma-separated list)
 * kills the process with SIGKILL when the command reaches that step, the way a power cut or
 * `kill -9` would. Domain code never touches the process: it takes a `crashPoint(name)` callback,
 * and the CLI passes the one made here. The points are listed in spec/reliability.md.
 */
import type { Io } from './command.js'

export type CrashPoint = (name: string) => void

export function crashPoints(io: Io): CrashPoint {
  const wanted = new Set((io.env.GIT_ZOO_CRASH_AT ?? '').split(',').map((s) => s.trim()).filter(Boolean))
  if (wanted.size === 0) return () => {}
  return (name) => {
    if (!wanted.has(name)) return
    io.err(`git zoo: crash point ${name}\n`)
    io.killSelf()
  }
}
