import { mkdtemp } from 'node:fs/promises'
import { concurrentAdds } from '../test/reliability-concurrency.js'
const w = await mkdtemp('/tmp/reltest/conc-')
console.log(JSON.stringify(await concurrentAdds(w, 8, false, 'sep'), null, 1))
console.log(JSON.stringify(await concurrentAdds(w, 8, true, 'one'), null, 1))
