// Preloaded into a real daemon (node --import) by test/log-loss.integration.test.ts:
// SIGUSR2 makes the process throw an uncaught exception from a timer, the
// kind of fatal error a bug would cause mid-load. Nothing of the daemon is
// replaced; this only adds a way to reach its fatal-error path on demand.

process.on("SIGUSR2", () => {
  setImmediate(() => {
    throw new Error("fatal error injected by the log-loss test (SIGUSR2)");
  });
});
