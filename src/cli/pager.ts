/**
 * Paging long output on a terminal the way git does (spec/catalog.md, "Paging"): when stdout is a
 * TTY and --no-pager was not given, the text goes to the pager git would use (`git var GIT_PAGER`:
 * GIT_PAGER, core.pager, PAGER, else less), with LESS=FRX and LV=-c unless set, so a listing that
 * fits one screen prints and returns at once. Pipes and files get the text directly; so does a
 * pager of `cat` or an empty one. A pager that cannot start falls back to printing.
 */
import type { Io } from './command.js'

/** The pager git would use here, or undefined for none. */
export async function pagerCommand(cwd: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  // child_process is loaded only here: a listing on a pipe starts no process and loads no such module
  const { spawnSync } = await import('node:child_process')
  const r = spawnSync('git', ['var', 'GIT_PAGER'], { cwd, env, encoding: 'utf8' })
  const cmd = r.status === 0 ? r.stdout.trim() : (env.GIT_PAGER ?? env.PAGER ?? 'less')
  return cmd === '' || cmd === 'cat' ? undefined : cmd
}

/** Write `text` to stdout, through the pager when `io.outTty` and paging is not turned off. */
export async function paged(io: Io, text: string, noPager: boolean): Promise<void> {
  const cmd = !noPager && io.outTty ? await pagerCommand(io.cwd, io.env) : undefined
  if (!cmd) { io.out(text); return }
  // a served request: the client starts the pager on its own terminal (spec/server.md)
  if (io.pageOnClient) { io.pageOnClient(cmd, text); return }
  const { spawn } = await import('node:child_process')
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn(cmd, { shell: true, cwd: io.cwd, stdio: ['pipe', 'inherit', 'inherit'], env: { LESS: 'FRX', LV: '-c', ...io.env } })
    let started = false
    child.on('spawn', () => { started = true })
    child.on('error', () => resolve(false))
    child.stdin.on('error', () => { /* the pager quit before reading everything (q in less) */ })
    child.on('close', (code) => resolve(started && code !== 127))
    child.stdin.end(text)
  })
  if (!ok) io.out(text)
}
