import { storeConformance } from './store-conformance.js'
import { MemoryStore } from '../src/cas/memory.js'

storeConformance('memory', async () => {
  const store = new MemoryStore()
  return {
    store,
    damage: async (cid, bytes) => { store.objects.set(cid.toString(), Uint8Array.from(bytes)) },
    cleanup: async () => {},
  }
})
