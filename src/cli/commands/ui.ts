import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import type { Command } from '../command.js'
import { bool, int, str } from '../args.js'
import { printJson, Progress, humanBytes } from '../output.js'
import { Repo } from '../../repo.js'
import { PROJECT_ROOT, version } from '../../version.js'
import { startUiServer, isLoopback } from '../../ui/server.js'
import { exportSite } from '../../ui/export.js'
import { UsageError, ZooError } from '../../errors.js'

export const DEFAULT_PORT = 7317

export const command: Command = {
  help: `usage: git zoo ui [--port <p>] [--host <addr>] [--open] [--json]
       git zoo ui --export <dir> [--remote <name>] [--json]

Look at the zoo in a browser: a read-only web app served from this machine (spec/ui.md).
  Catalog      every model version as a sortable table, filtered as you type with the language of
               \`git zoo find\` (e.g. metrics.test_acc>0.6 dataset=cifar10); retired versions marked
  Population   a scatter of any two fields over the filtered models, coloured by a third (click a
               point to open it), and a metric's distribution over epochs
  Model        the card, factors, metrics over epochs, evaluations, files with size, sha256 and a
               download (bytes streamed from the store, every chunk verified), the lineage graph,
               seal and signature status, the promotion log
  Compare      two or more models: curves overlaid, the factors that differ, \`git zoo diff\`'s
               weight summary
The server listens on 127.0.0.1 and answers GET and HEAD only; nothing is written. Another address
(--host) needs the random token printed with the URL on every request. Ctrl-C stops it.

With --export, the same app is written as static files into <dir> (new or empty), the data as JSON
beside it: publish it with any static web server. Its download links read the files' chunks from
the zoo's HTTP remote (--remote, else the default remote when it is http(s), else the only http(s)
one), each checked in the browser against its CID; without an HTTP remote they show the
\`git zoo get\` command instead. The weight diff needs the live server.

flags:
  --port <p>        port to listen on (default ${DEFAULT_PORT}; 0 picks a free one)
  --host <addr>     address to listen on (default 127.0.0.1); any other requires the printed token
  --open            open the app in the default browser
  --export <dir>    write the app as a static site instead of serving it
  --remote <name>   with --export: the zoo remote downloads read from (an http(s) URL)
  --json            print { url, port, token } once listening, or the export's { dir, models,
                    files, bytes, remote }

examples:
  git zoo ui --open
  git zoo ui --port 0 --host 0.0.0.0      # on a shared machine: prints http://0.0.0.0:<port>/?token=...
  git zoo ui --export site/ && python3 -m http.server -d site 8000
`,
  flags: {
    port: { type: 'string', value: 'p' },
    host: { type: 'string', value: 'addr' },
    open: { type: 'bool' },
    export: { type: 'string', value: 'dir' },
    remote: { type: 'string', value: 'name' },
    json: { type: 'bool' },
  },
  interrupted: 'the server stopped; nothing was written',
  async run(args, io) {
    if (args.positional.length) throw new UsageError(`git zoo ui takes no arguments (got ${args.positional[0]})`, 'E_USAGE')
    const assets = join(PROJECT_ROOT, 'dist', 'ui')
    if (!existsSync(join(assets, 'app.js'))) throw new ZooError(`the web app is not built (${join(assets, 'app.js')} is missing); run \`npm run build\` in ${PROJECT_ROOT}`, 'E_UI_NOT_BUILT')
    const repo = await Repo.open(io.cwd, io)
    const out = str(args, 'export')
    if (out !== undefined) {
      for (const f of ['port', 'host', 'open']) if (args.flags[f] !== undefined) throw new UsageError(`--${f} is for serving; --export writes files`, 'E_USAGE')
      const progress = new Progress(io, 'export', 0, (n) => String(n))
      const s = await exportSite(repo, resolve(io.cwd, out), {
        version, assets, ...(str(args, 'remote') ? { remote: str(args, 'remote')! } : {}), ...(io.signal ? { signal: io.signal } : {}),
        progress: (done, total) => { progress.total = total; progress.update(done) },
      })
      progress.done()
      if (s.remoteNote) io.err(`git zoo: warning: ${s.remoteNote}\n`)
      if (bool(args, 'json')) printJson(io, s)
      else io.err(`git zoo: exported ${s.models} model version${s.models === 1 ? '' : 's'} to ${s.dir} (${s.files} files, ${humanBytes(s.bytes)})${s.remote ? `; downloads read ${s.remote}` : ''}\n`)
      return 0
    }
    if (str(args, 'remote') !== undefined) throw new UsageError('--remote goes with --export', 'E_USAGE')
    const port = int(args, 'port') ?? DEFAULT_PORT
    if (port < 0 || port > 65535) throw new UsageError(`--port takes 0-65535, not ${port}`, 'E_USAGE')
    const host = str(args, 'host') ?? '127.0.0.1'
    const token = isLoopback(host) ? undefined : randomBytes(18).toString('base64url')
    let server
    try {
      server = await startUiServer({ repo, host, port, assets, version, ...(token ? { token } : {}), onError: (line) => io.err(`git zoo ui: ${line}\n`) })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EADDRINUSE') throw new UsageError(`port ${port} on ${host} is in use; choose another with --port <p> (--port 0 picks a free one)`, 'E_PORT_IN_USE', { port, host })
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') throw new UsageError(`cannot listen on ${host}:${port} (${code}); give an address of this machine with --host, or a port above 1023`, 'E_PORT_IN_USE', { port, host })
      throw err
    }
    if (bool(args, 'json')) printJson(io, { url: server.url, port: server.port, token: token ?? null })
    else io.out(`${server.url}\n`)
    io.err(`git zoo: serving ${repo.root} at ${server.url} (read-only${token ? '; the token in the URL is required' : ''}); Ctrl-C stops\n`)
    if (bool(args, 'open')) openBrowser(server.url, io.err)
    if (io.signal) await new Promise<void>((r) => { if (io.signal!.aborted) r(); else io.signal!.addEventListener('abort', () => r(), { once: true }) })
    else await new Promise<never>(() => {})
    await server.close()
    io.err('git zoo: server stopped\n')
    return 0
  },
}

function openBrowser(url: string, err: (t: string) => void): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]]
  const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true })
  child.on('error', (e) => err(`git zoo: could not open a browser (${cmd}: ${e.message}); open ${url} yourself\n`))
  child.unref()
}
