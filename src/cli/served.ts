/**
 * What the resident server must not run for `add`, `get` and `verify` (spec/server.md, "What
 * declines"): each check names something a process of its own has and the server has not (a
 * terminal to sign on, the asker's credentials to fetch with, its own temporary folder); the client
 * then runs the command in node. servedDecline() is checked by the server before it begins such a
 * request (nothing has run); the others are called by add and get (only when io.declineServed is
 * set, that is, served) right after they opened the repository, before any output, with the
 * repository's config already read (no git process of their own).
 */
import { commitWillSign } from '../zoo/commit.js'
import type { Io } from './command.js'
import type { Repo } from '../repo.js'
import type { Manifest } from '../manifest/manifest.js'

/** `args` before any `--`. */
const flagsOf = (args: string[]): string[] => { const end = args.indexOf('--'); return end === -1 ? args : args.slice(0, end) }

/** Why the server must not run `argv` (undefined: it may), from its flags alone. */
export function servedDecline(argv: string[]): string | undefined {
  const [name, ...rest] = argv
  const flags = flagsOf(rest)
  if (name === 'verify') {
    // --repair fetches good copies from the zoo remotes: with the server's credentials, not the asker's
    if (flags.includes('--repair') || flags.some((f) => f === '--from' || f.startsWith('--from='))) return 'verify --repair fetches from zoo remotes'
    // --signatures runs ssh-keygen/gpg on files in os.tmpdir(): the server's TMPDIR, not the asker's
    if (flags.includes('--signatures')) return 'verify --signatures uses the temporary folder of a process of its own'
  }
  return undefined
}

/**
 * add, served: decline when the promotion commit would be signed (commitWillSign, src/zoo/commit.ts: the zoo requires it, or git's
 * commit.gpgsign): ssh-keygen or gpg may ask for a key's
 * passphrase on the asker's terminal, which the server does not have.
 */
export async function declineSigning(repo: Repo, decline: (why: string) => never): Promise<void> {
  let config
  try { config = await repo.config() } catch { return } // a bad config: add says so
  if (!await commitWillSign(repo, config)) return
  decline(config.policy?.require_signed ? 'the zoo requires signed promotions (a key may ask for its passphrase)' : 'git signs commits here (a key may ask for its passphrase)')
}

/**
 * get, served: decline when get would fetch from the zoo remotes (a lazy clone, or objects of the
 * model missing from the local store): the fetch would use the server's environment (its AWS
 * credential chain, say), not the asker's.
 */
export async function declineFetching(repo: Repo, m: Manifest, decline: (why: string) => never): Promise<void> {
  const { isLazy, objectsMissing } = await import('../remote/lazy.js')
  if (await isLazy(repo)) decline('a lazy clone fetches objects from zoo remotes')
  const store = await repo.openStore()
  let missing: boolean
  try { missing = await objectsMissing([m], store) } finally { await store.close() }
  if (missing) decline('objects of the model are missing from the local store (get fetches them from zoo remotes)')
}
