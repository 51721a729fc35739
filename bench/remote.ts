/**
 * Sharing benchmark (not part of the tests): push and clone of a 1 GiB checkpoint through a path
 * zoo remote against cp+sync of the file; pull of a fine-tune whose base is present (bytes moved
 * against changed bytes); push to a local S3-compatible server (s3rver) against one PutObject.
 *
 *   npx tsx bench/remote.ts [--size-mib 1024]
 */
import { execFileSync, execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3'
import { writeBaseAndFineTune, TENSOR } from './checkpoint.js'
import { startS3rver } from '../test/remote-servers.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const BIN = join(ROOT, 'bin', 'git-zoo.js')
const i = process.argv.indexOf('--size-mib')
const SIZE = (i === -1 ? 1024 : Number(process.argv[i + 1])) * 1024 * 1024

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26 })
}
const zoo = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): string => sh(process.execPath, [BIN, ...args], cwd, env)
function time<T>(label: string, fn: () => T): [number, T] {
  const t = process.hrtime.bigint()
  const r = fn()
  const s = Number(process.hrtime.bigint() - t) / 1e9
  console.log(`${label.padEnd(44)} ${s.toFixed(2)} s  ${(SIZE / s / 1e6).toFixed(0)} MB/s`)
  return [s, r]
}
function repo(dir: string): void {
  for (const [k, v] of [['user.name', 'bench'], ['user.email', 'bench@example.invalid'], ['commit.gpgsign', 'false']]) sh('git', ['config', k!, v!], dir)
}

const work = mkdtempSync(join(tmpdir(), 'zoo-bench-remote-'))
const s3 = await startS3rver('bench')
try {
  const a = join(work, 'a')
  sh('git', ['init', '-q', '--bare', '-b', 'main', join(work, 'origin.git')], work)
  sh('git', ['init', '-q', '-b', 'main', a], work); repo(a)
  zoo(a, ['init'])
  sh('git', ['remote', 'add', 'origin', join(work, 'origin.git')], a)
  zoo(a, ['remote', 'add', 'origin', join(work, 'objects')])
  sh('git', ['commit', '-qm', 'zoo'], a)
  const { base: ckpt, fineTune: ft, changed: nChanged } = writeBaseAndFineTune(work, SIZE)
  zoo(a, ['add', ckpt, '--name', 'bench/base'])
  console.log(`checkpoint: ${(SIZE / 2 ** 20).toFixed(0)} MiB; fine-tune changes ${(nChanged * TENSOR / 2 ** 20).toFixed(0)} MiB`)

  const [cp] = time('cp + sync', () => sh('sh', ['-c', `cp ${ckpt} ${work}/copy.bin && sync`], work))
  rmSync(join(work, 'copy.bin'))
  const [push] = time('git zoo push (path remote) + sync', () => sh('sh', ['-c', `${process.execPath} ${BIN} push && sync`], a))
  const [clone] = time('git zoo clone (path remote) + sync', () => sh('sh', ['-c', `${process.execPath} ${BIN} clone ${join(work, 'origin.git')} b && sync`], work))
  const b = join(work, 'b'); repo(b)
  zoo(a, ['add', ft, '--name', 'bench/ft', '--parent', 'bench/base'])
  zoo(a, ['push'])
  const pulled = JSON.parse(zoo(b, ['pull', '--json']))
  const changedBytes = nChanged * TENSOR

  // S3: the zoo's upload against one PutObject of the whole file, same server, same run
  const s3repo = join(work, 's3'); sh('git', ['init', '-q', '-b', 'main', s3repo], work); repo(s3repo)
  zoo(s3repo, ['init'])
  sh('git', ['init', '-q', '--bare', '-b', 'main', join(work, 's3origin.git')], work)
  sh('git', ['remote', 'add', 'origin', join(work, 's3origin.git')], s3repo)
  zoo(s3repo, ['remote', 'add', 'origin', `s3://${s3.bucket}/zoo`], s3.env)
  sh('git', ['commit', '-qm', 'zoo'], s3repo)
  zoo(s3repo, ['add', ckpt, '--name', 'bench/base'])
  // s3rver runs in this process: the push must not block its event loop (no execFileSync here)
  const t0 = process.hrtime.bigint()
  await promisify(execFile)(process.execPath, [BIN, 'push', '--json'], { cwd: s3repo, env: { ...process.env, ...s3.env }, maxBuffer: 1 << 26 })
  const s3push = Number(process.hrtime.bigint() - t0) / 1e9
  console.log(`${'git zoo push (s3rver on 127.0.0.1)'.padEnd(44)} ${s3push.toFixed(2)} s  ${(SIZE / s3push / 1e6).toFixed(0)} MB/s`)
  const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } })
  const body = readFileSync(ckpt)
  const t = process.hrtime.bigint()
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'whole.bin', Body: body }))
  const single = Number(process.hrtime.bigint() - t) / 1e9
  console.log(`${'one PutObject of the whole file (SDK)'.padEnd(44)} ${single.toFixed(2)} s  ${(SIZE / single / 1e6).toFixed(0)} MB/s`)
  console.log('\nratios (target in brackets)')
  console.log(`push to path / (cp+sync)          ${(push / cp).toFixed(2)}  [<= 1.3]`)
  console.log(`clone from path / (cp+sync)       ${(clone / cp).toFixed(2)}  [<= 1.3]`)
  console.log(`fine-tune pull moved / changed    ${(pulled.bytes / changedBytes).toFixed(3)}  [<= 1.05]`)
  console.log(`s3 push MB/s                      ${(SIZE / s3push / 1e6).toFixed(0)}  (${(s3push / single).toFixed(2)}x one PutObject)`)
} finally {
  await s3.close()
  rmSync(work, { recursive: true, force: true })
}
