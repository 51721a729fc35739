/**
 * The zoo's commit rules (spec/seal.md, "What a commit may do"), applied by the pre-commit hook to
 * the index against HEAD, and by `verify --signatures` to each commit against its parent:
 *   - no raw weights file anywhere in git (sniffed by content, whatever its name);
 *   - (the hook only) no staged file outside models/ and .zoo/ larger than policy.max_blob_bytes
 *     (default 10 MiB), whatever its bytes: random bytes say nothing about being weights;
 *   - under models/ only model version folders `models/<name>/v<N>/`;
 *   - a folder sealed before (its manifest.json exists there) never changes; the additions
 *     allowed are RETIRED.json, a valid retirement of exactly that seal, and evaluation records
 *     `evals/<data-sha256>[-<file>].json` that validate against the sealed manifest (spec/eval.md);
 *   - a new version folder holds its manifest.json (valid, canonical, sealed, named for its folder,
 *     meeting .zoo/schema.json as of before), the config snapshot it names (matching its digest) and
 *     its README.md card, nothing else.
 * The hook also checks that new manifests' objects are in the local store. This module loads only
 * light code until something under models/ is staged, so the hook stays fast (spec/seal.md).
 */
import { CatFile, type CatObject } from '../git/catfile.js'
import { git } from '../git/git.js'
import { parseRawDiff, sniffable, workTreeHead, isZooPath, maxBlobBytes, STAGED_DIFF, type Change } from './staged.js'

export { isZooPath, maxBlobBytes, DEFAULT_MAX_BLOB_BYTES } from './staged.js'

export { parseRawDiff, type Change }
import type { Manifest } from '../manifest/manifest.js'
import type { RepoContext } from '../repo.js'
import type { ZooSchema } from './policy.js'
import type { Retirement } from './retire.js'

export type RuleKind = 'size' | 'weights' | 'layout' | 'manifest' | 'seal' | 'schema' | 'config' | 'sealed' | 'retire' | 'eval' | 'objects'

export interface RuleProblem {
  kind: RuleKind
  path: string
  /** `name@vN` when the problem concerns a model version. */
  model?: string
  problem: string
  /** A command (or two) that fixes it. */
  fix: string
}

export interface NewVersion { model: string; path: string; oid: string; manifest: Manifest }
export interface NewRetirement { model: string; path: string; retirement: Retirement }

/** An evaluation record added beside a sealed version (spec/eval.md). */
export interface NewEvaluation { model: string; path: string; seal: string; data: string }

export interface RuleResult { problems: RuleProblem[]; manifests: NewVersion[]; retirements: NewRetirement[]; evaluations: NewEvaluation[] }

/** Where the two sides of a change are read: `<rev>:<path>`, or the index (`:<path>`) when rev is ''. */
export interface Sides { before: string | null; after: string }

const REGULAR = new Set(['100644', '100755'])
/** A manifest larger than this is refused unread (a real one is kilobytes; MAX_BLOCK is 4 MiB). */
const MAX_MANIFEST = 16 * 1024 * 1024

/** Quote a path for a shell command in a message. */
export function sh(s: string): string {
  return /^[A-Za-z0-9_./@=:+-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`
}

export interface ModelPath { name: string; version: number; dir: string; rest: string }

/** Split `models/<name>/v<N>/<rest>`; `outside` for paths under models/ not in a version folder. */
export function parseModelPath(path: string): ModelPath | 'outside' | null {
  if (!path.startsWith('models/')) return null
  const segs = path.split('/')
  const at = segs.findIndex((s, i) => i >= 2 && /^v[1-9]\d*$/.test(s))
  if (at === -1 || at === segs.length - 1) return 'outside'
  const name = segs.slice(1, at).join('/')
  return { name, version: Number(segs[at]!.slice(1)), dir: segs.slice(0, at + 1).join('/'), rest: segs.slice(at + 1).join('/') }
}

function spec(rev: string | null, path: string): string | null {
  return rev === null ? null : `${rev}:${path}`
}

/** Raw weights among the added or modified blobs. */
export async function weightsProblems(changes: Change[], cat: CatFile, label = '',
                                      shortcut?: (c: Change) => CatObject | null): Promise<RuleProblem[]> {
  const wanted = changes.filter(sniffable)
  if (!wanted.length) return []
  const { isWeightsFile, sniff, SNIFF_BYTES } = await import('../formats/sniff.js')
  const heads = await Promise.all(wanted.map(async (c) => shortcut?.(c) ?? cat.head(c.newOid, SNIFF_BYTES)))
  const out: RuleProblem[] = []
  wanted.forEach((c, i) => {
    const o = heads[i]
    if (!o || !isWeightsFile(o.bytes, o.size)) return
    const mp = parseModelPath(c.path)
    out.push({
      kind: 'weights', path: c.path, ...(mp && mp !== 'outside' ? { model: `${mp.name}@v${mp.version}` } : {}),
      problem: `is raw model weights by its content (${sniff(o.bytes, o.size)}, ${o.size} bytes)${label ? `, ${label}` : ''}; weights belong in the zoo's store, not in git`,
      fix: `git rm --cached -- ${sh(c.path)} && git zoo add ${sh(c.path)} --name <model>`,
    })
  })
  return out
}

/** Staged files that are not zoo files and are larger than `max` bytes (raw weights are reported as such, not twice). */
export async function sizeProblems(changes: Change[], cat: CatFile, max: number, weights: Set<string>): Promise<RuleProblem[]> {
  const out: RuleProblem[] = []
  for (const c of changes.filter(sniffable)) {
    if (isZooPath(c.path) || weights.has(c.path)) continue
    const o = await cat.head(c.newOid, 0)
    if (!o || o.size <= max) continue
    out.push({
      kind: 'size', path: c.path,
      problem: `is ${o.size} bytes, over policy.max_blob_bytes (${max}); large files belong in the zoo's store, not in git`,
      fix: `git rm --cached -- ${sh(c.path)} && git zoo add ${sh(c.path)} --name <model>  (or raise policy.max_blob_bytes in .zoo/config.json)`,
    })
  }
  return out
}

/**
 * The rules for models/ (see the module comment) over `changes` between `sides.before` and
 * `sides.after`. `schema` is the zoo's schema as of before. Manifests and retirements it accepts
 * are returned for the callers' own checks (objects in the store, trailers).
 */
export async function modelRules(changes: Change[], cat: CatFile, sides: Sides, schema: ZooSchema,
  /** The complete view of a format 2 manifest (its checkpoint node read): an evaluation may name a checkpoint file. */
  complete?: (m: Manifest) => Promise<Manifest>): Promise<RuleResult> {
  const { parseManifest, checkSeal, serializeManifest, MANIFEST_FILE } = await import('../manifest/manifest.js')
  const { schemaProblems } = await import('./policy.js')
  const { parseRetirement, RETIRED_FILE } = await import('./retire.js')
  const { validateEvalRecord, EVAL_PATH } = await import('../evals/record.js')
  const res: RuleResult = { problems: [], manifests: [], retirements: [], evaluations: [] }
  const problem = (p: RuleProblem): void => { res.problems.push(p) }
  const sealedBefore = new Map<string, Promise<string | null>>() // dir -> manifest text before, or null
  const before = (dir: string): Promise<string | null> => {
    let v = sealedBefore.get(dir)
    if (!v) {
      const s = spec(sides.before, `${dir}/${MANIFEST_FILE}`)
      v = s ? cat.text(s) : Promise.resolve(null)
      sealedBefore.set(dir, v)
    }
    return v
  }
  const fresh = new Map<string, { mp: ModelPath; changes: Change[] }>()
  for (const c of changes) {
    const mp = parseModelPath(c.path)
    if (mp === null) continue
    if (mp === 'outside') {
      if (c.status === 'D') continue
      problem({ kind: 'layout', path: c.path, problem: 'models/ holds only model version folders (models/<name>/v<N>/), written by `git zoo add`', fix: `git rm --cached -- ${sh(c.path)}` })
      continue
    }
    const model = `${mp.name}@v${mp.version}`
    const sealed = await before(mp.dir)
    if (sealed !== null) {
      if (c.status === 'A' && mp.rest === RETIRED_FILE && REGULAR.has(c.newMode)) {
        const text = await cat.text(c.newOid)
        try {
          const r = parseRetirement(text ?? '', c.path)
          const m = parseManifest(sealed, `${mp.dir}/${MANIFEST_FILE}`)
          if (r.name !== mp.name || r.version !== mp.version) throw new Error(`it names ${r.name}@v${r.version}, not ${model}`)
          if (r.seal !== m.seal) throw new Error(`its seal ${r.seal} is not the sealed manifest's ${m.seal}`)
          res.retirements.push({ model, path: c.path, retirement: r })
        } catch (err) {
          problem({ kind: 'retire', path: c.path, model, problem: `not a valid retirement: ${(err as Error).message}`, fix: `git rm --cached -- ${sh(c.path)} && git zoo retire ${model} --reason <why>` })
        }
        continue
      }
      if (c.status === 'A' && EVAL_PATH.test(c.path) && REGULAR.has(c.newMode)) {
        try {
          const parsed = parseManifest(sealed, `${mp.dir}/${MANIFEST_FILE}`)
          const m = parsed.checkpoints && complete ? await complete(parsed) : parsed
          const r = validateEvalRecord((await cat.text(c.newOid)) ?? '', m, c.path)
          res.evaluations.push({ model, path: c.path, seal: m.seal, data: r.data.sha256 })
        } catch (err) {
          problem({ kind: 'eval', path: c.path, model, problem: `not a valid evaluation record: ${(err as Error).message}`, fix: `git rm --cached -- ${sh(c.path)} && git zoo eval ${model} --data <file>` })
        }
        continue
      }
      const what = c.status === 'D' ? 'deletes' : c.status === 'A' ? 'adds a file to' : 'modifies'
      problem({
        kind: 'sealed', path: c.path, model,
        problem: `${what} the sealed version ${model}; sealed versions never change (README.md cards included)`,
        fix: c.status === 'A'
          ? `git rm --cached -- ${sh(c.path)}`
          : `git restore --staged --worktree --source=HEAD -- ${sh(c.path)}${c.status === 'D' ? `  (to take it out of service: git zoo retire ${model} --reason <why>)` : ''}`,
      })
      continue
    }
    if (c.status === 'D') continue // leftovers of a folder that was never sealed
    const f = fresh.get(mp.dir) ?? { mp, changes: [] }
    f.changes.push(c)
    fresh.set(mp.dir, f)
  }
  for (const { mp, changes: cs } of fresh.values()) {
    const model = `${mp.name}@v${mp.version}`
    const mpath = `${mp.dir}/${MANIFEST_FILE}`
    const redo = `git rm -r --cached -- ${sh(mp.dir)} && git zoo add <files> --name ${mp.name}`
    const mo = await cat.read(spec(sides.after, mpath)!, MAX_MANIFEST)
    const mchange = cs.find((c) => c.path === mpath)
    if (!mo || !mchange) {
      for (const c of cs) problem({ kind: 'layout', path: c.path, model, problem: `${mp.dir}/ has no ${MANIFEST_FILE}, so this is not a sealed model version`, fix: redo })
      continue
    }
    if (!REGULAR.has(mchange.newMode) || mo.size > MAX_MANIFEST) {
      problem({ kind: 'manifest', path: mpath, model, problem: mo.size > MAX_MANIFEST ? `${MANIFEST_FILE} is ${mo.size} bytes, over ${MAX_MANIFEST}: not a manifest` : `${MANIFEST_FILE} is not a regular file`, fix: redo })
      continue
    }
    const text = mo.bytes.toString('utf8')
    let m: Manifest
    try { m = parseManifest(text, mpath) } catch (err) {
      problem({ kind: 'manifest', path: mpath, model, problem: (err as Error).message, fix: redo })
      continue
    }
    const seal = checkSeal(m)
    if (!seal.ok) {
      problem({ kind: 'seal', path: mpath, model, problem: `seal mismatch: the manifest says ${m.seal}, its content gives ${seal.expected}; it was changed after sealing`, fix: redo })
      continue
    }
    let ok = true
    if (m.name !== mp.name || m.version !== mp.version) {
      problem({ kind: 'manifest', path: mpath, model, problem: `the manifest is ${m.name}@v${m.version} but sits in ${mp.dir}/`, fix: redo }); ok = false
    }
    if (serializeManifest(m) !== text) {
      problem({ kind: 'manifest', path: mpath, model, problem: 'the manifest is not in its canonical form (key order, indentation, number spelling as git zoo writes it)', fix: redo }); ok = false
    }
    const sp = schemaProblems(m as unknown as Record<string, unknown>, schema)
    if (sp.length) { problem({ kind: 'schema', path: mpath, model, problem: `does not meet .zoo/schema.json: ${sp.join('; ')}`, fix: `${redo} (with the values the schema requires)` }); ok = false }
    const allowed = new Set([MANIFEST_FILE, 'README.md', ...(m.config ? [m.config.path] : [])])
    for (const c of cs) {
      if (!allowed.has(c.path.slice(mp.dir.length + 1))) {
        problem({ kind: 'layout', path: c.path, model, problem: `${c.path.slice(mp.dir.length + 1)} is not part of ${model} (a version folder holds its manifest, config snapshot and README.md)`, fix: `git rm --cached -- ${sh(c.path)}` }); ok = false
      }
    }
    if (m.config) {
      const cpath = `${mp.dir}/${m.config.path}`
      const co = await cat.read(spec(sides.after, cpath)!)
      const { createHash } = await import('node:crypto')
      const digest = co ? createHash('sha256').update(co.bytes).digest('hex') : ''
      if (!co || co.size !== m.config.size || digest !== m.config.sha256) {
        problem({ kind: 'config', path: cpath, model, problem: co ? `the config snapshot (${co.size} bytes, sha256 ${digest}) does not match the manifest (${m.config.size} bytes, ${m.config.sha256})` : 'the config snapshot the manifest names is missing', fix: redo }); ok = false
      }
    }
    if (ok) res.manifests.push({ model, path: mpath, oid: mo.oid, manifest: m })
  }
  return res
}

/** The zoo schema at `rev` (empty when there is none); a broken schema is a problem. */
export async function schemaAt(cat: CatFile, rev: string | null): Promise<{ schema: ZooSchema; problem?: RuleProblem }> {
  const text = rev === null ? null : await cat.text(`${rev}:.zoo/schema.json`)
  if (text === null) return { schema: {} }
  const [{ parseSchema }, { ZooError }] = await Promise.all([import('./policy.js'), import('../errors.js')])
  try { return { schema: parseSchema(text) } } catch (err) {
    if (!(err instanceof ZooError)) throw err
    return { schema: {}, problem: { kind: 'schema', path: '.zoo/schema.json', problem: err.message, fix: 'git checkout HEAD -- .zoo/schema.json' } }
  }
}

/**
 * The pre-commit check: what is staged (the index git is committing, GIT_INDEX_FILE included)
 * against HEAD. Returns the problems; empty means the commit may go ahead. `staged` is the output
 * of `git <STAGED_DIFF>` when the caller ran it already (the hook does, before loading this).
 */
export async function checkStaged(cwd: string, ctx: RepoContext, staged?: string): Promise<RuleProblem[]> {
  const env = ctx.env
  const changes = parseRawDiff(staged ?? await git(cwd, STAGED_DIFF, { env }))
  if (changes.length === 0) return []
  const [{ SNIFF_BYTES }, { createHash }, { readFileSync, lstatSync }] = await Promise.all([import('../formats/sniff.js'), import('node:crypto'), import('node:fs')])
  const cat = new CatFile(cwd, env)
  try {
    const problems = await weightsProblems(changes, cat, '', (c) => workTreeHead(cwd, c, SNIFF_BYTES, createHash, readFileSync, lstatSync))
    let config: string | null = null
    try { config = readFileSync(`${cwd}/.zoo/config.json`, 'utf8') as unknown as string } catch { /* no config: the default */ }
    problems.push(...await sizeProblems(changes, cat, maxBlobBytes(config), new Set(problems.map((p) => p.path))))
    if (!changes.some((c) => c.path.startsWith('models/'))) return problems
    const { schema, problem } = await schemaAt(cat, 'HEAD')
    if (problem) problems.push(problem)
    const r = await modelRules(changes, cat, { before: 'HEAD', after: '' }, schema, async (m) => {
      const [{ Repo }, { completeManifest }] = await Promise.all([import('../repo.js'), import('../zoo/reader.js')])
      return completeManifest(await Repo.open(cwd, ctx), m)
    })
    problems.push(...r.problems)
    if (r.manifests.length) problems.push(...await missingObjects(cwd, ctx, cat, r.manifests))
    return await duringIntegration(cwd, env, problems)
  } finally {
    await cat.close()
  }
}

/**
 * In the middle of a merge or rebase (a plain `git pull` that stopped on two clones' promotions of
 * the same name@vN), the fix for a problem under models/ is the one command that integrates them
 * (spec/teams.md, "Pull integration").
 */
async function duringIntegration(cwd: string, env: NodeJS.ProcessEnv, problems: RuleProblem[]): Promise<RuleProblem[]> {
  if (!problems.some((p) => p.path.startsWith('models/'))) return problems
  const { existsSync } = await import('node:fs')
  const { resolve } = await import('node:path')
  const paths = (await git(cwd, ['rev-parse', '--git-path', 'MERGE_HEAD', '--git-path', 'rebase-merge', '--git-path', 'rebase-apply'], { env })).trim().split('\n')
  const op = paths.findIndex((p) => existsSync(resolve(cwd, p)))
  if (op === -1) return problems
  const what = op === 0 ? 'merge' : 'rebase'
  return problems.map((p) => p.path.startsWith('models/')
    ? { ...p, fix: `git zoo pull --continue  (a ${what} is in progress: this keeps the upstream's versions and promotes yours again on top as the next free versions; \`git zoo pull --abort\` goes back)` }
    : p)
}

/** New manifests whose objects are not all in the local store (those merged in from MERGE_HEAD excepted). */
async function missingObjects(cwd: string, ctx: RepoContext, cat: CatFile, manifests: NewVersion[]): Promise<RuleProblem[]> {
  const todo: NewVersion[] = []
  // outside a merge there is no MERGE_HEAD: one look instead of one per manifest (an import commits thousands)
  const merging = (await cat.read('MERGE_HEAD', 0)) !== null
  for (const v of manifests) {
    const merged = merging ? await cat.read(`MERGE_HEAD:${v.path}`, 0) : null
    if (merged?.oid !== v.oid) todo.push(v) // promoted on the merged branch: fetch's job, not this commit's
  }
  if (!todo.length) return []
  const { Repo } = await import('../repo.js')
  const { reachableObjects } = await import('../manifest/walk.js')
  const { CID } = await import('multiformats/cid')
  const repo = await Repo.open(cwd, ctx)
  const store = await repo.openStore()
  const out: RuleProblem[] = []
  try {
    for (const v of todo) {
      const fix = `git zoo fetch ${v.model} (if it was promoted elsewhere), or promote the files again: git rm -r --cached -- ${sh(v.path.replace(/\/[^/]+$/, ''))} && git zoo add <files> --name ${v.manifest.name}`
      let objects: Set<string>
      try { objects = await reachableObjects([v.manifest], store) } catch (err) {
        out.push({ kind: 'objects', path: v.path, model: v.model, problem: `its file tree cannot be read from the local store ${store.location}: ${(err as Error).message}`, fix })
        continue
      }
      const missing: string[] = []
      for (const o of objects) if (!(await store.has(CID.parse(o)))) missing.push(o)
      if (missing.length) out.push({ kind: 'objects', path: v.path, model: v.model, problem: `${missing.length} of ${objects.size} objects it references are missing from the local store ${store.location} (first: ${missing[0]})`, fix })
    }
  } finally {
    await store.close()
  }
  return out
}

/** The refusal message: each offending path, what is wrong, and the command that fixes it. */
export function formatRefusal(problems: RuleProblem[]): string {
  const lines = [`git zoo: commit refused (${problems.length} problem${problems.length === 1 ? '' : 's'}):`, '']
  for (const p of problems) lines.push(`  ${p.path}: ${p.problem}`, `      fix: ${p.fix}`)
  lines.push('', 'Nothing was committed. Model weights enter the zoo only through `git zoo add`; see `git zoo verify --help`.', '')
  return lines.join('\n')
}
