// The ways `apps add` gets a password: the argument, the first line of stdin
// (--password-stdin), a prompt without echo on a terminal, or --generate.

import { randomBytes } from "node:crypto";
import type { ReadStream } from "node:tty";
import { CliError, EXIT_CODES } from "./exit.js";

export interface PasswordSource {
  /** The [password] argument. */
  readonly argument: string | undefined;
  /** --password-stdin. */
  readonly fromStdin: boolean;
  /** --generate. */
  readonly generate?: boolean | undefined;
}

/**
 * Shorter given passwords get a warning (the Go version accepts any non-empty
 * one, so this is advice, not a refusal).
 */
export const MIN_APP_PASSWORD_LENGTH = 12;

/** 24 random bytes as base64url: 32 characters, 192 bits. */
export function generatePassword(): string {
  return randomBytes(24).toString("base64url");
}

/** The warning for a given password shorter than the minimum, or null. */
export function shortPasswordWarning(password: string): string | null {
  const n = [...password].length;
  if (n === 0 || n >= MIN_APP_PASSWORD_LENGTH) return null;
  return `warning: the password is ${n} character${n === 1 ? "" : "s"}; ` +
    `${MIN_APP_PASSWORD_LENGTH} or more are advised (apps add APP_ID --generate makes a random one)`;
}

const HOW = "give it as the argument (mailcloakctl apps add APP_ID PASSWORD), " +
  "pipe it with --password-stdin (first line of stdin), or run on a terminal to be prompted";

/** The password to hash (an empty one is refused by the admin service). */
export async function readPassword(src: PasswordSource): Promise<string> {
  let password: string;
  if (src.argument !== undefined && src.fromStdin) {
    throw new CliError(EXIT_CODES.usage, "give the password either as an argument or with --password-stdin, not both");
  }
  if (src.generate === true) {
    if (src.argument !== undefined || src.fromStdin) {
      throw new CliError(EXIT_CODES.usage, "--generate makes the password: give no password argument and no --password-stdin with it");
    }
    return generatePassword();
  }
  if (src.argument !== undefined) {
    password = src.argument;
  } else if (src.fromStdin) {
    password = await readFirstLine(process.stdin);
  } else if (process.stdin.isTTY) {
    const stdin = process.stdin as ReadStream;
    password = await promptHidden(stdin, "Password: ");
    if (password === "") throw new CliError(EXIT_CODES.refused, "password is empty; nothing written");
    const again = await promptHidden(stdin, "Repeat password: ");
    if (again !== password) throw new CliError(EXIT_CODES.refused, "the passwords do not match; nothing written");
  } else {
    throw new CliError(EXIT_CODES.usage, `no password given and stdin is not a terminal: ${HOW}`);
  }
  return password;
}

/** The first line of a stream, without its line ending ("" at once-empty input). */
export async function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  stream.setEncoding("utf8");
  let data = "";
  for await (const chunk of stream) {
    data += chunk as string;
    const nl = data.indexOf("\n");
    if (nl >= 0) {
      data = data.slice(0, nl);
      break; // leaving the loop closes stdin: the rest is not ours to read
    }
  }
  return data.endsWith("\r") ? data.slice(0, -1) : data;
}

/** Read one line from a terminal in raw mode, echoing nothing; the prompt goes to stderr. */
function promptHidden(tty: ReadStream, prompt: string): Promise<string> {
  tty.setEncoding("utf8");
  tty.setRawMode(true); // before the prompt: nothing typed after it is ever echoed
  process.stderr.write(prompt);
  tty.resume();
  return new Promise((resolve, reject) => {
    let buf: string[] = [];
    const done = (): void => {
      tty.off("data", onData);
      tty.setRawMode(false);
      tty.pause();
      process.stderr.write("\n");
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        switch (ch) {
          case "\r":
          case "\n":
            done();
            resolve(buf.join(""));
            return;
          case "\u0003": // Ctrl-C
          case "\u0004": // Ctrl-D
            done();
            reject(new CliError(EXIT_CODES.refused, "cancelled; nothing written"));
            return;
          case "\u007f": // Backspace
          case "\b":
            buf = buf.slice(0, -1);
            break;
          case "\u0015": // Ctrl-U: erase the line
            buf = [];
            break;
          default:
            buf.push(ch);
        }
      }
    };
    tty.on("data", onData);
  });
}
