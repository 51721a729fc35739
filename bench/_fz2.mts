import { TARGETS, fuzzTarget } from '../test/fuzz.js'
for (const t of TARGETS.filter((x) => x.json)) {
  const r = await fuzzTarget(t, Number(process.argv[2] ?? 5000), 3)
  console.log(t.name, r.runs, r.defects.length)
  for (const d of r.defects) console.log('  ', d.error, Buffer.from(d.input).toString('latin1').slice(0, 300))
}
