// Has the SQLite file changed since we last looked? The reader's memo
// (reader.ts) is trusted only while the answer is "no".
//
// Correctness rule: a commit by ANY SQLite client (another connection, the
// sqlite3 CLI or a Go daemon in another process, mailcloakctl) makes the
// next changed() return true. PRAGMA data_version is SQLite's documented
// way to ask (https://sqlite.org/pragma.html#pragma_data_version): its value
// differs between two calls on one connection whenever another connection
// committed in between, in every journal mode. The reader's own connection
// never writes the main database (quota counters live in their own file),
// so no change goes unseen. Enforced by test/store-memo.test.ts.
//
// Cost: one statement, i.e. the read lock's system calls, once per batch of
// requests (reader.within). Measured against reading the -shm wal-index
// header directly (a pread, undocumented layout): see the commit that chose
// it and bench/README.md.

import type { DB, Statement } from "./connection.js";

export class DataVersion {
  readonly #st: Statement<[], number>;
  #seen: number | null = null;

  constructor(db: DB) {
    this.#st = db.prepare("PRAGMA data_version").pluck() as Statement<[], number>;
  }

  /** True unless the database is certainly unchanged since the previous call; any failure counts as changed. */
  changed(): boolean {
    let v: number;
    try {
      v = this.#st.get() as number;
    } catch {
      this.#seen = null;
      return true;
    }
    if (v === this.#seen) return false;
    this.#seen = v;
    return true;
  }
}
