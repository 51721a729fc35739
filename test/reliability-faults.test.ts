/**
 * Injected store faults (test/reliability-faults.ts) through the real CLI: damaged reads under get,
 * verify and push are detected and never give wrong bytes (on disk or on the remote); failing and
 * full-disk writes under fetch and pull fail clearly and the rerun completes; slow reads still give
 * the exact bytes. `npm run reliability` sweeps every read position.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { zooTimed } from './reliability-kit.js'
import { buildFaultFixture, damagedRead, failedWrite, pushDamaged, slowReads, type FaultFixture, type FaultOutcome } from './reliability-faults.js'

let work: string
let fixture: Promise<FaultFixture>
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'zoo-faults-'))
  fixture = buildFaultFixture(join(work, 'fx'))
  fixture.catch(() => {})
})
after(async () => { await rm(work, { recursive: true, force: true }) })

function check(outcomes: FaultOutcome[]): void {
  for (const o of outcomes) {
    assert.equal(o.wrong, false, `${o.name}: silently wrong output\n${o.why}`)
    assert.equal(o.detected, true, `${o.name}: not detected\n${o.why}`)
  }
}

describe('injected store faults', { concurrency: 2 }, () => {
  it('get and verify detect a flipped, truncated or empty read and write nothing', async () => {
    const fx = await fixture
    check([...await damagedRead(fx, 'flip', 1, 'f1'), ...await damagedRead(fx, 'truncate', 2, 't2'), ...await damagedRead(fx, 'empty', fx.reads, 'e')])
  })
  it('push with a flipped local read leaves no bad bytes on the remote', async () => {
    check([await pushDamaged(await fixture, 2, 'p2')])
  })
  it('fetch and pull with a failing or full-disk write fail clearly, then the rerun completes', async () => {
    const fx = await fixture
    check([await failedWrite(fx, 'fetch', 'fail', 2, 'ff'), await failedWrite(fx, 'pull', 'enospc', 1, 'pe')])
  })
  it('get with slow reads gives the exact bytes; a malformed GIT_ZOO_FAULTS is a usage error', async () => {
    const fx = await fixture
    check([await slowReads(fx, 20)])
    const r = await zooTimed(fx.a, ['verify'], { GIT_ZOO_FAULTS: 'read:melt@2' })
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /GIT_ZOO_FAULTS: "read:melt@2" is not a fault; use read:flip/)
  })
})
