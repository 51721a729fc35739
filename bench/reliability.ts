/**
 * `npm run reliability` (issue 16): every row of ../shared/RELIABILITY.md with its figure.
 *
 * Measured here, with longer runs than `npm test`: the kill-point matrix (every crash point of every
 * command that writes), injected store faults at every read position, 8 concurrent adds with gc
 * racing them (separate repositories and one repository), the disk-full scenarios, and the seeded
 * mutation fuzzer over every parser (FUZZ_RUNS inputs each) plus the known-bad corpus. Rows whose
 * test already exists in the suite are measured by running that test file (its pass count is the
 * figure). Prints the table, writes it into spec/reliability.md (between the report markers, the
 * crash and pause point reference kept), exits 1 if any row fails.
 *
 *   npm run reliability                    # everything (several minutes on 2 cores)
 *   npm run reliability -- --write-corpus  # also (re)write test/corpus/ from the fuzzer and knownBad()
 *   FUZZ_RUNS=100000 npm run reliability   # a longer fuzz run
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../test/cli.js'
import { ZooError } from '../src/errors.js'
import { buildFixture, CASES, runCase } from '../test/reliability-crash.js'
import { buildFaultFixture, damagedRead, failedWrite, pushDamaged, slowReads, type FaultOutcome } from '../test/reliability-faults.js'
import { concurrentAdds } from '../test/reliability-concurrency.js'
import { TARGETS, fuzzTarget, knownBad, corpusName, closeFuzzServers, writeCorpusOf } from '../test/fuzz.js'

const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 20_000)
const writeCorpus = process.argv.includes('--write-corpus')

interface Row { section: string; threat: string; test: string; figure: string; ok: boolean }
const rows: Row[] = []
const log = (t: string): void => { process.stderr.write(`${t}\n`) }

function runTests(files: string[], pattern?: string): Promise<{ pass: number; fail: number; skip: number }> {
  return new Promise((res) => {
    execFile(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=tap', ...(pattern ? [`--test-name-pattern=${pattern}`] : []), ...files.map((f) => join(ROOT, f))],
      { cwd: ROOT, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (_err, stdout) => {
        const n = (k: string): number => Number(new RegExp(`^# ${k} (\\d+)`, 'm').exec(stdout)?.[1] ?? 0)
        res({ pass: n('pass'), fail: n('fail') + n('cancelled'), skip: n('skipped') })
      })
  })
}

/** A row measured by tests of the suite: the files, and a pattern of the test names that are about it. */
async function suiteRow(section: string, threat: string, files: string[], what: string, pattern?: string): Promise<void> {
  log(`running ${files.join(' ')}${pattern ? ` (${pattern})` : ''}`)
  const r = await runTests(files, pattern)
  rows.push({ section, threat, test: `${what} (${files.join(', ')})`, figure: `tests passed ${r.pass}/${r.pass + r.fail}${r.skip && !pattern ? `, ${r.skip} skipped` : ''}`, ok: r.fail === 0 && r.pass > 0 })
}

async function pool<T, R>(items: T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: n }, async () => { for (let i; (i = next++) < items.length;) out[i] = await fn(items[i]!, i) }))
  return out
}

const work = await mkdtemp(join(tmpdir(), 'zoo-reliability-'))
try {
  // ---------- Storage ----------
  log('injected store faults: every read position')
  const fx = await buildFaultFixture(join(work, 'faults'))
  const reads = Array.from({ length: fx.reads }, (_, i) => i + 1)
  const flips = (await pool(reads, 2, (k) => damagedRead(fx, 'flip', k, `f${k}`))).flat()
  const cuts = (await pool(reads, 2, (k) => damagedRead(fx, k % 2 ? 'truncate' : 'empty', k, `t${k}`))).flat()
  const pushes: FaultOutcome[] = []
  for (const k of [1, 2, Math.ceil(fx.reads / 2)]) pushes.push(await pushDamaged(fx, k, `p${k}`))
  const writes = await pool([['fetch', 'fail', 1], ['fetch', 'enospc', 3], ['pull', 'fail', 2], ['pull', 'enospc', 1]] as const, 2, ([c, f, k], i) => failedWrite(fx, c, f, k, `w${i}`))
  const slow = await slowReads(fx, 20)
  const count = (xs: FaultOutcome[]): { det: number; wrong: number } => ({ det: xs.filter((x) => x.detected).length, wrong: xs.filter((x) => x.wrong).length })
  const fl = count(flips), cu = count(cuts), pu = count(pushes), wr = count(writes)
  for (const x of [...flips, ...cuts, ...pushes, ...writes, slow]) if (!x.detected || x.wrong) log(`FAULT ROW FAILED: ${x.name}\n${x.why}`)
  rows.push({ section: 'Storage', threat: 'a flipped byte in a stored object (as read from the disk; manifests: the seal rows)', test: 'a bit flipped in the n-th object read, for every n, under get and verify (GIT_ZOO_FAULTS=read:flip@n)', figure: `detected ${fl.det}/${flips.length}`, ok: fl.det === flips.length })
  rows.push({ section: 'Storage', threat: 'bytes corrupted while being read', test: 'the fault-injecting store under get, verify (every read position) and push (3 positions), slow reads under get', figure: `silently wrong outputs ${fl.wrong + cu.wrong + pu.wrong + (slow.wrong ? 1 : 0)}; bad bytes on the remote after push: ${pu.wrong}; push refused ${pu.det}/${pushes.length}`, ok: fl.wrong + cu.wrong + pu.wrong === 0 && slow.detected && pu.det === pushes.length })
  rows.push({ section: 'Storage', threat: 'truncated or empty object after power loss', test: 'the n-th read cut by one byte or empty, for every n, under get and verify', figure: `detected ${cu.det}/${cuts.length}`, ok: cu.det === cuts.length })

  log('kill-point matrix')
  const fixture = join(work, 'crash-fixture')
  await buildFixture(fixture)
  const kills = await pool(CASES, 2, (c, i) => runCase(fixture, join(work, `crash-${i}`), c))
  for (const k of kills) if (!k.ok) log(`KILL POINT FAILED: ${k.name}\n${k.why}`)
  const commands = [...new Set(CASES.map((c) => c.command))]
  const good = kills.filter((k) => k.ok).length
  rows.push({ section: 'Storage', threat: '`kill -9` in the middle of a command that writes', test: `SIGKILL at every named crash point of ${commands.join(', ')}; then verify, the same command, verify`, figure: `kill points that leave a valid store: ${good}/${kills.length}`, ok: good === kills.length })

  await suiteRow('Storage', 'disk full', ['test/reliability-disk.test.ts'], 'a 12 MiB tmpfs filled during add, fetch and get (20 MiB model): E_DISK_FULL, then the same command with room; hangs 0, half-written objects under final names 0')

  log('concurrent adds')
  const sep = await concurrentAdds(join(work, 'conc'), 8, false, 'sep')
  const one = await concurrentAdds(join(work, 'conc'), 8, true, 'one')
  rows.push({ section: 'Storage', threat: 'concurrent writers', test: '8 processes adding overlapping checkpoints into one shared store at once: 8 repositories, then 8 adds in one repository', figure: `verify failures ${sep.verifyFailures.length + one.verifyFailures.length}; committed ${sep.committed}/8 and ${one.committed}/8 (zoo commits take turns; refused ${sep.refused + one.refused}, unclear failures ${sep.unclear.length + one.unclear.length})`, ok: sep.verifyFailures.length + one.verifyFailures.length + sep.unclear.length + one.unclear.length === 0 && sep.committed === 8 })
  rows.push({ section: 'Storage', threat: 'gc racing add', test: 'gc --grace 0 in a loop in another repository sharing the store (holding the garbage of an add killed after its flush) while the adds run, then once more', figure: `objects lost from committed manifests ${sep.lost.length + one.lost.length} (gc ran ${sep.gcRuns + one.gcRuns} times: ${sep.gcCompleted + one.gcCompleted} completed, the others refused while adds wrote; ${sep.gcRemovedObjects + one.gcRemovedObjects} dead objects of a killed add removed)`, ok: sep.lost.length + one.lost.length + sep.badObjects + one.badObjects === 0 })
  await suiteRow('Storage', 'a stale lock', ['test/teams-gc.test.ts'], 'a dead process\'s lock is taken over, another host\'s live one never stolen; the message names host, pid, age', 'never stolen|holds gc off')

  // ---------- Git, seals and signatures ----------
  await suiteRow('Git, seals and signatures', 'unsigned, badly signed, unknown-key promotion', ['test/signatures.test.ts'], 'fixture commits of each kind; verify --signatures', 'unknown signer, unsigned and tampered|git verify-commit accepts|require_signed refuses')
  await suiteRow('Git, seals and signatures', 'a commit that adds its own key to the in-repo allowed signers', ['test/signatures.test.ts', 'test/audit-merges.test.ts'], 'verify against the parent\'s signer list; merges', 'own key|merges')
  await suiteRow('Git, seals and signatures', 'a field changed after sealing (code rev, config, seed, metrics, chunk list, size)', ['test/seal.test.ts', 'test/hooks.test.ts'], 'each field mutated in turn; a sealed version edited, deleted, renamed', 'every field mutated|sealed version cannot be edited')
  await suiteRow('Git, seals and signatures', 'the hook skipped with `--no-verify`', ['test/signatures.test.ts'], 'an unsealed model committed with --no-verify; verify --signatures flags it', 'no-verify')

  // ---------- Remotes ----------
  await suiteRow('Remotes', 'a remote serves bytes that do not match the CID', ['test/remote-http.test.ts', 'test/remote-s3.test.ts', 'test/remote-path.test.ts', 'test/remote-transfer.test.ts'], 'one object poisoned on each kind of remote; bytes flipped on read', 'poisoned|flipped on read')
  await suiteRow('Remotes', 'a transfer cut off in the middle', ['test/remote-transfer.test.ts'], 'a connection cut mid-body, a failing call; then the rerun', 'connection cut|rerun completes')
  await suiteRow('Remotes', 'endless or oversized responses', ['test/remote-http.test.ts'], 'a huge Content-Length, an endless body, more bytes than declared, a short body, a stalled server', 'Content-Length|endless|stops sending')
  await suiteRow('Remotes', 'credentials sent to another host', ['test/remote-http.test.ts', 'test/remote-path.test.ts', 'test/remote-s3.test.ts'], 'CR/LF in URLs; a redirect to another host; credentials in URLs', 'redirect|CR|control characters|credentials')
  await suiteRow('Remotes', 'S3-compatible servers differ', ['test/remote-s3.test.ts'], 'the Store conformance suite against s3rver')

  // ---------- Writing files out and reading formats: the fuzzer ----------
  log(`fuzzing ${TARGETS.length} parsers, ${FUZZ_RUNS} inputs each`)
  const fuzz: Array<{ name: string; runs: number; defects: number; badRefused: number; bad: number }> = []
  const bad = knownBad()
  for (const t of TARGETS) {
    const runs = t.name.startsWith('remote') ? Math.min(FUZZ_RUNS, 1000) : FUZZ_RUNS
    const r = await fuzzTarget(t, runs, 20261201)
    for (const d of r.defects) log(`FUZZ DEFECT ${t.name}: ${d.error} (${corpusName(d.input)})`)
    let refused = 0
    for (const [, input] of bad[t.name] ?? []) {
      try { if (await t.run(input) === false) refused++ } catch (err) { if (err instanceof ZooError) refused++ }
    }
    fuzz.push({ name: t.name, runs: r.runs, defects: r.defects.length, badRefused: refused, bad: (bad[t.name] ?? []).length })
    if (writeCorpus) await writeCorpusOf(t, join(ROOT, 'test', 'corpus', t.name), r.defects)
  }
  await closeFuzzServers()
  const fz = (names: string[]): typeof fuzz => fuzz.filter((f) => names.includes(f.name))
  const fuzzRow = (threat: string, names: string[], what: string, label: string): void => {
    const xs = fz(names)
    const runs = xs.reduce((a, x) => a + x.runs, 0), defects = xs.reduce((a, x) => a + x.defects, 0)
    const bads = xs.reduce((a, x) => a + x.bad, 0), refused = xs.reduce((a, x) => a + x.badRefused, 0)
    rows.push({ section: 'Writing files out and reading formats', threat, test: `${what}: ${runs} mutated inputs (${names.join(', ')}), ${bads} known-bad inputs`, figure: `${label} ${defects}; known-bad refused ${refused}/${bads}`, ok: defects === 0 && refused === bads })
  }
  fuzzRow('a manifest path such as `../../x`, absolute, `.git/hooks/x`, `.GIT`, NUL', ['path', 'manifest'], 'fuzzed path strings and manifests; an accepted path must stay inside its folder', 'writes outside the target (accepted escaping paths, crashes)')
  await suiteRow('Writing files out and reading formats', 'a symlink already in the target folder', ['test/core.test.ts'], 'links pre-placed in the output folder and its parents')
  fuzzRow('a pickle checkpoint with a malicious `__reduce__`', ['pickle', 'zip'], 'the static opcode scan (never unpickled) fuzzed; os.system / eval payloads', 'payload executions 0; scanner crashes')
  fuzzRow('a safetensors header bomb (2^63 length, overlapping offsets, shape overflow) and other format headers', ['safetensors', 'onnx', 'gguf', 'npy', 'describe'], `crafted headers and mutants; a call over 2 s or 512 MiB counts as a crash`, 'crashes')
  await suiteRow('Writing files out and reading formats', 'ONNX external data that escapes the model folder', ['test/onnx.test.ts'], 'external data by `..`, absolute path, symlink')
  fuzzRow('dag-cbor that is not canonical (key order, float16, undefined, huge lengths, deep nesting)', ['cbor', 'node'], 'blocks accepted only if re-encoding gives the same bytes', 'non-canonical blocks accepted or crashes')
  fuzzRow('weak or mismatched hashes (identity, sha1, wrong codec)', ['cid', 'cid-bytes', 'remote-object', 'remote-listing'], 'crafted CIDs (text and bytes) and an http remote answering mutated objects and listings', 'accepted weak CIDs or wrong bytes')

  // ---------- Teams and interruptions ----------
  await suiteRow('Teams and interruptions', 'two or three clones promote at once', ['test/teams-pull.test.ts'], '2 and 3 clones promoting the same and different models, signed, then pull and push')
  await suiteRow('Teams and interruptions', 'Ctrl-C or SIGTERM in the middle of a command', ['test/teams-interrupt.test.ts'], 'SIGINT/SIGTERM at pause points of add, get, push, pull, import, eval, retire')
  await suiteRow('Teams and interruptions', 'the disk fills up', ['test/reliability-disk.test.ts'], 'a small tmpfs filled during add, fetch, get: hangs 0, half-written objects under final names 0')
  await suiteRow('Teams and interruptions', 'a damaged local object that a remote still holds', ['test/teams-repair.test.ts'], 'verify --repair from a path, HTTP and S3 remote')
  await suiteRow('Teams and interruptions', 'gc of a remote while someone pushes', ['test/teams-gc.test.ts'], 'remote gc with a push in progress; an interrupted remote gc', 'push in progress|interrupted remote gc')
} finally {
  await rm(work, { recursive: true, force: true })
}

// ---------- the report ----------
const lines: string[] = []
let section = ''
for (const r of rows) {
  if (r.section !== section) {
    section = r.section
    lines.push('', `### ${section}`, '| threat or fault | our test | figure | holds |', '|---|---|---|---|')
  }
  lines.push(`| ${r.threat} | ${r.test} | ${r.figure} | ${r.ok ? 'yes' : '**NO**'} |`)
}
const failed = rows.filter((r) => !r.ok)
const stamp = `Last run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, \`npm run reliability\` (FUZZ_RUNS=${FUZZ_RUNS}), ${rows.length} rows, ${failed.length} failing.`
const report = [stamp, ...lines].join('\n')
process.stdout.write(`${report}\n`)
const specPath = join(ROOT, 'spec', 'reliability.md')
const spec = await readFile(specPath, 'utf8')
const BEGIN = '<!-- reliability report: written by npm run reliability -->'
const END = '<!-- end of the reliability report -->'
const block = `${BEGIN}\n${report}\n${END}`
const next = spec.includes(BEGIN) ? spec.replace(new RegExp(`${BEGIN}[\\s\\S]*?${END}`), block) : `${spec.trimEnd()}\n\n## The last report\n${block}\n`
await writeFile(specPath, next)
process.exitCode = failed.length ? 1 : 0
