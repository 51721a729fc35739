/** Test helpers for the web app: `git zoo ui` as a real process, raw HTTP requests, Debian's chromium. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import http from 'node:http'
import { join } from 'node:path'
import { BIN, ROOT } from './cli.js'

export const CHROMIUM = '/usr/bin/chromium'
/** node:test's skip value: a message when Debian's chromium is absent (.ci/run installs it). */
export const noBrowser: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'ui')

export async function launchChromium(): Promise<import('playwright-core').Browser> {
  const { chromium } = await import('playwright-core')
  await mkdir(ARTIFACTS, { recursive: true })
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
}

export interface Served { url: string; port: number; token: string | null; child: ChildProcess; stderr: () => string; stop: () => Promise<{ code: number | null; stderr: string }> }

/** Start `git zoo ui --port 0 --json <extra>` in `dir` and wait for the JSON it prints once listening. */
export async function serveUi(dir: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'ui', '--port', '0', '--json', ...extra], { cwd: dir, env: { ...process.env, GIT_ZOO_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = '', err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d })
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  const info = await new Promise<{ url: string; port: number; token: string | null }>((resolve, reject) => {
    // listening once the JSON is complete on stdout and the one-line summary is on stderr
    const check = (): void => { try { if (/Ctrl-C stops/.test(err)) resolve(JSON.parse(out)) } catch { /* not complete yet */ } }
    child.stdout!.on('data', (d: Buffer) => { out += d; check() })
    child.stderr!.on('data', check)
    void exited.then((code) => reject(new Error(`git zoo ui exited ${code}: ${err}`)))
  })
  return {
    ...info, child, stderr: () => err,
    stop: async () => { child.kill('SIGINT'); const code = await exited; return { code, stderr: err } },
  }
}

export interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** One raw HTTP request: the path is sent exactly as given (no normalisation of `..` or escapes). */
export function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
