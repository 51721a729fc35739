/** Atomic file writes: temp file beside the target, fsync, rename, fsync the folder. */
import { open, rename, rm, mkdir } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { randomBytes } from 'node:crypto'

export function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(8).toString('hex')}.tmp`)
}

export async function fsyncDir(dir: string): Promise<void> {
  const fd = await open(dir, 'r')
  try { await fd.sync() } catch { /* some filesystems cannot fsync a folder */ } finally { await fd.close() }
}

/** Write `data` to `target` atomically; the folder is created if needed. */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(target), { recursive: true })
  const tmp = tempName(target)
  const fd = await open(tmp, 'wx', 0o644)
  try {
    await fd.writeFile(data)
    await fd.sync()
  } catch (err) {
    await fd.close().catch(() => {})
    await rm(tmp, { force: true })
    throw err
  }
  await fd.close()
  try {
    await rename(tmp, target)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dirname(target))
}
