/**
 * The running process as domain code may know it: its pid, host name, node version, and whether
 * another process of this host is alive. Domain code takes a Host (and the environment) as
 * arguments and never reads `process`; `processHost()` builds the Host of this process and is
 * called only by the entry points (src/cli/main.ts, src/index.ts), which the import-boundary check
 * enforces (.dependency-cruiser.cjs: only they may import this file for more than its types).
 */
import { hostname } from 'node:os'

export interface Host {
  /** This process's id (recorded in store locks so a crashed writer's lock can be told stale). */
  pid: number
  /** The machine's host name (a lock from another host is never stolen). */
  hostname: string
  /** The node version, e.g. `v20.11.1` (recorded in promotions and evaluation records). */
  node: string
  /** Whether a process with this pid runs on this host. */
  alive(pid: number): boolean
}

/** The Host of this process. */
export function processHost(): Host {
  return {
    pid: process.pid,
    hostname: hostname(),
    node: process.version,
    alive(pid: number): boolean {
      try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
    },
  }
}
