// The ceiling: a minimal Node server speaking both protocols on Unix sockets
// with a fixed reply and no lookup. Framing is done properly (a policy
// request ends at its blank line, a socketmap request is one netstring), so
// it pays the same per-request I/O costs as mailcloak and nothing else.
//
// Usage: node dist/bench/bare.js POLICY_SOCKET SOCKETMAP_SOCKET [--floor=LOGFILE]
// Prints "ready" on stdout once both sockets accept connections.
//
// --floor: the policy side also does the work every answer of mailcloak's
// must do whatever the rules say: our decoder (src/protocol/policy.ts) and a
// decision line per request in the daemon's format, held during the event
// loop turn and written to LOGFILE in one write, replies after their lines
// (src/server/turn.ts, src/log.ts). What the "floor" row leaves between it
// and the ceiling is the cost of that work; what lies between it and (a) is
// the rules, facts, cache, metrics and connection handling.

import net from "node:net";
import { openSync, rmSync, writeSync } from "node:fs";
import { PolicyDecoder } from "../src/protocol/policy.js";

const LF = 0x0a;
const COLON = 0x3a;
const COMMA = 0x2c;

export const BARE_POLICY_REPLY = "action=DUNNO\n\n";
export const BARE_SOCKETMAP_PAYLOAD = "OK d1.test/kuser0/";

function policyConnection(socket: net.Socket): void {
  const reply = Buffer.from(BARE_POLICY_REPLY);
  let prevLF = false; // the previous chunk ended with LF (a blank line may straddle chunks)
  socket.on("data", (chunk: Buffer) => {
    let from = 0;
    if (prevLF && chunk[0] === LF) {
      socket.write(reply);
      from = 1;
    }
    for (;;) {
      const i = chunk.indexOf("\n\n", from, "latin1");
      if (i < 0) break;
      socket.write(reply);
      from = i + 2;
    }
    prevLF = from < chunk.length && chunk[chunk.length - 1] === LF;
  });
  socket.on("error", () => undefined);
}

/** --floor: lines held in this turn, the sockets whose replies follow them. */
class FloorTurn {
  readonly #fd: number;
  readonly #prefix = `{"level":30,"time":`;
  readonly #bindings = `,"pid":${process.pid},"server":"policy"`;
  #lines = "";
  #replies: net.Socket[] = [];
  #scheduled = false;

  constructor(logFile: string) {
    this.#fd = openSync(logFile, "a");
  }

  answer(socket: net.Socket, state: string, sender: string, recipient: string, context: string, ms: number): void {
    // The fields (a) logs; its strings have nothing to escape, as the bench's requests.
    this.#lines += `${this.#prefix}${Date.now()}${this.#bindings},"state":"${state}","sender":"${sender}","recipient":"${recipient}","context":"${context}",` +
      `"action":"DUNNO","reason":"recipient-user","cache":"hit","ms":${ms},"msg":"policy decision"}\n`;
    this.#replies.push(socket);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    writeSync(this.#fd, this.#lines);
    this.#lines = "";
    const replies = this.#replies;
    this.#replies = [];
    for (let i = 0; i < replies.length; i++) replies[i]!.write(BARE_POLICY_REPLY);
  };
}

function floorPolicyConnection(socket: net.Socket, turn: FloorTurn): void {
  const decoder = new PolicyDecoder(65536);
  socket.on("data", (chunk: Buffer) => {
    const t0 = performance.now();
    const { requests, error } = decoder.push(chunk);
    if (error !== null) {
      socket.destroy();
      return;
    }
    for (const r of requests) turn.answer(socket, r.protocol_state, r.sender, r.recipient, r.policy_context, Math.round((performance.now() - t0) * 10) / 10);
  });
  socket.on("error", () => undefined);
}

function socketmapConnection(socket: net.Socket): void {
  const p = Buffer.from(BARE_SOCKETMAP_PAYLOAD);
  const reply = Buffer.concat([Buffer.from(`${p.length}:`), p, Buffer.from(",")]);
  let buf: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let pos = 0;
    for (;;) {
      let len = 0;
      let i = pos;
      for (; i < buf.length && buf[i] !== COLON; i++) {
        const c = buf[i]!;
        if (c < 0x30 || c > 0x39 || i - pos > 9) {
          socket.destroy();
          return;
        }
        len = len * 10 + (c - 0x30);
      }
      const end = i + 1 + len;
      if (i >= buf.length || end >= buf.length) break;
      if (buf[end] !== COMMA) {
        socket.destroy();
        return;
      }
      socket.write(reply);
      pos = end + 1;
    }
    buf = pos === buf.length ? Buffer.alloc(0) : buf.subarray(pos);
  });
  socket.on("error", () => undefined);
}

function listen(path: string, onConn: (s: net.Socket) => void): Promise<net.Server> {
  rmSync(path, { force: true });
  return new Promise((resolve, reject) => {
    const server = net.createServer(onConn);
    server.once("error", reject);
    server.listen({ path }, () => resolve(server));
  });
}

async function main(): Promise<void> {
  const [policyPath, socketmapPath, floorArg] = process.argv.slice(2);
  if (!policyPath || !socketmapPath || (floorArg !== undefined && !floorArg.startsWith("--floor="))) {
    process.stderr.write("usage: bare.js POLICY_SOCKET SOCKETMAP_SOCKET [--floor=LOGFILE]\n");
    process.exit(2);
  }
  const floor = floorArg === undefined ? null : new FloorTurn(floorArg.slice("--floor=".length));
  const onPolicy = floor === null ? policyConnection : (s: net.Socket) => floorPolicyConnection(s, floor);
  const servers = await Promise.all([listen(policyPath, onPolicy), listen(socketmapPath, socketmapConnection)]);
  const stop = (): void => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write("ready\n");
}

if (process.argv[1] && /bare\.js$/.test(process.argv[1])) void main();
