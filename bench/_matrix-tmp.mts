import { mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import { buildFixture, CASES, runCase } from '../test/reliability-crash.js'
const work = await mkdtemp('/tmp/reltest/mx-')
await buildFixture(join(work, 'f'))
let i = 0
const queue = [...CASES]
await Promise.all([0, 1].map(async () => { for (let c; (c = queue.shift());) { const r = await runCase(join(work, 'f'), join(work, `c${i++}`), c); console.log(r.ok ? 'OK  ' : 'FAIL', r.name, r.why ?? '') } }))
