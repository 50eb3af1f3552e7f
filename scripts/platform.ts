/**
 * `npm run platform`: the whole platform on this machine in one command (scripts/platform/run-platform.ts).
 *
 *   npm run platform [-- --agents N] [--fresh] [--state-dir DIR] [--any-ports]
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { LocalPlatform } from "./platform/run-platform.ts";

const USAGE = `usage: npm run platform [-- options]

Runs nats-server (JetStream), Kafka, Pinot, edge-agent dev-setup, edge-bridge pinot-setup, the bridge
and local agents on this machine, on 127.0.0.1; prints what runs where once the first device row is
queryable in Pinot; Ctrl-C stops everything.

options:
  --agents N        how many local agents (local-1 ... local-N; default 1)
  --fresh           remove the state of earlier runs first (their data and topics)
  --state-dir DIR   where the state and logs go (default .platform in the repository)
  --any-ports       free ports only, not the usual 4222, 9092, 9000... (a second platform beside one)
  -h, --help        this text

exit codes: 0 stopped by a signal, everything stopped cleanly; 1 a failure (the line says which)`;

const root = resolve(import.meta.dirname, "..");

function parse(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      agents: { type: "string", default: "1" },
      fresh: { type: "boolean", default: false },
      "state-dir": { type: "string" },
      "any-ports": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (positionals.length > 0) throw new Error(`unexpected ${JSON.stringify(positionals[0])}`);
  const agents = Number(values.agents);
  if (!/^\d+$/.test(values.agents) || agents < 1 || agents > 50)
    throw new Error(`--agents must be a whole number from 1 to 50 (got ${JSON.stringify(values.agents)})`);
  return { ...values, agents };
}

let options: ReturnType<typeof parse>;
try {
  options = parse(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`edge platform: ${(error as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const platform = new LocalPlatform({
  stateDir: resolve(options["state-dir"] ?? resolve(root, ".platform")),
  cwd: process.cwd(),
  agents: options.agents,
  fresh: options.fresh,
  anyPorts: options["any-ports"],
  out: process.stdout,
});
let firstSignalAt: number | null = null;
const onSignal = (signal: NodeJS.Signals): void => {
  // npm passes the terminal's Ctrl-C on as well: the same key press often arrives twice.
  if (firstSignalAt !== null) {
    if (performance.now() - firstSignalAt > 1_000)
      process.stdout.write(`${signal} again: still stopping (each program gets its own deadline, then is killed)\n`);
    return;
  }
  firstSignalAt = performance.now();
  platform.requestStop(signal);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("SIGHUP", onSignal);
process.exitCode = await platform.run();
