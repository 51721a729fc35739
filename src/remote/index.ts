/**
 * Remotes by URL kind: one registry, so commands never branch on the kind themselves. Every kind
 * is opened as a PackedStore (./packed.ts) over the kind's files.
 *
 *   /abs/path, ./rel/path, file:///abs/path   PathStore  (read-write; a shared disk, NFS)
 *   http://host/prefix, https://host/prefix    HttpStore  (read-only; any static web server)
 *   s3://bucket/prefix                         S3Store    (read-write; AWS or S3-compatible)
 */
import { isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { UsageError } from '../errors.js'
import { HttpStore } from './http.js'
import { rejectControlChars, redactUrl } from './layout.js'
import { PathStore } from './path.js'
import { S3Store, parseS3Url } from './s3.js'
import type { Digester } from './verify.js'
import { PackedStore, WritablePackedStore } from './packed.js'

export { redactUrl } from './layout.js'
export { transfer, type TransferResult, type TransferOptions, type TransferProgress } from './transfer.js'

export type RemoteKind = 'path' | 'http' | 's3'

export const REMOTE_KINDS_HELP = 'a local path or file:// URL (a shared disk, NFS), http:// or https:// (read-only, '
  + 'a static web server), or s3://bucket/prefix (AWS or an S3-compatible server)'

export interface OpenRemoteOptions {
  /** Folder that relative paths are relative to (default: the process's working folder). */
  cwd?: string
  /** Hash objects off the main thread (./verify.ts). */
  digest?: Digester
  /** Crash and pause points of pack uploads (./packed.ts). */
  point?: (name: string) => void | Promise<void>
}

/** The kind of a remote URL; throws UsageError for anything else. Opens nothing. */
export function remoteKind(url: string): RemoteKind {
  rejectControlChars(url)
  if (url === '') throw new UsageError(`a remote URL is empty; use ${REMOTE_KINDS_HELP}`, 'E_BAD_URL')
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  if (scheme === undefined) {
    // `user@host:path` is how git names ssh remotes; zoo remotes do not speak ssh.
    if (/^[^/]+:/.test(url)) {
      throw new UsageError(`unsupported remote URL ${redactUrl(url)} (it looks like an ssh address): use ${REMOTE_KINDS_HELP}. `
        + '(A relative path containing `:` can be written as ./name)', 'E_BAD_URL', { url: redactUrl(url), kinds: ['path', 'file', 'http', 'https', 's3'] })
    }
    return 'path'
  }
  if (scheme === 'file') return 'path'
  if (scheme === 'http' || scheme === 'https') return 'http'
  if (scheme === 's3') return 's3'
  throw new UsageError(`unsupported remote URL ${redactUrl(url)}: use ${REMOTE_KINDS_HELP}. `
    + '(A relative path containing `:` can be written as ./name)', 'E_BAD_URL', { url: redactUrl(url), kinds: ['path', 'file', 'http', 'https', 's3'] })
}

/**
 * Check a URL before it is recorded in committed configuration: a known kind, parseable, and no
 * credentials in it (they would be committed). Returns the URL to record.
 */
export function checkRemoteUrl(url: string): string {
  const kind = remoteKind(url)
  if (kind === 'http') {
    const u = new URL(url)
    if (u.username || u.password) {
      throw new UsageError(`the remote URL ${redactUrl(url)} holds credentials, which would be committed in .zoo/; `
        + 'remove them and set GIT_ZOO_HTTP_AUTHORIZATION in the environment instead', 'E_CREDENTIALS_IN_URL', { url: redactUrl(url) })
    }
    new HttpStore(url).close().catch(() => {})
  } else if (kind === 's3') {
    parseS3Url(url)
  } else if (url.toLowerCase().startsWith('file:')) {
    fileUrlPath(url)
  }
  return url
}

/**
 * Open the Store for a remote URL: objects in packs (./packed.ts) over the kind's files, loose
 * objects of a layout-1 remote read as well. Credentials come from `env`, never from committed files.
 */
export function openRemote(url: string, env: NodeJS.ProcessEnv, opts: OpenRemoteOptions = {}): PackedStore {
  const packed = { digest: opts.digest, point: opts.point }
  switch (remoteKind(url)) {
    case 'path': {
      const path = url.toLowerCase().startsWith('file:') ? fileUrlPath(url) : url
      return new WritablePackedStore(new PathStore(isAbsolute(path) ? path : resolve(opts.cwd ?? '.', path), { digest: opts.digest }), packed)
    }
    case 'http': return new PackedStore(new HttpStore(url, { env, digest: opts.digest }), packed)
    case 's3': return new WritablePackedStore(new S3Store(url, { env, digest: opts.digest }), packed)
  }
}

function fileUrlPath(url: string): string {
  try {
    return fileURLToPath(url)
  } catch (err) {
    throw new UsageError(`not a usable file:// URL: ${url} (use file:///absolute/path)`, 'E_BAD_URL', { url }, { cause: err })
  }
}
