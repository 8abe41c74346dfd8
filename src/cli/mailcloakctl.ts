// mailcloakctl: the admin CLI for mailcloak's SQLite database (domains,
// aliases, app credentials). Importing it runs nothing: bin/mailcloakctl calls
// main(), and tests call it with argv and an Io of their own. buildProgram()
// is separate so a command group is one more add*Commands(program, io) call.

import { flushCache } from "./cache.js";
import { Command, CommanderError } from "commander";
import { DEFAULT_CONFIG_PATH } from "../config/load.js";
import { DEFAULTS } from "../config/types.js";
import { asCliError, CliError, describeFailure, EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from "./exit.js";
import { formatAliases, formatApps, formatDomains, formatJson } from "./format.js";
import { runInit } from "./init.js";
import { addQuotaCommands } from "./quota.js";
import { addSendersCommands } from "./senders.js";
import { addMigrateStoreCommand } from "./migrate-store.js";
import { MIN_APP_PASSWORD_LENGTH, readPassword, shortPasswordWarning } from "./password-input.js";
import { settingsOf, withService } from "./service.js";

export { EXIT_CODES, type ExitCode } from "./exit.js";

const PROG = "mailcloakctl";
/** --json keeps the Go version's fields, times included. */
const JSON_HELP = "a JSON array, fields as the Go version prints them (updated_at in epoch seconds)";

/** Where output goes: success lines to stdout, the one error line to stderr. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Commander's own text (help, version) as is; default process.stdout. */
  writeOut?(text: string): void;
  /** Commander's usage errors as is; default process.stderr. */
  writeErr?(text: string): void;
}

const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${PROG}: ${line}\n`),
};

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * A command that only holds subcommands. Without a subcommand (or with an
 * unknown one) it fails with one usage line rather than commander's help.
 */
function addGroup(parent: Command, name: string, description: string): Command {
  const group = parent.command(name).description(description).usage("<command> [options]");
  group.argument("[command]").action((sub: string | undefined) => {
    const names = group.commands.map((c) => c.name()).join(", ");
    const help = `see: ${PROG} ${name} --help`;
    if (sub === undefined) throw new CliError(EXIT_CODES.usage, `${name}: missing command (one of: ${names}); ${help}`);
    throw new CliError(EXIT_CODES.usage, `${name}: unknown command '${sub}' (one of: ${names}); ${help}`);
  });
  return group;
}

function addInitCommand(program: Command, io: Io): void {
  program
    .command("init")
    .description("create the database, or migrate an older one in place keeping every row")
    .option("--owner <user>", "when run as root, give the database (and its directory) to this user and its primary group " +
      "(default: daemon.user of the config file, when one was read)")
    .action(async (opts: { owner?: string }, cmd: Command) => {
      const s = settingsOf(cmd, io);
      let lines: string[];
      try {
        lines = await runInit(s, { owner: opts.owner });
      } catch (err) {
        throw asCliError(err);
      }
      for (const line of lines) io.out(line);
    });
}

function addCacheCommands(program: Command, io: Io): void {
  const cache = addGroup(program, "cache", "the running daemon's Keycloak cache");
  cache.command("flush")
    .description("empty the running daemon's cache (SIGUSR1), e.g. after changing a user in Keycloak")
    .option("--pid-file <path>", "the daemon's pid file (default: daemon.pid_file of the config file)")
    .action((opts: { pidFile?: string }, cmd: Command) => {
      const s = settingsOf(cmd, io);
      const pidFile = opts.pidFile ?? s.config?.daemon.pidFile ?? null;
      if (!pidFile) throw new CliError(EXIT_CODES.usage, "cache flush: no pid file: pass --pid-file, or --config with daemon.pid_file set");
      const pid = flushCache(pidFile);
      io.out(`cache flush requested (pid ${pid})`);
    });
}

function addDomainCommands(program: Command, io: Io): void {
  const domains = addGroup(program, "domains", "the mail domains aliases may be in");
  domains.command("add").description("add a domain (enabled)").argument("<domain>")
    .action((domain: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
      io.out(`domain ${await st.addDomain(who, domain)} added`);
    }));
  domains.command("del").description("delete a domain and every alias in it").argument("<domain>")
    .action((domain: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
      const r = await st.deleteDomain(who, domain);
      io.out(`domain ${r.domain} deleted, with ${r.aliases} alias${r.aliases === 1 ? "" : "es"}`);
    }));
  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
    domains.command(verb).description(`${verb} a domain (its aliases ${enabled ? "work again" : "stop working"})`).argument("<domain>")
      .action((domain: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
        io.out(`domain ${await st.setDomainEnabled(who, domain, enabled)} ${verb}d`);
      }));
  }
  domains.command("list").description("list the domains: domain, enabled|disabled, updated_at (UTC, ISO 8601)").option("--json", JSON_HELP)
    .action((opts: { json?: boolean }, cmd: Command) => withService(cmd, io, async (st) => {
      const rows = await st.listDomains();
      for (const line of opts.json ? formatJson(rows) : formatDomains(rows)) io.out(line);
    }));
}

function addAliasCommands(program: Command, io: Io): void {
  const aliases = addGroup(program, "aliases", "addresses delivered to (and sendable by) a user");
  aliases.command("add").description("add an alias; @domain is the domain's catch-all").argument("<alias_email>").argument("<username>")
    .action((alias: string, user: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
      const r = await st.addAlias(who, alias, user);
      const catchAll = r.alias_email.startsWith("@") ? " (catch-all)" : "";
      io.out(`alias ${r.alias_email}${catchAll} -> ${r.target_user} added`);
    }));
  aliases.command("del").description("delete an alias").argument("<alias_email>")
    .action((alias: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
      io.out(`alias ${await st.deleteAlias(who, alias)} deleted`);
    }));
  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
    aliases.command(verb).description(`${verb} an alias`).argument("<alias_email>")
      .action((alias: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
        io.out(`alias ${await st.setAliasEnabled(who, alias, enabled)} ${verb}d`);
      }));
  }
  aliases.command("list").description("list the aliases: alias_email, target_user, enabled|disabled, updated_at (UTC, ISO 8601)")
    .option("--user <username>", "only this user's aliases").option("--json", JSON_HELP)
    .action((opts: { user?: string; json?: boolean }, cmd: Command) => withService(cmd, io, async (st) => {
      const rows = await st.listAliases(opts.user);
      for (const line of opts.json ? formatJson(rows) : formatAliases(rows)) io.out(line);
    }));
}

function addAppCommands(program: Command, io: Io): void {
  const apps = addGroup(program, "apps", "application credentials (SMTP logins) and the senders each may use");
  apps.command("add").description("add an app, or replace its password (and enable it)").argument("<app_id>").argument("[password]")
    .option("--password-stdin", "read the password from the first line of stdin")
    .option("--generate", "make a random password and print it once on stdout (only its hash is stored)")
    .addHelpText("after", "\nWithout a password argument, --password-stdin or --generate, the password is prompted for (twice, not echoed) on a terminal." +
      `\nA given password shorter than ${MIN_APP_PASSWORD_LENGTH} characters is accepted with a warning on stderr.`)
    .action((appId: string, password: string | undefined, opts: { passwordStdin?: boolean; generate?: boolean }, cmd: Command) => withService(cmd, io, async (st, who) => {
      const generate = opts.generate === true;
      const secret = await readPassword({ argument: password, fromStdin: opts.passwordStdin === true, generate });
      const r = await st.setAppPassword(who, appId, secret);
      io.out(r.created ? `app ${r.appId} added` : `app ${r.appId}: password replaced`);
      if (generate) io.out(secret); // the one time it is shown
      const warning = generate ? null : shortPasswordWarning(secret);
      if (warning !== null) io.err(warning);
    }));
  apps.command("allow").description("allow an app to send as an address").argument("<app_id>").argument("<from_addr>")
    .action((appId: string, addr: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
      const r = await st.allowAppSender(who, appId, addr);
      io.out(`app ${r.appId} may send as ${r.fromAddr}`);
    }));
  apps.command("disallow").description("stop an app sending as an address").argument("<app_id>").argument("<from_addr>")
    .action((appId: string, addr: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
      const r = await st.disallowAppSender(who, appId, addr);
      io.out(`app ${r.appId} may no longer send as ${r.fromAddr}`);
    }));
  apps.command("del").description("delete an app and its allowed senders").argument("<app_id>")
    .action((appId: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
      io.out(`app ${await st.deleteApp(who, appId)} deleted`);
    }));
  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
    apps.command(verb).description(`${verb} an app`).argument("<app_id>")
      .action((appId: string, _o: unknown, cmd: Command) => withService(cmd, io, async (st, who) => {
        io.out(`app ${await st.setAppEnabled(who, appId, enabled)} ${verb}d`);
      }));
  }
  apps.command("list").description("list the apps (app_id, enabled|disabled, updated_at in UTC ISO 8601), each followed by its allowed senders")
    .option("--json", `${JSON_HELP}, each app with its senders`)
    .action((opts: { json?: boolean }, cmd: Command) => withService(cmd, io, async (st) => {
      const rows = await st.listApps();
      for (const line of opts.json ? formatJson(rows) : formatApps(rows)) io.out(line);
    }));
}

/** The whole command tree. Usage errors throw CommanderError (exitOverride) after printing one line. */
export function buildProgram(io: Io = processIo): Command {
  const program = new Command(PROG);
  program
    .description("Administer mailcloak's SQLite database: domains, aliases and app credentials.")
    .usage("[--db PATH] [--config PATH] <command> [options]")
    .option("--db <path|url>", `the SQLite database file, or a postgres://USER@HOST:PORT/DB URL (password: MAILCLOAK_STORE_PASSWORD) (default: store.url or sqlite.path of the config file, else ${DEFAULTS.sqlitePath}); other URLs (scheme://...) are refused`)
    .option("--config <path>", `the mailcloak config file (default: ${DEFAULT_CONFIG_PATH}, used when it exists and is valid)`)
    .exitOverride()
    .configureOutput({
      writeOut: (str) => (io.writeOut ? io.writeOut(str) : void process.stdout.write(str)),
      writeErr: (str) => (io.writeErr ? io.writeErr(str) : void process.stderr.write(str)),
      outputError: (str, write) => write(`${PROG}: ${oneLine(str.replace(/^error: /, ""))}\n`),
    })
    .helpCommand(true)
    .addHelpText("after", EXIT_CODES_HELP);
  // The program itself only dispatches: no command, or an unknown one, is a usage error.
  program.argument("[command]").action((sub: string | undefined) => {
    if (sub === undefined) throw new CliError(EXIT_CODES.usage, `missing command; see: ${PROG} --help`);
    throw new CliError(EXIT_CODES.usage, `unknown command '${sub}'; see: ${PROG} --help`);
  });

  addInitCommand(program, io);
  addDomainCommands(program, io);
  addAliasCommands(program, io);
  addAppCommands(program, io);
  addCacheCommands(program, io);
  addQuotaCommands(program, io);
  addSendersCommands(program, io);
  addMigrateStoreCommand(program, io);
  return program;
}

/** Parse and run one command line; resolves to the exit status. */
export async function main(argv: readonly string[] = process.argv, io: Io = processIo): Promise<ExitCode> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv]);
    return EXIT_CODES.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, help, --version: 0. Anything else commander has already reported in one line.
      const shown = err.code === "commander.helpDisplayed" || err.code === "commander.version" ||
        (err.code === "commander.help" && err.exitCode === 0);
      return shown ? EXIT_CODES.ok : EXIT_CODES.usage;
    }
    const f = describeFailure(err);
    io.err(f.message);
    return f.exitCode;
  }
}
