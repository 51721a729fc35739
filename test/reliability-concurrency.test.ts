/**
 * Concurrent writers (test/reliability-concurrency.ts) through the real CLI: 8 adds of overlapping
 * checkpoints into one shared store from separate repositories, and adds racing in one repository
 * (git's index.lock: each commits or refuses with a clear message, nothing half-staged), with gc
 * looping in a third repository sharing the store. Nothing committed is lost; verify passes.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { git } from './cli.js'
import { concurrentAdds, sameNameAdds, type ConcurrencyResult } from './reliability-concurrency.js'

let work: string
before(async () => { work = await mkdtemp(join(tmpdir(), 'zoo-conc-')) })
after(async () => { await rm(work, { recursive: true, force: true }) })

function check(r: ConcurrencyResult): void {
  assert.deepEqual(r.unclear, [], 'every add commits or refuses clearly')
  assert.deepEqual(r.verifyFailures, [])
  assert.deepEqual(r.lost, [], 'objects lost from committed manifests')
  assert.equal(r.badObjects, 0)
  assert.ok(r.gcCompleted >= 1, 'gc ran to completion')
  assert.ok(r.gcRemovedObjects > 0, 'gc removed the killed add\'s garbage')
}

describe('concurrent writers on one store, gc racing them', { concurrency: 1 }, () => {
  it('8 repositories add overlapping checkpoints at once: all commit, nothing lost', async () => {
    const r = await concurrentAdds(work, 8, false, 'sep')
    check(r)
    assert.equal(r.committed, 8)
  })
  it('4 adds of different models at once in one repository: they take turns to commit, nothing staged, nothing lost', async () => {
    const r = await concurrentAdds(work, 4, true, 'one')
    check(r)
    assert.equal(r.committed, 4)
    assert.equal(await git(join(work, 'one-one'), 'diff', '--cached', '--name-only'), '', 'nothing left staged')
  })
  it('3 adds of the same model at once: one makes v1, the others refuse clearly and make v2, v3 when run again', async () => {
    const r = await sameNameAdds(work, 3)
    assert.deepEqual([...r.first].sort(), [0, 1, 1], `exit codes ${r.first}`)
    assert.equal(r.refusedClearly, 2)
    assert.equal(r.staged, '')
    assert.deepEqual(r.versions, ['v1', 'v2', 'v3'])
    assert.equal(r.verify, 0)
  })
})
