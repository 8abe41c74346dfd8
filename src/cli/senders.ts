// mailcloakctl senders: delegated senders (send-as), through the admin
// service (admin/service.ts), as mailcloak-admin's /api/senders.

import type { Command } from "commander";
import { identityLoginCheck } from "../admin/login-check.js";
import type { DelegationRow } from "../store/types.js";
import { CliError, EXIT_CODES } from "./exit.js";
import { formatJson, isoTime } from "./format.js";
import type { Io } from "./mailcloakctl.js";
import { withService } from "./service.js";

export function formatDelegations(rows: readonly DelegationRow[]): string[] {
  return rows.map((r) => `${r.from_addr}\t${r.login}\t${isoTime(r.updated_at)}`);
}

export function addSendersCommands(program: Command, io: Io): void {
  const senders = program.command("senders").description("delegated senders: logins allowed to send as an address they do not own").usage("<command> [options]");
  senders.argument("[command]").action((sub: string | undefined) => {
    const names = senders.commands.map((c) => c.name()).join(", ");
    throw new CliError(EXIT_CODES.usage, `senders: ${sub === undefined ? "missing command" : `unknown command '${sub}'`} (one of: ${names}); see: mailcloakctl senders --help`);
  });
  senders.command("allow").description("let a login send as an address in a local domain").argument("<address>").argument("<login>")
    .option("--skip-login-check", "do not ask the identity source whether the login exists")
    .addHelpText("after", "\nWith a config file (--config, or the default one), the login is looked up in its identity source first: an unknown login is refused.")
    .action((address: string, login: string, opts: { skipLoginCheck?: boolean }, cmd: Command) => withService(cmd, io, async (svc, who, s) => {
      const cfg = s.config;
      const check = cfg !== null && opts.skipLoginCheck !== true;
      const r = await svc.allowSender(who, address, login, {
        configDomains: new Set(cfg?.policy.localDomains ?? []),
        loginCheck: check ? identityLoginCheck(cfg) : undefined,
      });
      if (!check) io.err(`warning: login ${r.row.login} not checked against the identity source (${cfg === null ? "no config file; pass --config" : "--skip-login-check"})`);
      io.out(r.created ? `${r.row.login} may send as ${r.row.from_addr}` : `${r.row.login} may already send as ${r.row.from_addr}`);
    }));
  senders.command("deny").description("remove a delegation").argument("<address>").argument("<login>")
    .action((address: string, login: string, _o: unknown, cmd: Command) => withService(cmd, io, async (svc, who) => {
      const r = await svc.denySender(who, address, login);
      io.out(`${r.login} may no longer send as ${r.fromAddr}`);
    }));
  senders.command("list").description("list the delegations: address, login, updated_at (UTC, ISO 8601)")
    .option("--login <login>", "only this login's delegations").option("--json", "a JSON array")
    .action((opts: { login?: string; json?: boolean }, cmd: Command) => withService(cmd, io, async (svc) => {
      const rows = await svc.listSenders(opts.login);
      for (const line of opts.json ? formatJson(rows) : formatDelegations(rows)) io.out(line);
    }));
}
