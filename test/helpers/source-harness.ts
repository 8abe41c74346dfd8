// What the identity-source tests share: a logger writing to memory, so a test
// can assert what was (and was not) logged, and assertions on lookups.

import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { Logger } from "pino";
import type { DirectoryUser, Lookup } from "../../src/directory/lookup.js";

export interface MemoryLog {
  logger: Logger;
  /** Everything logged so far, as raw pino JSON lines. */
  text(): string;
  /** The `msg` of each line logged so far. */
  messages(): string[];
}

export function memoryLog(): MemoryLog {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const text = (): string => chunks.join("");
  return {
    logger: pino({ level: "debug" }, stream),
    text,
    messages: () => text().split("\n").filter((l) => l !== "").map((l) => String((JSON.parse(l) as { msg?: unknown }).msg)),
  };
}

export function assertFound(r: Lookup<DirectoryUser>): DirectoryUser {
  assert.equal(r.kind, "found", `expected found, got ${JSON.stringify(r)}`);
  return (r as { value: DirectoryUser }).value;
}

export function assertUnavailable(r: Lookup<DirectoryUser>, reason?: RegExp): string {
  assert.equal(r.kind, "unavailable", `expected unavailable, got ${JSON.stringify(r)}`);
  const got = (r as { reason: string }).reason;
  if (reason) assert.match(got, reason);
  return got;
}
