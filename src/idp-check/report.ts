// The output of `mailcloak test-idp`: one line per check, written as soon as
// the check is decided (so a slow server shows how far the test got), and
// the exit status (0 only when no check failed).

export type Outcome = "ok" | "FAIL" | "skip";

export interface Line {
  readonly outcome: Outcome;
  readonly text: string;
}

/** How far a provider's checks got: can users be looked up, and one the checks saw (an email). */
export interface Reached {
  readonly usable: boolean;
  readonly sample: string | null;
}

export const UNUSABLE: Reached = { usable: false, sample: null };

export class Report {
  readonly lines: Line[] = [];
  readonly #write: (line: string) => void;

  constructor(write: (line: string) => void) {
    this.#write = write;
  }

  ok(text: string): void {
    this.#add("ok", text);
  }

  /** A failed check and what to change, both on one line. */
  fail(text: string, hint: string): void {
    this.#add("FAIL", `${text} — hint: ${hint}`);
  }

  /** A check that could not run because an earlier one failed. */
  skip(text: string, why: string): void {
    this.#add("skip", `${text} (${why})`);
  }

  get failed(): number {
    return this.lines.filter((l) => l.outcome === "FAIL").length;
  }

  /** The closing line. */
  summary(): string {
    const n = this.lines.length;
    const skipped = this.lines.filter((l) => l.outcome === "skip").length;
    if (this.failed === 0 && skipped === 0) return `all ${n} checks passed`;
    const parts = [`${this.failed} of ${n} checks failed`];
    if (skipped > 0) parts.push(`${skipped} skipped`);
    return parts.join(", ");
  }

  #add(outcome: Outcome, text: string): void {
    this.lines.push({ outcome, text });
    this.#write(`${outcome.padEnd(4)} ${text}`);
  }
}
