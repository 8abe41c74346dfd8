// The HTTP plumbing the IdP emulators share: a real server on 127.0.0.1 that
// survives down()/up() on the same port, an added latency, requests held
// unanswered while the emulator "hangs", and JSON replies. An emulator
// subclass says what arrives (to count it) and how a request is answered.

import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `M` is the emulator's set of behaviours; "hang" holds every request unanswered. */
export abstract class FakeHttpServer<M extends string> {
  /** Delay added before every response, in milliseconds. */
  latencyMs = 0;

  readonly #server: Server;
  #port = 0;
  readonly #sockets = new Set<Socket>();
  #held: Array<() => void> = [];
  #mode: M;

  protected constructor(mode: M) {
    this.#mode = mode;
    this.#server = createServer((req, res) => this.#receive(req, res));
    this.#server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  get mode(): M {
    return this.#mode;
  }

  /** Switch behaviour; leaving "hang" lets the held requests proceed under the new mode. */
  set mode(mode: M) {
    this.#mode = mode;
    if (mode !== "hang") this.#release();
  }

  /** Base URL without trailing slash, e.g. http://127.0.0.1:40123 (stable across down()/up()). */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Close the listener and drop every open connection: clients get ECONNREFUSED. */
  async down(): Promise<void> {
    this.#held = [];
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  /** Listen again on the same port after down(). */
  async up(): Promise<void> {
    if (this.#server.listening) return;
    await listen(this.#server, this.#port);
  }

  /** Shut down for good (same as down()). */
  async stop(): Promise<void> {
    await this.down();
  }

  /** Listen on 127.0.0.1 (port 0: a free one). */
  protected async listen(port: number): Promise<void> {
    await listen(this.#server, port);
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  /** A request arrived (before any latency or hanging): count it here. */
  protected abstract arrived(req: IncomingMessage, url: URL): void;

  /** Answer a request whose body has been read. */
  protected abstract answer(req: IncomingMessage, url: URL, body: string, res: ServerResponse): void;

  #release(): void {
    const held = this.#held;
    this.#held = [];
    for (const resume of held) resume();
  }

  #receive(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.url);
    this.arrived(req, url);
    // The body is read up front so a held request doesn't stall the socket's parser.
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const dispatch = (): void => {
        if (this.#mode === "hang") this.#held.push(dispatch);
        else this.answer(req, url, body, res);
      };
      if (this.latencyMs > 0) setTimeout(dispatch, this.latencyMs);
      else dispatch();
    });
  }
}

export function sendJson(res: ServerResponse, status: number, body: Json): void {
  sendText(res, status, "application/json", JSON.stringify(body));
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError);
      resolve();
    });
  });
}
