/**
 * The light half of the pre-commit check: parsing git's raw diff and reading a staged blob's head
 * from the work tree. Node builtins only, so the hook can answer the usual commit (no weights,
 * nothing under models/) without loading the rest (src/promote/precommit.ts).
 */
import type { CatObject } from '../git/catfile.js'

export interface Change {
  /** A (added), M (modified), D (deleted), T (type changed); renames are split into D + A. */
  status: string
  path: string
  oldMode: string
  newMode: string
  oldOid: string
  newOid: string
}

/**
 * Parse `git diff --raw -z --no-renames` output. With `git diff-tree --stdin` output, `onCommit` is
 * told each commit header before that commit's changes.
 */
export function parseRawDiff(text: string, onCommit?: (sha: string) => void, onChange?: (c: Change) => void): Change[] {
  const out: Change[] = []
  const parts = text.split('\0')
  for (let i = 0; i < parts.length; i++) {
    const t = parts[i]!
    if (t.startsWith(':')) {
      const [oldMode, newMode, oldOid, newOid, status] = t.slice(1).split(' ')
      const c = { oldMode: oldMode!, newMode: newMode!, oldOid: oldOid!, newOid: newOid!, status: status!.slice(0, 1), path: parts[++i]! }
      out.push(c)
      onChange?.(c)
      continue
    }
    const sha = t.trim()
    if (/^[0-9a-f]{40,64}$/.test(sha)) onCommit?.(sha)
  }
  return out
}

/** `git diff --cached` arguments the hook runs: staged changes against HEAD, renames split. */
export const STAGED_DIFF = ['diff', '--cached', '--raw', '-z', '--no-renames', '--no-abbrev', '--ignore-submodules=all']

const REGULAR = new Set(['100644', '100755'])

/** Changes whose new side is a blob worth sniffing (added or modified regular files). */
export function sniffable(c: Change): boolean {
  return c.status !== 'D' && REGULAR.has(c.newMode) && !/^0+$/.test(c.newOid)
}

type Hash = (algo: string) => { update(d: string | Uint8Array): { update(d: string | Uint8Array): { digest(e: 'hex'): string } } }

/**
 * The staged blob's head read from the work tree when the file there is that very blob (its git
 * hash matches), so the usual commit needs no git process. Null sends the caller to cat-file.
 * The modules are passed in so the caller decides when they load.
 */
export function workTreeHead(cwd: string, c: Change, limit: number, createHash: Hash,
                             readFileSync: (p: string) => Buffer, lstatSync: (p: string) => { isFile(): boolean; size: number }): CatObject | null {
  try {
    const path = `${cwd}/${c.path}`
    const st = lstatSync(path)
    if (!st.isFile() || st.size > 4 * 1024 * 1024) return null
    const bytes = readFileSync(path)
    const oid = createHash(c.newOid.length === 64 ? 'sha256' : 'sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
    return oid === c.newOid ? { oid, type: 'blob', size: bytes.length, bytes: bytes.subarray(0, limit) } : null
  } catch {
    return null
  }
}

/** The default of `policy.max_blob_bytes`: staged files outside the zoo's own folders above this are refused. */
export const DEFAULT_MAX_BLOB_BYTES = 10 * 1024 * 1024

/**
 * `policy.max_blob_bytes` from the work tree's `.zoo/config.json` (the default when the file or the
 * key is absent or not a positive integer; `git zoo` commands report a broken config themselves).
 */
export function maxBlobBytes(configText: string | null): number {
  if (configText === null) return DEFAULT_MAX_BLOB_BYTES
  try {
    const v = (JSON.parse(configText) as { policy?: { max_blob_bytes?: unknown } })?.policy?.max_blob_bytes
    return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : DEFAULT_MAX_BLOB_BYTES
  } catch { return DEFAULT_MAX_BLOB_BYTES }
}

/** Whether a path is one the zoo writes itself (models/, .zoo/): those have rules of their own. */
export function isZooPath(path: string): boolean {
  return path.startsWith('models/') || path.startsWith('.zoo/')
}
