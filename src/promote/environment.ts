/**
 * The environment a promotion records: tool versions, platform and hardware, plus --env k=v; and the
 * code revision of training code kept in another repository (`add --code`).
 */
import { cpus, platform, arch, release, totalmem } from 'node:os'
import { version } from '../version.js'
import type { Host } from '../host.js'
import { createHash } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { runGit, type GitResult } from '../git/git.js'
import { UsageError, CheckError } from '../errors.js'

export function detectEnvironment(host: Host): Record<string, string> {
  const cpu = cpus()
  return {
    git_zoo: version,
    node: host.node,
    os: `${platform()} ${release()}`,
    arch: arch(),
    cpu: cpu.length ? `${cpu.length} x ${cpu[0]!.model.trim()}` : 'unknown',
    memory_gib: (totalmem() / 2 ** 30).toFixed(1),
  }
}

/**
 * The code revision of a repository other than the zoo (`add --code <path>`, or `code` in
 * `.zoo/config.json`): { repo, commit, dirty[, diff_sha256] } as the manifest records it
 * (spec/format.md `code`), the same shape as the zoo's own HEAD. `repo` is the URL of the remote
 * `origin` (else the first remote; credentials removed), or the folder's absolute path when it has
 * no remote (then `localOnly` is set so the caller can warn). Tracked files with uncommitted changes
 * make it dirty: refused (E_DIRTY) unless `allowDirty`, then recorded with a digest of `git diff HEAD`.
 */
export async function externalCodeRevision(dir: string, env: NodeJS.ProcessEnv, allowDirty: boolean):
  Promise<{ code: { repo: string; commit: string; dirty: boolean; diff_sha256?: string }; localOnly: boolean }> {
  // git variables of the zoo's own repository (set when run from a hook) must not leak into this one
  const clean: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(env)) if (!['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_PREFIX', 'GIT_COMMON_DIR'].includes(k)) clean[k] = v
  const g = (args: string[]) => runGit(dir, args, { env: clean })
  try { if (!(await stat(dir)).isDirectory()) throw new Error('not a folder') } catch {
    throw new UsageError(`--code ${dir}: no such folder; name the folder of the repository that holds the training code`, 'E_CODE_REPO', { path: dir })
  }
  let top: GitResult
  try { top = await g(['rev-parse', '--show-toplevel']) } catch (err) {
    throw new UsageError(`--code ${dir}: cannot run git there (${(err as Error).message})`, 'E_CODE_REPO', { path: dir }, { cause: err })
  }
  if (top.code !== 0) throw new UsageError(`--code ${dir} is not inside a git work tree; name the folder of the repository that holds the training code`, 'E_CODE_REPO', { path: dir })
  const head = await g(['rev-parse', '--verify', '-q', 'HEAD'])
  if (head.code !== 0) throw new UsageError(`--code ${dir}: the repository has no commit yet; commit the training code first`, 'E_CODE_REPO', { path: dir })
  const commit = head.stdout.trim()
  let url = ''
  const origin = await g(['remote', 'get-url', 'origin'])
  if (origin.code === 0) url = origin.stdout.trim()
  else {
    const first = (await g(['remote'])).stdout.split('\n')[0]?.trim()
    if (first) url = (await g(['remote', 'get-url', first])).stdout.trim()
  }
  const localOnly = url === ''
  const repoUrl = localOnly ? top.stdout.trim() : url.replace(/\/\/[^@/]*@/, '//')
  const st = await g(['status', '--porcelain', '--untracked-files=no'])
  if (st.code !== 0) throw new UsageError(`--code ${dir}: git status failed: ${st.stderr.trim()}`, 'E_CODE_REPO', { path: dir })
  if (st.stdout.trim() === '') return { code: { repo: repoUrl, commit, dirty: false }, localOnly }
  if (!allowDirty) {
    throw new CheckError(`the training code in ${top.stdout.trim()} has uncommitted changes, so the code revision would not say what produced this model:\n${st.stdout.trimEnd()}\ncommit them there first, or pass --allow-dirty to record it as dirty with a digest of the diff`, 'E_DIRTY', { path: dir })
  }
  const diff = await g(['diff', 'HEAD'])
  return { code: { repo: repoUrl, commit, dirty: true, diff_sha256: createHash('sha256').update(diff.stdout).digest('hex') }, localOnly }
}
