import type { Command } from '../command.js'
import { bool } from '../args.js'
import { printJson, summary } from '../output.js'
import { Repo, ZOO_CONFIG, type ZooConfig } from '../../repo.js'
import { UsageError } from '../../errors.js'
import { checkRemoteUrl, redactUrl, remoteKind } from '../../remote/index.js'
import { resolveRemoteUrl, urlToRecord } from '../../remote/resolve.js'
import { REMOTE_NAME, zooRemotes } from '../../remote/sync.js'
import { migrateRemote } from '../../remote/migrate.js'
import { crashPoints } from '../crash.js'

const USAGE = 'usage: git zoo remote [list] | add <name> <url> [--default] | remove <name> | set-default <name> | migrate <name>'

function remotesOf(config: ZooConfig): Record<string, { url: string }> {
  const r = config.remotes
  return r && typeof r === 'object' && !Array.isArray(r) ? r as Record<string, { url: string }> : {}
}

export const command: Command = {
  help: `${USAGE}

A zoo remote holds the objects (chunks and nodes) that the git-tracked manifests name; git carries
the manifests. Remotes are recorded in the committed ${ZOO_CONFIG} so every clone knows where
objects live: commit the change. Credentials never go there (URLs holding them are refused).

URL kinds:
  /shared/zoo, ../zoo, file:///mnt/nfs/zoo   a folder on a local or shared disk (read-write)
A relative path is typed relative to where you are and recorded relative to the zoo's home
repository: follow the git remote (branch upstream, else origin) from clone to clone while it is a
local path; the last repository reached is the home. Every clone on the machine, at any depth,
finds the same folder (spec/remotes.md).

  https://models.example.org/zoo             any static web server over such a folder (read-only)
  s3://bucket/prefix                         AWS S3 or S3-compatible storage (read-write)

S3 uses the standard AWS configuration: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE,
AWS_REGION (default us-east-1), and for MinIO, Ceph, R2 or a local server AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL (path-style). HTTP credentials: GIT_ZOO_HTTP_AUTHORIZATION="Bearer <token>".

Objects travel and rest in packs (~64 MiB, each with an index) on every kind; a lazy get reads byte
ranges of them. A remote written by git-zoo before packs (one file per object, layout 1) stays
readable; \`git zoo remote migrate <name>\` packs its objects, records layout 2 in zoo-remote.json
on the remote and removes the loose files (rerun it if it is interrupted; it waits for no push:
a push in progress makes it stop with E_REMOTE_LOCKED). Older git-zoo versions cannot read a
migrated remote.

A clone can point a remote elsewhere without changing the committed file:
  git config zoo.remote.<name>.url <url>     (e.g. push to the folder an http remote serves)

flags:
  --default   (add) make this the remote used when none is named
  --json      (list) print { remotes: [{ name, url, kind, path, source, default }] } (path: where
              a path remote is on this machine); (migrate) print { remote, url, layout_before,
              layout, objects_packed, bytes_packed, loose_removed }

examples:
  git zoo remote add origin s3://ml-team/zoo && git commit -m "zoo remote" .zoo/config.json
  git zoo remote add nfs /mnt/shared/zoo --default
  git zoo remote list
  git zoo remote migrate origin
`,
  interrupted: 'the zoo configuration was not changed; run the same command again',
  flags: { default: { type: 'bool' }, json: { type: 'bool' } },
  async run(args, io) {
    const [sub = 'list', ...rest] = args.positional
    const repo = await Repo.open(io.cwd, io)
    const needName = (name: string | undefined): string => {
      if (name === undefined || !REMOTE_NAME.test(name)) {
        throw new UsageError(`a zoo remote name is letters, digits, _ and - (starting with a letter or digit), not ${JSON.stringify(name ?? '')}; ${USAGE}`, 'E_USAGE')
      }
      return name
    }
    switch (sub) {
      case 'list': {
        if (rest.length) throw new UsageError(USAGE, 'E_USAGE')
        const all = await zooRemotes(repo)
        const config = await repo.config()
        const rows = []
        for (const r of all) {
          const kind = safeKind(r.url)
          // where a path remote is on this machine (a relative one resolves against the zoo's home)
          const path = kind === 'path' ? (await resolveRemoteUrl(repo, r.url, r.source).catch(() => undefined))?.url : undefined
          rows.push({ name: r.name, url: redactUrl(r.url), kind, ...(path !== undefined ? { path } : {}), source: r.source, default: config.default_remote === r.name })
        }
        if (bool(args, 'json')) printJson(io, { remotes: rows })
        else {
          for (const r of rows) {
            const at = r.path !== undefined && r.path !== r.url ? `\t(${r.path})` : ''
            io.out(`${r.name}\t${r.url}${at}${r.default ? '\t(default)' : ''}${r.source === 'git-config' ? '\t(this clone: git config)' : ''}\n`)
          }
        }
        return 0
      }
      case 'add': {
        if (rest.length !== 2) throw new UsageError(`name a remote and its URL; ${USAGE}`, 'E_USAGE')
        const name = needName(rest[0])
        // a relative path is typed relative to where the user is and recorded relative to the zoo's
        // home repository, which every clone resolves it against (spec/remotes.md)
        const url = await urlToRecord(repo, io.cwd, checkRemoteUrl(rest[1]!))
        const config = await repo.config()
        const remotes = remotesOf(config)
        if (remotes[name]) {
          throw new UsageError(`the zoo remote ${name} already exists (${redactUrl(remotes[name].url)}); remove it first with \`git zoo remote remove ${name}\``, 'E_USAGE')
        }
        config.remotes = { ...remotes, [name]: { url } }
        if (bool(args, 'default')) config.default_remote = name
        await repo.writeConfig(config)
        summary(io, `git zoo: added zoo remote ${name} (${remoteKind(url)}); commit ${ZOO_CONFIG} so clones use it`)
        return 0
      }
      case 'remove': case 'rm': {
        if (rest.length !== 1) throw new UsageError(USAGE, 'E_USAGE')
        const name = needName(rest[0])
        const config = await repo.config()
        const remotes = { ...remotesOf(config) }
        if (!remotes[name]) throw new UsageError(`no zoo remote named ${name} in ${ZOO_CONFIG}`, 'E_USAGE')
        delete remotes[name]
        config.remotes = remotes
        if (config.default_remote === name) delete config.default_remote
        await repo.writeConfig(config)
        return 0
      }
      case 'set-default': {
        if (rest.length !== 1) throw new UsageError(USAGE, 'E_USAGE')
        const name = needName(rest[0])
        const config = await repo.config()
        if (!remotesOf(config)[name]) throw new UsageError(`no zoo remote named ${name} in ${ZOO_CONFIG}`, 'E_USAGE')
        config.default_remote = name
        await repo.writeConfig(config)
        return 0
      }
      case 'migrate': {
        if (rest.length !== 1) throw new UsageError(`name the zoo remote to migrate; ${USAGE}`, 'E_USAGE')
        const s = await migrateRemote(repo, needName(rest[0]), { crashPoint: crashPoints(io) })
        if (bool(args, 'json')) printJson(io, s)
        io.err(`git zoo: zoo remote ${s.remote} is at layout ${s.layout} (packs): ${s.objects_packed} objects packed `
          + `(${(s.bytes_packed / 2 ** 20).toFixed(1)} MiB), ${s.loose_removed} loose files removed\n`)
        return 0
      }
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}; ${USAGE}`, 'E_USAGE')
    }
  },
}

function safeKind(url: string): string {
  try { return remoteKind(url) } catch { return 'unknown' }
}
