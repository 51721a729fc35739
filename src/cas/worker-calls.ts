/**
 * Calls to a worker thread, each answered by one message that carries the call's id: the hashing
 * pool (./hash-pool.ts) and the import's preparing pool (src/importer/prepare.ts) talk to their
 * threads through it.
 *
 * - An idle worker never keeps the process alive (a pool that was not closed after an error); a
 *   call waiting for its reply does.
 * - A worker that fails or exits rejects every call waiting on it, and every later one, with that
 *   error: no caller is left waiting forever.
 * - terminate(): Worker.terminate() references the worker until its 'exit' event; a reply already
 *   on its way must not unreference it again, or the process could run out of referenced handles
 *   while the terminate promise is pending and end with exit code 13 ("unsettled top-level
 *   await"), having printed nothing (test/worker-exit.test.ts).
 */
import type { Worker } from 'node:worker_threads'

interface Pending<R> { resolve: (reply: R) => void; reject: (err: Error) => void }

export class WorkerCalls<R extends { id: number }> {
  private readonly pending = new Map<number, Pending<R>>()
  private nextId = 0
  private stopping = false
  /** Set once the worker failed or exited. */
  dead: Error | null = null

  /** `what` names the thread in the error of a call it can no longer answer ("a hashing worker thread"). */
  constructor(readonly worker: Worker, what: string) {
    worker.on('message', (reply: R) => {
      const p = this.pending.get(reply.id)
      this.pending.delete(reply.id)
      if (this.pending.size === 0 && !this.stopping) worker.unref()
      p?.resolve(reply)
    })
    const fail = (err: Error): void => {
      this.dead ??= err
      for (const p of this.pending.values()) p.reject(this.dead)
      this.pending.clear()
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`${what} exited (code ${code})`)))
    worker.unref()
  }

  /** Calls waiting for their reply. */
  get load(): number { return this.pending.size }

  /** Post `msg` (with an id added) and wait for the reply carrying that id. */
  call(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<R> {
    if (this.dead) return Promise.reject(this.dead)
    const id = this.nextId++
    if (this.pending.size === 0) this.worker.ref()
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.worker.postMessage({ ...msg, id }, transfer)
    })
  }

  /** Stop the thread; the worker stays referenced until it has exited (see the file comment). */
  terminate(): Promise<number> {
    this.stopping = true
    return this.worker.terminate()
  }
}
