/**
 * Worker pools closed while a reply is on its way. Worker.terminate() keeps the process alive until
 * the thread has exited; the pools unreference idle workers, and once unreferenced a worker whose
 * last reply arrived after terminate() was asked let the process run out of referenced handles:
 * node then ended the command with exit code 13 ("unsettled top-level await") and no output. This
 * was `git zoo verify` over a store whose root node was damaged (no chunk to hash, so the pool was
 * closed while its workers were still answering the slab set-up).
 *
 * Each case runs in a child process: the main thread blocks (Atomics.wait) while the workers boot
 * and reply, so the replies are queued when close() is called; the child must then print "closed"
 * and exit 0, every time. Before the fix about half the rounds ended with exit 13.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, run } from './cli.js'

const dist = (p: string): string => pathToFileURL(join(ROOT, 'dist', 'src', p)).href

async function child(body: string): Promise<void> {
  const script = `
const block = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
for (let round = 0; round < 8; round++) {
${body}
}
process.stdout.write('closed\\n')
`
  // a module file, not \`node -e\`: an evaluated script does not end with exit 13 on an unsettled await
  const dir = await mkdtemp(join(tmpdir(), 'zoo-worker-exit-'))
  const file = join(dir, 'close.mjs')
  await writeFile(file, script)
  const r = await run(process.execPath, [file], { cwd: ROOT }).finally(() => rm(dir, { recursive: true, force: true }))
  assert.equal(r.code, 0, `exit ${r.code} (13: the process ran out of referenced handles while closing)\n${r.stderr}`)
  assert.equal(r.stdout, 'closed\n')
}

describe('worker pools closed with replies in flight', () => {
  it('HashPool.close() waits for its threads to exit, even after a late reply', async () => {
    await child(`
  const { HashPool } = await import(${JSON.stringify(dist('cas/hash-pool.js'))})
  const pool = new HashPool(2)
  pool.slabs(2, 65536, { stream: false }).catch(() => {}) // never awaited, as verify does when no chunk is left to hash
  block(300)
  await pool.close()`)
  })

  it('PreparePool.close() waits for its threads to exit, even after a late reply', async () => {
    await child(`
  const { PreparePool } = await import(${JSON.stringify(dist('importer/prepare.js'))})
  const pool = PreparePool.open(2)
  if (!pool) throw new Error('no compiled prepare worker')
  pool.prepare(['/nonexistent/git-zoo-test/model.bin']).catch(() => {})
  block(300)
  await pool.close()`)
  })
})
