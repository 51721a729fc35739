/**
 * Both cores for an import: worker threads read a model's small files and prepare them for the store
 * (format, chunks, CIDs, sha256: src/importer/prepare-worker.ts) while the main thread appends the
 * prepared chunks to the store's pack and seals manifests (spec/import.md, "How it goes fast").
 * A model whose preparation fails in a worker is ingested on the main thread instead, so its error
 * (a file that vanished, a malformed file) is reported exactly as `git zoo add` reports it.
 */
import { Worker } from 'node:worker_threads'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { availableParallelism } from 'node:os'
import type { PreparedBytes } from '../ingest/ingest.js'
import type { RunRead } from './read-run.js'

interface Pending { resolve: (out: unknown) => void; reject: (err: Error) => void }

class PrepareWorker {
  readonly worker: Worker
  readonly pending = new Map<number, Pending>()
  /** Set once the worker failed or exited: its calls reject at once, and the pool stops choosing it. */
  dead: Error | null = null
  /** terminate() was asked: stay referenced until the thread has exited (as HashWorker, src/cas/hash-pool.ts). */
  private stopping = false
  constructor(url: URL) {
    // bounded heaps: a worker's garbage (zip and pickle scans) is collected early instead of growing
    // the import's peak RSS (spec/import.md, "Batches"); a 16 MB young generation, as at 4 MB the
    // workers spent ~40% of their time in scavenges (spec/import.md, "How it goes fast")
    this.worker = new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 96 } })
    this.worker.on('message', (m: { id: number; out?: unknown; error?: string }) => {
      const p = this.pending.get(m.id)
      this.pending.delete(m.id)
      if (this.pending.size === 0 && !this.stopping) this.worker.unref()
      if (m.error !== undefined) p?.reject(new Error(m.error))
      else p?.resolve(m.out!)
    })
    const fail = (err: Error): void => {
      this.dead ??= err
      for (const p of this.pending.values()) p.reject(this.dead)
      this.pending.clear()
    }
    this.worker.on('error', fail)
    this.worker.on('exit', (code) => fail(new Error(`a file-preparing worker thread exited (code ${code})`)))
    this.worker.unref()
  }
  terminate(): Promise<number> {
    this.stopping = true
    return this.worker.terminate()
  }
  call<T>(msg: { id: number } & Record<string, unknown>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead)
    this.worker.ref()
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve: resolve as (out: unknown) => void, reject })
      this.worker.postMessage(msg)
    })
  }
}

export class PreparePool {
  private readonly workers: PrepareWorker[]
  private nextId = 0
  private constructor(url: URL, n: number) { this.workers = Array.from({ length: n }, () => new PrepareWorker(url)) }

  /**
   * A pool of `n` workers (default: one per core), or null where no compiled worker is found (the
   * TypeScript sources run in place): the caller then prepares on its own thread.
   */
  static open(n = Math.max(1, Math.min(4, availableParallelism()))): PreparePool | null {
    // beside this module (tsc's dist/src/importer/), or at the top of the CLI bundle when this code
    // was bundled into a command's file (dist/cli/commands/import.js; scripts/build-cli.mjs)
    const url = [new URL('./prepare-worker.js', import.meta.url), new URL('../prepare-worker.js', import.meta.url)]
      .find((u) => u.protocol === 'file:' && existsSync(fileURLToPath(u)))
    return url ? new PreparePool(url, n) : null
  }

  /** The live worker with the fewest calls waiting (a dead one, say killed at its heap limit, only while none lives). */
  private least(): PrepareWorker {
    const live = this.workers.filter((w) => !w.dead)
    return (live.length ? live : this.workers).reduce((a, b) => (b.pending.size < a.pending.size ? b : a))
  }

  /** Every file of `paths` read and prepared, in order, by the least busy worker. */
  prepare(paths: string[]): Promise<PreparedBytes[]> {
    return this.least().call({ id: this.nextId++, paths })
  }

  /** readRun(dir, nested) on the least busy worker. */
  readRun(dir: string, nested: string[]): Promise<RunRead> {
    return this.least().call({ id: this.nextId++, dir, nested })
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
