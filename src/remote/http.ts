/**
 * HttpStore: a read-only remote served by any static web server: byte ranges of packs and small
 * files for the pack layout (./packed.ts), and loose objects of a layout-1 remote (./layout.ts).
 * Writes go to the path or s3 remote behind the web server.
 *
 * Safety rules (spec/remotes.md, "HTTP"):
 * - URLs with control characters are refused before parsing; the base URL takes no query or fragment.
 * - Credentials (user:pass in the URL, or GIT_ZOO_HTTP_AUTHORIZATION) go only to the base URL's
 *   origin. Redirects are followed only within that origin (scheme, host and port); a redirect
 *   elsewhere is refused before any request is made to the other host.
 * - A body is read only up to its declared Content-Length and never past MAX_OBJECT_SIZE; a larger
 *   declaration is refused before reading. Idle and total timeouts bound every request.
 * - Every object is verified against its CID before it is returned.
 * - `location` and every message carry the URL without user info.
 */
import http from 'node:http'
import https from 'node:https'
import type { CID } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { MAX_OBJECT_SIZE } from '../cas/store.js'
import { CheckError, NotFoundError, UsageError, ZooError, errorMessage } from '../errors.js'
import { cidFromName, isFanoutDir, objectKey, OBJECTS_DIR, rejectControlChars, redactUrl } from './layout.js'
import { verifyObject, type Digester } from './verify.js'

export interface HttpStoreOptions {
  /** Environment for GIT_ZOO_HTTP_AUTHORIZATION (a full Authorization header value). */
  env?: NodeJS.ProcessEnv
  /** Abort a request when no byte arrives for this long. Default 30 s. */
  idleTimeoutMs?: number
  /** Abort a request (headers and body) that takes longer than this. Default 10 min. */
  deadlineMs?: number
  /** Redirects followed per request, all within the base origin. Default 5. */
  maxRedirects?: number
  /** The largest folder listing read by list(). Default 64 MiB. */
  maxListingBytes?: number
  /** Hash off the main thread (./verify.ts). */
  digest?: Digester
}

interface Reply { status: number; body: Buffer | undefined; url: URL }

export class HttpStore implements Store {
  readonly location: string
  private readonly base: URL
  private readonly authorization: string | undefined
  private readonly idleTimeoutMs: number
  private readonly deadlineMs: number
  private readonly maxRedirects: number
  private readonly maxListingBytes: number
  private readonly digest: Digester | undefined
  private readonly agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 16 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 16 }),
  }

  constructor(url: string, opts: HttpStoreOptions = {}) {
    rejectControlChars(url)
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch (err) {
      throw new UsageError(`not a valid URL: ${redactUrl(url)}`, 'E_BAD_URL', { url: redactUrl(url) }, { cause: err })
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new UsageError(`HttpStore needs an http:// or https:// URL, not ${redactUrl(url)}`, 'E_BAD_URL', { url: redactUrl(url) })
    }
    if (parsed.search || parsed.hash) {
      throw new UsageError(`the http remote URL ${redactUrl(url)} must not have a query or fragment`, 'E_BAD_URL', { url: redactUrl(url) })
    }
    let authorization: string | undefined
    if (parsed.username || parsed.password) {
      const user = decodeURIComponent(parsed.username)
      const pass = decodeURIComponent(parsed.password)
      authorization = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64')
    }
    const fromEnv = opts.env?.GIT_ZOO_HTTP_AUTHORIZATION
    if (fromEnv) {
      if (/[\u0000-\u001f\u007f]/.test(fromEnv)) {
        throw new UsageError('GIT_ZOO_HTTP_AUTHORIZATION contains a control character; refusing it', 'E_BAD_URL')
      }
      authorization = fromEnv
    }
    parsed.username = ''
    parsed.password = ''
    if (!parsed.pathname.endsWith('/')) parsed.pathname += '/'
    this.base = parsed
    this.location = parsed.href
    this.authorization = authorization
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000
    this.deadlineMs = opts.deadlineMs ?? 600_000
    this.maxRedirects = opts.maxRedirects ?? 5
    this.maxListingBytes = opts.maxListingBytes ?? 64 * 1024 * 1024
    this.digest = opts.digest
  }

  async put(cid: CID, _bytes?: Uint8Array): Promise<boolean> {
    throw new ZooError(`the http remote ${this.location} is read-only; cannot store ${cid}. `
      + 'Push to the path or s3 remote that this web server serves, and add that as the remote you push to',
      'E_READ_ONLY', { remote: this.location, cid: String(cid) })
  }

  async get(cid: CID): Promise<Uint8Array> {
    const what = `object ${cid}`
    const reply = await this.send('GET', new URL(objectKey(cid), this.base), what, MAX_OBJECT_SIZE)
    if (reply.status === 404 || reply.status === 410) {
      throw new NotFoundError(`object ${cid} is not in ${this.location}`, { cid: String(cid), remote: this.location })
    }
    this.expectOk(reply, what)
    await verifyObject(cid, reply.body!, this.location, this.digest)
    return reply.body!
  }

  async has(cid: CID): Promise<boolean> {
    const what = `object ${cid}`
    const reply = await this.send('HEAD', new URL(objectKey(cid), this.base), what, 0)
    if (reply.status === 404 || reply.status === 410) return false
    this.expectOk(reply, what)
    return true
  }

  /**
   * Walks the server's folder listings (nginx autoindex, Apache, `python3 -m http.server`).
   * Servers that do not list folders make this throw E_UNSUPPORTED; get and has never need it.
   */
  async *list(): AsyncIterable<CID> {
    const top = new URL(`${OBJECTS_DIR}/`, this.base)
    for (const dir of await this.listing(top)) {
      if (!dir.endsWith('/') || !isFanoutDir(dir.slice(0, -1))) continue
      const name = dir.slice(0, -1)
      for (const entry of await this.listing(new URL(`${name}/`, top))) {
        const cid = cidFromName(name, entry)
        if (cid) yield cid
      }
    }
  }

  // ---- files, for the pack layout (./packed.ts): byte ranges of packs, small index files ----

  /** Bytes [offset, offset + length) of a file under the remote (HTTP Range; 206 required). */
  async readRange(key: string, offset: number, length: number, partial = false): Promise<Uint8Array> {
    const what = `bytes ${offset}-${offset + length - 1} of ${key}`
    const reply = await this.send('GET', new URL(key, this.base), what, length, [offset, length], partial)
    if (reply.status === 404 || reply.status === 410) throw new NotFoundError(`${key} is not in ${this.location}`, { key, remote: this.location })
    if (reply.status === 416 && partial) return new Uint8Array(0)
    if (reply.status === 200) {
      throw new ZooError(`the http remote ${this.location} does not serve byte ranges (it answered 200 for ${what}); packs are read in ranges: `
        + 'use a server that honours Range requests (nginx, Apache, any CDN)', 'E_REMOTE_HTTP', { remote: this.location, status: 200 })
    }
    this.expectOk(reply, what)
    if (reply.body!.length !== length && !partial) {
      throw new ZooError(`the http remote sent ${reply.body!.length} of the ${length} bytes asked for in ${what}`, 'E_REMOTE_HTTP', { remote: this.location })
    }
    return reply.body!
  }

  /** A whole small file (an index, the layout record), or undefined when the server has none. */
  async readFile(key: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const reply = await this.send('GET', new URL(key, this.base), key, maxBytes)
    if (reply.status === 404 || reply.status === 410) return undefined
    this.expectOk(reply, key)
    return reply.body!
  }

  /** The files directly in a folder, from its listing page; undefined when the server lists nothing. */
  async listFiles(dir: string): Promise<Array<{ name: string; size: number; modified: number }> | undefined> {
    let names: string[]
    try {
      names = await this.listing(new URL(`${dir}/`, this.base))
    } catch (err) {
      if (err instanceof ZooError && (err.code === 'E_UNSUPPORTED' || err.code === 'E_REMOTE_HTTP')) return undefined
      throw err
    }
    return names.filter((n) => !n.endsWith('/')).map((name) => ({ name, size: 0, modified: 0 }))
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.agents['http:'].destroy()
    this.agents['https:'].destroy()
  }

  /** The names linked from a folder listing page (direct children only; folders end with `/`). */
  private async listing(url: URL): Promise<string[]> {
    const what = `the folder listing ${url.pathname}`
    const reply = await this.send('GET', url, what, this.maxListingBytes)
    if (reply.status === 403 || reply.status === 404 || reply.status === 405) {
      throw new ZooError(`cannot list the http remote ${this.location}: the server does not serve folder listings `
        + `(HTTP ${reply.status} for ${url.pathname}). Listing is optional for http remotes; get and has work without it. `
        + 'List the path or s3 remote behind it instead, or turn on autoindex',
      'E_UNSUPPORTED', { remote: this.location, status: reply.status })
    }
    this.expectOk(reply, what)
    const html = reply.body!.toString('utf8')
    const names = new Set<string>()
    for (const m of html.matchAll(/href\s*=\s*(?:"([^"]*)"|'([^']*)')/gi)) {
      const href = (m[1] ?? m[2] ?? '').replace(/&amp;/g, '&')
      let target: URL
      try { target = new URL(href, reply.url) } catch { continue }
      if (target.origin !== reply.url.origin || !target.pathname.startsWith(reply.url.pathname)) continue
      let rest: string
      try { rest = decodeURIComponent(target.pathname.slice(reply.url.pathname.length)) } catch { continue }
      if (rest === '' || rest.slice(0, -1).includes('/')) continue
      names.add(rest)
    }
    return [...names]
  }

  private expectOk(reply: Reply, what: string): void {
    if (reply.status >= 200 && reply.status < 300) return
    const where = `${what} at ${this.location}`
    if (reply.status === 401 || reply.status === 403) {
      throw new ZooError(`the http remote answered ${reply.status} for ${where}; give credentials in GIT_ZOO_HTTP_AUTHORIZATION `
        + '(a full Authorization header value such as "Bearer <token>")', 'E_REMOTE_AUTH', { remote: this.location, status: reply.status })
    }
    throw new ZooError(`the http remote answered HTTP ${reply.status} for ${where}`, 'E_REMOTE_HTTP',
      { remote: this.location, status: reply.status })
  }

  /** One request, following same-origin redirects; the body is read (bounded) only for a 2xx GET. */
  private async send(method: 'GET' | 'HEAD', url: URL, what: string, maxBody: number, range?: [number, number], partial = false): Promise<Reply> {
    const started = Date.now()
    for (let hop = 0; ; hop++) {
      const remaining = this.deadlineMs - (Date.now() - started)
      const reply = await this.once(method, url, what, maxBody, remaining, range, partial)
      if (!('redirect' in reply)) return reply
      const where = reply.redirect
      if (where === undefined) {
        throw new ZooError(`the http remote answered a redirect without a Location for ${what} at ${this.location}`, 'E_REMOTE_HTTP', { remote: this.location })
      }
      rejectControlChars(where)
      let next: URL
      try { next = new URL(where, url) } catch (err) {
        throw new ZooError(`the http remote redirected ${what} to an invalid URL`, 'E_REMOTE_HTTP', { remote: this.location }, { cause: err })
      }
      if (next.origin !== this.base.origin) {
        throw new CheckError(`refused a redirect of ${what} from ${this.location} to another origin (${redactUrl(next.origin)}); `
          + 'an http remote must serve its objects from its own scheme, host and port', 'E_REDIRECT_REFUSED',
        { remote: this.location, to: redactUrl(next.origin) })
      }
      if (hop + 1 > this.maxRedirects) {
        throw new ZooError(`too many redirects for ${what} at ${this.location}`, 'E_REMOTE_HTTP', { remote: this.location })
      }
      next.username = ''
      next.password = ''
      url = next
    }
  }

  private once(method: 'GET' | 'HEAD', url: URL, what: string, maxBody: number, deadlineMs: number,
    range?: [number, number], partial = false): Promise<Reply | { redirect: string | undefined }> {
    const shown = redactUrl(url.href)
    const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'git-zoo' }
    // [start, length]: one byte range of a pack (HTTP Range, RFC 9110; the end is inclusive)
    if (range) headers.range = `bytes=${range[0]}-${range[0] + range[1] - 1}`
    // Credentials only ever go to the base origin (redirects elsewhere are refused in send()).
    if (this.authorization && url.origin === this.base.origin) headers.authorization = this.authorization
    const mod = url.protocol === 'https:' ? https : http
    return new Promise((resolve, reject) => {
      let settled = false
      const fail = (err: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(deadline)
        req.destroy()
        reject(err instanceof ZooError ? err
          : new ZooError(`${method} ${shown} (${what}) failed: ${errorMessage(err)}`, 'E_REMOTE_IO', { remote: this.location, url: shown }, { cause: err }))
      }
      const done = (value: Reply | { redirect: string | undefined }): void => {
        if (settled) return
        settled = true
        clearTimeout(deadline)
        resolve(value)
      }
      const deadline = setTimeout(() => fail(new Error(`no complete answer within ${Math.round(this.deadlineMs / 1000)} s`)), Math.max(0, deadlineMs))
      const req = mod.request(url, { method, headers, agent: this.agents[url.protocol as 'http:' | 'https:'], timeout: this.idleTimeoutMs })
      req.on('timeout', () => fail(new Error(`no data for ${Math.round(this.idleTimeoutMs / 1000)} s`)))
      let declared: number | undefined
      let responded = false
      req.on('error', (err: NodeJS.ErrnoException) => {
        // The parser fails on bytes after a complete response (e.g. more than Content-Length).
        if (responded && err.code?.startsWith('HPE_')) {
          fail(declared !== undefined
            ? tooLarge(this.location, what, `sent bytes beyond its declared Content-Length of ${declared}`)
            : new ZooError(`the http remote sent a malformed response for ${what}: ${err.message}`, 'E_REMOTE_HTTP', { remote: this.location, url: shown }, { cause: err }))
          return
        }
        fail(err)
      })
      req.on('response', (res) => {
        responded = true
        const status = res.statusCode ?? 0
        if (status >= 300 && status < 400 && status !== 304) {
          res.destroy()
          done({ redirect: res.headers.location })
          return
        }
        if (method === 'HEAD') {
          res.resume() // no body: the connection stays reusable
          done({ status, body: undefined, url })
          return
        }
        if (status < 200 || status >= 300 || (range && status !== 206)) {
          res.destroy() // an error body may be endless: never read it (nor a whole pack sent for a range)
          done({ status, body: undefined, url })
          return
        }
        if (range && !contentRangeIs(res.headers['content-range'], range, partial)) {
          fail(new ZooError(`the http remote answered ${what} with Content-Range ${res.headers['content-range'] ?? '(none)'}, not the bytes asked for`,
            'E_REMOTE_HTTP', { remote: this.location, url: shown }))
          return
        }
        const encoding = res.headers['content-encoding']
        if (encoding && encoding !== 'identity') {
          fail(new ZooError(`the http remote sent ${what} with Content-Encoding ${encoding}; serve objects unencoded`,
            'E_REMOTE_HTTP', { remote: this.location, url: shown }))
          return
        }
        const lengthHeader = res.headers['content-length']
        if (lengthHeader !== undefined) {
          if (!/^\d+$/.test(lengthHeader)) {
            fail(new ZooError(`the http remote sent an invalid Content-Length for ${what}`, 'E_REMOTE_HTTP', { remote: this.location, url: shown }))
            return
          }
          declared = Number(lengthHeader)
          if (declared > maxBody) {
            fail(tooLarge(this.location, what, `declares ${lengthHeader} bytes, over the ${maxBody}-byte limit`))
            return
          }
        }
        const limit = declared ?? maxBody
        const body = Buffer.allocUnsafe(declared ?? 0)
        const chunks: Buffer[] = []
        let received = 0
        res.on('data', (chunk: Buffer) => {
          if (settled) return
          if (received + chunk.length > limit) {
            fail(tooLarge(this.location, what, declared === undefined
              ? `sent more than the ${maxBody}-byte limit`
              : `sent more bytes than its declared Content-Length of ${declared}`))
            return
          }
          if (declared === undefined) chunks.push(chunk)
          else chunk.copy(body, received)
          received += chunk.length
        })
        res.on('error', fail)
        res.on('close', () => {
          if (!res.complete) fail(new Error(`connection closed after ${received} of ${declared ?? 'an unknown number of'} bytes`))
        })
        res.on('end', () => {
          if (declared !== undefined && received !== declared) {
            fail(new Error(`body ended after ${received} of ${declared} declared bytes`))
            return
          }
          done({ status, body: declared === undefined ? Buffer.concat(chunks, received) : body, url })
        })
      })
      req.end()
    })
  }
}

/** Whether a Content-Range header names exactly the range [start, start + length). */
function contentRangeIs(header: string | undefined, [start, length]: [number, number], partial: boolean): boolean {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header ?? '')
  if (!m || Number(m[1]) !== start) return false
  const end = Number(m[2])
  return partial ? end <= start + length - 1 : end === start + length - 1
}

function tooLarge(remote: string, what: string, detail: string): CheckError {
  return new CheckError(`refused ${what} from ${remote}: the server ${detail}`, 'E_REMOTE_TOO_LARGE', { remote })
}
