/**
 * The kill-point matrix (../shared/RELIABILITY.md, "`kill -9` in the middle of ..."; issue 16): every
 * command that writes, killed with SIGKILL at each of its named crash points (GIT_ZOO_CRASH_AT,
 * src/cli/crash.ts); after each kill `git zoo verify` passes, every byte the store's indexes list
 * hashes to its CID, and the same command run again succeeds (and verify passes again).
 *
 * One fixture is built once (a zoo `a` with a folder zoo remote and a bare git origin, a clone `b`
 * one promotion behind, an ONNX model and data, two soup-compatible safetensors models, a run folder
 * to import, garbage for gc); every case runs on its own copy of it.
 */
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { git } from './cli.js'
import { dataset, permModel } from './eval-fixtures.js'
import { encodeNpy } from '../src/demo/data.js'
import { auditStore, must, newZooWithOrigin, seededBytes, zooTimed, type Timed } from './reliability-kit.js'
import { LocalStore } from '../src/cas/local.js'
import { cidOf, RAW } from '../src/cas/cid.js'
import { MIDX_THRESHOLD } from '../src/cas/pack-index.js'

/** A safetensors file of one F32 tensor `w` of `n` values drawn from `seed`. */
export function safetensors(n: number, seed: string): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [n], data_offsets: [0, n * 4] } }))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(header.length))
  const data = Buffer.alloc(n * 4)
  const r = seededBytes(n * 4, seed)
  for (let i = 0; i < n; i++) data.writeFloatLE((r.readUInt32LE(i * 4) / 2 ** 32) - 0.5, i * 4)
  return Buffer.concat([len, header, data])
}

/** Build the shared fixture under `base` (about 20 s of real git and git-zoo runs). */
export async function buildFixture(base: string): Promise<void> {
  const a = await newZooWithOrigin(base)
  await writeFile(join(a, 'm1.safetensors'), safetensors(1 << 20, 'm1'))
  await writeFile(join(a, 'm1b.safetensors'), safetensors(1 << 20, 'm1b'))
  await must(zooTimed(a, ['add', 'm1.safetensors', '--name', 'crash/m1']), 'add m1')
  await must(zooTimed(a, ['add', 'm1b.safetensors', '--name', 'crash/m1b']), 'add m1b')
  await writeFile(join(a, 'model.onnx'), permModel())
  await must(zooTimed(a, ['add', 'model.onnx', '--name', 'crash/e']), 'add e')
  await must(zooTimed(a, ['push']), 'push')
  await must(zooTimed(base, ['clone', join(base, 'origin.git'), 'b']), 'clone')
  await writeFile(join(a, 'm2.bin'), seededBytes(3 << 20, 'm2'))
  await must(zooTimed(a, ['add', 'm2.bin', '--name', 'crash/m2']), 'add m2')
  await must(zooTimed(a, ['push']), 'push m2')
  // inputs of the cases (untracked files of `a`; add takes --allow-dirty only for tracked changes)
  await writeFile(join(a, 'new.bin'), seededBytes(6 << 20, 'new'))
  await mkdir(join(a, 'runs', 'net'), { recursive: true })
  await writeFile(join(a, 'runs', 'net', 'model.safetensors'), safetensors(1 << 19, 'run'))
  await mkdir(join(base, 'data'))
  const { x, y, n } = dataset()
  await writeFile(join(base, 'data', 'd.x.npy'), encodeNpy(x, [n, 8]))
  await writeFile(join(base, 'data', 'd.y.npy'), encodeNpy(y, [n]))
  await writeFile(join(a, 'shared.bin'), seededBytes(2 << 20, 'shared'))
  await writeFile(join(a, 'junk.bin'), seededBytes(2 << 20, 'junk'))
  await git(a, 'config', 'zoo.test', 'fixture') // nothing tracked changed: `git status` stays clean for add
  await writeFile(join(a, '.git', 'info', 'exclude'), '*.bin\n*.safetensors\n*.onnx\nruns/\no/\n')
}

export interface Case {
  command: string
  point: string
  /** Where the command runs: the zoo `a` or the clone `b`. */
  cwd: 'a' | 'b'
  args: (dir: string) => string[]
  /** Steps run on the copy before the command (with real git and git-zoo). */
  prepare?: (dir: string) => Promise<void>
  /**
   * fetch and pull: killed before every object arrived, the store is valid but incomplete, so the
   * only problems verify may report after the kill are objects `missing` (never `corrupt`).
   */
  incomplete?: boolean
}

const addArgs = (): string[] => ['add', 'new.bin', '--name', 'crash/new']
const mkGarbage = async (dir: string): Promise<void> => {
  const a = join(dir, 'a')
  // a pack with live (shared.bin, committed below) and dead (junk.bin) objects: gc rewrites it
  const r = await zooTimed(a, ['add', 'shared.bin', 'junk.bin', '--name', 'crash/junk'], { GIT_ZOO_CRASH_AT: 'after-flush' })
  if (r.signal !== 'SIGKILL') throw new Error(`making garbage: ${r.stderr}`)
  await must(zooTimed(a, ['add', 'shared.bin', '--name', 'crash/shared']), 'add shared')
}

/** MIDX_THRESHOLD more packs of unreferenced objects, so the next add writes the multi-pack index. */
const manyPacks = async (dir: string): Promise<void> => {
  const store = await LocalStore.open(join(dir, 'a', '.git', 'zoo'))
  try {
    for (let i = 0; i < MIDX_THRESHOLD; i++) {
      const bytes = seededBytes(300, `midx-${i}`)
      await store.put(cidOf(RAW, bytes), bytes)
      await store.flush()
    }
  } finally { await store.close() }
}

/** Every (command, crash point) pair of the commands that write. */
export const CASES: Case[] = [
  ...['after-chunk', 'add-mid-pack', 'after-file', 'before-flush', 'after-flush', 'after-write', 'before-commit']
    .map((point): Case => ({ command: 'add', point, cwd: 'a', args: addArgs })),
  { command: 'add', point: 'midx-written', cwd: 'a', args: addArgs, prepare: manyPacks },
  ...['after-chunk', 'after-file', 'after-flush', 'after-write', 'before-commit']
    .map((point): Case => ({ command: 'import', point, cwd: 'a', args: () => ['import', 'runs', '--prefix', 'imp'] })),
  { command: 'get', point: 'get-file-written', cwd: 'a', args: () => ['get', 'crash/m2', '--out', 'o'] },
  ...['transfer-object'].map((point): Case => ({ command: 'fetch', point, cwd: 'b', args: () => ['fetch'], incomplete: true, prepare: async (dir) => { await git(join(dir, 'b'), 'pull', '-q', '--ff-only') } })),
  ...['pull-after-git', 'transfer-object'].map((point): Case => ({ command: 'pull', point, cwd: 'b', args: () => ['pull'], incomplete: true })),
  ...['transfer-object', 'push-after-objects', 'push-before-refs'].map((point): Case => ({
    command: 'push', point, cwd: 'a', args: () => ['push'],
    prepare: async (dir) => { await must(zooTimed(join(dir, 'a'), addArgs()), 'add before push') },
  })),
  ...['gc-after-rewrite', 'gc-after-remove'].map((point): Case => ({ command: 'gc', point, cwd: 'a', args: () => ['gc', '--grace', '0'], prepare: mkGarbage })),
  ...['after-write', 'before-commit'].map((point): Case => ({ command: 'retire', point, cwd: 'a', args: () => ['retire', 'crash/m1@v1', '--reason', 'superseded'] })),
  ...['get-file-written', 'after-write', 'before-commit'].map((point): Case => ({ command: 'eval', point, cwd: 'a', args: (dir) => ['eval', 'crash/e', '--data', join(dir, 'data', 'd.x.npy')] })),
  ...['after-chunk', 'after-flush', 'after-write', 'before-commit'].map((point): Case => ({ command: 'soup', point, cwd: 'a', args: () => ['soup', 'crash/m1', 'crash/m1b', '--name', 'crash/soup'] })),
  { command: 'export', point: 'export-row', cwd: 'a', args: (dir) => ['export', '--population', 'name~crash/m1*', '--out', join(dir, 'export')] },
  ...['tag-before-write', 'tag-after-write'].map((point): Case => ({ command: 'tag', point, cwd: 'a', args: () => ['tag', 'crash/m1@v1', 'prod'] })),
]

/** One point per command: what `npm test` runs (the whole matrix runs in `npm run reliability`). */
export const FAST_CASES: Case[] = CASES.filter((c) => [
  'add:add-mid-pack', 'add:before-commit', 'import:after-write', 'get:get-file-written', 'fetch:transfer-object', 'pull:pull-after-git',
  'push:push-before-refs', 'gc:gc-after-rewrite', 'retire:before-commit', 'eval:after-write', 'soup:after-flush', 'export:export-row',
].includes(`${c.command}:${c.point}`))

export interface CaseResult { name: string; ok: boolean; why?: string }

/** Copy the fixture, repoint its remotes at the copy, kill the command at the point, check, rerun. */
export async function runCase(fixture: string, dir: string, c: Case): Promise<CaseResult> {
  const name = `${c.command} killed at ${c.point}`
  const fail = (why: string, r?: Timed): CaseResult => ({ name, ok: false, why: `${why}${r ? ` (exit ${r.code}, signal ${r.signal}):\n${r.stderr}${r.stdout}` : ''}` })
  await cp(fixture, dir, { recursive: true })
  for (const z of ['a', 'b']) {
    await git(join(dir, z), 'remote', 'set-url', 'origin', join(dir, 'origin.git'))
    await git(join(dir, z), 'config', 'zoo.remote.origin.url', join(dir, 'objects'))
  }
  await c.prepare?.(dir)
  const cwd = join(dir, c.cwd)
  const args = c.args(dir)
  const env = { TMPDIR: join(dir, 'tmp') }
  await mkdir(env.TMPDIR, { recursive: true })
  const killed = await zooTimed(cwd, args, { ...env, GIT_ZOO_CRASH_AT: c.point })
  if (killed.signal !== 'SIGKILL') return fail(`the command did not reach ${c.point}`, killed)
  const v = await zooTimed(cwd, ['verify', '--json'], env)
  const problems = (JSON.parse(v.stdout || '{"problems":[]}') as { problems: Array<{ problem: string }> }).problems
  const tolerated = c.incomplete && v.code === 1 && problems.length > 0 && problems.every((p) => p.problem === 'missing')
  if (v.code !== 0 && !tolerated) return fail('verify after the kill failed', v)
  const audit = await auditStore(join(cwd, '.git', 'zoo'))
  if (audit.bad.length || audit.badIndexes.length) return fail(`half-written under final names: ${[...audit.bad, ...audit.badIndexes].join(', ')}`)
  const again = await zooTimed(cwd, args, env)
  if (again.code !== 0) return fail('the same command after the kill failed', again)
  const v2 = await zooTimed(cwd, ['verify'], env)
  if (v2.code !== 0) return fail('verify after the rerun failed', v2)
  return { name, ok: true }
}
