/**
 * What this process knows of the commits it made itself (src/zoo/commit.ts records each one as it
 * reads it back): whether it carries a signature. `git zoo add` says whether its promotion is
 * signed (its warning, its --json) without asking git for a commit it has just read. A leaf, so the
 * commands that only read commits (log, verify --signatures) load nothing more for it.
 */
const signed = new Map<string, boolean>()

/** Record that `commit`, made by this process, is signed or not. */
export function recordCommitted(commit: string, isSigned: boolean): void { signed.set(commit, isSigned) }

/** Whether `commit`, made by this process, is signed; undefined for a commit it did not make. */
export function signedAsCommitted(commit: string): boolean | undefined { return signed.get(commit) }
