/**
 * What the transfer commands (push, fetch, pull, clone and the pre-push hook) share on the CLI side:
 * the progress bar, the one-line summary, choosing the git remote, fetching for a set of manifests.
 */
import type { Io } from './command.js'
import { humanBytes, Progress, summary } from './output.js'
import type { Repo } from '../repo.js'
import type { Manifest } from '../manifest/manifest.js'
import type { GitProgress } from '../git/git.js'
import { fetchObjects, jobs, pickZooRemote, type SyncSummary } from '../remote/sync.js'
import { crashPoints } from './crash.js'

/** Progress bar for a transfer (drawn only when stderr is a TTY). */
export function progressFor(io: Io, label: string): { onProgress: (done: number, total: number) => void; done: () => void } {
  let bar: Progress | undefined
  return {
    onProgress: (done, total) => { bar ??= new Progress(io, label, total); bar.update(done) },
    done: () => bar?.done(),
  }
}

/**
 * Progress of a git clone, fetch, pull or push, as one bar whose label follows git's stage
 * ("git: receiving objects"). Without a TTY there is no `onProgress`, so git is not even asked for
 * progress and its output is what it always was.
 */
export function gitProgressFor(io: Io): { onProgress?: (p: GitProgress) => void; done: () => void } {
  if (!io.tty) return { done: () => {} }
  let bar: Progress | undefined
  return {
    onProgress: (p) => {
      bar ??= new Progress(io, '', p.total, String)
      bar.label = `git: ${p.stage.toLowerCase()}`
      bar.total = p.total
      bar.update(p.done)
    },
    done: () => bar?.done(),
  }
}

/** One human line about a transfer. */
export function describeSync(verb: string, prep: string, s: SyncSummary): string {
  const skipped = s.skipped_bytes > 0 || s.skipped_objects > 0
    ? `; ${humanBytes(s.skipped_bytes)} already there` : ''
  return `git zoo: ${verb} ${s.objects} object${s.objects === 1 ? '' : 's'} (${humanBytes(s.bytes)}) ${prep} ${s.remote} (${s.url})${skipped}\n`
}

export const EMPTY_SYNC = { objects: 0, bytes: 0, skipped_objects: 0, skipped_bytes: 0 }

/** The git remote to use: the argument, else the current branch's upstream remote, else origin. */
export async function defaultGitRemote(repo: Repo): Promise<string> {
  const branch = await repo.runGit(['symbolic-ref', '--quiet', '--short', 'HEAD'])
  if (branch.code === 0) {
    const r = await repo.runGit(['config', '--get', `branch.${branch.stdout.trim()}.remote`])
    if (r.code === 0 && r.stdout.trim()) return r.stdout.trim()
  }
  return 'origin'
}

/**
 * Fetch the objects of `manifests` into the local store (shared by fetch, pull and clone).
 * Prints the summary unless `json`; returns it.
 */
export async function fetchFor(repo: Repo, manifests: Manifest[], io: Io,
  opts: { from?: string; gitRemote?: string; jobs?: number; json?: boolean }): Promise<SyncSummary> {
  if (manifests.length === 0) return { remote: '', url: '', models: 0, ...EMPTY_SYNC }
  const remote = await pickZooRemote(repo, { name: opts.from, gitRemote: opts.gitRemote })
  const progress = progressFor(io, 'fetch')
  let sync: SyncSummary
  try {
    sync = await fetchObjects(repo, manifests, remote, {
      concurrency: jobs(opts.jobs, io.env), onProgress: progress.onProgress,
      ...(io.signal ? { signal: io.signal } : {}), point: crashPoints(io),
    })
  } finally { progress.done() }
  if (!opts.json) summary(io, describeSync('fetched', 'from', sync))
  return sync
}

