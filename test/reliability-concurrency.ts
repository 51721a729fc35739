/**
 * Concurrent writers on one store (../shared/RELIABILITY.md, "concurrent writers", "gc racing add"):
 * N processes adding overlapping checkpoints (safetensors files sharing most tensors, so most chunks
 * are written by several processes at once) into one shared store (GIT_ZOO_STORE), from separate
 * repositories or from one repository (git's index.lock: every add must commit or refuse clearly),
 * while gc runs in a loop in another repository sharing the store. Afterwards every repository's
 * `verify` passes and every committed model gives its exact bytes: the figures are verify failures
 * and objects lost from committed manifests.
 */
import { cp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { encodeSafetensors } from '../src/formats/safetensors.js'
import { auditStore, must, newZoo, seededBytes, zooTimed, type Timed } from './reliability-kit.js'

/** Checkpoint i: four tensors shared by all (4 x 512 KiB) and one of its own. */
export function overlapping(i: number): Uint8Array {
  const t = (name: string, seed: string, n: number) => ({ name, dtype: 'F32', shape: [n / 4], data: seededBytes(n, seed) })
  return encodeSafetensors([t('a', 'shared-a', 512 << 10), t('b', 'shared-b', 512 << 10), t('c', 'shared-c', 512 << 10), t('d', 'shared-d', 512 << 10), t('own', `own-${i}`, 256 << 10)])
}

export interface ConcurrencyResult {
  adds: number
  committed: number
  /** adds that failed with a clear message (index.lock held by another add, store locked by gc) */
  refused: number
  /** adds that failed any other way (a crash, an unclear message) */
  unclear: string[]
  gcRuns: number
  /** gc runs that completed (the others refused with E_LOCKED while adds were writing) */
  gcCompleted: number
  gcRemovedObjects: number
  verifyFailures: string[]
  /** committed models whose bytes cannot be read back exactly */
  lost: string[]
  badObjects: number
}

const CLEAR = /index\.lock|is locked by|in use by|git zoo: /

/**
 * `n` adds at once into the store `store` (separate repositories, or all in `repos[0]` when `oneRepo`),
 * gc --grace 0 looping in the repository `gcRepo` until they are done.
 */
export async function concurrentAdds(work: string, n: number, oneRepo: boolean, tag: string): Promise<ConcurrencyResult> {
  const store = join(work, `store-${tag}`)
  const env = { GIT_ZOO_STORE: store }
  // one zoo made with git and git-zoo; the others are copies of it (their own .git each)
  const first = await newZoo(join(work, oneRepo ? `${tag}-one` : `${tag}-r0`), env)
  const repos = [first]
  for (let i = 1; i < (oneRepo ? 1 : n); i++) { await cp(first, join(work, `${tag}-r${i}`), { recursive: true }); repos.push(join(work, `${tag}-r${i}`)) }
  const gcRepo = join(work, `${tag}-gc`)
  await cp(first, gcRepo, { recursive: true })
  for (const r of repos) await writeFile(join(r, '.git', 'info', 'exclude'), '*.safetensors\n')
  await Promise.all(Array.from({ length: n }, (_, i) => writeFile(join(repos[oneRepo ? 0 : i]!, `ck${i}.safetensors`), overlapping(i))))
  // garbage for gc to find: an add killed once its objects were flushed (no manifest, no commit)
  await writeFile(join(gcRepo, 'junk.safetensors'), overlapping(999))
  const junk = await zooTimed(gcRepo, ['add', 'junk.safetensors', '--name', 'conc/junk'], { ...env, GIT_ZOO_CRASH_AT: 'after-flush' })
  if (junk.signal !== 'SIGKILL') throw new Error(`the killed add did not reach after-flush: ${junk.stderr}`)
  let done = false
  let gcRuns = 0, gcCompleted = 0, gcRemovedObjects = 0
  const gcLoop = (async () => {
    while (!done) {
      const g = await zooTimed(gcRepo, ['gc', '--grace', '0', '--json'], env)
      gcRuns++
      if (g.code === 0) { gcCompleted++; gcRemovedObjects += (JSON.parse(g.stdout) as { removed_objects: number }).removed_objects }
    }
  })()
  const runs: Timed[] = await Promise.all(Array.from({ length: n }, (_, i) => {
    const cwd = repos[oneRepo ? 0 : i]!
    return zooTimed(cwd, ['add', `ck${i}.safetensors`, '--name', `conc/m${i}`], env)
  }))
  done = true
  await gcLoop
  const out: ConcurrencyResult = { adds: n, committed: 0, refused: 0, unclear: [], gcRuns, gcCompleted, gcRemovedObjects, verifyFailures: [], lost: [], badObjects: 0 }
  runs.forEach((r, i) => {
    if (r.code === 0) out.committed++
    else if (r.code !== null && r.code > 0 && r.signal === null && CLEAR.test(r.stderr)) out.refused++
    else out.unclear.push(`add ${i}: exit ${r.code} ${r.signal ?? ''} ${r.stderr}`)
  })
  // one more gc once everyone is done, then every model must still be whole
  const last = await zooTimed(gcRepo, ['gc', '--grace', '0', '--json'], env)
  out.gcRuns++
  if (last.code === 0) { out.gcCompleted++; out.gcRemovedObjects += (JSON.parse(last.stdout) as { removed_objects: number }).removed_objects }
  await Promise.all(repos.map(async (r) => {
    const v = await zooTimed(r, ['verify'], env)
    if (v.code !== 0) out.verifyFailures.push(`${r}: ${v.stderr}`)
  }))
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    const cwd = repos[oneRepo ? 0 : i]!
    if (runs[i]!.code !== 0) return
    const g = await zooTimed(cwd, ['get', `conc/m${i}`, '--out', join(work, `${tag}-out-${i}`)], env)
    if (g.code !== 0) out.lost.push(`conc/m${i}: ${g.stderr}`)
  }))
  out.badObjects = (await auditStore(store)).bad.length
  return out
}

export { must }

/**
 * `n` adds of one model name at once in one repository, held at the `before-flush` pause point until
 * all have chosen their version: one commits v1, each other one refuses with E_COMMITTED_MEANWHILE
 * (exit 1, nothing staged, v1 untouched); run again they make v2..vn.
 */
export async function sameNameAdds(work: string, n: number): Promise<{ first: number[]; refusedClearly: number; versions: string[]; verify: number; staged: string }> {
  const repo = await newZoo(join(work, 'same'))
  await writeFile(join(repo, '.git', 'info', 'exclude'), '*.safetensors\n')
  await Promise.all(Array.from({ length: n }, (_, i) => writeFile(join(repo, `ck${i}.safetensors`), overlapping(100 + i))))
  // every add stops before it flushes and commits (each has chosen v1 by then, since none has
  // committed); once all n are there they are let go together, so they race for the commit whatever
  // the machine's speed
  const pauseFiles = Array.from({ length: n }, (_, i) => join(repo, '.git', `pause-same-${i}`))
  const pending = Array.from({ length: n }, (_, i) => zooTimed(repo, ['add', `ck${i}.safetensors`, '--name', 'conc/same'], { GIT_ZOO_PAUSE_AT: 'before-flush', GIT_ZOO_PAUSE_FILE: pauseFiles[i]! }))
  let ended = false
  const all = Promise.all(pending).finally(() => { ended = true })
  while (!ended && !pauseFiles.every((f) => existsSync(f))) await new Promise((r) => setTimeout(r, 20))
  for (const f of pauseFiles) await rm(f, { force: true })
  const runs = await all
  const refusedClearly = runs.filter((r) => r.code === 1 && /was committed by another git zoo command while this one ran/.test(r.stderr)).length
  const { git } = await import('./cli.js')
  const staged = await git(repo, 'diff', '--cached', '--name-only')
  for (let i = 0; i < n; i++) if (runs[i]!.code !== 0) await must(zooTimed(repo, ['add', `ck${i}.safetensors`, '--name', 'conc/same']), `add ${i} again`)
  const ls = await git(repo, 'ls-tree', '-d', '--name-only', 'HEAD', 'models/conc/same/')
  const v = await zooTimed(repo, ['verify'])
  return { first: runs.map((r) => r.code), refusedClearly, versions: ls.split('\n').filter(Boolean).map((l) => l.split('/').pop()!), verify: v.code, staged }
}
