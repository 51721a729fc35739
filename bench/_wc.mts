import { join } from 'node:path'
import { TARGETS, writeCorpusOf, closeFuzzServers } from '../test/fuzz.js'
for (const t of TARGETS) await writeCorpusOf(t, join(import.meta.dirname, '..', 'test', 'corpus', t.name))
await closeFuzzServers()
