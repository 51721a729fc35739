/**
 * Kill points through the real CLI (test/reliability-crash.ts): one crash point of every command
 * that writes, each on its own copy of one fixture. After each SIGKILL, `git zoo verify` passes,
 * no index lists bytes that do not hash to their CID, and the same command succeeds. The whole
 * matrix (every point of every command) runs in `npm run reliability`.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildFixture, FAST_CASES, runCase } from './reliability-crash.js'

let work: string
let fixture: Promise<string>
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'zoo-crash-'))
  fixture = buildFixture(join(work, 'fixture')).then(() => join(work, 'fixture'))
  fixture.catch(() => {})
})
after(async () => { await rm(work, { recursive: true, force: true }) })

describe('kill -9 at a named point of every command that writes', { concurrency: 2 }, () => {
  FAST_CASES.forEach((c, i) => {
    it(`${c.command} killed at ${c.point}: verify passes and the same command succeeds`, async () => {
      const r = await runCase(await fixture, join(work, `case-${i}`), c)
      assert.ok(r.ok, r.why)
    })
  })
})
