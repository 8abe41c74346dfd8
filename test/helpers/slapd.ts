// A private OpenLDAP server for the tests: Debian's slapd, run in the
// foreground as our child on a free loopback port, with its own slapd.conf,
// database and the schema and data of test/fixtures/ldap/ (loaded with
// slapadd before the start). Nothing of the system's slapd (/etc/ldap,
// /var/lib/ldap, port 389) is used or touched.
//
// The root DN (cn=admin) gets a random password for this run only; tests
// change entries through it with ldapmodify. Keycloak binds as the read-only
// cn=keycloak of the fixture.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, have, ROOT, tempDir } from "./daemon.js";
import { canConnect, run, type RunResult } from "./mailstack.js";

export const LDAP_FIXTURE_DIR = join(ROOT, "test/fixtures/ldap");

/** What test/fixtures/ldap/directory.ldif holds (keep in step). */
export const LDAP = {
  baseDn: "dc=d1,dc=test",
  usersDn: "ou=people,dc=d1,dc=test",
  adminDn: "cn=admin,dc=d1,dc=test",
  /** Keycloak's bind: reads everything but passwords (see the ACL in slapdConf). */
  keycloak: { dn: "cn=keycloak,ou=services,dc=d1,dc=test", password: "keycloak-bind-pw" },
  users: {
    lena: { dn: "uid=lena,ou=people,dc=d1,dc=test", mail: "lena@d1.test", password: "lena-pw", sendAllowed: "TRUE" },
    otto: { dn: "uid=otto,ou=people,dc=d1,dc=test", mail: "otto@d1.test", password: "otto-pw", sendAllowed: "FALSE" },
  },
} as const;

/** A DN and its password, for a simple bind. */
export interface Bind {
  readonly dn: string;
  readonly password: string;
}

const TOOLS = ["slapd", "slapadd", "ldapmodify", "ldapsearch", "ldapwhoami"] as const;
const SCHEMA_DIR = "/etc/ldap/schema";
const MODULE_DIR = "/usr/lib/ldap";

/** Why slapd cannot run here, or null. */
export function slapdUnavailable(): string | null {
  const missing: string[] = TOOLS.filter((t) => !have(t));
  if (!existsSync(join(SCHEMA_DIR, "inetorgperson.schema"))) missing.push(`${SCHEMA_DIR}/inetorgperson.schema`);
  if (!existsSync(join(MODULE_DIR, "back_mdb.so"))) missing.push(`${MODULE_DIR}/back_mdb.so`);
  return missing.length > 0 ? `not installed: ${missing.join(", ")} (Debian: slapd ldap-utils)` : null;
}

export class Slapd {
  readonly dir: string;
  port = 0;
  #child: ChildProcess | null = null;
  #exited: Promise<void> | null = null;
  #output = "";
  readonly #adminPwFile: string;
  readonly #onExit = (): void => void this.#child?.kill("SIGKILL");

  private constructor() {
    this.dir = tempDir("mailcloak-slapd-");
    this.#adminPwFile = join(this.dir, "admin.pw");
  }

  /** Write the config, load the fixture LDIF, start slapd and wait until it accepts connections. */
  static async start(ldif = join(LDAP_FIXTURE_DIR, "directory.ldif")): Promise<Slapd> {
    const why = slapdUnavailable();
    if (why) throw new Error(why);
    const s = new Slapd();
    process.once("exit", s.#onExit);
    try {
      await s.#start(ldif);
      return s;
    } catch (err) {
      await s.stop().catch(() => undefined);
      throw err;
    }
  }

  get url(): string {
    return `ldap://127.0.0.1:${this.port}`;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get output(): string {
    return this.#output;
  }

  get #conf(): string {
    return join(this.dir, "slapd.conf");
  }

  #slapdConf(adminPw: string): string {
    return [
      "# test-only slapd.conf (test/helpers/slapd.ts)",
      ...["core", "cosine", "inetorgperson"].map((n) => `include ${SCHEMA_DIR}/${n}.schema`),
      `include ${join(LDAP_FIXTURE_DIR, "tn-mail.schema")}`,
      `pidfile ${join(this.dir, "slapd.pid")}`,
      `argsfile ${join(this.dir, "slapd.args")}`,
      `modulepath ${MODULE_DIR}`,
      "moduleload back_mdb",
      "database mdb",
      `suffix "${LDAP.baseDn}"`,
      `rootdn "${LDAP.adminDn}"`,
      `rootpw ${adminPw}`,
      `directory ${join(this.dir, "db")}`,
      "maxsize 16777216",
      "index objectClass eq",
      "index uid,mail eq",
      "# Users may bind; nobody reads a password hash.",
      "access to attrs=userPassword by anonymous auth by * none",
      `access to * by dn.exact="${LDAP.keycloak.dn}" read by self read by * none`,
      "",
    ].join("\n");
  }

  async #start(ldif: string): Promise<void> {
    const adminPw = randomBytes(12).toString("hex");
    writeFileSync(this.#adminPwFile, adminPw, { mode: 0o600 });
    mkdirSync(join(this.dir, "db"));
    writeFileSync(this.#conf, this.#slapdConf(adminPw), { mode: 0o600 });
    chmodSync(this.dir, 0o700);
    const load = await run("slapadd", ["-f", this.#conf, "-l", ldif], { timeoutMs: 30_000 });
    if (load.code !== 0) throw new Error(`slapadd -l ${ldif} exited ${load.code}: ${load.stderr}${load.stdout}`);

    // A port taken between freePort() and slapd's bind is retried with another.
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      if (await this.#spawn()) return;
      if (attempt >= 3 || !/Address already in use/.test(this.#output)) {
        throw new Error(`slapd did not start on ${this.url}:\n${this.#output}`);
      }
    }
  }

  /** Start slapd; true once it accepts connections, false if it exited. */
  async #spawn(): Promise<boolean> {
    this.#output = "";
    // -d keeps slapd in the foreground (our child, our PID); level 0 prints only errors.
    const child = spawn("slapd", ["-d", "0", "-h", `${this.url}/`, "-f", this.#conf], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
    });
    this.#child = child;
    const keep = (b: Buffer): void => void (this.#output = (this.#output + b.toString()).slice(-50_000));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    let exited = false;
    this.#exited = new Promise((resolve) => child.once("exit", () => {
      exited = true;
      this.#child = null;
      resolve();
    }));
    child.once("error", (err) => (this.#output += String(err)));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (exited) return false;
      if (await canConnect(this.port)) return true;
      if (Date.now() > deadline) throw new Error(`slapd did not accept connections on ${this.url} within 20 s:\n${this.#output}`);
      await sleep(50);
    }
  }

  /** ldapmodify as the root DN; throws with slapd's answer if it fails. */
  async modify(ldif: string): Promise<void> {
    const r = await this.#client("ldapmodify", [], ldif);
    if (r.code !== 0) throw new Error(`ldapmodify exited ${r.code}: ${r.stderr}${r.stdout}\n${ldif}`);
  }

  /** Replace one attribute of an entry. */
  replace(dn: string, attr: string, value: string): Promise<void> {
    return this.modify(`dn: ${dn}\nchangetype: modify\nreplace: ${attr}\n${attr}: ${value}\n`);
  }

  /** ldapsearch -LLL (as the root DN unless `as` is given); the LDIF it prints. */
  async search(base: string, filter: string, attrs: readonly string[] = [], as?: Bind): Promise<string> {
    const r = await this.#client("ldapsearch", ["-LLL", "-b", base, filter, ...attrs], undefined, as);
    if (r.code !== 0) throw new Error(`ldapsearch exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** A simple bind; true if slapd accepts the password. */
  async canBind(as: Bind): Promise<boolean> {
    return (await this.#client("ldapwhoami", [], undefined, as)).code === 0;
  }

  async #client(cmd: string, args: string[], input?: string, as?: Bind): Promise<RunResult> {
    // -y: the password from a file, so it is not on a command line.
    let pwFile = this.#adminPwFile;
    if (as) {
      pwFile = join(this.dir, `bind-${randomBytes(4).toString("hex")}.pw`);
      writeFileSync(pwFile, as.password, { mode: 0o600 });
    }
    try {
      const base = ["-x", "-H", this.url, "-D", as?.dn ?? LDAP.adminDn, "-y", pwFile];
      return await run(cmd, [...base, ...args], input === undefined ? {} : { input });
    } finally {
      if (as) rmSync(pwFile, { force: true });
    }
  }

  /** SIGSTOP: slapd stays up, its port still accepts connections (the kernel's backlog), nothing is answered. */
  pause(): void {
    this.#signal("SIGSTOP");
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.#signal("SIGCONT");
  }

  #signal(sig: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) throw new Error(`slapd is not running (${sig})`);
    process.kill(pid, sig);
  }

  /** End the process (connections to the port are refused) and keep the database, for restart(). */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill("SIGTERM");
    // A paused slapd acts on SIGTERM only once it runs again.
    child.kill("SIGCONT");
    const done = await Promise.race([this.#exited!.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) {
      child.kill("SIGKILL");
      await this.#exited;
    }
  }

  /** Start slapd again on the same port and database after kill(). */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("slapd is still running");
    if (!(await this.#spawn())) throw new Error(`slapd did not start again on ${this.url}:\n${this.#output}`);
  }

  /** SIGTERM (slapd flushes and exits), SIGKILL after 10 s; then delete the temp dir. */
  async stop(): Promise<void> {
    await this.kill();
    process.removeListener("exit", this.#onExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines slapd printed (for assertion messages). */
  tail(lines = 30): string {
    return this.#output.split("\n").slice(-lines).join("\n");
  }

  /** slapd's own pid file (for checking that the PID we own is the server's). */
  pidFromFile(): number | null {
    const f = join(this.dir, "slapd.pid");
    return existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : null;
  }
}
