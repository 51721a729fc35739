#!/usr/bin/env node
// `git zoo ...` runs bin/git-zoo, which runs this (directly, or through the native front for every
// command it does not send to the query server: spec/server.md). `npm run build` compiles the CLI with tsc into dist/src/
// and bundles it into dist/cli/ (scripts/build-cli.mjs: a few files to load instead of ~100, so a
// command starts faster; add, get and verify have an entry each, hot-<name>.js); this runs the
// bundle, or dist/src/ when there is no bundle.
import { existsSync } from 'node:fs'

const bundle = new URL('../dist/cli/main.js', import.meta.url)
const compiled = new URL('../dist/src/cli/main.js', import.meta.url)
// add, get and verify have an entry of their own, dispatcher and command in one (fewer files to load)
const name = process.argv[2]
const hot = name === 'add' || name === 'get' || name === 'verify' ? new URL(`../dist/cli/hot-${name}.js`, import.meta.url) : undefined
const entry = hot && existsSync(hot) ? hot : existsSync(bundle) ? bundle : existsSync(compiled) ? compiled : undefined
if (entry === undefined) {
  const { fileURLToPath } = await import('node:url')
  process.stderr.write('git zoo: the CLI is not built; run `npm run build` in ' + fileURLToPath(new URL('..', import.meta.url)) + '\n')
  process.exit(3)
}
const { cli } = await import(entry.href)
// The last resort: a command whose work stopped waiting on nothing (no timer, socket, child or thread
// left to wake it) would otherwise end with node's exit code 13 and no word. Say so, as E_INTERNAL.
let settled = false
process.on('exit', (code) => {
  // node sets exit code 13 for an unsettled top-level await; a process.exit(n) (a second Ctrl-C) is left alone
  if (settled || (code !== 13 && process.exitCode !== 13)) return
  const message = 'internal error: the command stopped before it finished (nothing was left for it to wait on); '
    + 'writes are atomic, so the store is valid and the command can be run again. This is a bug in git-zoo; please report it with the command you ran.'
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify({ error: { code: 'E_INTERNAL', message } }, null, 2) + '\n')
  process.stderr.write(`git zoo: ${message}\n`)
  process.exitCode = 70
})
// cli() builds the process's Io, installs the SIGINT/SIGTERM handlers and runs main (src/cli/main.ts)
const code = await cli(process.argv.slice(2))
settled = true
process.exitCode = code
