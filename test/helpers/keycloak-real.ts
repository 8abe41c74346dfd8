// A real Keycloak server for the tests: the pinned keycloak-quarkus-dist from
// Maven Central (fetched with `mvn dependency:copy`, so the Maven cache makes a
// second run download nothing), unpacked once under the user's cache
// directory, started in dev mode with an in-memory database on a free loopback
// port, with the realm of test/fixtures/keycloak-realm.json imported at start.
//
// test/run.ts starts one server for the whole run and hands it to every test
// file through MAILCLOAK_TEST_KEYCLOAK; a file run on its own starts its own.
// Outside CI a machine without Java, Maven or unzip skips these tests with one
// line; with CI=true a missing piece fails them.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, ROOT } from "./daemon.js";

export const KEYCLOAK_VERSION = "26.5.6";
/** JDK major versions this Keycloak release supports, most preferred first (Keycloak's "Supported Configurations"). */
export const SUPPORTED_JDKS = [21, 17, 25] as const;
export const REALM_FIXTURE = join(ROOT, "test/fixtures/keycloak-realm.json");
const ENV = "MAILCLOAK_TEST_KEYCLOAK";

/** What the realm fixture holds (keep in step with test/fixtures/keycloak-realm.json). */
export const FIXTURE = {
  realm: "mailcloak-test",
  tokenLifespanSeconds: 60,
  /** view-users: what mailcloak needs. */
  client: { id: "mailcloak", secret: "mailcloak-test-secret" },
  /** query-users only: may search, sees no users. */
  queryOnlyClient: { id: "mailcloak-query", secret: "query-test-secret" },
  /** No realm-management role at all. */
  noRoleClient: { id: "mailcloak-norole", secret: "norole-test-secret" },
  admin: { username: "kc-admin", password: "kc-admin-pw" },
  /**
   * mailcloak-admin's sign-in client (authorization code + PKCE S256; redirect
   * and post-logout URIs http://127.0.0.1*; ID token claims realm_access.roles
   * and groups). alice is in group /mail-admins, which has the realm role
   * mailcloak-admin; dave is an ordinary user.
   */
  adminClient: { id: "mailcloak-admin", secret: "mailcloak-admin-test-secret", role: "mailcloak-admin", group: "/mail-admins" },
} as const;

/** The shared server, as test files see it. */
export interface RealKeycloak {
  readonly baseUrl: string;
  readonly realm: string;
  readonly version: string;
  readonly jdk: string;
}

export interface Jdk {
  readonly home: string;
  readonly major: number;
}

function javaMajor(javaBin: string): number | null {
  const r = spawnSync(javaBin, ["-version"], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.stderr);
  if (!m) return null;
  const first = Number(m[1]);
  return first === 1 ? Number(m[2]) : first;
}

/** JAVA_HOME if it is supported, else the most preferred supported JDK under /usr/lib/jvm. */
export function pickJdk(): Jdk | null {
  const candidates: string[] = [];
  if (process.env.JAVA_HOME) candidates.push(process.env.JAVA_HOME);
  if (existsSync("/usr/lib/jvm")) {
    for (const d of readdirSync("/usr/lib/jvm").sort()) candidates.push(join("/usr/lib/jvm", d));
  }
  const found: Jdk[] = [];
  for (const home of candidates) {
    const bin = join(home, "bin/java");
    if (!existsSync(bin)) continue;
    const major = javaMajor(bin);
    if (major !== null && (SUPPORTED_JDKS as readonly number[]).includes(major)) found.push({ home, major });
  }
  if (process.env.JAVA_HOME && found[0]?.home === process.env.JAVA_HOME) return found[0];
  found.sort((a, b) => SUPPORTED_JDKS.indexOf(a.major as 17) - SUPPORTED_JDKS.indexOf(b.major as 17));
  return found[0] ?? null;
}

function onPath(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Why a real Keycloak cannot run here, or null. */
export function realKeycloakUnavailable(): string | null {
  const missing: string[] = [];
  if (!pickJdk()) missing.push(`a JDK Keycloak ${KEYCLOAK_VERSION} supports (${SUPPORTED_JDKS.join(", ")})`);
  if (!onPath("mvn")) missing.push("mvn (Debian: maven)");
  if (!onPath("unzip")) missing.push("unzip");
  return missing.length > 0 ? `real Keycloak tests need ${missing.join(", ")}` : null;
}

function cacheRoot(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "mailcloak-test");
}

/** The unpacked distribution (downloaded through Maven's cache on first use). */
export function provisionDist(): string {
  const root = cacheRoot();
  const home = join(root, `keycloak-${KEYCLOAK_VERSION}`);
  if (existsSync(join(home, "bin/kc.sh"))) return home;
  mkdirSync(root, { recursive: true });
  const zip = join(root, `keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip`);
  if (!existsSync(zip)) {
    const r = spawnSync("mvn", ["-B", "-q", "dependency:copy",
      `-Dartifact=org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip`, `-DoutputDirectory=${root}`],
    { encoding: "utf8", timeout: 600_000 });
    if (r.status !== 0 || !existsSync(zip)) throw new Error(`mvn dependency:copy of keycloak-quarkus-dist ${KEYCLOAK_VERSION} failed: ${r.stdout}${r.stderr}`);
  }
  const part = `${home}.part`;
  rmSync(part, { recursive: true, force: true });
  mkdirSync(part);
  const u = spawnSync("unzip", ["-q", zip, "-d", part], { encoding: "utf8" });
  if (u.status !== 0) throw new Error(`unzip ${zip} failed: ${u.stderr}`);
  // The zip holds one top directory, keycloak-<version>/.
  cpSync(join(part, `keycloak-${KEYCLOAK_VERSION}`), home, { recursive: true });
  rmSync(part, { recursive: true, force: true });
  return home;
}

function rssMiB(pid: number): number {
  // kc.sh runs java as its child; sum the tree's resident memory.
  let total = 0;
  const walk = (p: number): void => {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${task}/children`, "utf8").trim();
        for (const k of kids.split(/\s+/).filter(Boolean)) walk(Number(k));
      }
    } catch { /* gone */ }
  };
  walk(pid);
  return Math.round(total / 1024);
}

export interface ServerOptions {
  port?: number;
}

const BUILT_MARK = ".mailcloak-dev-mem-built";

/**
 * The first start of a fresh distribution re-augments it for our options
 * (dev mode, in-memory DB; about 15 s). Keep that build in the cached
 * distribution so later copies start without it.
 */
function keepBuild(copy: string, dist: string): void {
  if (existsSync(join(dist, BUILT_MARK))) return;
  const tmp = join(dist, `lib/quarkus.${process.pid}`);
  try {
    cpSync(join(copy, "lib/quarkus"), tmp, { recursive: true });
    rmSync(join(dist, "lib/quarkus"), { recursive: true, force: true });
    renameSync(tmp, join(dist, "lib/quarkus"));
    writeFileSync(join(dist, BUILT_MARK), "");
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another run did it first
  }
}

/** One Keycloak process: start, stop, start again on the same port (the realm is re-imported). */
export class KeycloakServer {
  readonly home: string;
  readonly port: number;
  readonly jdk: Jdk;
  startupMs = 0;
  rssMiB = 0;
  #child: ChildProcess | null = null;
  #log = "";
  #exited: Promise<void> | null = null;
  readonly #copy: string;
  readonly #onExit = (): void => this.#kill("SIGKILL");

  private constructor(home: string, port: number, jdk: Jdk, copy: string) {
    this.home = home;
    this.port = port;
    this.jdk = jdk;
    this.#copy = copy;
  }

  static async start(opts: ServerOptions = {}): Promise<KeycloakServer> {
    const why = realKeycloakUnavailable();
    if (why) throw new Error(why);
    const jdk = pickJdk()!;
    const dist = provisionDist();
    // Every server runs from its own copy (0.6 s for 175 MB), so servers of
    // concurrent runs never share data/ or a half-written build.
    const copy = join(tmpdir(), `mailcloak-kc-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);
    cpSync(dist, copy, { recursive: true });
    rmSync(join(copy, "data"), { recursive: true, force: true });
    const s = new KeycloakServer(copy, opts.port ?? await freePort(), jdk, copy);
    process.once("exit", s.#onExit);
    try {
      await s.resume();
    } catch (err) {
      await s.dispose();
      throw err;
    }
    keepBuild(copy, dist);
    return s;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get log(): string {
    return this.#log;
  }

  info(): RealKeycloak {
    return { baseUrl: this.baseUrl, realm: FIXTURE.realm, version: KEYCLOAK_VERSION, jdk: `${this.jdk.major} (${this.jdk.home})` };
  }

  /** Start the process (again) and wait until the test realm answers. */
  async resume(timeoutMs = 180_000): Promise<void> {
    if (this.#child) return;
    const importDir = join(this.home, "data/import");
    mkdirSync(importDir, { recursive: true });
    cpSync(REALM_FIXTURE, join(importDir, "mailcloak-test-realm.json"));
    const started = Date.now();
    this.#log = "";
    const child = spawn(join(this.home, "bin/kc.sh"), [
      "start-dev", "--db=dev-mem", "--import-realm",
      "--http-host=127.0.0.1", `--http-port=${this.port}`,
      "--hostname-strict=false", "--cache=local", "--log-level=WARN",
    ], {
      detached: true, // its own process group, so stop() ends kc.sh and java together
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        JAVA_HOME: this.jdk.home,
        KC_BOOTSTRAP_ADMIN_USERNAME: FIXTURE.admin.username,
        KC_BOOTSTRAP_ADMIN_PASSWORD: FIXTURE.admin.password,
        JAVA_OPTS_KC_HEAP: "-Xms64m -Xmx768m",
      },
    });
    this.#child = child;
    child.stdout!.on("data", (b: Buffer) => (this.#log = (this.#log + b.toString()).slice(-20_000)));
    child.stderr!.on("data", (b: Buffer) => (this.#log = (this.#log + b.toString()).slice(-20_000)));
    this.#exited = new Promise((resolve) => child.once("exit", () => {
      this.#child = null;
      resolve();
    }));
    const url = `${this.baseUrl}/realms/${FIXTURE.realm}`;
    for (;;) {
      if (!this.#child) throw new Error(`Keycloak exited during startup:\n${this.#log}`);
      if (Date.now() - started > timeoutMs) {
        await this.stop();
        throw new Error(`Keycloak did not answer within ${timeoutMs} ms:\n${this.#log}`);
      }
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (r.ok) break;
      } catch { /* not up yet */ }
      await sleep(250);
    }
    this.startupMs = Date.now() - started;
    this.rssMiB = child.pid ? rssMiB(child.pid) : 0;
  }

  #kill(sig: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch { /* already gone */ }
  }

  /** Stop the process (SIGTERM to its group, SIGKILL after 20 s). */
  async stop(): Promise<void> {
    if (!this.#child) return;
    this.#kill("SIGTERM");
    const t = setTimeout(() => this.#kill("SIGKILL"), 20_000);
    await this.#exited;
    clearTimeout(t);
  }

  /** Stop and remove this server's copy of the distribution. */
  async dispose(): Promise<void> {
    await this.stop();
    process.removeListener("exit", this.#onExit);
    rmSync(this.#copy, { recursive: true, force: true });
  }

  summary(): string {
    return `real Keycloak ${KEYCLOAK_VERSION} on JDK ${this.jdk.major} (${this.jdk.home}) at ${this.baseUrl}: ` +
      `ready in ${(this.startupMs / 1000).toFixed(1)} s, RSS ${this.rssMiB} MiB`;
  }
}

/** Encode the shared server for child processes. */
export function exportShared(kc: KeycloakServer | { skip: string }): string {
  return JSON.stringify(kc instanceof KeycloakServer ? kc.info() : kc);
}

let own: Promise<KeycloakServer> | null = null;

/**
 * The server for this test file: the run's shared one (test/run.ts), or one
 * started for this process when the file runs alone. Returns a skip reason
 * outside CI when Keycloak cannot run here; throws in CI.
 */
export async function sharedKeycloak(): Promise<RealKeycloak | { skip: string }> {
  const CI = process.env.CI === "true";
  const env = process.env[ENV];
  if (env) {
    const v = JSON.parse(env) as RealKeycloak | { skip: string };
    if ("skip" in v && CI) throw new Error(`${v.skip}; .ci/run must install them`);
    return v;
  }
  const why = realKeycloakUnavailable();
  if (why) {
    if (CI) throw new Error(`${why}; .ci/run must install them`);
    return { skip: why };
  }
  own ??= KeycloakServer.start().then((s) => {
    process.stderr.write(`# ${s.summary()}\n`);
    return s;
  });
  const s = await own;
  return s.info();
}

/** Stop the server sharedKeycloak() started for this process, if any (call from after()). */
export async function releaseKeycloak(): Promise<void> {
  if (own) await (await own).dispose();
  own = null;
}

// ---- Admin REST helpers, for tests that change users, groups or federation ---

export class KeycloakAdmin {
  #token: { value: string; until: number } | null = null;

  constructor(readonly baseUrl: string, readonly realm: string = FIXTURE.realm) {}

  async token(): Promise<string> {
    if (this.#token && Date.now() < this.#token.until) return this.#token.value;
    const r = await fetch(`${this.baseUrl}/realms/master/protocol/openid-connect/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", client_id: "admin-cli", username: FIXTURE.admin.username, password: FIXTURE.admin.password }),
    });
    if (!r.ok) throw new Error(`admin token: ${r.status} ${await r.text()}`);
    const j = await r.json() as { access_token: string; expires_in: number };
    this.#token = { value: j.access_token, until: Date.now() + (j.expires_in - 10) * 1000 };
    return j.access_token;
  }

  /** A call under /admin/realms/{realm}; returns status and parsed JSON (or text). */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown; location: string | null }> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const r = await fetch(`${this.baseUrl}/admin/realms/${this.realm}${path}`, init);
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = text === "" ? null : JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: r.status, body: parsed, location: r.headers.get("location") };
  }

  async ok(method: string, path: string, body?: unknown): Promise<unknown> {
    const r = await this.call(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** The user with this exact username (Keycloak stores usernames in lower case). */
  async userId(username: string): Promise<string> {
    const list = await this.ok("GET", `/users?exact=true&username=${encodeURIComponent(username)}`) as { id: string }[];
    const id = list[0]?.id;
    if (!id) throw new Error(`no Keycloak user ${username}`);
    return id;
  }

  /** Replace some of a user's fields (GET, merge, PUT: Keycloak's PUT replaces attributes wholesale). */
  async updateUser(username: string, patch: Record<string, unknown>): Promise<void> {
    const id = await this.userId(username);
    const cur = await this.ok("GET", `/users/${id}`) as Record<string, unknown>;
    await this.ok("PUT", `/users/${id}`, { ...cur, ...patch });
  }
}
