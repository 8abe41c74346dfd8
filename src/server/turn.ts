// Request handling runs once per event-loop turn, in the check phase, after
// the poll phase has read everything it reads in that turn. Every request
// handled in a batch was therefore read before the batch started, so one
// "has the store changed?" check (StoreReader.within, src/store/types.ts)
// serves all of them instead of one per request. Replies leave in the same
// turn. `around` must run its argument synchronously, once.

export type Around = (run: () => void) => void;

export class Turn {
  readonly #around: Around;
  #pending: Array<() => void> = [];
  #scheduled = false;
  readonly #onError: (err: unknown) => void;

  /** `around` wraps each batch (the daemon: store.within); `onError` gets what a task throws. */
  constructor(around: Around = (run) => run(), onError: (err: unknown) => void = () => undefined) {
    this.#around = around;
    this.#onError = onError;
  }

  /** Run `task` in this turn's batch. */
  defer(task: () => void): void {
    this.#pending.push(task);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const tasks = this.#pending;
    this.#pending = [];
    this.#around(() => {
      for (let i = 0; i < tasks.length; i++) {
        try {
          tasks[i]!();
        } catch (err) {
          this.#onError(err); // one task's bug must not cost the others their replies
        }
      }
    });
  };
}
