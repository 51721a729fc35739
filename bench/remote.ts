/**
 * Remote benchmark (not part of the tests), spec/remotes.md "Packs: measured". Prints, for a
 * safetensors checkpoint (default 1 GiB) and a fine-tune of it:
 * - files (path remote) and S3 objects per GiB pushed                        [<= 40]
 * - push and clone through a path remote against cp+sync of the file          [<= 1.3x]
 * - a lazy get of one model through a static web server (Range requests): bytes moved / bytes needed [<= 1.1]
 * - fine-tune pull: bytes moved / bytes changed
 * - push to s3rver against one SDK multipart upload of the same bytes          [<= 1.5x]
 * Each timed step shows wall, user and system CPU (/usr/bin/time) and the load average (the machine
 * may be shared: read the ratios with it).
 *
 *   npx tsx bench/remote.ts [--size-mib 1024]
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync, readFileSync, readdirSync, statSync, openSync, readSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { S3Client, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { writeBaseAndFineTune, TENSOR } from './checkpoint.js'
import { startS3rver, startStaticServer } from '../test/remote-servers.js'
// every git zoo this bench runs is node's own: a find or ls would start a query server that outlives it
process.env.GIT_ZOO_SERVER = '0'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const BIN = join(ROOT, 'bin', 'git-zoo.js')
const i = process.argv.indexOf('--size-mib')
const SIZE = (i === -1 ? 1024 : Number(process.argv[i + 1])) * 1024 * 1024
const GiB = 2 ** 30
const exec = promisify(execFile)

interface Timed { wall: number; user: number; sys: number; load: string }
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

/** Run a shell command under /usr/bin/time (async: the servers run in this process). */
async function timed(label: string, cmd: string, cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  const load = loadavg()
  const r = await exec('/usr/bin/time', ['-f', 'TIME %e %U %S', 'sh', '-c', cmd], { cwd, env: { ...process.env, ...env }, maxBuffer: 1 << 26 })
    .catch((err: { stderr?: string }) => { throw new Error(`${label} failed: ${err.stderr ?? err}`) })
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr)!
  const t = { wall: Number(m[1]), user: Number(m[2]), sys: Number(m[3]), load }
  report(label, t)
  return t
}
function report(label: string, t: Timed): void {
  console.log(`${label.padEnd(46)} ${t.wall.toFixed(2)} s wall  ${(t.user + t.sys).toFixed(2)} s CPU  ${(SIZE / t.wall / 1e6).toFixed(0).padStart(4)} MB/s  load ${t.load}`)
}
async function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return (await exec(cmd, args, { cwd, env: { ...process.env, ...env }, maxBuffer: 1 << 26 })).stdout
}
const zoo = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> => sh(process.execPath, [BIN, ...args], cwd, env)
async function repo(dir: string): Promise<void> {
  for (const [k, v] of [['user.name', 'bench'], ['user.email', 'bench@example.invalid'], ['commit.gpgsign', 'false']]) await sh('git', ['config', k!, v!], dir)
}
function filesUnder(dir: string): number {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile() && !e.parentPath.includes('/locks')) n++
  return n
}

const work = mkdtempSync(join(tmpdir(), 'zoo-bench-remote-'))
const s3 = await startS3rver('bench')
const objects = join(work, 'objects')
const web = await startStaticServer(objects)
try {
  const a = join(work, 'a')
  await sh('git', ['init', '-q', '--bare', '-b', 'main', join(work, 'origin.git')], work)
  await sh('git', ['init', '-q', '-b', 'main', a], work); await repo(a)
  await zoo(a, ['init'])
  await sh('git', ['remote', 'add', 'origin', join(work, 'origin.git')], a)
  await zoo(a, ['remote', 'add', 'origin', objects])
  await sh('git', ['commit', '-qm', 'zoo'], a)
  const { base: ckpt, fineTune: ft, changed: nChanged } = writeBaseAndFineTune(work, SIZE)
  await zoo(a, ['add', ckpt, '--name', 'bench/base'])
  console.log(`checkpoint: ${(SIZE / 2 ** 20).toFixed(0)} MiB; fine-tune changes ${(nChanged * TENSOR / 2 ** 20).toFixed(0)} MiB; ${readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length} cores`)

  const cp = await timed('cp + sync', `cp ${ckpt} ${work}/copy.bin && sync`, work)
  rmSync(join(work, 'copy.bin'))
  const push = await timed('git zoo push (path remote) + sync', `${process.execPath} ${BIN} push && sync`, a)
  const pathFiles = filesUnder(objects)
  const clone = await timed('git zoo clone (path remote) + sync', `${process.execPath} ${BIN} clone ${join(work, 'origin.git')} b && sync`, work)
  const b = join(work, 'b'); await repo(b)
  await zoo(a, ['add', ft, '--name', 'bench/ft', '--parent', 'bench/base'])
  await zoo(a, ['push'])
  const pulled = JSON.parse(await zoo(b, ['pull', '--json']))
  const changedBytes = nChanged * TENSOR

  // lazy get through a static web server over the path remote: bytes it served / bytes the model needs
  const l = join(work, 'lazy')
  await zoo(work, ['clone', '--lazy', join(work, 'origin.git'), l])
  await sh('git', ['config', 'zoo.remote.origin.url', web.url], l)
  const sentBefore = web.sent.bytes
  const lazy = await timed('lazy get of the fine-tune (http, Range)', `${process.execPath} ${BIN} get bench/ft --out out`, l)
  const lazyMoved = web.sent.bytes - sentBefore
  const needed = statSync(ft).size

  // S3: the zoo's push against one multipart upload of the same bytes by the SDK, same server, same run
  const s3repo = join(work, 's3'); await sh('git', ['init', '-q', '-b', 'main', s3repo], work); await repo(s3repo)
  await zoo(s3repo, ['init'])
  await sh('git', ['init', '-q', '--bare', '-b', 'main', join(work, 's3origin.git')], work)
  await sh('git', ['remote', 'add', 'origin', join(work, 's3origin.git')], s3repo)
  await zoo(s3repo, ['remote', 'add', 'origin', `s3://${s3.bucket}/zoo`], s3.env)
  await sh('git', ['commit', '-qm', 'zoo'], s3repo)
  await zoo(s3repo, ['add', ckpt, '--name', 'bench/base'])
  const s3push = await timed('git zoo push (s3rver on 127.0.0.1)', `${process.execPath} ${BIN} push --json`, s3repo, s3.env)
  const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } })
  let s3objects = 0
  let token: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'zoo/', ContinuationToken: token }))
    s3objects += (page.Contents ?? []).filter((o) => !o.Key!.includes('/locks/')).length
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  const load = loadavg()
  const t = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: 'whole.bin' }))
  const PART = 16 * 2 ** 20
  const fd = openSync(ckpt, 'r')
  const parts: Array<{ ETag?: string; PartNumber: number }> = []
  const count = Math.ceil(SIZE / PART)
  let next = 0
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (;;) {
      const n = next++
      if (n >= count) return
      const buf = Buffer.alloc(Math.min(PART, statSync(ckpt).size - n * PART))
      readSync(fd, buf, 0, buf.length, n * PART)
      const out = await client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: 'whole.bin', UploadId, PartNumber: n + 1, Body: buf }))
      parts[n] = { ETag: out.ETag, PartNumber: n + 1 }
    }
  }))
  closeSync(fd)
  await client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: 'whole.bin', UploadId, MultipartUpload: { Parts: parts } }))
  const cpu = process.cpuUsage(cpu0)
  const multipart = { wall: Number(process.hrtime.bigint() - t) / 1e9, user: cpu.user / 1e6, sys: cpu.system / 1e6, load }
  report('one SDK multipart upload (16 MiB parts, 4 at once)', multipart)
  client.destroy()

  const gib = SIZE / GiB
  console.log('\nratios (target in brackets); CPU of the s3rver side is in this process, not in the push')
  console.log(`files on the path remote per GiB pushed      ${(pathFiles / gib).toFixed(1)}  [<= 40]  (${pathFiles} files after pushing the base)`)
  console.log(`S3 objects per GiB pushed                    ${(s3objects / gib).toFixed(1)}  [<= 40]  (${s3objects} objects)`)
  console.log(`push to path / (cp+sync)                     ${(push.wall / cp.wall).toFixed(2)}  [<= 1.3]`)
  console.log(`clone from path / (cp+sync)                  ${(clone.wall / cp.wall).toFixed(2)}  [<= 1.3]`)
  console.log(`lazy get: bytes moved / bytes needed         ${(lazyMoved / needed).toFixed(3)}  [<= 1.1]  (${lazyMoved} / ${needed}; ${lazy.wall.toFixed(2)} s)`)
  console.log(`fine-tune pull moved / changed               ${(pulled.bytes / changedBytes).toFixed(3)}`)
  console.log(`s3 push / one multipart upload               ${(s3push.wall / multipart.wall).toFixed(2)}  [<= 1.5]`)
} finally {
  await web.close()
  await s3.close()
  rmSync(work, { recursive: true, force: true })
}
