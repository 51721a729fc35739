/**
 * Shared helpers for tests that drive real git: temporary repositories, the real CLI, SSH signing
 * keys made with ssh-keygen, and small weights files of each format. Built on test/cli.ts.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { run, zoo, git, BIN, ROOT, type Run } from './cli.js'

export { run, zoo, git, BIN, ROOT, type Run }

/** A temporary folder; remove it with the returned cleanup. */
export async function tempDir(prefix = 'zoo-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

export interface TestRepo { dir: string; cleanup: () => Promise<void> }

/**
 * `git init` in a new temp folder with an identity, signing off, and (unless `empty`) one commit.
 * The repository is `<tmp>/zoo-repo-XXXXXX/zoo-repo-XXXXXX`: tests put files beside it
 * (`join(dir, '..', ...)`: weights to add, `--out` folders) to keep them out of the work tree, and
 * cleanup removes the outer folder, so those go with it.
 */
export async function initRepo(opts: { empty?: boolean; name?: string; email?: string } = {}): Promise<TestRepo> {
  const { dir: outer, cleanup } = await tempDir('zoo-repo-')
  const dir = join(outer, basename(outer))
  await mkdir(dir)
  await git(dir, 'init', '-q', '-b', 'main')
  await git(dir, 'config', 'user.name', opts.name ?? 'Test Researcher')
  await git(dir, 'config', 'user.email', opts.email ?? 'researcher@example.invalid')
  await git(dir, 'config', 'commit.gpgsign', 'false')
  if (!opts.empty) await git(dir, 'commit', '-q', '--allow-empty', '-m', 'start')
  return { dir, cleanup }
}

/** Run git and return { code, stdout, stderr } without throwing. */
export function gitRun(cwd: string, args: string[], input?: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run('git', args, { cwd, env, ...(input !== undefined ? { input } : {}) })
}

export interface SshKey { priv: string; pub: string; publicKey: string }

/** An ed25519 key pair made by `ssh-keygen -t ed25519 -N ''` in `dir`. */
export async function sshKey(dir: string, name: string): Promise<SshKey> {
  const priv = join(dir, name)
  await new Promise<void>((res, rej) => execFile('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', priv], (err) => (err ? rej(err) : res())))
  const publicKey = (await readFile(`${priv}.pub`, 'utf8')).trim()
  return { priv, pub: `${priv}.pub`, publicKey }
}

/** Make git in `repo` sign every commit with `key` (gpg.format ssh, commit.gpgsign). */
export async function useSigningKey(repo: string, key: SshKey | null): Promise<void> {
  if (!key) {
    await git(repo, 'config', 'commit.gpgsign', 'false')
    await gitRun(repo, ['config', '--unset', 'user.signingkey'])
    return
  }
  await git(repo, 'config', 'gpg.format', 'ssh')
  await git(repo, 'config', 'user.signingkey', key.pub)
  await git(repo, 'config', 'commit.gpgsign', 'true')
}

/** A line of git's allowed-signers format. */
export function signerLine(principal: string, key: SshKey): string {
  return `${principal} namespaces="git" ${key.publicKey}\n`
}

export async function writeText(path: string, text: string): Promise<void> { await writeFile(path, text) }

// ---- small weights files, by format ---------------------------------------------------------

/** A valid safetensors file with one float32 tensor of `n` values. */
export function safetensorsBytes(n = 16, fill = 0): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [n], data_offsets: [0, n * 4] } }))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(header.length))
  const data = Buffer.alloc(n * 4)
  for (let i = 0; i < n; i++) data.writeFloatLE(fill + i / 7, i * 4)
  return Buffer.concat([len, header, data])
}

/** A numpy .npy (format 1.0) of `n` float32 values. */
export function npyBytes(n = 100): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n},), }`
  header = header.padEnd(118, ' ') + '\n'
  const len = Buffer.alloc(2)
  len.writeUInt16LE(header.length)
  return Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0]), len, Buffer.from(header), Buffer.alloc(n * 4)])
}

/** A protocol-4 pickle of a long list of ints (what `torch.save` of old wrote is a pickle too). */
export function pickleBytes(n = 2000): Buffer {
  // PROTO 4, EMPTY_LIST, MARK, BININT1 x n (n < 256 values cycle), APPENDS, STOP
  const body: number[] = [0x80, 0x04, 0x5d, 0x28]
  for (let i = 0; i < n; i++) body.push(0x4b, i % 256)
  body.push(0x65, 0x2e)
  return Buffer.from(body)
}
