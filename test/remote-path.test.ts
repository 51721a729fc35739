import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, rm, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { storeConformance } from './store-conformance.js'
import { damageInPack, tempDir } from './remote-servers.js'
import { PathStore } from '../src/remote/path.js'
import { openRemote, remoteKind, checkRemoteUrl } from '../src/remote/index.js'
import { cidOf, RAW } from '../src/cas/cid.js'
import { CorruptObjectError, UsageError } from '../src/errors.js'

async function overwrite(file: string, bytes: Uint8Array): Promise<void> {
  await unlink(file).catch(() => {}) // objects are written read-only (0444)
  await writeFile(file, bytes)
}

storeConformance('path remote', async () => {
  const dir = await tempDir()
  const store = new PathStore(dir)
  return {
    store,
    reopen: async () => new PathStore(dir),
    damage: (cid, bytes) => overwrite(store.pathOf(cid), bytes),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
})

storeConformance('path remote via file:// URL', async () => {
  const dir = await tempDir()
  const store = openRemote(pathToFileURL(dir).href, {})
  return {
    store,
    reopen: async () => openRemote(pathToFileURL(dir).href, {}),
    damage: (cid, bytes) => damageInPack(openRemote(pathToFileURL(dir).href, {}), cid, bytes),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
})

describe('path remote', () => {
  it('uses the shared layout: objects/<last 2 chars>/<cid>', async () => {
    const dir = await tempDir()
    try {
      const bytes = randomBytes(100)
      const cid = cidOf(RAW, bytes)
      await new PathStore(dir).put(cid, bytes)
      const text = cid.toString()
      assert.deepEqual(await readdir(join(dir, 'objects', text.slice(-2))), [text])
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('a poisoned object: get throws CorruptObjectError naming the remote and the CID', async () => {
    const dir = await tempDir()
    try {
      const store = new PathStore(dir)
      const bytes = randomBytes(1000)
      const cid = cidOf(RAW, bytes)
      await store.put(cid, bytes)
      const bad = Buffer.from(bytes); bad[10]! ^= 1
      await overwrite(store.pathOf(cid), bad)
      await assert.rejects(store.get(cid), (err: Error) => err instanceof CorruptObjectError
        && err.message.includes(cid.toString()) && err.message.includes(dir))
      // An oversized file under an object's name is refused without reading it all.
      await overwrite(store.pathOf(cid), Buffer.alloc(16 * 1024 * 1024 + 1))
      await assert.rejects(store.get(cid), CorruptObjectError)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })

  it('never overwrites an existing object, and ignores leftover temp files', async () => {
    const dir = await tempDir()
    try {
      const store = new PathStore(dir)
      const bytes = randomBytes(64)
      const cid = cidOf(RAW, bytes)
      await store.put(cid, bytes)
      const file = store.pathOf(cid)
      await overwrite(file, Buffer.from('someone else wrote this'))
      assert.equal(await store.put(cid, bytes), false)
      await assert.rejects(store.get(cid), CorruptObjectError) // still the other bytes: no overwrite
      await writeFile(join(dir, 'objects', cid.toString().slice(-2), `.tmp-crashed-${cid.toString()}`), 'partial')
      const listed = []
      for await (const c of store.list()) listed.push(c.toString())
      assert.deepEqual(listed, [cid.toString()])
      // Concurrent puts of one object: exactly one reports the write.
      const other = randomBytes(5000)
      const ocid = cidOf(RAW, other)
      const results = await Promise.all(Array.from({ length: 8 }, () => new PathStore(dir).put(ocid, other)))
      assert.equal(results.filter(Boolean).length, 1)
      assert.deepEqual(Buffer.from(await store.get(ocid)), other)
    } finally { await rm(dir, { recursive: true, force: true }) }
  })
})

describe('openRemote', () => {
  it('chooses by URL kind and rejects others with a UsageError listing the kinds', () => {
    assert.equal(remoteKind('/srv/zoo'), 'path')
    assert.equal(remoteKind('relative/zoo'), 'path')
    assert.equal(remoteKind('file:///srv/zoo'), 'path')
    assert.equal(remoteKind('https://example.org/zoo'), 'http')
    assert.equal(remoteKind('s3://bucket/prefix'), 's3')
    for (const bad of ['ftp://host/x', 'ssh://host/x', 'git@host:zoo', 'gs://bucket']) {
      assert.throws(() => openRemote(bad, {}), (err: Error) => err instanceof UsageError
        && /file:\/\//.test(err.message) && /http/.test(err.message) && /s3:\/\//.test(err.message))
    }
  })

  it('refuses URLs with CR, LF or other control characters', () => {
    for (const bad of ['http://127.0.0.1:1/zoo\r\nX-Injected: 1', 'https://host/zo\no', '/srv/zoo\u0000', 's3://bucket/a\tb', 'http://h/\u007f']) {
      assert.throws(() => openRemote(bad, {}), (err: Error) => err instanceof UsageError && (err as UsageError).code === 'E_BAD_URL')
    }
  })

  it('refuses credentials in a URL that would be committed, without printing them', () => {
    assert.throws(() => checkRemoteUrl('https://alice:s3cret@example.org/zoo'),
      (err: Error) => err instanceof UsageError && !err.message.includes('s3cret') && !err.message.includes('alice'))
    assert.throws(() => checkRemoteUrl('s3://key:secret@bucket/p'), (err: Error) => !err.message.includes('secret'))
    assert.equal(checkRemoteUrl('s3://bucket/team/zoo'), 's3://bucket/team/zoo')
  })

  it('resolves relative paths against the given folder', () => {
    const store = openRemote('shared/zoo', {}, { cwd: '/srv' })
    assert.equal(store.location, '/srv/shared/zoo')
  })
})
