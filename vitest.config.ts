import { resolve } from "node:path";
import { defineConfig } from "vitest/config";
import { SummaryReporter } from "./test/helpers/summary-reporter.ts";

// vitest keeps an API token under XDG_DATA_HOME (~/.local/share by default), read right after this
// file: a test run leaves nothing in the home dir. Nothing of ours reads XDG_DATA_HOME.
process.env.XDG_DATA_HOME = resolve(import.meta.dirname, "node_modules", ".cache");

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A temp root per run (TMPDIR): removed at the end, and anything a test left in it fails the run.
    globalSetup: ["test/helpers/temp-root.ts"],
    testTimeout: 60_000,
    // Hooks start servers and run setup commands (runScript allows one 45 s).
    hookTimeout: 60_000,
    // Integration tests start their own nats-server and daemons: two cores, so keep parallelism modest.
    maxWorkers: 2,
    reporters: ["default", new SummaryReporter()],
  },
});
