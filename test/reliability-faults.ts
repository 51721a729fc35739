/**
 * Injected store faults through the real CLI (GIT_ZOO_FAULTS, src/cas/faulty.ts;
 * ../shared/RELIABILITY.md, "bytes corrupted while being read"): get, verify, push, fetch and pull
 * on a local store whose reads flip bits, lose bytes or come back empty, and whose writes fail or
 * meet a full disk. The figures: damaged reads detected / tried, and silently wrong outputs (a
 * command that exits 0 with bytes that differ from the model, or a remote left holding bad bytes).
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { git } from './cli.js'
import { auditStore, must, newZooWithOrigin, seededBytes, zooTimed } from './reliability-kit.js'
import { LocalStore } from '../src/cas/local.js'
import { openRemote } from '../src/remote/index.js'
import { NotFoundError } from '../src/errors.js'

export interface FaultFixture { dir: string; a: string; b: string; model: Buffer; reads: number }

/** A zoo `a` with one 3 MiB model pushed to a folder zoo remote, and its clone `b`. */
export async function buildFaultFixture(dir: string): Promise<FaultFixture> {
  const a = await newZooWithOrigin(dir)
  const model = seededBytes(3 << 20, 'faults')
  await writeFile(join(a, 'model.bin'), model)
  await writeFile(join(a, '.git', 'info', 'exclude'), '*.bin\n')
  await must(zooTimed(a, ['add', 'model.bin', '--name', 'f/net']), 'add')
  await must(zooTimed(a, ['push']), 'push')
  await must(zooTimed(dir, ['clone', join(dir, 'origin.git'), 'b']), 'clone')
  // how many objects a get reads: every chunk and node of the model (all the local store holds)
  const reads = (await auditStore(join(a, '.git', 'zoo'))).objects
  return { dir, a, b: join(dir, 'b'), model, reads }
}

/**
 * Objects of the local store `storeRoot` that the folder remote `root` holds with bytes that do not
 * hash to their CID (read through the remote's own reader, loose or packed, unverified by hand).
 */
export async function badRemoteObjects(root: string, storeRoot: string): Promise<string[]> {
  const bad: string[] = []
  const remote = openRemote(root, {})
  const local = await LocalStore.open(storeRoot)
  try {
    for (const [cid] of local.entries()) {
      try { await remote.get(cid) } catch (err) { if (!(err instanceof NotFoundError)) bad.push(`${cid}: ${(err as Error).message}`) }
    }
  } finally { await local.close(); await remote.close() }
  return bad
}

export interface FaultOutcome { name: string; detected: boolean; wrong: boolean; why: string }

/** get and verify with one damaged read (the n-th): detected (non-zero exit, no file), never wrong bytes. */
export async function damagedRead(fx: FaultFixture, fault: 'flip' | 'truncate' | 'empty', nth: number, tag: string): Promise<FaultOutcome[]> {
  const env = { GIT_ZOO_FAULTS: `read:${fault}@${nth}` }
  const out = join(fx.dir, `out-${tag}`)
  const g = await zooTimed(fx.a, ['get', 'f/net', '--out', out], env)
  let written: Buffer | undefined
  try { written = await readFile(join(out, 'model.bin')) } catch { /* nothing written */ }
  await rm(out, { recursive: true, force: true })
  const v = await zooTimed(fx.a, ['verify'], env)
  return [
    { name: `get, read ${nth} ${fault}`, detected: g.code === 1 && written === undefined, wrong: g.code === 0 && !(written?.equals(fx.model) ?? false), why: `get exit ${g.code}: ${g.stderr}` },
    { name: `verify, read ${nth} ${fault}`, detected: v.code === 1 && /corrupt/.test(v.stderr), wrong: v.code === 0, why: `verify exit ${v.code}: ${v.stderr}` },
  ]
}

/** push to a fresh folder remote with the n-th local read damaged: the remote never holds bad bytes. */
export async function pushDamaged(fx: FaultFixture, nth: number, tag: string): Promise<FaultOutcome> {
  const remote = join(fx.dir, `push-${tag}`)
  // a promotion not pushed yet: its objects are what push reads from the local store and uploads
  await writeFile(join(fx.a, `push-${tag}.bin`), seededBytes(2 << 20, `push-${tag}`))
  await must(zooTimed(fx.a, ['add', `push-${tag}.bin`, '--name', `f/push-${tag}`]), 'add before push')
  await git(fx.a, 'config', 'zoo.remote.origin.url', remote)
  try {
    const p = await zooTimed(fx.a, ['push'], { GIT_ZOO_FAULTS: `read:flip@${nth}` })
    const bad = await badRemoteObjects(remote, join(fx.a, '.git', 'zoo'))
    return { name: `push, read ${nth} flipped`, detected: p.code !== 0, wrong: bad.length > 0, why: `push exit ${p.code}, bad objects on the remote: ${bad.join(', ')}\n${p.stderr}` }
  } finally { await git(fx.a, 'config', 'zoo.remote.origin.url', join(fx.dir, 'objects')) }
}

/** fetch or pull into an empty store with the n-th write failing: a clear error, then the rerun completes. */
export async function failedWrite(fx: FaultFixture, command: 'fetch' | 'pull', fault: 'fail' | 'enospc', nth: number, tag: string): Promise<FaultOutcome> {
  const env = { GIT_ZOO_STORE: join(fx.dir, `store-${tag}`) }
  const r = await zooTimed(fx.b, [command], { ...env, GIT_ZOO_FAULTS: `write:${fault}@${nth}` })
  const message = fault === 'enospc' ? /no space left on the disk holding/ : /injected fault/
  const again = await zooTimed(fx.b, [command], env)
  const v = await zooTimed(fx.b, ['verify'], env)
  return {
    name: `${command}, write ${nth} ${fault}`, detected: r.code === 3 && message.test(r.stderr) && again.code === 0 && v.code === 0, wrong: false,
    why: `first exit ${r.code}: ${r.stderr}\nrerun exit ${again.code}: ${again.stderr}\nverify exit ${v.code}: ${v.stderr}`,
  }
}

/** get with every read slowed down: the exact bytes. */
export async function slowReads(fx: FaultFixture, ms: number): Promise<FaultOutcome> {
  const out = join(fx.dir, 'out-slow')
  const g = await zooTimed(fx.a, ['get', 'f/net', '--out', out], { GIT_ZOO_FAULTS: `read:slow=${ms}` })
  const ok = g.code === 0 && (await readFile(join(out, 'model.bin'))).equals(fx.model)
  await rm(out, { recursive: true, force: true })
  return { name: `get, every read ${ms} ms slow`, detected: ok, wrong: g.code === 0 && !ok, why: `exit ${g.code}: ${g.stderr}` }
}
