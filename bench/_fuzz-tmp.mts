import { TARGETS, fuzzTarget, closeFuzzServers } from '../test/fuzz.js'
const n = Number(process.argv[2] ?? 2000)
for (const t of TARGETS) {
  const s = performance.now()
  const r = await fuzzTarget(t, t.name.startsWith("remote") ? Math.min(n, 300) : n, Number(process.argv[3] ?? 1))
  console.log(t.name, r.runs, Math.round(performance.now() - s) + 'ms', r.defects.length)
  for (const d of r.defects) console.log('   ', d.error, Buffer.from(d.input).toString('hex').slice(0, 120))
}
await closeFuzzServers()
