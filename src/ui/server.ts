/**
 * `git zoo ui`'s HTTP server (spec/ui.md): node:http, read-only. It answers GET and HEAD only, on a
 * fixed set of routes: the app's three files and the JSON documents of src/ui/data.ts. No part of a
 * request URL ever becomes a file system path: the app's files are a fixed table, models are named
 * by `name@vN` (validated model names) and files by their path in the sealed manifest, streamed
 * from the store with every chunk verified. Bound to 127.0.0.1 unless told otherwise; on any other
 * address a random token must come with every request. On loopback, the Host header must name the
 * loopback address (a page on another site cannot reach the server by DNS rebinding).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { readFile } from 'node:fs/promises'
import { join, basename } from 'node:path'
import { timingSafeEqual } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { Repo } from '../repo.js'
import { ZooError, UsageError } from '../errors.js'
import { openReader } from '../zoo/reader.js'
import { readLog } from '../promote/log.js'
import { catalogPayload, catalogId, historyBytes, modelPayload, diffPayload, modelFile, fileBytes, openUiCatalog, zooTitle } from './data.js'
import type { AppInfo } from './shapes.js'

/** The app's files (written by src/ui/build.ts into dist/ui/), by URL path. */
export const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
}

export const CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

export interface UiServerOptions {
  repo: Repo
  /** Address to listen on (127.0.0.1 unless the user asked for another). */
  host: string
  /** 0: any free port. */
  port: number
  /** When set, every request must carry it (`?token=` or the X-Zoo-Token header). */
  token?: string
  /** Folder of the built app (index.html, app.js, app.css). */
  assets: string
  version: string
  /** One line per failed request (the CLI prints them on stderr). */
  onError?: (line: string) => void
}

export interface UiServer { url: string; port: number; close(): Promise<void> }

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
export const isLoopback = (host: string): boolean => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host)

/** HTTP status for a zoo error: unknown models and files 404, links out of the zoo 403, other usage errors 400, the rest 500. */
function statusOf(err: unknown): number {
  if (!(err instanceof ZooError)) return 500
  if (['E_UNKNOWN_MODEL', 'E_NO_FILE', 'E_ALL_RETIRED'].includes(err.code)) return 404
  if (err.code === 'E_SYMLINK') return 403
  return err.exitCode === 2 ? 400 : 500
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const assets = new Map<string, Buffer>()
  for (const a of new Set(Object.values(ASSETS).map((x) => x.file))) assets.set(a, await readFile(join(o.assets, a)))
  const info: AppInfo = { mode: 'live', zoo: zooTitle(o.repo), version: o.version, remote: null }
  const token = o.token ? Buffer.from(o.token) : undefined
  let port = o.port
  let cached: { key: string; id: string; json: Buffer; bin: Buffer; lazy: Map<string, string> } | undefined
  let building: Promise<NonNullable<typeof cached>> | undefined
  /** The catalog documents of the catalog as it is now (rebuilt when the zoo changed; one build at a time). */
  const catalogDocs = (): Promise<NonNullable<typeof cached>> => (building ??= (async () => {
    try {
      const c = await openUiCatalog(o.repo)
      try {
        const key = `${c.header.key}\n${c.header.built}\n${c.count}`
        if (cached?.key !== key) { const p = catalogPayload(c); cached = { key, id: p.json.id, json: Buffer.from(JSON.stringify(p.json)), bin: p.bin, lazy: p.lazy } }
        return cached
      } finally { c.close() }
    } finally { building = undefined }
  })())

  const tokenOk = (req: IncomingMessage, url: URL): boolean => {
    if (!token) return true
    const given = Buffer.from(url.searchParams.get('token') ?? String(req.headers['x-zoo-token'] ?? ''))
    return given.length === token.length && timingSafeEqual(given, token)
  }
  const hostOk = (req: IncomingMessage): boolean => {
    if (token) return true
    const h = String(req.headers.host ?? '').toLowerCase()
    return [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${o.host}:${port}`].includes(h)
  }

  const send = (req: IncomingMessage, res: ServerResponse, status: number, type: string, body: Buffer | string, extra: Record<string, string> = {}): void => {
    const buf = typeof body === 'string' ? Buffer.from(body) : body
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length), ...extra })
    res.end(req.method === 'HEAD' ? undefined : buf)
  }
  const json = (req: IncomingMessage, res: ServerResponse, value: unknown, status = 200): void => send(req, res, status, 'application/json; charset=utf-8', JSON.stringify(value))
  const fail = (req: IncomingMessage, res: ServerResponse, status: number, error: string, code?: string): void => json(req, res, code ? { error, code } : { error }, status)
  const need = (url: URL, name: string): string => {
    const v = url.searchParams.get(name)
    if (!v) throw new UsageError(`the request needs ?${name}=`, 'E_USAGE')
    return v
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    res.setHeader('Content-Security-Policy', CSP)
    res.setHeader('X-Content-Type-Options', 'nosniff')
    res.setHeader('Referrer-Policy', 'no-referrer')
    res.setHeader('Cache-Control', 'no-store')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      return fail(req, res, 405, `${req.method} is not allowed: the zoo's web app is read-only`)
    }
    if (!hostOk(req)) return fail(req, res, 403, `Host ${JSON.stringify(req.headers.host ?? '')} is not this server's address`)
    let url: URL
    try { url = new URL(req.url ?? '/', 'http://zoo.invalid') } catch { return fail(req, res, 400, 'bad request URL') }
    if (!tokenOk(req, url)) return fail(req, res, 403, 'this server needs the token it printed when it started (?token=...)')
    const asset = Object.hasOwn(ASSETS, url.pathname) ? ASSETS[url.pathname]! : undefined
    if (asset) return send(req, res, 200, asset.type, assets.get(asset.file)!)
    switch (url.pathname) {
      case '/api/info': return json(req, res, info)
      case '/api/catalog': return send(req, res, 200, 'application/json; charset=utf-8', (await catalogDocs()).json)
      case '/api/catalog.bin': {
        // the numeric part of the catalog document (the page fetches both at once and checks the id)
        const docs = await catalogDocs()
        const id = url.searchParams.get('id')
        if (id !== null && id !== docs.id) return fail(req, res, 409, 'the catalog changed since the page read it; reload the page')
        return send(req, res, 200, 'application/octet-stream', docs.bin, { 'X-Catalog-Id': docs.id })
      }
      case '/api/column': {
        const docs = await catalogDocs()
        if (url.searchParams.get('id') !== docs.id) return fail(req, res, 409, 'the catalog changed since the page read it; reload the page')
        const col = docs.lazy.get(need(url, 'col'))
        if (col === undefined) return fail(req, res, 404, `no column ${JSON.stringify(url.searchParams.get('col'))} in the catalog`)
        return send(req, res, 200, 'application/json; charset=utf-8', col)
      }
      case '/api/history': {
        const metric = need(url, 'metric')
        const e = url.searchParams.get('epoch')
        const epoch = e === null ? undefined : /^\d+$/.test(e) ? Number(e) : NaN
        const c = await openUiCatalog(o.repo)
        try {
          if (url.searchParams.get('id') !== catalogId(c)) return fail(req, res, 409, 'the catalog changed since the page read it; reload the page')
          const bytes = Number.isNaN(epoch) ? undefined : historyBytes(c, metric, epoch)
          if (!bytes) return fail(req, res, 404, `no history of metric ${JSON.stringify(metric)}${e === null ? '' : ` at epoch ${e}`} in the catalog`)
          return send(req, res, 200, 'application/octet-stream', bytes)
        } finally { c.close() }
      }
      case '/api/model': return json(req, res, await modelPayload(o.repo, need(url, 'm')))
      case '/api/diff': return json(req, res, await diffPayload(o.repo, need(url, 'a'), need(url, 'b')))
      case '/api/log': return json(req, res, { entries: await readLog(o.repo) })
      case '/api/file': return download(req, res, need(url, 'm'), need(url, 'path'))
      default: return fail(req, res, 404, `nothing at ${url.pathname}`)
    }
  }

  const download = async (req: IncomingMessage, res: ServerResponse, ref: string, path: string): Promise<void> => {
    const { manifest, file } = await modelFile(o.repo, ref, path)
    const headers = {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(file.size),
      'Content-Disposition': `attachment; filename="${basename(file.path).replace(/[^A-Za-z0-9._-]/g, '_')}"`,
      'X-Zoo-Sha256': file.sha256,
    }
    if (req.method === 'HEAD') { res.writeHead(200, headers); res.end(); return }
    const store = await openReader(o.repo)
    const stop = new AbortController()
    res.on('close', () => stop.abort())
    try {
      let started = false
      for await (const bytes of fileBytes(store, manifest, file, stop.signal)) {
        if (!started) { res.writeHead(200, headers); started = true }
        if (!res.write(bytes)) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r) })
      }
      if (!started) res.writeHead(200, headers)
      res.end()
    } catch (err) {
      // headers are gone: cut the connection, so the download is visibly incomplete
      if (res.headersSent) { o.onError?.(`download of ${ref} ${path} stopped: ${(err as Error).message}`); res.destroy(); return }
      throw err
    } finally { await store.close() }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = statusOf(err)
      if (status === 500) o.onError?.(`${req.method} ${req.url}: ${(err as Error)?.message ?? String(err)}`)
      if (res.headersSent) { res.destroy(); return }
      fail(req, res, status, (err as Error)?.message ?? String(err), err instanceof ZooError ? err.code : undefined)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => { server.off('error', reject); resolve() })
  })
  port = (server.address() as AddressInfo).port
  const shown = o.host.includes(':') ? `[${o.host}]` : o.host
  return {
    url: `http://${shown}:${port}/${o.token ? `?token=${o.token}` : ''}`,
    port,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections() }),
  }
}
