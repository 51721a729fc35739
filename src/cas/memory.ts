import type { CID } from './cid.js'
import { parseCid, verifyBytes } from './cid.js'
import { NotFoundError } from '../errors.js'
import type { DeletableStore } from './store.js'
import { MAX_OBJECT_SIZE } from './store.js'
import { ZooError } from '../errors.js'

/** An in-memory Store: the reference implementation of the contract, and a test double. */
export class MemoryStore implements DeletableStore {
  readonly location = 'memory:'
  /** Exposed so tests can damage objects in place. */
  readonly objects = new Map<string, Uint8Array>()

  async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (bytes.length > MAX_OBJECT_SIZE) throw new ZooError(`object ${cid} is ${bytes.length} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`, 'E_TOO_LARGE')
    verifyBytes(cid, bytes, 'put')
    const key = cid.toString()
    if (this.objects.has(key)) return false
    this.objects.set(key, Uint8Array.from(bytes))
    return true
  }

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = this.objects.get(cid.toString())
    if (!bytes) throw new NotFoundError(`object ${cid} is not in ${this.location}`, { cid: cid.toString() })
    verifyBytes(cid, bytes, this.location)
    return Uint8Array.from(bytes)
  }

  async has(cid: CID): Promise<boolean> { return this.objects.has(cid.toString()) }

  async *list(): AsyncIterable<CID> {
    for (const key of [...this.objects.keys()]) yield parseCid(key)
  }

  async delete(cid: CID): Promise<void> { this.objects.delete(cid.toString()) }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
