// mailcloakctl migrate-store --from sqlite:PATH --to postgres://...: copy
// an installation's SQLite database into an empty PostgreSQL (every row,
// one transaction; store/migrate-store.ts). The target's password comes from
// the config's store: section when it names the same URL, else from
// MAILCLOAK_STORE_PASSWORD.

import { redactUrl } from "../redact-url.js";
import type { Command } from "commander";
import { isPostgresUrl } from "../config/store.js";
import { COPIED_TABLES, copySqliteToPostgres } from "../store/migrate-store.js";
import { postgresSettingsFor } from "../store/postgres.js";
import { asCliError, CliError, EXIT_CODES } from "./exit.js";
import type { Io } from "./mailcloakctl.js";
import { settingsOf } from "./service.js";

export function addMigrateStoreCommand(program: Command, io: Io): void {
  program
    .command("migrate-store")
    .description("copy every row of a SQLite database into an empty PostgreSQL database (creating its tables)")
    .requiredOption("--from <sqlite:PATH>", "the SQLite database to copy (sqlite:/var/lib/mailcloak/state.db)")
    .requiredOption("--to <postgres://USER@HOST:PORT/DB>", "the PostgreSQL database (password: store.password_file of --config, or MAILCLOAK_STORE_PASSWORD)")
    .action(async (opts: { from: string; to: string }, cmd: Command) => {
      const from = opts.from.replace(/^sqlite:/, "");
      if (from.trim() === "" || isPostgresUrl(from)) throw new CliError(EXIT_CODES.usage, `--from: expected sqlite:PATH, got ${JSON.stringify(redactUrl(opts.from))}`);
      if (!isPostgresUrl(opts.to)) throw new CliError(EXIT_CODES.usage, "--to: expected postgres://USER@HOST:PORT/DATABASE");
      const s = settingsOf(cmd, io);
      const pgFromConfig = s.config?.store?.backend === "postgres" ? s.config.store.postgres : undefined;
      let report;
      try {
        const to = postgresSettingsFor(opts.to, { busyTimeoutMs: s.busyTimeoutMs, postgres: pgFromConfig });
        report = await copySqliteToPostgres(from, to);
        io.out(`copied ${from} to ${to.url}:`);
      } catch (err) {
        throw asCliError(err);
      }
      for (const t of COPIED_TABLES) io.out(`  ${t}: ${report.counts[t]} row${report.counts[t] === 1 ? "" : "s"}`);
    });
}
