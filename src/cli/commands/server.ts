/** `git zoo server [status|stop]`: the resident query server's state, or stopping it (spec/server.md). */
import type { Command } from '../command.js'
import { UsageError } from '../../errors.js'
import { printJson } from '../output.js'
import { askServer, type ServerStatus } from '../front/control.js'
import { readBuildId } from '../front/protocol.js'
import { PROJECT_ROOT } from '../../version.js'

export const command: Command = {
  help: `usage: git zoo server [status|stop] [--json]

The server answers \`git zoo find\`, \`ls\`, \`add\`, \`get\` and \`verify\` without starting node,
through the native client (dist/front/git-zoo, built by \`npm run build\` when a C compiler is
there). One of those commands answered by node starts it; it exits after 10 minutes without
requests (GIT_ZOO_SERVER_IDLE=<seconds>), when a client of a rebuilt or upgraded git-zoo asks, or
when stopped. GIT_ZOO_SERVER=0 turns it off: every command then runs in node. A server that does
not begin a command within GIT_ZOO_SERVER_WAIT milliseconds (default 500; it is busy with another)
is not waited for: node answers. add, get and verify start only on the client's go-ahead, so a
client that gave up never has its command run twice; Ctrl-C and SIGTERM are passed on to the
command, which cleans up as in node. What a process of its own would do differently runs in node:
a promotion git signs, get of objects the local store lacks (a lazy clone), verify --repair or
--signatures, NODE_OPTIONS, the testing hooks. See spec/server.md.

  status   (the default) whether a server runs: pid, build, requests served, idle time
  stop     stop the running server (it removes its socket)

flags:
  --json   print { running, pid, build, current, socket, served, uptimeSeconds, idleSeconds,
           idleLimitSeconds } (running: false and why when none answers)
           (status), { stopped, pid } (stop)

examples:
  git zoo server
  git zoo server status --json
  git zoo server stop
`,
  flags: { json: { type: 'bool' } },
  async run(args, io) {
    const [action = 'status', ...more] = args.positional
    if (more.length) throw new UsageError(`git zoo server takes one action (got ${args.positional.join(' ')})`, 'E_USAGE')
    if (action !== 'status' && action !== 'stop') throw new UsageError(`unknown action '${action}' for \`git zoo server\`; give status or stop`, 'E_USAGE')
    const uid = process.getuid?.() ?? 0
    const st: ServerStatus = await askServer(io.env, uid, 'status')
    if (action === 'status') {
      // a server of another build (an older install) exits when this build's client asks it
      const current = st.running && st.build === (readBuildId(PROJECT_ROOT) ?? '')
      if (io.json) printJson(io, st.running ? { ...st, current } : st)
      else if (!st.running) io.err(`git zoo: no server is running (${st.why})\n`)
      else io.out(`server ${st.pid}: build ${st.build.slice(0, 12)}${current ? '' : ' (not this installation\'s build: it exits when this build\'s client asks)'}, ${st.served} request${st.served === 1 ? '' : 's'} served, up ${st.uptimeSeconds} s, idle ${st.idleSeconds} s of ${st.idleLimitSeconds} s; socket ${st.socket}\n`)
      return 0
    }
    if (!st.running) {
      if (io.json) printJson(io, { stopped: false, pid: null })
      else io.err(`git zoo: no server is running (${st.why})\n`)
      return 0
    }
    await askServer(io.env, uid, 'stop')
    if (io.json) printJson(io, { stopped: true, pid: st.pid })
    else if (!io.quiet) io.err(`stopped server ${st.pid}\n`)
    return 0
  },
}
