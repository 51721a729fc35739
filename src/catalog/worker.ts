/**
 * A catalog build worker: reads and extracts its share of the manifests and sends them back, either
 * as columns (numbers as transferable Float64Arrays; incremental builds merge them into the cache's
 * rows) or, for a cold build (`encode`), already encoded as a catalog of its rows that the main
 * thread concatenates with the others' (columns.ts mergeCatalogs): the encoding work is shared out
 * and no string crosses threads one by one.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { readJob, type ReadJob, type ReadItem } from './read.js'
import { encodeCatalog, ColumnSet, PART_HEAD } from './columns.js'

// started before the manifests are listed (build.ts WorkerPool): the items come by message
const job = workerData as Omit<ReadJob, 'items'> & { encode?: boolean }
parentPort!.once('message', (items: ReadItem[]) => { void work({ ...job, items }) })

async function work(job: ReadJob & { encode?: boolean }): Promise<void> {
  const { cols, problems } = await readJob(job)
  if (job.encode) {
    const bytes = encodeCatalog(cols, PART_HEAD(job.history), { part: true })
    parentPort!.postMessage({ bytes, problems }, [bytes.buffer as ArrayBuffer])
  } else {
    const msg = cols.toMessage()
    parentPort!.postMessage({ cols: msg, problems }, ColumnSet.transferable(msg))
  }
  parentPort!.close()
}
