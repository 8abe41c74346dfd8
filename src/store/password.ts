// App passwords as Dovecot verifies them: "{ARGON2ID}" followed by a PHC
// string ($argon2id$v=19$m=...,t=...,p=...$salt$hash). hash-wasm is used
// because Node 20 has no built-in Argon2 and it needs no native build.

import { argon2id, argon2Verify } from "hash-wasm";
import { randomBytes } from "node:crypto";

/** Same cost as the original tool: 64 MiB, 3 passes, 1 lane, 32-byte hash. */
const PARAMS = { memorySize: 65536, iterations: 3, parallelism: 1, hashLength: 32 } as const;
export const SCHEME_PREFIX = "{ARGON2ID}";

export async function hashAppPassword(password: string): Promise<string> {
  if (password === "") throw new Error("password is empty");
  const encoded = await argon2id({ password, salt: randomBytes(16), ...PARAMS, outputType: "encoded" });
  return SCHEME_PREFIX + encoded;
}

export async function verifyAppPassword(password: string, stored: string): Promise<boolean> {
  if (!stored.startsWith(SCHEME_PREFIX)) return false;
  return argon2Verify({ password, hash: stored.slice(SCHEME_PREFIX.length) });
}
