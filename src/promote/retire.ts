/**
 * Retirement: the one recorded way a sealed model version leaves service. The sealed folder is never
 * changed; a `RETIRED.json` is added beside its manifest in a commit of its own with the trailers
 * `Zoo-Retire: <name>@v<N>` and `Zoo-Seal: <seal>` (spec/seal.md, "Retirement"). The version, its
 * objects and its lineage stay; `isRetired` tells listings to mark or hide it.
 */
import type { Repo } from '../repo.js'
import { manifestDir, parseManifest, checkSeal, MANIFEST_FILE } from '../manifest/manifest.js'
import { RETIRED_FILE, serializeRetirement, type Retirement } from '../manifest/retirement.js'
import { parseModelRef } from '../manifest/names.js'
import { parseStageRef } from '../git/stages.js'
import { commitFiles, checkSigningPolicy, requireIdentity } from '../zoo/commit.js'
import { CheckError, UnknownModelError, UsageError } from '../errors.js'

export { RETIRED_FILE, parseRetirement, serializeRetirement, type Retirement } from '../manifest/retirement.js'

export function retirementPath(name: string, version: number): string {
  return `${manifestDir(name, version)}/${RETIRED_FILE}`
}

/**
 * Retire `ref` (`name@vN` or a seal) as committed in HEAD: write RETIRED.json and commit only that
 * file, signed when the zoo requires it. Refused (nothing written) when the version is not sealed
 * in HEAD, its manifest does not match its seal, it is already retired, or signing is required and
 * git cannot sign.
 */
export async function retire(repo: Repo, ref: string, reason: string, opts: { crashPoint?: (name: string) => void | Promise<void> } = {}): Promise<{ commit: string; retirement: Retirement }> {
  if (reason.trim() === '') throw new UsageError('--reason must say why the version is retired', 'E_USAGE')
  let name: string; let version: number
  if (/^baf[a-z2-7]{20,}$/.test(ref) || parseStageRef(ref)) {
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
  const commit = await commitFiles(repo, [{ path: rel, data: serializeRetirement(retirement) }], { message, kind: 'retirement', refused: `${label} is still in service`, config, ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}) })
  return { commit, retirement }
}
