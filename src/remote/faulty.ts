/**
 * FaultyStore: wraps a Store and injects faults, for tests (RELIABILITY.md, "bytes corrupted while
 * being read"). Faults are rules matched against each call, counted per operation (1-based):
 *
 *   new FaultyStore(inner, [
 *     { op: 'get', nth: 3, fault: 'flip' },            // flip one bit of the 3rd get's bytes
 *     { op: 'get', when: (c) => c.cid === x, fault: 'truncate' },
 *     { op: 'put', nth: 2, fault: 'fail' },            // the 2nd put throws (nothing stored)
 *   ])
 *
 * Read faults happen *after* the inner store verified the bytes, so by default the wrapper returns
 * damaged bytes: the test is that callers (transfer, get, verify) catch them with their own check
 * (`to.put` verifies). With `{ reverify: true }` the wrapper verifies its damaged bytes itself, i.e. it
 * behaves like a correct store reading a damaged medium (throws CorruptObjectError).
 */
import type { CID } from '../cas/cid.js'
import { verifyBytes } from '../cas/cid.js'
import type { Store } from '../cas/store.js'
import { ZooError } from '../errors.js'

export type FaultOp = 'get' | 'put' | 'has' | 'list' | 'flush'
export type Fault =
  | 'flip'      // get: one bit flipped (position chosen by the seeded generator)
  | 'truncate'  // get: the last byte dropped
  | 'empty'     // get: zero bytes
  | 'extra'     // get: one byte appended
  | 'fail'      // any op: throws an operational ZooError (E_INJECTED) before calling the inner store
  | 'fail-after'// put/get/has: calls the inner store, then throws (the work happened, the caller hears it failed)
  | 'hide'      // has: answers false without asking the inner store

export interface FaultCall { op: FaultOp; n: number; cid?: string }

export interface FaultRule {
  op: FaultOp
  /** Match the n-th call of this op (1-based). */
  nth?: number
  /** Match calls this predicate accepts. Without nth and when, every call of `op` matches. */
  when?: (call: FaultCall) => boolean
  fault: Fault
  /** How many times the rule fires at most (default: unlimited). */
  times?: number
}

export class FaultyStore implements Store {
  readonly location: string
  /** Calls seen per op, so tests can count requests. */
  readonly calls: Record<FaultOp, number> = { get: 0, put: 0, has: 0, list: 0, flush: 0 }
  /** Faults actually injected, in order. */
  readonly injected: Array<FaultCall & { fault: Fault }> = []
  private readonly fired = new Map<FaultRule, number>()
  private seed: number

  constructor(readonly inner: Store, readonly rules: FaultRule[] = [], readonly opts: { reverify?: boolean; seed?: number } = {}) {
    this.location = inner.location
    this.seed = opts.seed ?? 0x9e3779b9
  }

  private match(op: FaultOp, cid?: CID): Fault | undefined {
    const call: FaultCall = { op, n: ++this.calls[op], cid: cid?.toString() }
    for (const rule of this.rules) {
      if (rule.op !== op) continue
      if (rule.nth !== undefined && rule.nth !== call.n) continue
      if (rule.when && !rule.when(call)) continue
      const count = this.fired.get(rule) ?? 0
      if (rule.times !== undefined && count >= rule.times) continue
      this.fired.set(rule, count + 1)
      this.injected.push({ ...call, fault: rule.fault })
      return rule.fault
    }
    return undefined
  }

  private fail(op: FaultOp, cid?: CID): never {
    throw new ZooError(`injected fault: ${op}${cid ? ` of ${cid}` : ''} on ${this.location} failed`, 'E_INJECTED',
      { remote: this.location, op, ...(cid ? { cid: String(cid) } : {}) })
  }

  private random(): number {
    // xorshift32: deterministic, so a failing test replays.
    let x = this.seed
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    this.seed = x
    return x
  }

  async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    const fault = this.match('put', cid)
    if (fault === 'fail') this.fail('put', cid)
    const result = await this.inner.put(cid, bytes)
    if (fault === 'fail-after') this.fail('put', cid)
    return result
  }

  async get(cid: CID): Promise<Uint8Array> {
    const fault = this.match('get', cid)
    if (fault === 'fail') this.fail('get', cid)
    let bytes = await this.inner.get(cid)
    switch (fault) {
      case 'flip':
        if (bytes.length === 0) { bytes = Uint8Array.of(0); break }
        bytes = Uint8Array.from(bytes)
        bytes[this.random() % bytes.length]! ^= 1 << (this.random() % 8)
        break
      case 'truncate': bytes = bytes.subarray(0, Math.max(0, bytes.length - 1)); break
      case 'empty': bytes = new Uint8Array(0); break
      case 'extra': { const b = new Uint8Array(bytes.length + 1); b.set(bytes); bytes = b; break }
      case 'fail-after': this.fail('get', cid)
    }
    if (fault && this.opts.reverify) verifyBytes(cid, bytes, this.location)
    return bytes
  }

  async has(cid: CID): Promise<boolean> {
    const fault = this.match('has', cid)
    if (fault === 'fail') this.fail('has', cid)
    if (fault === 'hide') return false
    const result = await this.inner.has(cid)
    if (fault === 'fail-after') this.fail('has', cid)
    return result
  }

  async *list(): AsyncIterable<CID> {
    if (this.match('list') === 'fail') this.fail('list')
    yield * this.inner.list()
  }

  async flush(): Promise<void> {
    if (this.match('flush') === 'fail') this.fail('flush')
    await this.inner.flush()
  }

  async close(): Promise<void> { await this.inner.close() }
}
