// Has the database changed since we last looked? The reader's memo
// (reader.ts) is trusted only while the answer is "no".
//
// Correctness rule: a commit by ANY SQLite client (another connection, the
// sqlite3 CLI or a Go daemon in another process, mailcloakctl) makes the
// next changed() return true. In WAL mode every committed write
// transaction, from any process, rewrites the wal-index header at the start
// of the "-shm" file (walformat.html: its iChange counter is bumped on each
// commit); while any connection is open SQLite keeps that file and refuses
// to leave WAL mode. Any doubt (not WAL, no -shm file, short read, header
// not initialised, file replaced) counts as "changed", which only costs a
// query. Enforced by test/store-memo.test.ts.
//
// Why the -shm layout and not SQLite's documented PRAGMA data_version
// (measured for issue 12, bench/run.js --hot --reps=3, runs interleaved
// A B B A on a 2-core machine at load 12-16, medians): data_version is a
// statement, i.e. a read lock's fcntl calls, where this is one pread:
// 6-10 µs against 2-4 µs per look (micro-benchmark, same machine). On the
// socketmap alias hot path (C=50, few requests per batch) that cost more
// than 10 %: 10 runs each of scenario d, 44.8k vs 13.2k req/s and 11.0 vs
// 15.0 CPU µs/req; over the 20 runs of scenarios a, c-user, d: d 35.2k vs
// 28.0k req/s (-20 %), 11.2 vs 12.2 µs/req; the policy rows were within
// the noise either way. A PostgreSQL-style backend has no such file and
// keeps its own check behind StoreReader.within (src/store/types.ts).

import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from "node:fs";

/** The first copy of the wal-index header (walformat.html, WalIndexHdr). */
const HEADER_BYTES = 48;
/** WalIndexHdr.isInit. */
const IS_INIT = 12;

export class WalIndex {
  readonly #dbPath: string;
  #path: string | null = null;
  /** The database is in WAL mode (else there is no WAL index to trust: always "changed"). */
  wal: boolean;
  #fd: number | null = null;
  #ino = -1;
  readonly #seen = Buffer.alloc(HEADER_BYTES);
  readonly #now = Buffer.alloc(HEADER_BYTES);
  #valid = false;

  constructor(dbPath: string, wal = true) {
    this.#dbPath = dbPath;
    this.wal = wal;
  }

  /** SQLite keeps the -shm next to the real file when the path is a symlink. */
  #shmPath(): string {
    return `${realpathSync(this.#dbPath)}-shm`;
  }

  /** True unless the database is certainly unchanged since the previous call. */
  changed(): boolean {
    if (!this.wal) return true;
    if (this.#fd === null && !this.#open()) return true;
    let n: number;
    try {
      n = readSync(this.#fd!, this.#now, 0, HEADER_BYTES, 0);
    } catch {
      this.close();
      return true;
    }
    if (n !== HEADER_BYTES || this.#now[IS_INIT] !== 1) {
      this.#valid = false;
      return true;
    }
    if (this.#valid && this.#now.equals(this.#seen)) return false;
    this.#now.copy(this.#seen);
    this.#valid = true;
    return true;
  }

  /**
   * Called by the store's periodic file check: a -shm file that was removed
   * or replaced is reopened (SQLite keeps it while a connection is open, so
   * this is a safety net, not a path taken in normal operation).
   */
  revalidate(): void {
    if (this.#fd === null) return;
    try {
      const path = this.#shmPath(); // the symlink may have been retargeted
      if (path === this.#path && fstatSync(this.#fd).nlink > 0 && statSync(path).ino === this.#ino) return;
    } catch {
      /* gone: reopen below */
    }
    this.close();
  }

  close(): void {
    if (this.#fd !== null) {
      try {
        closeSync(this.#fd);
      } catch {
        /* already closed */
      }
    }
    this.#fd = null;
    this.#valid = false;
  }

  #open(): boolean {
    try {
      this.#path = this.#shmPath();
      this.#fd = openSync(this.#path, "r");
      this.#ino = fstatSync(this.#fd).ino;
      this.#valid = false;
      return true;
    } catch {
      this.#fd = null;
      return false;
    }
  }
}
