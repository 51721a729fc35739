/**
 * The loose-object layout (layout 1, spec/remotes.md "Layout versions"): what git-zoo wrote before
 * packs (./packed.ts), still read on remotes that hold it and written by `remote migrate` never:
 *
 *   <root>/objects/<last 2 chars of the CID string>/<CID string>
 *
 * The CID string is the base32 CIDv1 form (`b...`). Each file holds exactly the object's bytes.
 * Nothing else is needed to read an object, so any static web server can serve a remote.
 * The last two characters are used (not the first, which are the same for every CID: `bafkrei...`).
 */
import type { CID } from '../cas/cid.js'
import { parseCid } from '../cas/cid.js'
import { UsageError } from '../errors.js'

export const OBJECTS_DIR = 'objects'

/** Two-character fan-out folder name for a CID string. */
export function fanout(cidText: string): string {
  return cidText.slice(-2)
}

/** The object's path relative to the remote's root, with `/` separators. */
export function objectKey(cid: CID): string {
  const text = cid.toString()
  return `${OBJECTS_DIR}/${fanout(text)}/${text}`
}

/**
 * The CID a file name under `objects/<dir>/` stands for, or undefined when the name is not an
 * object (temp files, stray files, a CID in the wrong fan-out folder, a CID form we never write).
 */
export function cidFromName(dir: string, name: string): CID | undefined {
  if (name.startsWith('.') || fanout(name) !== dir) return undefined
  try {
    const cid = parseCid(name)
    return cid.toString() === name ? cid : undefined
  } catch {
    return undefined
  }
}

/** Whether a fan-out folder name could hold objects (base32 lower-case alphabet). */
export function isFanoutDir(name: string): boolean {
  return /^[a-z2-7]{2}$/.test(name)
}

/**
 * Refuse URLs and paths holding control characters (CR, LF, NUL, TAB, DEL ...). The WHATWG URL
 * parser silently drops tabs and newlines, and a CR/LF that reaches a request line or a header
 * splits it, so such input is refused before anything parses it.
 */
export function rejectControlChars(url: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(url)) {
    throw new UsageError(`remote URL ${JSON.stringify(redactUrl(url))} contains a control character (CR, LF, NUL, tab...); refusing it`,
      'E_BAD_URL', { url: redactUrl(url) })
  }
}

/** A URL safe to print: no user name, password or query string. Non-URLs are returned as given. */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)?([^?#]*)([?#].*)?$/i.exec(url)
  if (!m) return url
  return `${m[1]}${m[2] ? '***@' : ''}${m[3]}${m[4] ? '?...' : ''}`
}
