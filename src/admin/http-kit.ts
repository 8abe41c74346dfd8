// HTTP helpers for mailcloak-admin: JSON bodies (capped, unknown fields
// refused), JSON replies, and the mapping of every error to one status and
// one {"error": "..."} line. A user's mistake is never a 500.

import type { IncomingMessage, ServerResponse } from "node:http";
import { ConfigError } from "../config/reader.js";
import { StoreError, type StoreErrorKind } from "../store/errors.js";
import { IdpCheckError } from "./idp-check.js";

/** As the Go version: 1 MiB. */
export const MAX_BODY_BYTES = 1 << 20;

/** An error with the HTTP status to answer. */
export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
  res.end(`${body}\n`);
}

export function sendNoContent(res: ServerResponse): void {
  res.writeHead(204, { "cache-control": "no-store" }).end();
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

type BodySpec = Record<string, "string" | "boolean" | "object">;

/**
 * Read a JSON object body with exactly the fields of `spec` allowed (each
 * optional; its type checked). Errors read "invalid json body: ..." or
 * "missing json body", as the Go version's.
 */
export async function readJson(req: IncomingMessage, spec: BodySpec): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      req.resume(); // drain, so the 413/400 reply reaches the client
      throw new HttpError(400, "invalid json body: http: request body too large");
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new HttpError(400, "missing json body");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `invalid json body: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HttpError(400, "invalid json body: expected a JSON object");
  }
  const obj = value as Record<string, unknown>;
  for (const [key, v] of Object.entries(obj)) {
    const want = spec[key];
    if (want === undefined) throw new HttpError(400, `invalid json body: json: unknown field ${JSON.stringify(key)}`);
    const ok = want === "object" ? v !== null && typeof v === "object" && !Array.isArray(v) : typeof v === want;
    if (!ok) throw new HttpError(400, `invalid json body: field ${JSON.stringify(key)} must be a ${want === "object" ? "JSON object" : want}`);
  }
  return obj;
}

export function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  return typeof v === "string" ? v : "";
}

/** The HTTP status of each store error kind. */
const STORE_STATUS: Record<StoreErrorKind, number> = {
  missing: 503, "not-found": 404, conflict: 409, invalid: 400, forbidden: 403, unavailable: 503, schema: 400,
};

/** The status and message for anything a handler threw; `internal` is called for real faults. */
export function describeHttpError(err: unknown, internal: (err: unknown) => void): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  if (err instanceof StoreError) return { status: STORE_STATUS[err.kind], message: err.message };
  if (err instanceof ConfigError || err instanceof IdpCheckError) return { status: 400, message: err.message };
  internal(err);
  return { status: 500, message: "internal error (see the mailcloak-admin log)" };
}
