/**
 * S3Store: a remote in S3 or an S3-compatible server (MinIO, Ceph, R2), `s3://bucket/prefix`: the
 * files the pack layout is built on (./packed.ts: ranged GetObject, conditional PutObject, listing
 * with a delimiter, DeleteObjects) under the prefix, and the loose objects of a layout-1 remote
 * (./layout.ts): `<prefix>/objects/<xx>/<cid>`.
 *
 * Configuration (spec/remotes.md, "S3"): credentials from the standard AWS chain (environment,
 * shared profiles, SSO, container and instance roles); region from AWS_REGION, AWS_DEFAULT_REGION or
 * the profile, else us-east-1; a custom endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, spoken
 * to path-style.
 *
 * Writes never replace an object: HeadObject first, then PutObject with `If-None-Match: *`, where a
 * 412 means another writer stored it first. Servers that answer 501 to conditional writes get a plain
 * PutObject after the HeadObject check (the bytes are verified and identical for a given name).
 *
 * The AWS SDK (~100 ms to load) is imported on the first request, so commands and hooks that never
 * talk to an s3:// remote do not load it (test/remote-s3.test.ts checks this).
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3'
import type { CID } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { MAX_OBJECT_SIZE } from '../cas/store.js'
import { CheckError, NotFoundError, UsageError, ZooError, errorMessage } from '../errors.js'
import { cidFromName, isFanoutDir, objectKey, OBJECTS_DIR, rejectControlChars, redactUrl } from './layout.js'
import { verifyObject, type Digester } from './verify.js'
import { LOCKS_DIR, type AgedEntry, type RetentionStore } from './aged.js'

type Sdk = typeof import('@aws-sdk/client-s3')

let sdkLoad: Promise<Sdk> | undefined
function loadSdk(): Promise<Sdk> {
  sdkLoad ??= import('@aws-sdk/client-s3')
  return sdkLoad
}

export interface S3Target { bucket: string; prefix: string }

/** Split `s3://bucket/prefix` into its bucket and key prefix ('' or ending with `/`). */
export function parseS3Url(url: string): S3Target {
  rejectControlChars(url)
  const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?$/i.exec(url)
  if (!m || !m[1]) {
    throw new UsageError(`not an s3 URL: ${redactUrl(url)} (expected s3://bucket/prefix)`, 'E_BAD_URL', { url: redactUrl(url) })
  }
  const bucket = m[1]
  if (bucket.includes('@') || bucket.includes(':') || !/^[a-z0-9][a-z0-9.\-_]{1,254}$/i.test(bucket)) {
    throw new UsageError(`not a valid bucket name in ${redactUrl(url)}; credentials and endpoints are configured outside the URL`,
      'E_BAD_URL', { url: redactUrl(url) })
  }
  const parts = (m[2] ?? '').split('/').filter((s) => s !== '')
  if (parts.some((s) => s === '.' || s === '..')) {
    throw new UsageError(`the s3 prefix in ${url} must not contain . or .. segments`, 'E_BAD_URL', { url })
  }
  return { bucket, prefix: parts.length ? parts.join('/') + '/' : '' }
}

export interface S3StoreOptions {
  env?: NodeJS.ProcessEnv
  /** Extra client configuration (tests). */
  client?: Partial<S3ClientConfig>
  /** Hash off the main thread (./verify.ts). */
  digest?: Digester
}

export class S3Store implements Store, RetentionStore {
  readonly location: string
  readonly bucket: string
  readonly prefix: string
  private readonly config: S3ClientConfig
  private client: Promise<{ client: S3Client; sdk: Sdk }> | undefined
  private readonly digest: Digester | undefined

  constructor(url: string, opts: S3StoreOptions = {}) {
    const env = opts.env ?? {}
    const { bucket, prefix } = parseS3Url(url)
    this.bucket = bucket
    this.prefix = prefix
    this.location = `s3://${bucket}/${prefix}`
    const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined
    if (endpoint) rejectControlChars(endpoint)
    this.config = {
      region: regionProvider(env),
      // Verification is by CID; SDK checksums add nothing and some S3-compatible servers reject them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000, httpsAgent: { maxSockets: 32 }, httpAgent: { maxSockets: 32 } },
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined } }
        : {}),
      ...opts.client,
    }
    this.digest = opts.digest
  }

  /** The client and the SDK's commands, loaded and made on first use. */
  private ready(): Promise<{ client: S3Client; sdk: Sdk }> {
    this.client ??= loadSdk().then((sdk) => ({ client: new sdk.S3Client(this.config), sdk }))
    return this.client
  }

  private key(cid: CID): string { return this.prefix + objectKey(cid) }

  async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (bytes.length > MAX_OBJECT_SIZE) {
      throw new ZooError(`object ${cid} is ${bytes.length} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`, 'E_TOO_LARGE', { cid: String(cid) })
    }
    await verifyObject(cid, bytes, 'put', this.digest)
    return this.putVerified(cid, bytes)
  }

  /** put for bytes the caller has just verified against `cid` (a verifying get). */
  async putVerified(cid: CID, bytes: Uint8Array): Promise<boolean> {
    if (await this.has(cid)) return false
    const { client, sdk } = await this.ready()
    const input = { Bucket: this.bucket, Key: this.key(cid), Body: bytes, ContentLength: bytes.length, ContentType: 'application/octet-stream' }
    try {
      await client.send(new sdk.PutObjectCommand({ ...input, IfNoneMatch: '*' }))
      return true
    } catch (err) {
      const status = statusOf(err)
      if (status === 412) return false // another writer stored it first
      if (status === 409 && await this.has(cid)) return false // a concurrent conditional write won
      if (status !== 501) throw this.wrap(err, 'store', cid)
    }
    try {
      await client.send(new sdk.PutObjectCommand(input))
      return true
    } catch (err) {
      throw this.wrap(err, 'store', cid)
    }
  }

  async get(cid: CID): Promise<Uint8Array> {
    const { client, sdk } = await this.ready()
    let out
    try {
      out = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key(cid) }))
    } catch (err) {
      if (statusOf(err) === 404) {
        throw new NotFoundError(`object ${cid} is not in ${this.location}`, { cid: String(cid), remote: this.location })
      }
      throw this.wrap(err, 'read', cid)
    }
    const body = out.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined
    const declared = out.ContentLength
    if (declared !== undefined && declared > MAX_OBJECT_SIZE) {
      body?.destroy?.()
      throw tooLarge(this.location, cid, `declares ${declared} bytes, over the ${MAX_OBJECT_SIZE}-byte limit`)
    }
    const limit = declared ?? MAX_OBJECT_SIZE
    const chunks: Uint8Array[] = []
    let received = 0
    try {
      if (body) {
        for await (const chunk of body) {
          if (received + chunk.length > limit) {
            body.destroy?.()
            throw tooLarge(this.location, cid, declared === undefined ? `sent more than ${MAX_OBJECT_SIZE} bytes` : `sent more than its declared ${declared} bytes`)
          }
          chunks.push(chunk)
          received += chunk.length
        }
      }
    } catch (err) {
      throw err instanceof ZooError ? err : this.wrap(err, 'read', cid)
    }
    const bytes = Buffer.concat(chunks, received)
    if (declared !== undefined && received !== declared) {
      throw new ZooError(`reading object ${cid} from ${this.location} ended after ${received} of ${declared} bytes`, 'E_REMOTE_IO',
        { remote: this.location, cid: String(cid) })
    }
    await verifyObject(cid, bytes, this.location, this.digest)
    return bytes
  }

  async has(cid: CID): Promise<boolean> {
    const { client, sdk } = await this.ready()
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key(cid) }))
      return true
    } catch (err) {
      if (statusOf(err) === 404) return false
      throw this.wrap(err, 'check', cid)
    }
  }

  async *list(): AsyncIterable<CID> {
    for await (const e of this.listAged()) if (e.cid) yield e.cid
  }

  async *listAged(): AsyncIterable<AgedEntry> {
    const { client, sdk } = await this.ready()
    const base = `${this.prefix}${OBJECTS_DIR}/`
    let token: string | undefined
    do {
      let page
      try {
        page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: base, ContinuationToken: token }))
      } catch (err) {
        throw this.wrap(err, 'list')
      }
      for (const obj of page.Contents ?? []) {
        const rest = (obj.Key ?? '').slice(base.length).split('/')
        if (rest.length !== 2 || !isFanoutDir(rest[0]!)) continue
        const cid = cidFromName(rest[0]!, rest[1]!)
        if (!cid) continue
        yield { cid, key: rest.join('/'), modified: obj.LastModified?.getTime() ?? Date.now(), size: obj.Size ?? 0 }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
  }

  /** DeleteObjects, up to 1000 keys a request (the S3 limit). */
  async deleteEntries(keys: string[]): Promise<void> {
    if (keys.length === 0) return
    const { client, sdk } = await this.ready()
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000)
      let out
      try {
        out = await client.send(new sdk.DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Quiet: true, Objects: batch.map((k) => ({ Key: `${this.prefix}${OBJECTS_DIR}/${k}` })) },
        }))
      } catch (err) {
        throw this.wrap(err, 'delete')
      }
      const failed = out.Errors?.[0]
      if (failed) {
        throw new ZooError(`could not delete ${failed.Key} from ${this.location}: ${failed.Code ?? 'error'} ${failed.Message ?? ''}`.trim(), 'E_REMOTE_IO',
          { remote: this.location, key: failed.Key, failed: out.Errors?.length })
      }
    }
  }

  // ---- files, for the pack layout (./packed.ts) ----

  /** Bytes [offset, offset + length) of a file (ranged GetObject); NotFoundError when absent. */
  async readRange(key: string, offset: number, length: number, _partial?: boolean): Promise<Uint8Array> {
    const { client, sdk } = await this.ready()
    let out
    try {
      out = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Range: `bytes=${offset}-${offset + length - 1}` }))
    } catch (err) {
      if (statusOf(err) === 404) throw new NotFoundError(`${key} is not in ${this.location}`, { key, remote: this.location })
      throw this.wrap(err, 'read', undefined, key)
    }
    return this.body(out, length, key)
  }

  /** Read a response body of at most `limit` bytes, refusing more. */
  private async body(out: { Body?: unknown; ContentLength?: number }, limit: number, key: string): Promise<Buffer> {
    const body = out.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined
    if (out.ContentLength !== undefined && out.ContentLength > limit) {
      body?.destroy?.()
      throw new CheckError(`refused ${key} from ${this.location}: the server declares ${out.ContentLength} bytes, over the ${limit} asked for`, 'E_REMOTE_TOO_LARGE', { remote: this.location })
    }
    const chunks: Uint8Array[] = []
    let received = 0
    try {
      for await (const chunk of body ?? []) {
        received += chunk.length
        if (received > limit) {
          body?.destroy?.()
          throw new CheckError(`refused ${key} from ${this.location}: the server sent more than ${limit} bytes`, 'E_REMOTE_TOO_LARGE', { remote: this.location })
        }
        chunks.push(chunk)
      }
    } catch (err) { throw err instanceof ZooError ? err : this.wrap(err, 'read', undefined, key) }
    return Buffer.concat(chunks, received)
  }

  /** A whole small file, or undefined when absent. */
  async readFile(key: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const { client, sdk } = await this.ready()
    let out
    try {
      out = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }))
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw this.wrap(err, 'read', undefined, key)
    }
    return this.body(out, maxBytes, key)
  }

  /**
   * Create a file that must not exist yet: PutObject with `If-None-Match: *` (412: it exists, false).
   * A PutObject is atomic: nothing is visible until the whole body is stored. `midway` runs first.
   */
  async createFile(key: string, parts: Uint8Array[], midway?: () => void | Promise<void>): Promise<boolean> {
    const { client, sdk } = await this.ready()
    await midway?.()
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts)
    const input = { Bucket: this.bucket, Key: this.prefix + key, Body: body, ContentLength: body.length, ContentType: 'application/octet-stream' }
    try {
      await client.send(new sdk.PutObjectCommand({ ...input, IfNoneMatch: '*' }))
      return true
    } catch (err) {
      const status = statusOf(err)
      if (status === 412 || status === 409) return false // another writer stored it first (same name: same bytes)
      if (status !== 501) throw this.wrap(err, 'store', undefined, key)
    }
    try {
      await client.send(new sdk.PutObjectCommand(input))
      return true
    } catch (err) { throw this.wrap(err, 'store', undefined, key) }
  }

  /** Write a file, replacing any earlier one (a PutObject replaces atomically). */
  async replaceFile(key: string, bytes: Uint8Array): Promise<void> {
    const { client, sdk } = await this.ready()
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: bytes, ContentLength: bytes.length }))
    } catch (err) { throw this.wrap(err, 'store', undefined, key) }
  }

  /** The files directly under `dir/` (ListObjectsV2 with a delimiter). */
  async listFiles(dir: string): Promise<Array<{ name: string; size: number; modified: number }>> {
    const { client, sdk } = await this.ready()
    const base = `${this.prefix}${dir}/`
    const out: Array<{ name: string; size: number; modified: number }> = []
    let token: string | undefined
    do {
      let page
      try {
        page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: base, Delimiter: '/', ContinuationToken: token }))
      } catch (err) { throw this.wrap(err, 'list', undefined, `${dir}/`) }
      for (const obj of page.Contents ?? []) {
        const name = (obj.Key ?? '').slice(base.length)
        if (name && !name.includes('/')) out.push({ name, size: obj.Size ?? 0, modified: obj.LastModified?.getTime() ?? Date.now() })
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return out
  }

  async removeFiles(keys: string[]): Promise<void> {
    const { client, sdk } = await this.ready()
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000)
      let out
      try {
        out = await client.send(new sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Quiet: true, Objects: batch.map((k) => ({ Key: this.prefix + k })) } }))
      } catch (err) { throw this.wrap(err, 'delete') }
      const failed = out.Errors?.[0]
      if (failed) throw new ZooError(`could not delete ${failed.Key} from ${this.location}: ${failed.Code ?? 'error'}`, 'E_REMOTE_IO', { remote: this.location, key: failed.Key })
    }
  }

  async putLock(name: string, body: string): Promise<void> {
    const { client, sdk } = await this.ready()
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: `${this.prefix}${LOCKS_DIR}/${name}`, Body: body, ContentType: 'application/json' }))
    } catch (err) { throw this.wrap(err, 'write', undefined, `the lock ${LOCKS_DIR}/${name}`) }
  }

  async listLocks(prefix: string): Promise<Array<{ name: string; body: string }>> {
    const { client, sdk } = await this.ready()
    const base = `${this.prefix}${LOCKS_DIR}/`
    const out: Array<{ name: string; body: string }> = []
    let token: string | undefined
    do {
      let page
      try {
        page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: base + prefix, ContinuationToken: token }))
      } catch (err) { throw this.wrap(err, 'list', undefined, 'the locks') }
      for (const obj of page.Contents ?? []) {
        const name = (obj.Key ?? '').slice(base.length)
        let body = ''
        try {
          const got = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: obj.Key! }))
          body = (await got.Body?.transformToString()) ?? ''
        } catch { /* removed meanwhile, or unreadable: '' */ }
        out.push({ name, body })
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  async removeLock(name: string): Promise<void> {
    const { client, sdk } = await this.ready()
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: `${this.prefix}${LOCKS_DIR}/${name}` }))
    } catch (err) { throw this.wrap(err, 'remove', undefined, `the lock ${LOCKS_DIR}/${name}`) }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    const made = this.client
    this.client = undefined
    if (made) (await made).client.destroy()
  }

  private wrap(err: unknown, verb: string, cid?: CID, thing?: string): ZooError {
    const status = statusOf(err)
    const what = cid ? `object ${cid}` : thing ?? 'objects'
    const name = err instanceof Error ? err.name : 'error'
    const hint = status === 403 || name === 'CredentialsProviderError'
      ? '; check the AWS credentials (environment, profile) and the bucket policy'
      : status === 301 || name === 'PermanentRedirect' ? '; the bucket is in another region: set AWS_REGION' : ''
    return new ZooError(`could not ${verb} ${what} in ${this.location}: ${name}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}${hint}`,
      'E_REMOTE_IO', { remote: this.location, status, ...(cid ? { cid: String(cid) } : {}) }, { cause: err })
  }
}

/** The HTTP status of an SDK error (S3ServiceException and the SDK's other errors carry $metadata). */
function statusOf(err: unknown): number | undefined {
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
  return meta?.httpStatusCode
}

function tooLarge(remote: string, cid: CID, detail: string): CheckError {
  return new CheckError(`refused object ${cid} from ${remote}: the server ${detail}`, 'E_REMOTE_TOO_LARGE', { remote, cid: String(cid) })
}

/** AWS_REGION, AWS_DEFAULT_REGION, then the SDK's own chain (profile), then us-east-1. */
function regionProvider(env: NodeJS.ProcessEnv): string | (() => Promise<string>) {
  const fromEnv = env.AWS_REGION || env.AWS_DEFAULT_REGION
  if (fromEnv) return fromEnv
  let cached: Promise<string> | undefined
  return () => {
    cached ??= (async () => {
      // A throwaway client exposes the SDK's default region chain (env, shared config profile).
      const { S3Client } = await loadSdk()
      const probe = new S3Client({ credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' } })
      try {
        return await probe.config.region()
      } catch {
        return 'us-east-1'
      } finally {
        probe.destroy()
      }
    })()
    return cached
  }
}
