/**
 * Faults injected into the local store, for reliability tests (spec/reliability.md, "Injected store
 * faults"; ../shared/RELIABILITY.md, "bytes corrupted while being read"). The CLI parses
 * `GIT_ZOO_FAULTS` (src/cli/main.ts) and Repo.openStore applies the rules to every store handle it
 * opens, so get, verify, push, pull and fetch run on a store that misbehaves as a damaged disk would:
 *
 *   read:flip[@n]      one bit of the bytes read is flipped (the n-th read only, or every read)
 *   read:truncate[@n]  the last byte of the bytes read is cut off
 *   read:empty[@n]     zero bytes are read
 *   read:slow=<ms>[@n] the read answers after <ms> milliseconds
 *   read:fail[@n]      the read throws (E_INJECTED)
 *   write:fail[@n]     the n-th object write throws before anything is written (E_INJECTED)
 *   write:enospc[@n]   the n-th object write fails as a full disk does (E_DISK_FULL)
 *   flush:fail[@n]     making writes durable fails (E_INJECTED)
 *
 * A read is one object read: `readUnverified`, or one object of a run that get and verify read
 * straight from a pack (src/cas/pack-read.ts), where truncate and empty show as a short read does
 * (the missing bytes read as zeros).
 * Read faults damage the bytes *below* the store's own check: `get` re-hashes them and refuses
 * (E_CORRUPT_OBJECT), and callers that hash elsewhere (verify, get's worker threads) must catch them
 * themselves; the figure is how many damaged reads came out as wrong bytes (none may). Positions are
 * drawn from a fixed seed, so a failing case replays.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { CID } from 'multiformats/cid'
import type { LocalStore } from './local.js'
import { UsageError, ZooError, diskFull } from '../errors.js'

export type StoreFaultOp = 'read' | 'write' | 'flush'
export type StoreFaultKind = 'flip' | 'truncate' | 'empty' | 'slow' | 'fail' | 'enospc'

export interface StoreFault { op: StoreFaultOp; fault: StoreFaultKind; nth?: number; ms?: number }

const ALLOWED: Record<StoreFaultOp, readonly StoreFaultKind[]> = {
  read: ['flip', 'truncate', 'empty', 'slow', 'fail'],
  write: ['fail', 'enospc'],
  flush: ['fail'],
}

/** Parse `GIT_ZOO_FAULTS` (see the file comment); '' or undefined is no fault. */
export function parseStoreFaults(text: string | undefined): StoreFault[] {
  const out: StoreFault[] = []
  for (const raw of (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(read|write|flush):([a-z]+)(?:=(\d+))?(?:@(\d+))?$/.exec(raw)
    const op = m?.[1] as StoreFaultOp | undefined
    const fault = m?.[2] as StoreFaultKind | undefined
    if (!m || !op || !fault || !ALLOWED[op].includes(fault) || (fault === 'slow') !== (m[3] !== undefined) || m[4] === '0') {
      throw new UsageError(`GIT_ZOO_FAULTS: ${JSON.stringify(raw)} is not a fault; use read:flip|truncate|empty|fail|slow=<ms>, write:fail|enospc or flush:fail, each optionally @<n> (the n-th call, from 1)`, 'E_USAGE')
    }
    out.push({ op, fault, ...(m[4] ? { nth: Number(m[4]) } : {}), ...(m[3] ? { ms: Number(m[3]) } : {}) })
  }
  return out
}

/** Apply `faults` to this store handle (its methods are replaced in place); returns the same handle. */
export function injectFaults(store: LocalStore, faults: StoreFault[]): LocalStore {
  if (faults.length === 0) return store
  const calls: Record<StoreFaultOp, number> = { read: 0, write: 0, flush: 0 }
  let seed = 0x2545f491
  const random = (): number => { let x = seed; x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; seed = x; return x }
  const due = (op: StoreFaultOp): StoreFault[] => {
    const n = ++calls[op]
    return faults.filter((f) => f.op === op && (f.nth === undefined || f.nth === n))
  }
  const injected = (op: string, cid?: CID): ZooError =>
    new ZooError(`injected fault (GIT_ZOO_FAULTS): ${op}${cid ? ` of ${cid}` : ''} in ${store.location} failed`, 'E_INJECTED', { store: store.location, op, ...(cid ? { cid: String(cid) } : {}) })

  const readUnverified = store.readUnverified.bind(store)
  store.readUnverified = async (cid: CID): Promise<Uint8Array> => {
    const now = due('read')
    for (const f of now) if (f.fault === 'slow') await sleep(f.ms ?? 0)
    if (now.some((f) => f.fault === 'fail')) throw injected('read', cid)
    let bytes = await readUnverified(cid)
    for (const f of now) {
      if (f.fault === 'flip') {
        bytes = Uint8Array.from(bytes.length ? bytes : [0])
        bytes[random() % bytes.length]! ^= 1 << (random() % 8)
      } else if (f.fault === 'truncate') {
        bytes = bytes.subarray(0, Math.max(0, bytes.length - 1))
      } else if (f.fault === 'empty') {
        bytes = new Uint8Array(0)
      }
    }
    return bytes
  }
  // runs of chunks read straight from a pack (get and verify: src/cas/pack-read.ts) count one read
  // per object in the run, in order, and damage only that object's bytes in the caller's buffer
  const readPackObjects = store.readPackObjects.bind(store)
  store.readPackObjects = async (pack, objects, target) => {
    await readPackObjects(pack, objects, target)
    for (const o of objects) {
      const now = due('read')
      for (const f of now) if (f.fault === 'slow') await sleep(f.ms ?? 0)
      if (now.some((f) => f.fault === 'fail')) throw injected('read', o.cid)
      if (o.len === 0) continue
      const bytes = target.subarray(o.at, o.at + o.len)
      for (const f of now) {
        if (f.fault === 'flip') bytes[random() % bytes.length]! ^= 1 << (random() % 8)
        // a short read: what is missing reads as zeros (a zero that was lost reads wrong instead)
        else if (f.fault === 'truncate') bytes[bytes.length - 1] = bytes[bytes.length - 1] === 0 ? 0xff : 0
        else if (f.fault === 'empty') bytes.fill(0)
      }
    }
  }
  const putVerified = store.putVerified.bind(store)
  store.putVerified = (cid, bytes, opts) => {
    const now = due('write')
    if (now.some((f) => f.fault === 'fail')) return Promise.reject(injected('write', cid))
    if (now.some((f) => f.fault === 'enospc')) {
      const err = Object.assign(new Error('ENOSPC: no space left on device, write (injected)'), { code: 'ENOSPC', syscall: 'write' })
      return Promise.reject(diskFull(err, store.location))
    }
    return putVerified(cid, bytes, opts)
  }
  const flush = store.flush.bind(store)
  store.flush = async (): Promise<void> => {
    if (due('flush').some((f) => f.fault === 'fail')) throw injected('flush')
    await flush()
  }
  return store
}
