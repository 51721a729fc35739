import { TARGETS, knownBad, closeFuzzServers } from '../test/fuzz.js'
import { ZooError } from '../src/errors.js'
const bad = knownBad()
for (const t of TARGETS) for (const [name, input] of bad[t.name] ?? []) {
  const s = performance.now()
  try { if (await t.run(input) !== false) console.log('ACCEPTED', t.name, name) } catch (err) { if (!(err instanceof ZooError)) console.log('NOT ZOO', t.name, name, String(err).slice(0, 200)) }
  const ms = performance.now() - s; if (ms > 200) console.log('slow', t.name, name, ms)
}
await closeFuzzServers()
