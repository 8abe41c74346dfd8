// The server skeleton shared by the policy and socketmap servers: listening
// (Unix socket with owner/mode, or TCP), the connection cap, idle and read
// timeouts, one request at a time per connection with replies in order, and
// a staged shutdown. Protocols plug in a framing decoder and a handler.

import net from "node:net";
import { chmodSync, chownSync, lstatSync, unlinkSync } from "node:fs";
import type { Logger } from "pino";
import type { ListenAddress, Limits } from "../config/types.js";
import { describeAddress } from "../config/load.js";
import { Turn, type Held } from "./turn.js";
import type { Maybe } from "../maybe.js";

export interface Framing<T> {
  push(chunk: Buffer): { items: T[]; error: string | null };
  /** True while a request has started but not finished. */
  readonly midRequest: boolean;
}

export interface Protocol<T> {
  readonly name: string;
  newFraming(maxRequestBytes: number): Framing<T>;
  /** Per-connection state; created with the connection. */
  handle(item: T, conn: ConnectionInfo): Maybe<string | Buffer>;
  /** What to send before closing on a framing error (nothing when null). */
  errorReply?(error: string): string | null;
}

export interface ConnectionInfo {
  readonly id: number;
}

export interface ListenerEvents {
  onOpen?(server: string): void;
  onClose?(server: string): void;
  onRefused?(server: string, reason: "max_connections"): void;
  onLimit?(server: string, reason: "idle_timeout" | "read_timeout" | "max_request_bytes" | "malformed"): void;
}

export interface ListenerOptions<T> {
  readonly address: ListenAddress;
  readonly protocol: Protocol<T>;
  readonly limits: () => Limits;
  readonly logger: Logger;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly mode?: number | undefined;
  readonly events?: ListenerEvents | undefined;
  /** Where request handling is batched (shared by the daemon's listeners); default: a turn of its own. */
  readonly turn?: Turn | undefined;
}

/** Window of the per-message rate limit on limit warnings. */
const WARN_WINDOW_MS = 10_000;

/** Unanswered requests a client may queue (pipelining) before we stop reading. */
const MAX_QUEUED = 32;

let nextConnId = 1;

class Connection<T> implements Held {
  readonly info: ConnectionInfo = { id: nextConnId++ };
  readonly #socket: net.Socket;
  readonly #framing: Framing<T>;
  readonly #owner: Listener<T>;
  readonly #queue: T[] = [];
  #busy = false;
  #closing = false;
  /** A pump is waiting in this turn's batch. */
  #scheduled = false;
  #readTimer: NodeJS.Timeout | null = null;
  /** The socket is corked until the current batch ends (server/turn.ts). */
  #corked = false;

  constructor(socket: net.Socket, owner: Listener<T>) {
    this.#socket = socket;
    this.#owner = owner;
    const limits = owner.limits();
    this.#framing = owner.protocol.newFraming(limits.maxRequestBytes);
    socket.setNoDelay?.(true);
    socket.setTimeout(limits.idleTimeoutSeconds * 1000);
    socket.on("timeout", () => this.#onIdle());
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    // The client half-closed (a script's `nc -U`, `socat`; Postfix never
    // does): what it sent is still answered, then the connection is closed.
    // The server allows half-open sockets, so replies can still be written.
    socket.on("end", () => this.shutdown());
    socket.on("error", (err) => owner.logger.debug({ conn: this.info.id, err: err.message }, "connection error"));
    socket.on("close", () => {
      this.#clearReadTimer();
      owner.forget(this);
    });
  }

  get idle(): boolean {
    return !this.#busy && this.#queue.length === 0;
  }

  #onIdle(): void {
    if (!this.idle) return; // a slow lookup is bounded by its own deadline
    this.#owner.limit("idle_timeout");
    this.#socket.destroySoon();
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    const wasMid = this.#framing.midRequest;
    const { items, error } = this.#framing.push(chunk);
    for (let i = 0; i < items.length; i++) this.#queue.push(items[i]!);
    if (error) {
      this.#owner.limit(error === "SIZE" ? "max_request_bytes" : "malformed");
      this.#owner.warnLimited({ conn: this.info.id, server: this.#owner.protocol.name, error }, error === "SIZE" ? "request too large, closing connection" : "malformed request, closing connection");
      this.#abort(this.#owner.protocol.errorReply?.(error) ?? null);
      return;
    }
    // A request that has started must finish within the read timeout, however
    // slowly its bytes trickle in (socket timeouts reset on every byte).
    if (this.#framing.midRequest) {
      if (!wasMid || items.length > 0 || this.#readTimer === null) this.#armReadTimer();
    } else this.#clearReadTimer();
    if (this.#queue.length > MAX_QUEUED) this.#socket.pause();
    if (!this.#scheduled && this.#queue.length > 0) {
      this.#scheduled = true;
      this.#owner.turn.defer(this.#deferredPump);
    }
  }

  /** Requests read in this turn are handled after the poll phase, in one batch (server/turn.ts). */
  readonly #deferredPump = (): void => {
    this.#scheduled = false;
    if (this.#socket.destroyed) {
      this.#queue.length = 0;
      return;
    }
    try {
      this.#pump();
    } catch (err) {
      this.#internalError(err); // never leave the connection busy for good
    }
  };

  #armReadTimer(): void {
    this.#clearReadTimer();
    this.#readTimer = setTimeout(() => {
      this.#owner.limit("read_timeout");
      this.#owner.warnLimited({ conn: this.info.id, server: this.#owner.protocol.name }, "request not completed within the read timeout, closing connection");
      this.#abort(null);
    }, this.#owner.limits().readTimeoutSeconds * 1000);
    this.#readTimer.unref();
  }

  #clearReadTimer(): void {
    if (this.#readTimer) clearTimeout(this.#readTimer);
    this.#readTimer = null;
  }

  /** Stop reading; answer what is queued, then send `last` (if any) and close. */
  #abort(last: string | null): void {
    this.#closing = true;
    this.#clearReadTimer();
    this.#socket.pause();
    this.#lastWords = last;
    this.#pump();
  }

  #lastWords: string | null = null;

  #pump(): void {
    while (!this.#busy && this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      let reply: Maybe<string | Buffer>;
      try {
        reply = this.#owner.protocol.handle(item, this.info);
      } catch (err) {
        this.#internalError(err);
        return;
      }
      if (typeof reply === "string" || Buffer.isBuffer(reply)) {
        this.#write(reply);
        continue;
      }
      this.#busy = true;
      reply.then(
        (r) => {
          this.#busy = false;
          this.#write(r);
          this.#pump();
        },
        (err: unknown) => {
          this.#busy = false;
          this.#internalError(err);
        },
      );
      return;
    }
    if (this.idle) {
      if (this.#closing) {
        if (this.#lastWords !== null) this.#send(this.#lastWords);
        this.#lastWords = null;
        // Nothing is owed: close now rather than wait for the client's FIN
        // (Postfix notices only at its next request).
        this.#socket.destroySoon();
      } else if (this.#socket.isPaused()) this.#socket.resume();
    }
  }

  #write(reply: string | Buffer): void {
    if (!this.#socket.destroyed && this.#socket.writable) this.#send(reply);
  }

  /** Write now, or, while a batch holds log lines, when they are written (Turn). Order is kept either way. */
  #send(data: string | Buffer): void {
    const turn = this.#owner.turn;
    if (!this.#corked && turn.mustHold) {
      this.#corked = true;
      this.#socket.cork();
      turn.hold(this);
    }
    this.#socket.write(data);
  }

  release(): void {
    this.#corked = false;
    this.#socket.uncork();
  }

  #internalError(err: unknown): void {
    // A handler bug: say nothing (Postfix then retries or uses its default
    // action) and drop this connection, never the process.
    this.#owner.logger.error({ conn: this.info.id, err: err instanceof Error ? err.message : String(err) }, "internal error handling request");
    this.#queue.length = 0;
    if (this.#corked) this.release(); // replies already made still leave
    this.#socket.destroy();
  }

  /** Graceful stop (or the client's end of stream): finish what is queued or in flight, then close. */
  shutdown(): void {
    this.#closing = true;
    this.#clearReadTimer();
    this.#socket.pause();
    this.#pump();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

export class Listener<T> {
  readonly protocol: Protocol<T>;
  readonly logger: Logger;
  readonly limits: () => Limits;
  readonly address: ListenAddress;
  readonly turn: Turn;
  readonly #server: net.Server;
  readonly #conns = new Set<Connection<T>>();
  readonly #events: ListenerEvents;
  #closed: Promise<void> | null = null;

  private constructor(opts: ListenerOptions<T>, server: net.Server) {
    this.protocol = opts.protocol;
    this.logger = opts.logger;
    this.limits = opts.limits;
    this.address = opts.address;
    this.#events = opts.events ?? {};
    this.turn = opts.turn ?? new Turn();
    this.#server = server;
    server.on("connection", (socket) => this.#accept(socket));
    server.on("error", (err) => this.logger.error({ server: this.protocol.name, err: err.message }, "listener error"));
  }

  get connections(): number {
    return this.#conns.size;
  }

  get description(): string {
    return describeAddress(this.address);
  }

  /** Bind, set ownership and mode, and start accepting. */
  static async open<T>(opts: ListenerOptions<T>): Promise<Listener<T>> {
    // Half-open: a client that shuts down its write side still gets its replies (the "end" handler).
    const server = net.createServer({ pauseOnConnect: false, allowHalfOpen: true });
    const a = opts.address;
    if (a.kind === "unix") {
      await removeStaleSocket(a.path);
      // Bind with umask 0777 so the socket file starts at mode 0000: no
      // client can connect before owner and mode below are in place.
      const old = process.umask(0o777);
      try {
        await listen(server, { path: a.path });
      } finally {
        process.umask(old);
      }
      try {
        if (opts.uid !== undefined || opts.gid !== undefined) chownSync(a.path, opts.uid ?? -1, opts.gid ?? -1);
        chmodSync(a.path, opts.mode ?? 0o660);
      } catch (err) {
        server.close();
        throw new Error(`cannot set owner/mode of ${a.path}: ${(err as Error).message}`);
      }
    } else {
      await listen(server, { host: a.host, port: a.port });
    }
    return new Listener(opts, server);
  }

  /** The TCP port actually bound (for port 0 in tests). */
  get port(): number | null {
    const addr = this.#server.address();
    return addr && typeof addr === "object" ? addr.port : null;
  }

  #accept(socket: net.Socket): void {
    if (this.#closed || this.#conns.size >= this.limits().maxConnections) {
      this.#events.onRefused?.(this.protocol.name, "max_connections");
      if (!this.#closed) this.warnLimited({ server: this.protocol.name, max: this.limits().maxConnections }, "connection refused: max_connections reached");
      socket.destroy();
      return;
    }
    const c = new Connection<T>(socket, this);
    this.#conns.add(c);
    this.#events.onOpen?.(this.protocol.name);
  }

  forget(c: Connection<T>): void {
    if (this.#conns.delete(c)) this.#events.onClose?.(this.protocol.name);
  }

  readonly #warned = new Map<string, { until: number; suppressed: number }>();

  /**
   * A warning about one connection hitting a limit. A flood (slow-loris,
   * garbage) must not flood the log or stall the loop writing it: per
   * message, the first in a 10 s window is logged and the rest are counted,
   * then reported in one line when the window ends (metrics count them all).
   */
  warnLimited(fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const w = this.#warned.get(msg);
    if (w && now < w.until) {
      if (w.suppressed++ === 0) {
        const t = setTimeout(() => {
          this.logger.warn({ server: this.protocol.name, count: w.suppressed, seconds: WARN_WINDOW_MS / 1000 }, `${msg} (more in the same window)`);
          w.suppressed = 0;
        }, w.until - now);
        t.unref();
      }
      return;
    }
    this.#warned.set(msg, { until: now + WARN_WINDOW_MS, suppressed: 0 });
    this.logger.warn(fields, msg);
  }

  limit(reason: "idle_timeout" | "read_timeout" | "max_request_bytes" | "malformed"): void {
    this.#events.onLimit?.(this.protocol.name, reason);
  }

  /**
   * Stop accepting, let in-flight requests finish and close idle connections;
   * after `graceMs` close whatever is left. Removes the socket file.
   */
  close(graceMs: number): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#closed = new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const c of this.#conns) c.shutdown();
      const t = setTimeout(() => {
        for (const c of this.#conns) c.destroy();
      }, graceMs);
      t.unref();
    }).then(() => {
      if (this.address.kind === "unix") {
        try {
          unlinkSync(this.address.path);
        } catch {
          /* already gone */
        }
      }
    });
    return this.#closed;
  }
}

function listen(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(opts, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/**
 * A socket file left by a crashed daemon is removed; one that a live process
 * still accepts on is not (two daemons must never share a path).
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; remove it or choose another path`);
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect({ path });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
  if (live) throw new Error(`another process is already listening on ${path}; stop it first (is mailcloak already running?)`);
  unlinkSync(path);
}
