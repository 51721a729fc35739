/**
 * `git zoo serve` (hidden): the resident server (src/cli/serve.ts, spec/server.md). Started
 * detached by a find, ls, add, get or verify that node answered itself; `git zoo server status|stop` talks to it.
 */
import type { Command } from '../command.js'
import { UsageError } from '../../errors.js'
import { PROJECT_ROOT } from '../../version.js'
import { FINISH_MS, serve } from '../serve.js'
import { longerGrace } from '../interrupt.js'
import { crashPoints } from '../crash.js'

export const command: Command = {
  help: `usage: git zoo serve

Run the server in the foreground (internal: \`git zoo find\`, \`ls\`, \`add\`, \`get\` and
\`verify\` answered by node start it detached when the native client is built). It answers
them for the client on the per-user socket $XDG_RUNTIME_DIR/git-zoo/serve.sock (else /tmp/git-zoo-<uid>/serve.sock), one
request at a time, and exits after GIT_ZOO_SERVER_IDLE seconds without requests (default 600),
when a client of another build asks, on \`git zoo server stop\`, or on SIGINT/SIGTERM. When a
server already answers it exits at once (status 0). See spec/server.md.
`,
  flags: {},
  interrupted: 'the server stopped and removed its socket',
  async run(args, io) {
    if (args.positional.length) throw new UsageError(`git zoo serve takes no arguments (got ${args.positional[0]})`, 'E_USAGE')
    // main.js by URL, as main.ts loads commands: a static import would move main.ts out of the
    // bundle's main.js into a chunk every command then loads (scripts/build-cli.mjs)
    // signalled, the server lets the request it answers unwind for up to FINISH_MS: never exit before it did
    longerGrace(FINISH_MS + 5000)
    const { main, loadCommand } = await import(new URL('../main.js', import.meta.url).href) as typeof import('../main.js')
    const code = await serve({ main, loadCommand, root: PROJECT_ROOT, env: io.env, uid: process.getuid?.() ?? 0, ...(io.signal ? { signal: io.signal } : {}), note: io.err, crashPoint: crashPoints(io) })
    if (io.signal?.aborted) throw io.signal.reason
    return code
  },
}
