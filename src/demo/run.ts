/**
 * `npm run demo`: a model zoo trained and managed end to end, on this machine, in under a minute.
 *
 * Trains the demo population (population.ts) into a temporary folder, then drives the real CLI
 * (`node bin/git-zoo.js`, one child process per command, cwd set like a user's shell) through the
 * whole workflow on two "machines" that share a bare git repository and a path zoo remote.
 * Every command is printed as a user would type it, with an excerpt of its output. A command that
 * exits non-zero, or a result that is not what the step expects, stops the demo with the step's
 * name and exit code 1. The walkthrough is described in spec/demo.md.
 *
 *   node dist/src/demo/run.js [--keep]     --keep: leave the temporary folder and print its path
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_POPULATION, generatePopulation } from './population.js'
import { TASK_A, TASK_B } from './data.js'

const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const CLI = join(PACKAGE_ROOT, 'bin', 'git-zoo.js')
/** No single command of the demo should come near this; a hung child (a prompt) fails the step. */
const COMMAND_TIMEOUT_MS = 60_000

interface Machine { name: string; home: string }
interface Result { code: number; stdout: string; stderr: string; ms: number; timedOut: boolean }

/** A step failed: what the user ran, what it said. */
class StepFailed extends Error {
  constructor(readonly step: string, message: string, readonly detail = '') { super(message) }
}

const write = (text: string): void => { process.stdout.write(text) }

/** How a shell user would type the argument. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
}

/** The first `max` lines of `text`, indented, with a count of what was left out. */
function excerpt(text: string, max: number): string {
  const lines = text.replace(/\s+$/, '').split('\n').filter((l, i, all) => l.length > 0 || (i > 0 && i < all.length - 1))
  if (lines.length === 0 || (lines.length === 1 && lines[0] === '')) return ''
  const shown = lines.slice(0, max).map((l) => `    ${l}`)
  if (lines.length > max) shown.push(`    ... (${lines.length - max} more lines)`)
  return shown.join('\n') + '\n'
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(2)} MB`

/** Children still running (killed if the demo is interrupted). */
const live = new Set<ChildProcess>()

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Result> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(child)
    const out: Buffer[] = [], err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, COMMAND_TIMEOUT_MS)
    child.on('error', (e) => { clearTimeout(timer); live.delete(child); reject(e) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      live.delete(child)
      resolve({
        code: code ?? (signal ? 128 : 1), ms: performance.now() - started, timedOut,
        stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'),
      })
    })
  })
}

interface RunOpts {
  /** Lines of output to print (default 12; 0 prints none). */
  lines?: number
  /** Print these lines instead of the raw output (for --json). */
  summary?: (r: Result) => string[]
  /** Print only the top-level sections (an unindented line and the indented lines under it) whose
   *  first line starts with one of these; the first section is always kept. */
  sections?: string[]
  /** Also print stderr (the product's progress and notes) under stdout. Default true. */
  stderr?: boolean
}

/** The sections of a command's text output that `keep` names (see RunOpts.sections), or undefined if none matched. */
function pickSections(text: string, keep: string[]): string | undefined {
  const blocks: string[][] = []
  for (const line of text.replace(/\s+$/, '').split('\n')) {
    if (line === '') continue
    if (!/^\s/.test(line) || blocks.length === 0) blocks.push([line])
    else blocks[blocks.length - 1]!.push(line)
  }
  const kept = blocks.filter((b, i) => i === 0 || keep.some((k) => b[0]!.startsWith(k)))
  if (kept.length < 2) return undefined
  const total = blocks.reduce((n, b) => n + b.length, 0), shown = kept.reduce((n, b) => n + b.length, 0)
  const lines = kept.flat().map((l) => `    ${l}`)
  if (shown < total) lines.push(`    ... (${total - shown} more lines: ${blocks.filter((b) => !kept.includes(b)).map((b) => b[0]!.replace(/:.*$/, '')).join(', ')})`)
  return lines.join('\n') + '\n'
}

class Demo {
  step = 'start'
  private n = 0
  /** Child processes run, and the time they took. */
  commands = 0
  commandMs = 0
  trainMs = 0
  constructor(readonly tmp: string, readonly env: NodeJS.ProcessEnv) {}

  section(title: string): void {
    this.step = title
    write(`\n${++this.n}. ${title}\n`)
  }

  note(text: string): void { write(`   ${text}\n`) }

  fail(message: string, detail = ''): never { throw new StepFailed(this.step, message, detail) }

  /** Paths under the temp folder, shown relative to where the user stands. */
  private display(arg: string, cwd: string): string {
    if (arg.startsWith(this.tmp + sep) || arg === this.tmp) {
      const rel = relative(cwd, arg)
      return rel === '' ? '.' : rel
    }
    return arg
  }

  async exec(m: Machine, cwd: string, program: 'git' | 'git zoo', args: string[], opts: RunOpts = {}): Promise<Result> {
    const shown = [program, ...args.map((a) => shellQuote(this.display(a, cwd)))].join(' ')
    const where = relative(m.home, cwd)
    write(`${m.name}:${where === '' ? '~' : `~/${where.split(sep).join('/')}`}$ ${shown}\n`)
    // each machine has its own home: ~/.ssh holds that user's signing key
    const env = { ...this.env, HOME: m.home }
    const r = program === 'git'
      ? await run('git', args, cwd, env)
      : await run(process.execPath, [CLI, ...args], cwd, env)
    this.commands++
    this.commandMs += r.ms
    if (r.timedOut) this.fail(`\`${shown}\` did not finish within ${COMMAND_TIMEOUT_MS / 1000} s and was killed`, r.stderr.trim())
    if (r.code !== 0) {
      this.fail(`\`${shown}\` exited with code ${r.code}`, [r.stdout.trim(), r.stderr.trim()].filter(Boolean).join('\n'))
    }
    const lines = opts.summary ? opts.summary(r).map((l) => `    ${l}\n`).join('')
      : (opts.sections && pickSections(r.stdout, opts.sections)) || excerpt(r.stdout, opts.lines ?? 12)
    write(lines)
    if (opts.stderr !== false && !opts.summary) write(excerpt(r.stderr, 4))
    return r
  }

  zoo(m: Machine, cwd: string, args: string[], opts?: RunOpts): Promise<Result> { return this.exec(m, cwd, 'git zoo', args, opts) }
  git(m: Machine, cwd: string, args: string[], opts?: RunOpts): Promise<Result> { return this.exec(m, cwd, 'git', args, { lines: 2, ...opts }) }

  /** `git zoo ... --json` parsed; anything but one JSON document fails the step. */
  async zooJson<T>(m: Machine, cwd: string, args: string[], summary: (doc: T) => string[]): Promise<T> {
    let doc: T | undefined
    await this.zoo(m, cwd, [...args, '--json'], {
      summary: (r) => {
        const what = `git zoo ${args.join(' ')} --json`
        try { doc = JSON.parse(r.stdout) as T } catch (err) { this.fail(`\`${what}\` did not print one JSON document: ${(err as Error).message}`, r.stdout.slice(0, 400)) }
        try { return summary(doc) } catch (err) {
          if (err instanceof StepFailed) throw err
          this.fail(`\`${what}\` printed JSON of an unexpected shape (${(err as Error).message})`, r.stdout.slice(0, 400))
        }
      },
    })
    return doc!
  }
}

/** The environment every child runs in: the user's, minus anything that would point git or the zoo elsewhere. */
function childEnv(globalConfig: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('GIT_') || k.startsWith('AWS_')) continue
    env[k] = v
  }
  return {
    ...env,
    // The demo's git reads no global or system configuration (no signing prompt, no hooksPath, no
    // zoo.store pointing at a real shared store): the identity is set in each temp repository.
    GIT_CONFIG_GLOBAL: globalConfig,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    TMPDIR: process.env.TMPDIR ?? tmpdir(),
    NO_COLOR: '1',
    // the demo's finds and lists run in node: none starts a query server that outlives the demo
    GIT_ZOO_SERVER: '0',
  }
}

interface FoundModel { name: string; version: number; seal: string; dataset?: string; metrics: Record<string, number>; parents?: unknown[] }
interface ImportDoc {
  layout: string; models: { name: string; version: number; seal: string; status: string }[]
  promoted: number; commits: string[]; checkpoints: number; files: number; bytes: number; stored_bytes: number; seconds: number
}
interface EvalDoc { name: string; version: number; seal: string; file: string; data: { n: number }; metrics: { accuracy: number; loss?: number }; recorded: boolean; commit?: string }

/** The walkthrough; returns alice's zoo (the one the closing `git zoo ui` line names). */
async function walkthrough(demo: Demo, tmp: string): Promise<string> {
  const alice: Machine = { name: 'alice', home: join(tmp, 'alice') }
  const bob: Machine = { name: 'bob', home: join(tmp, 'bob') }
  const runs = join(alice.home, 'runs')
  const shared = join(tmp, 'shared')
  const bareRepo = join(shared, 'zoo.git')
  const objects = join(shared, 'zoo-objects')
  const aliceZoo = join(alice.home, 'zoo')
  const bobZoo = join(bob.home, 'zoo')
  for (const dir of [alice.home, bob.home, shared]) await mkdir(dir, { recursive: true })

  // Training runs in process: the generator is part of the project, not a zoo command.
  demo.section('Train a population of small models (plain TypeScript on the CPU)')
  const d = DEFAULT_POPULATION
  const grid = d.seeds.length * d.learningRates.length * d.activations.length * d.inits.length
  demo.note(`grid: seeds {${d.seeds.join(', ')}} x lr {${d.learningRates.join(', ')}} x {${d.activations.join(', ')}} x {${d.inits.join(', ')}} = ${grid} MLPs on taskA (${TASK_A.classes} classes), ${d.epochs} epochs each`)
  demo.note(`family: 1 MLP pre-trained on taskA, ${d.finetunes.length} fine-tunes of it on taskB (${TASK_B.classes} classes), ${d.finetunes.filter((f) => f.freezeBody).length} of them with the body frozen`)
  const pop = await generatePopulation(runs)
  demo.trainMs = pop.ms
  const accs = pop.models.map((m) => m.final.test_acc)
  const beat = pop.models.filter((m) => m.final.test_acc > 2 / (m.config.outputs as number)).length
  demo.note(`trained ${pop.models.length} models in ${secs(pop.ms)}: ${pop.files} files, ${(pop.bytes / 1e6).toFixed(2)} MB in ~/runs (a checkpoint per epoch, config.json, result.json, model.onnx)`)
  demo.note(`held-out test accuracy ${pct(Math.min(...accs))} .. ${pct(Math.max(...accs))} (chance: ${pct(1 / TASK_A.classes)} on taskA, ${pct(1 / TASK_B.classes)} on taskB)`)
  if (beat !== pop.models.length) demo.fail(`only ${beat} of ${pop.models.length} models reach twice chance accuracy`)

  demo.section('Make a git repository a model zoo, with signed promotions')
  await demo.git(alice, alice.home, ['init', '-q', '-b', 'main', aliceZoo])
  await demo.git(alice, aliceZoo, ['config', 'user.name', 'Alice Example'])
  await demo.git(alice, aliceZoo, ['config', 'user.email', 'alice@example.org'])
  // a new SSH key in alice's ~/.ssh; the set-up and .zoo/allowed_signers in one commit signed by it
  await demo.zoo(alice, aliceZoo, ['init', '--sign', '--new-key'])
  const setup = await demo.git(alice, aliceZoo, ['log', '-1', '--format=%h %G? %s'], { lines: 1 })
  if (!/^\S+ G zoo: set up signed promotions/.test(setup.stdout)) demo.fail(`the set-up commit is not signed with a good signature: ${setup.stdout.trim()}`)

  demo.section('Promote the whole population in one commit')
  const imported = await demo.zooJson<ImportDoc>(alice, aliceZoo, ['import', runs], (doc) => [
    `layout ${doc.layout}: ${doc.promoted} models promoted (${doc.checkpoints} checkpoints, ${doc.files} files, ${mb(doc.bytes)}) in ${doc.seconds.toFixed(1)} s`,
    `${mb(doc.stored_bytes)} newly stored: tensors equal across epochs and models (the frozen bodies) are stored once`,
    `commit ${doc.commits.map((c) => c.slice(0, 12)).join(', ')}`,
  ])
  if (imported.promoted !== pop.models.length) demo.fail(`import promoted ${imported.promoted} models, the population has ${pop.models.length}`)
  if (imported.commits.length !== 1) demo.fail(`import made ${imported.commits.length} commits, not one`)
  const head = await demo.git(alice, aliceZoo, ['log', '--oneline', '-3'], { lines: 3 })
  if (!head.stdout.startsWith(imported.commits[0]!.slice(0, 7))) demo.fail(`HEAD is not the import commit ${imported.commits[0]}`)
  const nameOf = (path: string): string => {
    const m = imported.models.find((x) => x.name === path.toLowerCase()) ?? imported.models.find((x) => x.name.endsWith('/' + path.toLowerCase()))
    if (!m) demo.fail(`import did not promote ${path} (models: ${imported.models.map((x) => x.name).join(', ')})`)
    return m.name
  }
  const pretrained = nameOf(pop.models.find((m) => m.kind === 'pretrained')!.path)
  const fineTunes = pop.models.filter((m) => m.kind === 'finetuned')
  const [headA, headB] = fineTunes.filter((m) => (m.config.frozen as string[]).length > 0).map((m) => nameOf(m.path)) as [string, string]
  const bestTune = nameOf([...fineTunes].sort((a, b) => b.final.test_acc - a.final.test_acc)[0]!.path)

  demo.section('Find the best models, read a model card, draw a lineage')
  await demo.zoo(alice, aliceZoo, ['find', 'dataset=taskA', 'metrics.test_acc>0.7', '--sort', '-metrics.test_acc', '--limit', '3'])
  const found = await demo.zooJson<{ models: FoundModel[] }>(alice, aliceZoo, ['find', 'dataset=taskA', '--sort', '-metrics.test_acc', '--limit', '1'],
    (doc) => doc.models.map((m) => `${m.name}@v${m.version}  test_acc ${m.metrics.test_acc}  seal ${m.seal}`))
  const best = found.models[0]
  if (!best) demo.fail('find returned no model trained on taskA')
  await demo.zoo(alice, aliceZoo, ['show', best.name], { sections: ['metrics', 'test_acc over'], lines: 30 })
  await demo.zoo(alice, aliceZoo, ['lineage', pretrained])

  demo.section('Verify every object of every model')
  await verify(demo, alice, aliceZoo)

  // Sharing: a bare git repository carries the manifests, a folder zoo remote the objects.
  demo.section('Share the zoo: a bare git repository for the manifests, a folder for the objects')
  await demo.git(alice, alice.home, ['init', '-q', '--bare', '-b', 'main', bareRepo])
  await demo.git(alice, aliceZoo, ['remote', 'add', 'origin', bareRepo])
  await demo.zoo(alice, aliceZoo, ['remote', 'add', 'origin', objects])
  await demo.git(alice, aliceZoo, ['commit', '-q', '-m', 'Zoo remote', '.zoo/config.json'])
  await demo.zoo(alice, aliceZoo, ['push'])

  demo.section('A second machine: clone the zoo, get the best model, evaluate it on held-out data')
  await demo.zoo(bob, bob.home, ['clone', bareRepo, bobZoo])
  await demo.git(bob, bobZoo, ['config', 'user.name', 'Bob Example'])
  await demo.git(bob, bobZoo, ['config', 'user.email', 'bob@example.org'])
  // bob signs too: init prints the line an allowed signer must add (a key cannot authorise itself);
  // alice adds it in a commit signed by her, and bob pulls it before promoting anything
  const bobSign = await demo.zoo(bob, bobZoo, ['init', '--sign', '--new-key', '--json'], {
    summary: (r) => { const s = (JSON.parse(r.stdout) as { signing: { signers: string; line: string } }).signing; return [`signers: ${s.signers}; the line for .zoo/allowed_signers:`, `  ${s.line}`] },
  })
  const bobLine = (JSON.parse(bobSign.stdout) as { signing: { line: string } }).signing.line
  await writeFile(join(aliceZoo, '.zoo', 'allowed_signers'), (await readFile(join(aliceZoo, '.zoo', 'allowed_signers'), 'utf8')) + bobLine + '\n')
  demo.note('alice appends that line to .zoo/allowed_signers')
  await demo.git(alice, aliceZoo, ['commit', '-q', '-m', 'Allow Bob to sign promotions', '.zoo/allowed_signers'])
  await demo.zoo(alice, aliceZoo, ['push'], { lines: 2 })
  await demo.zoo(bob, bobZoo, ['pull'], { lines: 2 })
  await demo.zoo(bob, bobZoo, ['ls'], { lines: 14 })
  const got = await demo.zooJson<{ files: { path: string; size: number }[] }>(bob, bobZoo, ['get', best.name, '--out', join(bob.home, 'best')], (doc) => [
    `${doc.files.length} files, ${(doc.files.reduce((n, f) => n + f.size, 0) / 1024).toFixed(1)} KiB, every byte verified: ` +
      [...doc.files.filter((f) => !f.path.startsWith('checkpoint_')).map((f) => f.path),
        `${new Set(doc.files.filter((f) => f.path.startsWith('checkpoint_')).map((f) => f.path.split('/')[0])).size} checkpoint_*/ folders`].join(', '),
  ])
  if (got.files.length === 0) demo.fail(`git zoo get wrote no files for ${best.name}`)
  await evaluate(demo, bob, bobZoo, best.name, join(runs, 'data', 'taskA-test.x.npy'))
  await evaluate(demo, bob, bobZoo, bestTune, join(runs, 'data', 'taskB-test.x.npy'))

  demo.section('Compare two fine-tunes in weight space, and make a soup of them')
  await demo.zoo(bob, bobZoo, ['diff', headA, headB], { sections: ['b:', 'factors', 'weights', 'storage'], lines: 16 })
  const soup = headA.replace(/[^/]+$/, 'soup-head')
  await demo.zoo(bob, bobZoo, ['soup', headA, headB, '--name', soup])
  const soupEval = await demo.zoo(bob, bobZoo, ['eval', soup, '--data', join(runs, 'data', 'taskB-test.x.npy')], { lines: 5 })
  const soupAcc = /accuracy\s+([\d.]+)/.exec(soupEval.stdout)?.[1]
  const ingredients = [headA, headB].map((n) => pop.models.find((m) => m.path.toLowerCase() === n || n.endsWith('/' + m.path.toLowerCase()))?.final.test_acc)
  if (soupAcc && ingredients.every((a) => a !== undefined)) demo.note(`the soup: accuracy ${Number(soupAcc).toFixed(3)} on taskB; its ingredients ${ingredients.map((a) => a!.toFixed(3)).join(' and ')}`)

  demo.section('Back on the first machine: the second one pushes, the first pulls')
  await demo.zoo(bob, bobZoo, ['push'])
  await demo.zoo(alice, aliceZoo, ['pull'], { lines: 3 })
  await demo.zoo(alice, aliceZoo, ['lineage', pretrained])
  await demo.zoo(alice, aliceZoo, ['log'], { lines: 11 })
  await verify(demo, alice, aliceZoo)

  demo.section('Audit the signatures: every promotion signed by an allowed signer')
  const log = await demo.zooJson<{ entries: Array<{ signature: { ok: boolean; signer: string } }> }>(alice, aliceZoo, ['log'], (doc) => {
    const by = new Map<string, number>()
    for (const e of doc.entries) { const k = e.signature.ok ? `good (${e.signature.signer})` : 'not good'; by.set(k, (by.get(k) ?? 0) + 1) }
    return [`${doc.entries.length} commits that changed models/: ${[...by].map(([k, n]) => `${n} signed ${k}`).join(', ')}`]
  })
  const signers = new Set(log.entries.filter((e) => e.signature.ok).map((e) => e.signature.signer))
  if (log.entries.some((e) => !e.signature.ok) || !signers.has('alice@example.org') || !signers.has('bob@example.org')) {
    demo.fail(`expected every promotion signed, by alice and by bob; got ${JSON.stringify(log.entries.map((e) => e.signature))}`)
  }
  const audit = await demo.zoo(alice, aliceZoo, ['verify', '--signatures'])
  if (audit.code === 0) demo.note('(exit 0: each commit that touched models/ or .zoo/allowed_signers carries a good signature by a signer allowed as of its parent)')
  return aliceZoo
}

/** `git zoo verify` prints nothing when everything holds; say what its exit 0 means. */
async function verify(demo: Demo, m: Machine, zooDir: string): Promise<void> {
  const r = await demo.zoo(m, zooDir, ['verify'])
  if (r.stdout.trim() === '') demo.note('(exit 0: every manifest matches its seal, every chunk and node its CID)')
}

/** `git zoo eval` on the second machine; its accuracy must be the one sealed at promotion. */
async function evaluate(demo: Demo, m: Machine, zooDir: string, name: string, data: string): Promise<void> {
  const ev = await demo.zooJson<EvalDoc>(m, zooDir, ['eval', name, '--data', data], (doc) => [
    `${doc.name}@v${doc.version} (${doc.file}) on ${doc.data.n} held-out samples: accuracy ${doc.metrics.accuracy}` +
      (doc.metrics.loss !== undefined ? `, loss ${doc.metrics.loss.toFixed(6)}` : '') + (doc.recorded ? `; recorded in ${doc.commit?.slice(0, 12) ?? 'a commit'}` : ''),
  ])
  const manifestPath = join(zooDir, 'models', ...ev.name.split('/'), `v${ev.version}`, 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { seal: string; metrics: Record<string, number> }
  if (manifest.seal !== ev.seal) demo.fail(`eval ran ${ev.name}@v${ev.version} with seal ${ev.seal}, the manifest says ${manifest.seal}`)
  const recorded = manifest.metrics.test_acc
  if (typeof recorded !== 'number') demo.fail(`the sealed manifest of ${name} records no metrics.test_acc`)
  check(demo, ev.name, { acc: recorded, loss: manifest.metrics.test_loss }, { acc: ev.metrics.accuracy, loss: ev.metrics.loss })
}

/** The accuracy evaluated after the clone must be the one sealed at promotion (and the loss agree to float32 precision). */
function check(demo: Demo, name: string, recorded: { acc: number; loss?: number }, evaluated: { acc: number; loss?: number }): void {
  const same = recorded.acc === evaluated.acc
  const lossNote = recorded.loss !== undefined && evaluated.loss !== undefined
    ? `; loss ${evaluated.loss.toFixed(6)} vs ${recorded.loss.toFixed(6)}` : ''
  write(`   ${same ? 'MATCH' : 'MISMATCH'}: ${name} accuracy evaluated after the clone ${evaluated.acc} = recorded at promotion ${recorded.acc}${lossNote}\n`)
  if (!same) demo.fail(`${name}: evaluated accuracy ${evaluated.acc} differs from the recorded ${recorded.acc}`)
  if (lossNote && Math.abs(recorded.loss! - evaluated.loss!) > 1e-4 * Math.max(1, recorded.loss!)) {
    demo.fail(`${name}: evaluated loss ${evaluated.loss} differs from the recorded ${recorded.loss}`)
  }
}

async function main(argv: string[]): Promise<number> {
  const keep = argv.includes('--keep')
  const unknown = argv.filter((a) => a !== '--keep')
  if (unknown.length > 0) {
    process.stderr.write(`usage: npm run demo [-- --keep]\n  unknown argument: ${unknown.join(' ')}\n`)
    return 2
  }
  const started = performance.now()
  const tmp = await mkdtemp(join(tmpdir(), 'git-zoo-demo-'))
  const globalConfig = join(tmp, 'gitconfig')
  await writeFile(globalConfig, '[init]\n\tdefaultBranch = main\n')
  const demo = new Demo(tmp, childEnv(globalConfig))
  write(`git-zoo demo: train a population, promote it, find, share and evaluate models\n`)
  write(`(two machines, alice and bob, in ${tmp}; every command below really runs)\n`)
  let code = 0
  // Ctrl-C: the children (same process group) get the signal too; clean up before leaving.
  const interrupted = (): void => {
    process.stderr.write(`\ndemo interrupted at step "${demo.step}"${keep ? `; kept ${tmp}` : ''}\n`)
    for (const child of live) child.kill('SIGKILL')
    if (!keep) rmSync(tmp, { recursive: true, force: true, maxRetries: 3 })
    process.exit(130)
  }
  process.once('SIGINT', interrupted)
  try {
    const aliceZoo = await walkthrough(demo, tmp)
    write(`\ndemo finished in ${secs(performance.now() - started)} (training ${secs(demo.trainMs)}, ${demo.commands} commands ${secs(demo.commandMs)})\n`)
    // what it built, in a browser (the folder stays only with --keep)
    write(keep ? `look at what it built in a browser: cd ${shellQuote(aliceZoo)} && git zoo ui --open\n`
      : `look at what it built in a browser: npm run demo -- --keep, then cd <kept folder>/alice/zoo && git zoo ui --open\n`)
  } catch (err) {
    code = 1
    if (err instanceof StepFailed) {
      process.stderr.write(`\ndemo FAILED at step "${err.step}": ${err.message}\n`)
      if (err.detail) process.stderr.write(excerpt(err.detail, 30))
    } else {
      process.stderr.write(`\ndemo FAILED at step "${demo.step}": ${(err as Error)?.stack ?? String(err)}\n`)
    }
  } finally {
    if (keep) write(`kept ${tmp}\n`)
    else await rm(tmp, { recursive: true, force: true })
    process.off('SIGINT', interrupted)
  }
  if (code !== 0 && !keep) process.stderr.write('(run `npm run demo -- --keep` to keep the temporary folder for inspection)\n')
  return code
}

process.exitCode = await main(process.argv.slice(2))
