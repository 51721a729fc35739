/**
 * The design card's git packages against the git CLI through src/git/git.ts (not part of the test
 * suite; figures in spec/architecture.md, "Card packages"):
 *   - start-up: what importing simple-git or isomorphic-git adds to a process;
 *   - history (a zoo of --models promotion commits, bench/gen-zoo.ts --commits): the commit list
 *     with trailers (`git zoo log`), each commit's changes (`verify --signatures`), every manifest at
 *     an old revision (time travel), one manifest at a revision; isomorphic-git in process, cold
 *     (a fresh cache per run, as each CLI run starts), against git;
 *   - remote-facing operations: clone (file://), push to an empty bare repository, fetch with
 *     nothing new, through simple-git and through runGitRemote (both with progress events), and
 *     whether simple-git passes the caller's GIT_* environment through.
 * Neither package is a dependency any more; install them beside the checkout to run this:
 *
 *   npm install --no-save simple-git@4.0.2 isomorphic-git@1.44.11
 *   npx tsc -p . && node dist/bench/git-packages.js [--models 2000] [--runs 5] [--dir <zoo>]
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateZoo } from './gen-zoo.js'
import { git, runGit, runGitRemote, type GitProgress } from '../src/git/git.js'
import { CatFile } from '../src/git/catfile.js'
import { parseTrailers } from '../src/promote/signatures.js'
// every git zoo this bench runs is node's own: a find or ls would start a query server that outlives it
process.env.GIT_ZOO_SERVER = '0'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const argv = process.argv.slice(2)
const opt = (name: string): string | undefined => { const i = argv.indexOf(`--${name}`); return i === -1 ? undefined : argv[i + 1] }
const MODELS = Number(opt('models') ?? 2000)
const RUNS = Number(opt('runs') ?? 5)
const env = { ...process.env }

/* eslint-disable @typescript-eslint/no-explicit-any -- the packages are optional here, loaded by name */
async function load(name: string): Promise<any> {
  try { return await import(name) } catch {
    process.stderr.write(`${name} is not installed; run: npm install --no-save simple-git@4.0.2 isomorphic-git@1.44.11\n`)
    process.exit(2)
  }
}

function median(xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
async function time(runs: number, f: () => Promise<unknown>): Promise<number> {
  const ms: number[] = []
  for (let i = 0; i < runs; i++) { const t = performance.now(); await f(); ms.push(performance.now() - t) }
  return median(ms)
}
const rows: Array<[string, string, string]> = []
function row(what: string, cli: number, pkg: number, pkgName: string): void {
  rows.push([what, `${cli.toFixed(1)} ms`, `${pkg.toFixed(1)} ms (${pkgName})`])
  process.stderr.write(`${what}: git ${cli.toFixed(1)} ms, ${pkgName} ${pkg.toFixed(1)} ms\n`)
}

// ---- start-up ----
function nodeStart(code: string): number {
  const ms: number[] = []
  for (let i = 0; i < RUNS + 2; i++) {
    const t = performance.now()
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, stdio: 'ignore' })
    if (r.status !== 0) throw new Error(`node -e ${code} failed`)
    ms.push(performance.now() - t)
  }
  return median(ms.slice(2))
}
const bare = nodeStart('')
const sgLoad = nodeStart("await import('simple-git')")
const igLoad = nodeStart("await import('isomorphic-git')")
rows.push(['node start, nothing imported', `${bare.toFixed(1)} ms`, ''])
row('node start + import (package load cost)', bare, sgLoad, 'simple-git')
row('node start + import (package load cost)', bare, igLoad, 'isomorphic-git')

const ig = await load('isomorphic-git')
const sg = await load('simple-git')

// ---- history ----
const work = mkdtempSync(join(tmpdir(), 'zoo-gitpkg-'))
const dir = opt('dir') ?? join(work, 'zoo')
if (!existsSync(join(dir, '.git'))) {
  process.stderr.write(`generating ${MODELS} promotion commits in ${dir}\n`)
  await generateZoo(dir, { models: MODELS, epochs: 50, checkEvery: 0, commits: true })
}
const head = (await git(dir, ['rev-parse', 'HEAD'], { env })).trim()
const count = Number((await git(dir, ['rev-list', '--count', 'HEAD'], { env })).trim())
const old = (await git(dir, ['rev-parse', `HEAD~${Math.floor(count / 2)}`], { env })).trim()
process.stderr.write(`${count} commits; time travel to ${old.slice(0, 12)} (HEAD~${Math.floor(count / 2)})\n`)
const igArgs = (cache: object) => ({ fs, dir, cache })

// B1: the commit list with trailers, as `git zoo log` reads it
const FORMAT = '%H%x00%P%x00%an <%ae>%x00%aI%x00%s%x00%b%x1e'
let cliN = 0, igN = 0
const logCli = await time(RUNS, async () => {
  const text = await git(dir, ['log', `--format=${FORMAT}`, 'HEAD', '--', 'models/'], { env })
  const recs = text.split('\x1e').filter((r) => r.includes('\0'))
  const shas = recs.map((r) => r.replace(/^\n/, '').split('\0')[0]!)
  const t = await runGit(dir, ['log', '--no-walk=unsorted', '--stdin', '--format=%H%x00%(trailers:only,unfold)%x1e'], { env, input: shas.join('\n') + '\n' })
  cliN = t.stdout.split('\x1e').filter((r) => r.includes('\0')).map((r) => parseTrailers(r.split('\0')[1] ?? '')).filter((x) => x.models.size).length
})
const logIg = await time(RUNS, async () => {
  const commits = await ig.log({ ...igArgs({}), ref: 'HEAD' }) as Array<{ oid: string; commit: { message: string; parent: string[] } }>
  igN = commits.map((c) => parseTrailers(c.commit.message)).filter((x) => x.models.size).length
})
if (cliN !== igN) throw new Error(`log: git found ${cliN} promotions, isomorphic-git ${igN}`)
row(`commit list + trailers, ${cliN} promotions (log)`, logCli, logIg, 'isomorphic-git')

// B2: each commit's changes against its parent (verify --signatures)
const shas = (await git(dir, ['rev-list', 'HEAD'], { env })).trim().split('\n')
let cliChanges = 0, igChanges = 0
const diffCli = await time(RUNS, async () => {
  const r = await runGit(dir, ['diff-tree', '--stdin', '-r', '--raw', '--no-renames', '--no-abbrev', '--root', '-z'], { env, input: shas.join('\n') + '\n' })
  cliChanges = r.stdout.split('\0').filter((p) => p.startsWith(':')).length
})
async function treeDiff(cache: object, a: string | null, b: string): Promise<number> {
  const entries = async (oid: string | null): Promise<Map<string, { oid: string; type: string }>> =>
    new Map(oid ? ((await ig.readTree({ ...igArgs(cache), oid })).tree as Array<{ path: string; oid: string; type: string }>).map((e) => [e.path, e]) : [])
  const [x, y] = await Promise.all([entries(a), entries(b)])
  let n = 0
  for (const [path, e] of y) {
    const o = x.get(path)
    if (o?.oid === e.oid) continue
    if (e.type === 'tree') n += await treeDiff(cache, o?.type === 'tree' ? o.oid : null, e.oid)
    else n++
  }
  // a removed file is one change; a removed folder, one per file in it
  for (const [path, o] of x) if (!y.has(path)) n += o.type === 'tree' ? await treeDiff(cache, null, o.oid) : 1
  return n
}
const diffIg = await time(RUNS, async () => {
  const cache = {}
  igChanges = 0
  for (const sha of shas) {
    const { commit } = await ig.readCommit({ ...igArgs(cache), oid: sha }) as { commit: { tree: string; parent: string[] } }
    const parentTree = commit.parent[0] ? (await ig.readCommit({ ...igArgs(cache), oid: commit.parent[0] })).commit.tree as string : null
    igChanges += await treeDiff(cache, parentTree, commit.tree)
  }
})
if (cliChanges !== igChanges) throw new Error(`changes: git ${cliChanges}, isomorphic-git ${igChanges}`)
row(`each commit's changes, ${shas.length} commits (verify --signatures)`, diffCli, diffIg, 'isomorphic-git')

// B3: every manifest at an old revision (time travel)
let cliBytes = 0, igBytes = 0
const atCli = await time(RUNS, async () => {
  const list = await git(dir, ['ls-tree', '-r', '-z', old, '--', 'models/'], { env })
  const blobs = list.split('\0').filter((l) => l.endsWith('/manifest.json')).map((l) => l.split('\t')[0]!.split(' ')[2]!)
  const cat = new CatFile(dir, env)
  try { cliBytes = (await Promise.all(blobs.map((b) => cat.read(b)))).reduce((a, o) => a + (o?.size ?? 0), 0) } finally { await cat.close() }
})
const atIg = await time(RUNS, async () => {
  const cache = {}
  igBytes = 0
  const walkTree = async (oid: string): Promise<void> => {
    const { tree } = await ig.readTree({ ...igArgs(cache), oid }) as { tree: Array<{ path: string; oid: string; type: string }> }
    for (const e of tree) {
      if (e.type === 'tree') await walkTree(e.oid)
      else if (e.path === 'manifest.json') igBytes += ((await ig.readBlob({ ...igArgs(cache), oid: e.oid })).blob as Uint8Array).length
    }
  }
  const { oid } = await ig.readTree({ ...igArgs(cache), oid: old, filepath: 'models' }) as { oid: string }
  await walkTree(oid)
})
if (cliBytes !== igBytes) throw new Error(`time travel: git read ${cliBytes} bytes, isomorphic-git ${igBytes}`)
row(`every manifest at HEAD~${Math.floor(count / 2)} (${(cliBytes / 1e6).toFixed(0)} MB; find --at)`, atCli, atIg, 'isomorphic-git')

// B4: one manifest at a revision
const onePath = (await git(dir, ['ls-tree', '-r', '--name-only', old, '--', 'models/'], { env })).split('\n')[0]!
const oneCli = await time(RUNS, () => git(dir, ['cat-file', 'blob', `${old}:${onePath}`], { env }))
const oneIg = await time(RUNS, () => ig.readBlob({ ...igArgs({}), oid: old, filepath: onePath }))
row('one manifest at a revision', oneCli, oneIg, 'isomorphic-git')

// ---- remote-facing operations ----
const url = `file://${dir}`
const stages = new Set<string>()
const onProgress = (p: GitProgress): void => { stages.add(p.stage) }
const sgStages = new Set<string>()
const sgClient = (base: string): any => sg.simpleGit({ baseDir: base, progress: (e: { stage: string }) => sgStages.add(e.stage) })
let n = 0
const fresh = (): string => join(work, `c${n++}`)
const cloneCli = await time(3, async () => { const d = fresh(); const r = await runGitRemote(work, ['clone', '-q', '--', url, d], { env, onProgress }); if (r.code) throw new Error(r.stderr) })
const cloneSg = await time(3, async () => { await sgClient(work).clone(url, fresh(), ['-q']) })
row(`clone ${count} commits over file://`, cloneCli, cloneSg, 'simple-git')
const pushTo = (): string => { const b = fresh(); spawnSync('git', ['init', '-q', '--bare', b]); return b }
const pushCli = await time(3, async () => { const r = await runGitRemote(dir, ['push', '-q', pushTo(), 'main'], { env, onProgress }); if (r.code) throw new Error(r.stderr) })
const pushSg = await time(3, async () => { await sgClient(dir).push(pushTo(), 'main', ['-q']) })
row(`push ${count} commits to an empty bare repository`, pushCli, pushSg, 'simple-git')
const clone = join(work, 'c0')
const fetchCli = await time(RUNS, async () => { const r = await runGitRemote(clone, ['fetch', '-q', 'origin'], { env, onProgress }); if (r.code) throw new Error(r.stderr) })
const fetchSg = await time(RUNS, async () => { await sgClient(clone).fetch('origin') })
row('fetch with nothing new', fetchCli, fetchSg, 'simple-git')
process.stderr.write(`progress stages seen: runGitRemote ${[...stages].join(', ')}; simple-git ${[...sgStages].join(', ')}\n`)

// does the caller's GIT_* environment reach git? (git zoo push hands GIT_ZOO_PUSHED to its hook;
// users set GIT_SSH_COMMAND, GIT_ASKPASS, GIT_CONFIG_* ...)
const noGitVars = Object.fromEntries(Object.entries(env).filter(([k]) => !/^git_/i.test(k)))
const probeConfig = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'zoo.probe', GIT_CONFIG_VALUE_0: 'seen' }
const firstLine = (e: Error): string => `refused: ${e.message.split('\n')[0]}`
const given = await sg.simpleGit({ baseDir: dir }).env({ ...noGitVars, GIT_ZOO_PUSHED: 'x' }).raw(['var', 'GIT_COMMITTER_IDENT'])
  .then(() => 'passed through', firstLine)
Object.assign(process.env, probeConfig)
const ambient = await sg.simpleGit({ baseDir: dir }).raw(['config', '--get', 'zoo.probe']).then((o: string) => o.trim() || 'not seen: removed', firstLine)
for (const k of Object.keys(probeConfig)) delete process.env[k]
const viaRunner = (await runGit(dir, ['config', '--get', 'zoo.probe'], { env: { ...noGitVars, ...probeConfig } })).stdout.trim()
process.stderr.write(`simple-git given GIT_ZOO_PUSHED through env(): ${given}\n`
  + `simple-git with GIT_CONFIG_COUNT/KEY/VALUE in its environment: ${ambient}; runGit: ${viaRunner}\n`)

process.stdout.write(`\n| operation | git CLI (src/git/git.ts) | package |\n|---|---|---|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`)
rmSync(work, { recursive: true, force: true })
