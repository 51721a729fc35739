/**
 * `npm run demo` end to end: the built demo (dist/src/demo/run.js) trains the population, drives the
 * real CLI on two machines and must exit 0 having shown every step, with models that beat chance and
 * an accuracy evaluated after the clone equal to the one recorded at promotion.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './cli.js'

interface Run { code: number; stdout: string; stderr: string; ms: number }

function runDemo(args: string[] = []): Promise<Run> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'demo', 'run.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = '', stderr = ''
    child.stdout.setEncoding('utf8').on('data', (t: string) => { stdout += t })
    child.stderr.setEncoding('utf8').on('data', (t: string) => { stderr += t })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - started }))
  })
}

/** The first match of `re` in the demo's output, or a failure that shows the output. */
function grab(out: string, re: RegExp): RegExpMatchArray {
  const m = out.match(re)
  assert.ok(m, `expected ${re} in the demo output:\n${out}`)
  return m
}

test('npm run demo: trains, promotes, finds, shares and re-evaluates a model zoo', { timeout: 180_000 }, async () => {
  const r = await runDemo()
  assert.equal(r.code, 0, `demo exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`)
  const out = r.stdout

  // Every step is shown as the command a user would type, on the machine where it runs.
  for (const line of [
    /^alice:~\$ git init -q -b main zoo$/m,
    /^alice:~\/zoo\$ git zoo init --sign --new-key$/m,
    /^alice:~\/zoo\$ git zoo verify$/m,
    /^alice:~\/zoo\$ git zoo remote add origin \.\.\/\.\.\/shared\/zoo-objects$/m,
    /^alice:~\/zoo\$ git zoo import \.\.\/runs --json$/m,
    /^ {4}layout vit: 12 models promoted \(\d+ checkpoints/m,
    /^alice:~\/zoo\$ git zoo find dataset=taskA 'metrics\.test_acc>0\.7' --sort -metrics\.test_acc --limit 3$/m,
    /^alice:~\/zoo\$ git zoo show \S+$/m,
    /^alice:~\/zoo\$ git zoo lineage pretraining\/mlp-taska-seed1-gelu$/m,
    /fine-tune -> finetuning\/mlp-taska-seed1-gelu\/ft-head-lr0\.1@v1/,
    /^alice:~\/zoo\$ git zoo push$/m,
    /^bob:~\$ git zoo clone \.\.\/shared\/zoo\.git zoo$/m,
    /^bob:~\/zoo\$ git zoo ls$/m,
    /^bob:~\/zoo\$ git zoo get \S+ --out \.\.\/best --json$/m,
    /^bob:~\/zoo\$ git zoo eval \S+ --data \.\.\/\.\.\/alice\/runs\/data\/taskA-test\.x\.npy/m,
    /^bob:~\/zoo\$ git zoo diff \S+ \S+$/m,
    /^bob:~\/zoo\$ git zoo soup \S+ \S+ .*--name \S+soup-head$/m,
    /^bob:~\/zoo\$ git zoo push$/m,
    /^alice:~\/zoo\$ git zoo pull$/m,
    /soup -> finetuning\/mlp-taska-seed1-gelu\/soup-head@v1/,
    /^alice:~\/zoo\$ git zoo log$/m,
    /^ {4}[0-9a-f]{12} .* promoted finetuning\/mlp-taska-seed1-gelu\/soup-head@v1$/m,
  ]) grab(out, line)

  // Trained for real: every model of the population beats chance on held-out data, by a margin.
  const [, lo, hi, chanceA, chanceB] = grab(out, /held-out test accuracy ([\d.]+)% \.\. ([\d.]+)% \(chance: ([\d.]+)% on taskA, ([\d.]+)% on taskB\)/).map(Number)
  assert.ok(lo! > 2 * Math.max(chanceA!, chanceB!), `worst model ${lo}% is not clearly above chance ${chanceA}% / ${chanceB}%`)
  assert.ok(hi! >= lo!)
  const [, count, trainedIn] = grab(out, /trained (\d+) models in ([\d.]+) s/).map(Number)
  assert.equal(count, 12)
  assert.ok(trainedIn! > 0)

  // The import is one commit, right after the setup commit.
  const log = grab(out, /git log --oneline -3\n {4}([0-9a-f]{7,}) zoo: import 12 models from runs\n {4}[0-9a-f]{7,} zoo: set up signed promotions\n(?! {4})/)
  assert.ok(log)

  // Signed by both users, with keys made in the demo; the audit judges every promotion good.
  grab(out, /^ {4}[0-9a-f]{7,} G zoo: set up signed promotions$/m)
  grab(out, /^ {6}bob@example\.org namespaces="git" ssh-ed25519 \S+$/m)
  grab(out, /by Alice Example <alice@example\.org>; signed, good \(alice@example\.org\)|by Bob Example <bob@example\.org>; signed, good \(bob@example\.org\)/)
  grab(out, /^ {4}5 commits that changed models\/: 4 signed good \(bob@example\.org\), 1 signed good \(alice@example\.org\)$/m)
  grab(out, /^alice:~\/zoo\$ git zoo verify --signatures\n {4}git zoo verify: no problems$/m)
  assert.doesNotMatch(out, /unsigned/)

  // After the clone, the accuracy evaluated with onnxruntime-node is the one recorded at promotion.
  const matches = [...out.matchAll(/^ {3}MATCH: (\S+) accuracy evaluated after the clone ([\d.]+) = recorded at promotion ([\d.]+)(?:;|$)/gm)]
  assert.equal(matches.length, 2, `no MATCH line in:\n${out}`)
  for (const [, name, evaluated, recorded] of matches) {
    assert.equal(Number(evaluated), Number(recorded), `${name}`)
    assert.ok(Number(evaluated) > 2 * Math.max(chanceA!, chanceB!) / 100, `${name}: ${evaluated} is not clearly above chance`)
  }
  assert.doesNotMatch(out, /MISMATCH/)

  // Timing is reported, and the temporary folder is gone.
  const total = Number(grab(out, /^demo finished in ([\d.]+) s/m)[1])
  assert.ok(total > 0 && total < 120, `demo took ${total} s`)
  grab(out, /^look at what it built in a browser: .*git zoo ui --open$/m)
  const tmp = grab(out, /two machines, alice and bob, in (\S+?);/)[1]!
  assert.equal(existsSync(tmp), false, `${tmp} was not removed`)
})

test('npm run demo: an unknown argument is a usage error', async () => {
  const r = await runDemo(['--bogus'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /usage: npm run demo/)
})
