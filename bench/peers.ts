/**
 * The local data path against its peers, in one run (issue 11; table in spec/performance.md).
 * Not part of the test suite.
 *
 * Writes a safetensors checkpoint of 16 MiB float32 tensors (1 GiB: 64 tensors) and a fine-tune that
 * changes every tenth tensor, then, for each of `--rounds` rounds (median reported), times:
 *   cp + sync of the file (cached, and read from the disk), openssl dgst -sha256 of each file,
 *   git zoo add of a 1 KiB file (the fixed cost: start-up, git, the commit and its hook),
 *   git zoo add (new checkpoint), add (fine-tune), get (+ fsync, done by get) twice (first with the
 *   packs dropped from the page cache, then again with them cached), verify, and
 *   verify of the 1 KiB model (start-up),
 *   borg create --compression none (each file), borg extract, borg check --verify-data,
 *   restic backup (each file), restic restore, restic check --read-data,
 *   git annex add + commit (each file), git annex fsck,
 *   git lfs track + add + commit (each file), git lfs fsck,
 * skipping with a note any peer that is not installed. Every figure is wall seconds, CPU seconds
 * (user + sys of the process tree) and peak RSS, with the 1-minute load average when it started: the
 * machine may be shared, so compare ratios from the same run. Then each ratio against its target.
 *
 *   npx tsx bench/peers.ts [--size 1] [--rounds 2] [--zoo-only] [--keep] [--bin <other>/bin/git-zoo.js] [--buffered]
 *                          [--chunk-hash blake3|sha2-256] [--served]
 *   npx tsx bench/peers.ts --memory --size 16
 *
 * --size is in GiB. --zoo-only skips the peers. --bin times another build of git-zoo (before/after).
 * --buffered runs git-zoo with GIT_ZOO_DIRECT_IO=0 (packs and get's output through the page cache).
 * The zoo's set-up is committed after `git zoo init`, as `init --sign` does. --chunk-hash sets the
 * zoo's `chunk_hash` before that commit (default: what `git zoo init` writes, blake3): an A/B of the
 * two chunk hashes with one build.
 * --served also times every git-zoo command through bin/git-zoo, the native client, answered by the
 * resident server (spec/server.md), in the same rounds as node's (rows ", served"): the server runs
 * in a private XDG_RUNTIME_DIR, is started and warmed (one untimed add) before the first round and
 * stopped at the end. A served row's CPU is the client's plus the server's own (its /proc/<pid>/stat
 * utime, stime and waited-for children's, such as git, over the command); its peak RSS is the larger
 * of the client's and the server's peak since it started (VmHWM).
 * --memory is the memory run: one checkpoint (no
 * fine-tune), git zoo add and get only, one round, peak RSS of each against 256 MiB; it needs about
 * 3x --size GiB free under the temp folder (the file, the store, the file got back), a full run
 * about 10x.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeBaseAndFineTune, writeCheckpoint, TENSOR } from './checkpoint.js'
// every git zoo this bench runs is node's own: a find or ls would start a query server that outlives it
process.env.GIT_ZOO_SERVER = '0'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const argv = process.argv.slice(2)
// --bin <path to bin/git-zoo.js>: time another build (an A/B of two checkouts in the same run)
const BIN = argv.includes('--bin') ? resolve(argv[argv.indexOf('--bin') + 1]!) : join(ROOT, 'bin', 'git-zoo.js')
const opt = (name: string, def: number): number => { const i = argv.indexOf(name); return i === -1 ? def : Number(argv[i + 1]) }
const GIB = opt('--size', 1)
const ROUNDS = Math.max(1, opt('--rounds', 2))
const MEMORY = argv.includes('--memory')
const ZOO_ONLY = argv.includes('--zoo-only') || MEMORY
const SIZE = Math.round(GIB * 1024 * 1024 * 1024 / TENSOR) * TENSOR

interface Run { wall: number; cpu: number; rssMiB: number; load: number; stdout?: string }

function load1(): number { return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]) }

/** Run `script` with sh under GNU time; throws with its output when it fails. */
function timed(script: string, cwd: string, env: Record<string, string> = {}): Run {
  const load = load1()
  const r = spawnSync('/usr/bin/time', ['-f', '@@TIME %e %U %S %M', 'sh', '-c', script], {
    cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26,
  })
  const line = r.stderr.split('\n').find((l) => l.startsWith('@@TIME '))
  if (r.status !== 0 || !line) throw new Error(`failed (${r.status}): ${script}\n${r.stdout}\n${r.stderr}`)
  const [wall, user, sys, kib] = line.slice(7).split(' ').map(Number) as [number, number, number, number]
  return { wall, cpu: user + sys, rssMiB: kib / 1024, load, stdout: r.stdout }
}

function sh(script: string, cwd: string, env: Record<string, string> = {}): string {
  const r = spawnSync('sh', ['-c', script], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26 })
  if (r.status !== 0) throw new Error(`failed (${r.status}): ${script}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

function have(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return r.status === 0
}

const SERVED = argv.includes('--served')

const results = new Map<string, Run[]>()
const notes: string[] = []
function record(label: string, run: Run): void {
  const list = results.get(label) ?? []
  list.push(run)
  results.set(label, list)
}
function median(label: string): Run | undefined {
  const list = results.get(label)
  if (!list?.length) return undefined
  const pick = (f: (r: Run) => number): number => { const xs = list.map(f).sort((a, b) => a - b); const m = xs.length >> 1; return xs.length % 2 ? xs[m]! : (xs[m - 1]! + xs[m]!) / 2 }
  return { wall: pick((r) => r.wall), cpu: pick((r) => r.cpu), rssMiB: Math.max(...list.map((r) => r.rssMiB)), load: pick((r) => r.load) }
}

function gitRepo(dir: string): void {
  mkdirSync(dir, { recursive: true })
  sh('git init -q . && git config user.name bench && git config user.email bench@example.invalid && git config commit.gpgsign false', dir)
}

// --chunk-hash: the zoo's "chunk_hash" (spec/format.md), set in .zoo/config.json before the set-up commit
const CHUNK_HASH = argv.includes('--chunk-hash') ? argv[argv.indexOf('--chunk-hash') + 1]! : undefined

/** `git zoo init` in `dir` (a git repository), the chunk hash of --chunk-hash set, the set-up committed. */
function zooInit(dir: string): void {
  sh(`${zooCmd} init >/dev/null`, dir)
  if (CHUNK_HASH) {
    const path = join(dir, '.zoo', 'config.json')
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), chunk_hash: CHUNK_HASH }, null, 2) + '\n')
    sh('git add .zoo/config.json', dir)
  }
  sh("git commit -qm 'zoo set-up'", dir)
}

/** --served: the resident server in a private XDG_RUNTIME_DIR; `timed` adds the server's CPU over the command to the client's. */
interface BenchServer { pid: number; timed: (script: string, cwd: string) => Run; stop: () => void }

const sleepMs = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) }

/** CPU seconds of process `pid` so far: its own (every thread) and its waited-for children's (git, hooks). */
function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  // fields 14-17 of stat (utime stime cutime cstime), in clock ticks; counted from the field after the name
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100
}
const peakRssMiB = (pid: number): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

/** Start `git zoo serve` of the build at BIN in `xdg`, wait until it answers; the caller warms it and stops it. */
function startServer(xdg: string): BenchServer {
  const env = { ...process.env, XDG_RUNTIME_DIR: xdg, GIT_ZOO_SERVER: '1' }
  const child = spawn(process.execPath, [BIN, 'serve'], { cwd: xdg, env, detached: true, stdio: 'ignore' })
  child.unref()
  const stop = (): void => {
    spawnSync(process.execPath, [BIN, 'server', 'stop'], { env, stdio: 'ignore' })
    try { process.kill(child.pid!, 'SIGKILL') } catch { /* stopped */ }
  }
  for (let i = 0; ; i++) {
    const r = spawnSync(process.execPath, [BIN, 'server', 'status', '--json'], { env, encoding: 'utf8' })
    const st = r.status === 0 ? JSON.parse(r.stdout) as { running: boolean; pid?: number } : { running: false }
    if (st.running && st.pid === child.pid) break
    if (i > 300) { stop(); throw new Error(`the server did not answer within 30 s: ${r.stdout}${r.stderr}`) }
    sleepMs(100)
  }
  const pid = child.pid!
  return {
    pid, stop,
    timed: (script, cwd) => {
      const before = cpuOf(pid)
      const r = timed(script, cwd, { XDG_RUNTIME_DIR: xdg, GIT_ZOO_SERVER: '1' })
      return { ...r, cpu: r.cpu + cpuOf(pid) - before, rssMiB: Math.max(r.rssMiB, peakRssMiB(pid)) }
    },
  }
}

const work = mkdtempSync(join(tmpdir(), 'zoo-peers-'))
let server: BenchServer | undefined
// --buffered: git-zoo writes packs and get's output through the page cache (GIT_ZOO_DIRECT_IO=0)
const zooCmd = `${argv.includes('--buffered') ? 'GIT_ZOO_DIRECT_IO=0 ' : ''}${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)}`
// --served: the wrapper beside BIN (bin/git-zoo), which runs the native client
const servedCmd = `${argv.includes('--buffered') ? 'GIT_ZOO_DIRECT_IO=0 ' : ''}${JSON.stringify(join(dirname(BIN), 'git-zoo'))}`
try {
  if (MEMORY) {
    const file = join(work, 'model.safetensors')
    writeCheckpoint(file, SIZE, new Set(), 0)
    sh('sync', work)
    const zoo = join(work, 'zoo')
    gitRepo(zoo)
    zooInit(zoo)
    const add = timed(`${zooCmd} add ${file} --name bench/big >/dev/null`, zoo)
    rmSync(file)
    const get = timed(`${zooCmd} get bench/big --out ${work}/out`, zoo)
    console.log(`memory run: ${(SIZE / 2 ** 30).toFixed(0)} GiB checkpoint`)
    console.log('| command | wall s | CPU s | CPU s per GiB | peak RSS MiB | target | load (1 min) |')
    console.log('|---|---|---|---|---|---|---|')
    for (const [label, r] of [['git-zoo add', add], ['git-zoo get', get]] as const) {
      console.log(`| ${label} | ${r.wall.toFixed(2)} | ${r.cpu.toFixed(2)} | ${(r.cpu / (SIZE / 2 ** 30)).toFixed(2)} | ${r.rssMiB.toFixed(0)} | <= 256 MiB: ${r.rssMiB <= 256 ? 'met' : 'NOT met'} | ${r.load.toFixed(1)} |`)
    }
    if (!argv.includes('--keep')) rmSync(work, { recursive: true, force: true })
    process.exit(0)
  }
  const { base, fineTune, tensors, changed } = writeBaseAndFineTune(work, SIZE)
  // the checkpoints just written are still dirty in the page cache: write them out now, so no
  // command below pays for (or is throttled by) writeback that is not its own
  sh('sync', work)
  // the fixed cost of a command: node start-up, git, the commit with its pre-commit hook
  const tiny = join(work, 'tiny.bin')
  writeFileSync(tiny, Buffer.alloc(1024, 7))
  if (SERVED) {
    if (!existsSync(join(dirname(BIN), '..', 'dist', 'front', 'git-zoo'))) throw new Error('--served needs the native client: `npm run build` with a C compiler (dist/front/git-zoo)')
    const xdg = join(work, 'xdg')
    mkdirSync(xdg, { mode: 0o700 })
    server = startServer(xdg)
    // warmed: one untimed add and verify through it (modules loaded, the JIT warm), in a zoo of its own
    const warm = join(work, 'zoo-warm')
    gitRepo(warm)
    zooInit(warm)
    server.timed(`${servedCmd} add ${tiny} --name bench/warm >/dev/null && ${servedCmd} verify >/dev/null`, warm)
    rmSync(warm, { recursive: true, force: true })
  }
  console.log(`checkpoint ${(SIZE / 2 ** 30).toFixed(2)} GiB, ${tensors} float32 tensors of 16 MiB; fine-tune changes ${changed} (${(changed * TENSOR / 2 ** 20).toFixed(0)} MiB); ${ROUNDS} rounds, medians; CPU = user+sys; chunk hash ${CHUNK_HASH ?? 'as git zoo init writes it'}`)
  const peers = {
    borg: !ZOO_ONLY && have('borg', ['--version']),
    restic: !ZOO_ONLY && have('restic', ['version']),
    annex: !ZOO_ONLY && have('git', ['annex', 'version']),
    lfs: !ZOO_ONLY && have('git', ['lfs', 'version']),
  }
  if (!ZOO_ONLY) for (const [k, ok] of Object.entries(peers)) if (!ok) notes.push(`${k}: not installed, skipped`)

  /**
   * The git-zoo commands of one round in a zoo of their own, run by `cmd` and timed by `time`: rows
   * labelled with `suffix` ('' for node, ', served' through the server).
   */
  function zooRound(suffix: string, cmd: string, time: (script: string, cwd: string) => Run, round: number): void {
    const zoo = join(work, `zoo${suffix ? '-served' : ''}`)
    gitRepo(zoo)
    // the zoo as it is once its set-up is committed (`git zoo init --sign` commits it; a plain init
    // stages it): with .zoo/schema.json in HEAD, a promotion's pre-commit hook finds the staged diff
    // the promotion checked and starts no second node (src/zoo/commit.ts, "verified")
    zooInit(zoo)
    const out = `${zoo}-out`
    record(`git-zoo add (1 KiB: start-up + commit)${suffix}`, time(`${cmd} add ${tiny} --name bench/tiny >/dev/null`, zoo))
    record(`git-zoo add (new)${suffix}`, time(`${cmd} add ${base} --name bench/base >/dev/null`, zoo))
    const ft = time(`${cmd} add ${fineTune} --name bench/ft --json`, zoo)
    record(`git-zoo add (fine-tune)${suffix}`, ft)
    if (round === 1 && !suffix) {
      const stored = Number(JSON.parse(ft.stdout!).stored_bytes)
      notes.push(`git-zoo fine-tune: ${(stored / 2 ** 20).toFixed(1)} MiB stored for ${(changed * TENSOR / 2 ** 20).toFixed(0)} MiB changed`)
    }
    // packs read from the disk (add wrote them with O_DIRECT; with --buffered they would be cached)
    sh('for f in .git/zoo/packs/*.pack; do dd if="$f" iflag=nocache count=0 status=none; done', zoo)
    record(`git-zoo get${suffix}`, time(`${cmd} get bench/base --out ${out}`, zoo))
    // the same get once more, with nothing of the adds left to write back
    record(`git-zoo get (again)${suffix}`, time(`${cmd} get bench/base --out ${out}2`, zoo))
    rmSync(`${out}2`, { recursive: true, force: true })
    record(`git-zoo verify${suffix}`, time(`${cmd} verify bench/base`, zoo))
    record(`git-zoo verify (1 KiB: start-up)${suffix}`, time(`${cmd} verify bench/tiny`, zoo))
    rmSync(zoo, { recursive: true, force: true }); rmSync(out, { recursive: true, force: true })
  }

  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round}/${ROUNDS}\n`)
    record('cp + sync', timed(`cp ${base} copy.bin && sync copy.bin`, work))
    rmSync(join(work, 'copy.bin'))
    // the same copy with the file's pages dropped from the page cache first (`dd iflag=nocache
    // count=0` drops a whole file's clean pages): what the first get after an add is compared with,
    // as add writes its packs past the page cache and that get reads them from the disk
    sh(`dd if=${base} iflag=nocache count=0 status=none`, work)
    record('cp + sync (file read from the disk)', timed(`cp ${base} copy.bin && sync copy.bin`, work))
    rmSync(join(work, 'copy.bin'))
    record('openssl dgst -sha256 (new)', timed(`openssl dgst -sha256 ${base} >/dev/null`, work))
    record('openssl dgst -sha256 (fine-tune)', timed(`openssl dgst -sha256 ${fineTune} >/dev/null`, work))

    zooRound('', zooCmd, (script, cwd) => timed(script, cwd), round)
    if (server) zooRound(', served', servedCmd, (script, cwd) => server!.timed(script, cwd), round)

    if (peers.borg) {
      const env = { BORG_REPO: join(work, 'borg'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' }
      sh('borg init -e none', work, env)
      record('borg create (new)', timed(`borg create --compression none ::base ${base}`, work, env))
      record('borg create (fine-tune)', timed(`borg create --compression none ::ft ${fineTune}`, work, env))
      mkdirSync(join(work, 'borg-out'))
      record('borg extract', timed('borg extract ::base && sync', join(work, 'borg-out'), env))
      record('borg check --verify-data', timed('borg check --verify-data', work, env))
      rmSync(join(work, 'borg'), { recursive: true, force: true }); rmSync(join(work, 'borg-out'), { recursive: true, force: true })
    }
    if (peers.restic) {
      const env = { RESTIC_REPOSITORY: join(work, 'restic'), RESTIC_PASSWORD: 'bench' }
      sh('restic init -q', work, env)
      record('restic backup (new)', timed(`restic backup -q ${base}`, work, env))
      record('restic backup (fine-tune)', timed(`restic backup -q ${fineTune}`, work, env))
      const snap = JSON.parse(sh(`restic snapshots --json --path ${base}`, work, env))[0].short_id as string
      record('restic restore', timed(`restic restore -q ${snap} --target ${work}/restic-out && sync`, work, env))
      record('restic check --read-data', timed('restic check -q --read-data', work, env))
      rmSync(join(work, 'restic'), { recursive: true, force: true }); rmSync(join(work, 'restic-out'), { recursive: true, force: true })
    }
    if (peers.annex) {
      const a = join(work, 'annex')
      gitRepo(a)
      sh('git annex init -q bench', a)
      record('git-annex add + commit (new)', timed(`cp --reflink=auto ${base} model.safetensors && git annex add -q model.safetensors && git commit -qm base`, a))
      record('git-annex add + commit (fine-tune)', timed(`cp --reflink=auto ${fineTune} finetune.safetensors && git annex add -q finetune.safetensors && git commit -qm ft`, a))
      record('git-annex fsck', timed('git annex fsck -q model.safetensors', a))
      sh('chmod -R u+w .', a)
      rmSync(a, { recursive: true, force: true })
    }
    if (peers.lfs) {
      const l = join(work, 'lfs')
      gitRepo(l)
      sh("git lfs install --local >/dev/null && git lfs track '*.safetensors' >/dev/null && git add .gitattributes && git commit -qm track", l)
      record('git-lfs add + commit (new)', timed(`cp ${base} model.safetensors && git add model.safetensors && git commit -qm base`, l))
      record('git-lfs add + commit (fine-tune)', timed(`cp ${fineTune} finetune.safetensors && git add finetune.safetensors && git commit -qm ft`, l))
      record('git-lfs fsck', timed('git lfs fsck >/dev/null', l))
      rmSync(l, { recursive: true, force: true })
    }
  }

  console.log('\n| command | wall s | CPU s | peak RSS MiB | load (1 min) |')
  console.log('|---|---|---|---|---|')
  for (const label of results.keys()) {
    const m = median(label)!
    console.log(`| ${label} | ${m.wall.toFixed(2)} | ${m.cpu.toFixed(2)} | ${m.rssMiB.toFixed(0)} | ${m.load.toFixed(1)} |`)
  }
  const gib = SIZE / 2 ** 30
  const ratio = (what: string, a: string, b: string, target: string, ok: (x: number) => boolean, f: (r: Run) => number = (r) => r.wall): void => {
    const x = median(a), y = median(b)
    if (!x || !y) { console.log(`| ${what} | skipped (${!x ? a : b} not measured) | ${target} | |`); return }
    const v = f(x) / f(y)
    console.log(`| ${what} | ${v.toFixed(2)} | ${target} | ${ok(v) ? 'met' : 'NOT met'} |`)
  }
  console.log('\n| ratio (wall unless said) | value | target | |')
  console.log('|---|---|---|---|')
  for (const suffix of ['', ...(server ? [', served'] : [])]) {
    const z = (label: string): string => `${label}${suffix}`
    ratio(z('add new / (cp + sync)'), z('git-zoo add (new)'), 'cp + sync', '<= 1.3', (v) => v <= 1.3)
    ratio(z('borg create new / add new'), 'borg create (new)', z('git-zoo add (new)'), '>= 2', (v) => v >= 2)
    const addNew = median(z('git-zoo add (new)'))!
    console.log(`| ${z('add new: CPU s per GiB of new data')} | ${(addNew.cpu / gib).toFixed(2)} | <= 2.2 | ${addNew.cpu / gib <= 2.2 ? 'met' : 'NOT met'} |`)
    ratio(z('add fine-tune / openssl sha256 of it'), z('git-zoo add (fine-tune)'), 'openssl dgst -sha256 (fine-tune)', '<= 1.25', (v) => v <= 1.25)
    ratio(z('borg create fine-tune / add fine-tune'), 'borg create (fine-tune)', z('git-zoo add (fine-tune)'), '>= 2', (v) => v >= 2)
    ratio(z('get / (cp + sync)'), z('git-zoo get'), 'cp + sync', '<= 1.3', (v) => v <= 1.3)
    ratio(z('get, packs from the disk / (cp + sync, file from the disk)'), z('git-zoo get'), 'cp + sync (file read from the disk)', '<= 1.3', (v) => v <= 1.3)
    ratio(z('restic restore / get'), 'restic restore', z('git-zoo get'), '>= 1.5', (v) => v >= 1.5)
    ratio(z('get again / (cp + sync)'), z('git-zoo get (again)'), 'cp + sync', '<= 1.3', (v) => v <= 1.3)
    ratio(z('verify / openssl sha256'), z('git-zoo verify'), 'openssl dgst -sha256 (new)', '<= 0.6', (v) => v <= 0.6)
    ratio(z('add new, CPU / openssl CPU'), z('git-zoo add (new)'), 'openssl dgst -sha256 (new)', '(CPU; floor 2: chunk + file sha256)', () => true, (r) => r.cpu)
    const fixed = median(z('git-zoo add (1 KiB: start-up + commit)')), ft = median(z('git-zoo add (fine-tune)'))
    if (fixed && ft) console.log(`| ${z('add fine-tune: share of start-up + commit (1 KiB add)')} | ${(fixed.wall / ft.wall).toFixed(2)} of wall, ${(fixed.cpu / ft.cpu).toFixed(2)} of CPU | (not data path) | |`)
    ratio(z('add fine-tune, CPU / openssl CPU'), z('git-zoo add (fine-tune)'), 'openssl dgst -sha256 (fine-tune)', '(CPU; floor 2)', () => true, (r) => r.cpu)
    for (const op of [z('git-zoo add (new)'), z('git-zoo get')]) {
      const r = median(op)!
      console.log(`| ${op}: peak RSS MiB${suffix ? ' (the server\'s since it started)' : ''} | ${r.rssMiB.toFixed(0)} | <= 256 | ${r.rssMiB <= 256 ? 'met' : 'NOT met'} |`)
    }
  }
  if (server) {
    // what the server takes off each command: node's row over the served row, same run
    for (const op of ['git-zoo add (1 KiB: start-up + commit)', 'git-zoo add (new)', 'git-zoo add (fine-tune)', 'git-zoo get', 'git-zoo get (again)', 'git-zoo verify', 'git-zoo verify (1 KiB: start-up)']) {
      ratio(`${op}: node / served`, op, `${op}, served`, '(wall; > 1: served is faster)', () => true)
      ratio(`${op}: node / served, CPU`, op, `${op}, served`, '(CPU, the server\'s included)', () => true, (r) => r.cpu)
    }
  }
  if (notes.length) console.log(`\nnotes:\n${notes.map((n) => `- ${n}`).join('\n')}`)
} finally {
  server?.stop() // never left behind
  if (!argv.includes('--keep')) rmSync(work, { recursive: true, force: true })
  else console.log(`kept ${work}`)
}
