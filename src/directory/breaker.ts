// Consecutive-failure circuit breaker shared by the remote identity sources.
// admit() hands out a ticket (or null when open); in half-open state only one
// trial ticket is out at a time, so a recovering IdP sees one request, not a
// burst. The clock is injectable (tests step it instead of sleeping).

export type BreakerState = "closed" | "open" | "halfOpen";

export interface Ticket {
  readonly trial: boolean;
}

export class Breaker {
  #state: BreakerState = "closed";
  #failures = 0;
  #openUntil = 0;
  #trialOut = false;
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #onOpen: () => void;
  readonly #now: () => number;

  constructor(threshold: number, openMs: number, onOpen: () => void, now: () => number = Date.now) {
    this.#threshold = threshold;
    this.#openMs = openMs;
    this.#onOpen = onOpen;
    this.#now = now;
  }

  get state(): BreakerState {
    return this.#state;
  }

  admit(): Ticket | null {
    if (this.#state === "open") {
      if (this.#now() < this.#openUntil) return null;
      this.#state = "halfOpen";
      this.#trialOut = false;
    }
    if (this.#state === "halfOpen") {
      if (this.#trialOut) return null;
      this.#trialOut = true;
      return { trial: true };
    }
    return { trial: false };
  }

  /** The IdP answered: reset. Returns true when this closed an open breaker. */
  success(): boolean {
    const wasOpen = this.#state !== "closed";
    this.#state = "closed";
    this.#failures = 0;
    this.#trialOut = false;
    return wasOpen;
  }

  /** Returns true when this failure opened the breaker. */
  failure(ticket: Ticket): boolean {
    if (this.#state === "closed") {
      this.#failures++;
      if (this.#failures < this.#threshold) return false;
    } else if (!(this.#state === "halfOpen" && ticket.trial)) {
      return false; // a straggler from before the breaker opened
    }
    this.#state = "open";
    this.#openUntil = this.#now() + this.#openMs;
    this.#trialOut = false;
    this.#onOpen();
    return true;
  }
}
