/**
 * The running process as domain code may know it: its pid, host name, node version, and whether
 * another process of this host is alive. Only the entry points (src/cli/, src/index.ts, the demo's
 * src/demo/run.ts) read `process`; they build a Host (processHost() in src/cli/main.ts) and pass it down with the
 * environment, so every layer below takes what it needs as arguments.
 */
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
