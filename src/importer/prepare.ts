/**
 * Both cores for an import: worker threads read a model's small files and prepare them for the store
 * (format, chunks, CIDs named by the zoo's chunk hash, sha256: src/importer/prepare-worker.ts) while the main thread appends the
 * prepared chunks to the store's pack and seals manifests (spec/import.md, "How it goes fast").
 * A model whose preparation fails in a worker is ingested on the main thread instead, so its error
 * (a file that vanished, a malformed file) is reported exactly as `git zoo add` reports it.
 */
import { Worker } from 'node:worker_threads'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { availableParallelism } from 'node:os'
import type { PreparedBytes } from '../ingest/ingest.js'
import type { ChunkHash } from '../cas/cid.js'
import type { RunRead } from './read-run.js'
import { WorkerCalls } from '../cas/worker-calls.js'

interface Reply { id: number; out?: unknown; error?: string }

// bounded heaps: a worker's garbage (zip and pickle scans) is collected early instead of growing
// the import's peak RSS (spec/import.md, "Batches"); a 16 MB young generation, as at 4 MB the
// workers spent ~40% of their time in scavenges (spec/import.md, "How it goes fast")
const prepareWorker = (url: URL): WorkerCalls<Reply> =>
  new WorkerCalls<Reply>(new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 96 } }), 'a file-preparing worker thread')

/** A call's result, or the worker's error for it. */
async function answer<T>(reply: Promise<Reply>): Promise<T> {
  const m = await reply
  if (m.error !== undefined) throw new Error(m.error)
  return m.out as T
}

export class PreparePool {
  private readonly workers: Array<WorkerCalls<Reply>>
  private constructor(url: URL, n: number) { this.workers = Array.from({ length: n }, () => prepareWorker(url)) }

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
  private least(): WorkerCalls<Reply> {
    const live = this.workers.filter((w) => !w.dead)
    return (live.length ? live : this.workers).reduce((a, b) => (b.load < a.load ? b : a))
  }

  /** Every file of `paths` read and prepared (chunks named by `chunkHash`), in order, by the least busy worker. */
  prepare(paths: string[], chunkHash: ChunkHash): Promise<PreparedBytes[]> {
    return answer(this.least().call({ paths, chunkHash }))
  }

  /** readRun(dir, nested) on the least busy worker. */
  readRun(dir: string, nested: string[]): Promise<RunRead> {
    return answer(this.least().call({ dir, nested }))
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
