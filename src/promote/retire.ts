/**
 * Retirement: the one recorded way a sealed model version leaves service. The sealed folder is never
 * changed; a `RETIRED.json` is added beside its manifest in a commit of its own with the trailers
 * `Zoo-Retire: <name>@v<N>` and `Zoo-Seal: <seal>` (spec/seal.md, "Retirement"). The version, its
 * objects and its lineage stay; `isRetired` tells listings to mark or hide it.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Repo } from '../repo.js'
import { manifestDir, parseManifest, checkSeal, MANIFEST_FILE, MODELS_DIR } from '../manifest/manifest.js'
import { runGit } from '../git/git.js'
import { parseModelRef } from '../manifest/names.js'
import { commitFiles, checkSigningPolicy, requireIdentity } from '../zoo/commit.js'
import { CheckError, FormatError, UnknownModelError, UsageError } from '../errors.js'

export const RETIRED_FILE = 'RETIRED.json'

export interface Retirement {
  zoo: 1
  name: string
  version: number
  /** The seal of the version retired: binds the record to exactly that manifest. */
  seal: string
  reason: string
  /** `Name <email>` of who retired it (git's user.name / user.email). */
  retired_by: string
  /** ISO 8601 time. */
  retired: string
}

const KEYS = ['zoo', 'name', 'version', 'seal', 'reason', 'retired_by', 'retired'] as const

/** Parse and check a RETIRED.json; throws FormatError naming what is wrong. */
export function parseRetirement(text: string, where = RETIRED_FILE): Retirement {
  const bad = (why: string): never => { throw new FormatError(`${where}: ${why}`, 'E_RETIREMENT', { where }) }
  let v: unknown
  try { v = JSON.parse(text) } catch (err) {
    throw new FormatError(`${where} is not valid JSON: ${(err as Error).message}`, 'E_RETIREMENT', { where }, { cause: err })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('not a JSON object')
  const r = v as Record<string, unknown>
  for (const k of Object.keys(r)) if (!(KEYS as readonly string[]).includes(k)) bad(`unknown key ${JSON.stringify(k)}`)
  if (r.zoo !== 1) bad('zoo is not 1')
  if (typeof r.name !== 'string' || !Number.isSafeInteger(r.version) || typeof r.seal !== 'string') bad('name, version and seal are required')
  if (typeof r.reason !== 'string' || r.reason.trim() === '') bad('reason is empty')
  if (typeof r.retired_by !== 'string' || typeof r.retired !== 'string') bad('retired_by and retired are required')
  return r as unknown as Retirement
}

export function serializeRetirement(r: Retirement): string {
  const o: Record<string, unknown> = {}
  for (const k of KEYS) o[k] = r[k]
  return JSON.stringify(o, null, 2) + '\n'
}

export function retirementPath(name: string, version: number): string {
  return `${manifestDir(name, version)}/${RETIRED_FILE}`
}

/** The retirement record of a version in the working tree, or null when it is in service. */
export async function retirementOf(repo: Repo, name: string, version: number): Promise<Retirement | null> {
  const rel = retirementPath(name, version)
  let text: string
  try { text = await readFile(join(repo.root, rel), 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  return parseRetirement(text, rel)
}

/**
 * `name@vN` of every version whose retirement is in the index of the repository around `cwd` (one
 * git call, whatever the zoo's size): what listings mark as retired.
 */
export async function retiredInIndex(cwd: string, env: NodeJS.ProcessEnv): Promise<Set<string>> {
  const r = await runGit(cwd, ['ls-files', '-z', '--full-name', '--', `:(top)${MODELS_DIR}/*/${RETIRED_FILE}`], { env })
  const out = new Set<string>()
  if (r.code !== 0) return out
  const at = new RegExp(`^${MODELS_DIR}/(.+)/v([1-9]\\d*)/${RETIRED_FILE.replace('.', '\\.')}$`)
  for (const path of r.stdout.split('\0')) {
    const m = at.exec(path)
    if (m) out.add(`${m[1]}@v${m[2]}`)
  }
  return out
}

export async function isRetired(repo: Repo, name: string, version: number): Promise<boolean> {
  return (await retirementOf(repo, name, version)) !== null
}

/**
 * Retire `ref` (`name@vN` or a seal) as committed in HEAD: write RETIRED.json and commit only that
 * file, signed when the zoo requires it. Refused (nothing written) when the version is not sealed
 * in HEAD, its manifest does not match its seal, it is already retired, or signing is required and
 * git cannot sign.
 */
export async function retire(repo: Repo, ref: string, reason: string): Promise<{ commit: string; retirement: Retirement }> {
  if (reason.trim() === '') throw new UsageError('--reason must say why the version is retired', 'E_USAGE')
  let name: string; let version: number
  if (/^baf[a-z2-7]{20,}$/.test(ref)) {
    const m = await repo.resolve(ref)
    name = m.name; version = m.version
  } else {
    const r = parseModelRef(ref)
    if (r.version === undefined) throw new UsageError(`name the version to retire: ${r.name}@vN (\`git zoo log ${r.name}\` lists them)`, 'E_USAGE')
    name = r.name; version = r.version
  }
  const label = `${name}@v${version}`
  const mpath = `${manifestDir(name, version)}/${MANIFEST_FILE}`
  const head = await repo.runGit(['show', `HEAD:${mpath}`])
  if (head.code !== 0) throw new UnknownModelError(`${label} is not a committed model version (no ${mpath} in HEAD); only sealed, committed versions can be retired`, { name, version })
  const m = parseManifest(head.stdout, `${mpath} (HEAD)`)
  const seal = checkSeal(m)
  if (!seal.ok) throw new CheckError(`${label}: the committed manifest does not match its seal; run \`git zoo verify --signatures\` before retiring anything`, 'E_SEAL_MISMATCH')
  const rel = retirementPath(name, version)
  if ((await repo.runGit(['cat-file', '-e', `HEAD:${rel}`])).code === 0) {
    throw new CheckError(`${label} is already retired (${rel}); a retirement is final`, 'E_ALREADY_RETIRED', { name, version })
  }
  const config = await checkSigningPolicy(repo)
  const retirement: Retirement = { zoo: 1, name, version, seal: m.seal, reason: reason.trim(), retired_by: await requireIdentity(repo), retired: new Date().toISOString() }
  const message = `zoo: retire ${label}\n\n${retirement.reason}\n\nZoo-Retire: ${label}\nZoo-Seal: ${m.seal}\n`
  const commit = await commitFiles(repo, [{ path: rel, data: serializeRetirement(retirement) }], { message, kind: 'retirement', refused: `${label} is still in service`, config })
  return { commit, retirement }
}
