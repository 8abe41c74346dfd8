// Request handling runs once per event-loop turn, in the check phase, after
// the poll phase has read everything it reads in that turn. Every request
// handled in a batch was therefore read before the batch started, so one
// "has the store changed?" check (StoreReader.within, src/store/types.ts)
// serves all of them instead of one per request. `around` must run its
// argument synchronously, once.
//
// The daemon's `around` also holds the batch's log lines and writes them in
// one write as it returns (src/log.ts, batchLines): one log write per batch
// instead of one per decision (bench/README.md). A reply written while lines
// are held is held too (the connection corks its socket and registers here)
// and leaves after them, so a decision's line is on its way to the log before
// its reply is on its way to Postfix.

export type Around = (run: () => void) => void;

/** Something holding writes until the batch ends (a corked connection). */
export interface Held {
  release(): void;
}

export class Turn {
  readonly #around: Around;
  #pending: Array<() => void> = [];
  #held: Held[] = [];
  #scheduled = false;
  #active = false;
  readonly #onError: (err: unknown) => void;
  readonly #linesHeld: () => boolean;

  /**
   * `around` wraps each batch (the daemon: log lines and store.within);
   * `onError` gets what a task throws; `linesHeld` says whether `around` holds
   * log lines not yet written (a reply made now must wait for them).
   */
  constructor(around: Around = (run) => run(), onError: (err: unknown) => void = () => undefined, linesHeld: () => boolean = () => true) {
    this.#around = around;
    this.#onError = onError;
    this.#linesHeld = linesHeld;
  }

  /**
   * A write made now must be held (`hold`): a batch runs and log lines are
   * held, among them, maybe, the line of the reply being written. With none
   * held (log.level warn, or socketmap lookups, logged at debug) a reply
   * leaves at once, as its line, if any, is already written.
   */
  get mustHold(): boolean {
    // Outside a batch, lines are held only once `wake` has scheduled the one that writes them.
    return (this.#active || this.#scheduled) && this.#linesHeld();
  }

  /** Release `h` when the current batch ends. Only while `mustHold`. */
  hold(h: Held): void {
    this.#held.push(h);
  }

  /** Run `task` in this turn's batch. */
  defer(task: () => void): void {
    this.#pending.push(task);
    this.wake();
  }

  /** Make sure a batch runs this turn, with or without tasks (log lines held outside one: log.ts deferLines). */
  wake(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const tasks = this.#pending;
    this.#pending = [];
    this.#active = true;
    try {
      this.#around(() => {
        for (let i = 0; i < tasks.length; i++) {
          try {
            tasks[i]!();
          } catch (err) {
            this.#onError(err); // one task's bug must not cost the others their replies
          }
        }
      });
    } finally {
      this.#active = false;
      const held = this.#held;
      this.#held = [];
      for (let i = 0; i < held.length; i++) held[i]!.release();
    }
  };
}
