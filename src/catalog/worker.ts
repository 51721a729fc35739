/**
 * A catalog build worker: reads and extracts its share of the manifests and sends the columns back
 * (numbers as transferable Float64Arrays). Started by build.ts for cold builds of large zoos.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { readItems, type ReadJob } from './read.js'

const job = workerData as ReadJob
const { cols, problems } = readItems(job)
const msg = cols.toMessage()
parentPort!.postMessage({ cols: msg, problems }, msg.num.map(([, a]) => a.buffer as ArrayBuffer))
