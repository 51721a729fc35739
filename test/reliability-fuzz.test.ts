/**
 * Parsers of outside input under the seeded mutation fuzzer (test/fuzz.ts): the committed corpus
 * (test/corpus/<target>/) is replayed, every known-bad input (`bad-*`) must be refused with a
 * ZooError, and a short fuzz run per parser (fixed seed) must find nothing: every input returns or
 * throws a ZooError, within the time and memory limits. A deliberately fragile parser shows the
 * harness does catch a RangeError, a TypeError and a slow call. `npm run reliability` fuzzes longer.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ROOT } from './cli.js'
import { TARGETS, feed, fuzzTarget, closeFuzzServers, TIME_LIMIT_MS, type Target } from './fuzz.js'
import { ZooError } from '../src/errors.js'

const CORPUS = join(ROOT, 'test', 'corpus')
after(closeFuzzServers)

describe('fuzzing the parsers of outside input', () => {
  it('the corpus has inputs for every parser, and no folder for a parser that is gone', async () => {
    const dirs = (await readdir(CORPUS)).sort()
    assert.deepEqual(dirs, TARGETS.map((t) => t.name).sort())
    for (const d of dirs) assert.ok((await readdir(join(CORPUS, d))).length > 0, `test/corpus/${d} is empty`)
  })

  for (const t of TARGETS) {
    it(`${t.name}: the corpus replays cleanly and its known-bad inputs are refused`, async () => {
      for (const name of (await readdir(join(CORPUS, t.name))).sort()) {
        const input = await readFile(join(CORPUS, t.name, name))
        const defect = await feed(t, input)
        assert.equal(defect, undefined, `test/corpus/${t.name}/${name}: ${defect?.error}`)
        if (!name.startsWith('bad-')) continue
        let refused = false
        try { refused = (await t.run(input)) === false } catch (err) { refused = err instanceof ZooError }
        assert.ok(refused, `test/corpus/${t.name}/${name} was accepted`)
      }
    })
    it(`${t.name}: ${t.name.startsWith('remote') ? 60 : 1500} mutated inputs, nothing but results and ZooErrors`, async () => {
      const r = await fuzzTarget(t, t.name.startsWith('remote') ? 60 : 1500, 16)
      assert.deepEqual(r.defects.map((d) => d.error), [])
    })
  }

  it('the harness catches what it is meant to catch', async () => {
    let n = 0
    const fragile: Target = {
      name: 'fragile',
      seeds: () => [Buffer.from([0, 0, 0, 4, 1, 2, 3, 4])],
      run: async (b) => {
        n++
        const len = b.length >= 4 ? Buffer.from(b).readUInt32BE(0) : 0
        if (len > 1000) Buffer.from(b).readUInt32LE(len) // a RangeError past the end
        if (b.length === 0) (undefined as unknown as { x: number }).x // a TypeError
      },
    }
    const r = await fuzzTarget(fragile, 400, 1)
    assert.ok(r.defects.some((d) => d.error.startsWith('RangeError')), 'a RangeError is a defect')
    assert.ok(n === 400)
    const empty = await feed(fragile, new Uint8Array(0))
    assert.match(empty?.error ?? '', /^TypeError/)
    const slow = await feed({ name: 'slow', seeds: () => [], run: async () => { await new Promise((r) => setTimeout(r, TIME_LIMIT_MS + 100)) } }, new Uint8Array(1))
    assert.match(slow?.error ?? '', /took \d+ ms/)
    const clean = await feed({ name: 'clean', seeds: () => [], run: async () => { throw new ZooError('refused', 'E_MANIFEST') } }, new Uint8Array(1))
    assert.equal(clean, undefined, 'a ZooError is a clean refusal')
  })
})
