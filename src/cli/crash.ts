/**
 * Named crash and pause points for reliability tests (the points are listed in spec/reliability.md).
 *
 * - `GIT_ZOO_CRASH_AT=<point>[,<point>...]` kills the process with SIGKILL when the command reaches
 *   that step, the way a power cut or `kill -9` would there.
 * - `GIT_ZOO_PAUSE_AT=<point>` makes the command stop at that step (the first time it is reached):
 *   it writes `paused at <point> (pid <pid>)` to stderr and, when `GIT_ZOO_PAUSE_FILE=<path>` is set,
 *   writes the same line to that file; then it waits until it is interrupted (SIGINT/SIGTERM: the
 *   pause throws the interruption, as the work it stands for would) or the file is removed (the
 *   command goes on). A test waits for the file, sends its signal, and knows exactly where it lands.
 * Domain code never touches the process: it takes a `crashPoint(name)` callback (awaited, since a
 * pause waits), and the CLI passes the one made here.
 */
import { writeFileSync, existsSync } from 'node:fs'
import type { Io } from './command.js'

export type CrashPoint = (name: string) => void | Promise<void>

export function crashPoints(io: Io): CrashPoint {
  const wanted = new Set((io.env.GIT_ZOO_CRASH_AT ?? '').split(',').map((s) => s.trim()).filter(Boolean))
  const pauseAt = io.env.GIT_ZOO_PAUSE_AT?.trim() || undefined
  if (wanted.size === 0 && !pauseAt) return () => {}
  let paused = false
  return (name) => {
    if (wanted.has(name)) {
      io.err(`git zoo: crash point ${name}\n`)
      io.killSelf()
    }
    if (name !== pauseAt || paused) return
    paused = true
    return pause(io, name)
  }
}

async function pause(io: Io, name: string): Promise<void> {
  const line = `paused at ${name} (pid ${io.host.pid})\n`
  const file = io.env.GIT_ZOO_PAUSE_FILE
  io.err(`git zoo: ${line}`)
  if (file) writeFileSync(file, line)
  const signal = io.signal
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (file && !existsSync(file)) { done(); resolve() }
    }, 20)
    const onAbort = (): void => { done(); reject(signal!.reason) }
    const done = (): void => { clearInterval(timer); signal?.removeEventListener('abort', onAbort) }
    if (signal?.aborted) { onAbort(); return }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
