import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { createRemoteConfig, remoteConfigRoute } from "../src/config/index.ts";
import type { ConfigStatus } from "../src/contracts/index.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { silentLogger } from "../src/runtime/logger.ts";
import { createCommandTrust } from "../src/trust/index.ts";
import { startTestCommands } from "../test/helpers/command-desk.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { quantileOfSorted } from "./quantile.ts";

/**
 * Time from a KV put to the agent's `config.status APPLIED` for one agent: BENCH_CONFIG_PUSHES
 * (default 100) pushes, one at a time, over loopback.
 */
export const name = "config";

export async function run(): Promise<Record<string, unknown>> {
  const pushes = Number(process.env.BENCH_CONFIG_PUSHES ?? 100);
  const server = await startNatsServer();
  const configDir = await mkdtemp(join(tmpdir(), "edge-agent-bench-config-"));
  const operator = await connect({ servers: server.url });
  const agentLink = await connect({ servers: server.url });
  let resolveApplied: ((status: ConfigStatus) => void) | null = null;
  // A KV revision's status is stored with its command (the command inbox), not emitted.
  const commands = await startTestCommands({
    machineId: "bench",
    onResult: (event) => {
      if (event.type === "config.status") resolveApplied?.(event.body as ConfigStatus);
    },
  });
  const remote = createRemoteConfig({
    machineId: "bench",
    configDir,
    clock: systemClock,
    logger: silentLogger(),
    baseline: { revision: 0, heartbeatSeconds: 60 },
    trust: createCommandTrust({ allowUnsigned: true, dataDir: configDir, clock: systemClock, logger: silentLogger() }),
    components: () => [{ name: "heartbeat", apply: () => undefined }],
    sink: { emit: async () => ({ eventId: "", sequence: 0 }) },
  });
  commands.commands.route(remoteConfigRoute("bench", remote));
  try {
    const kv = await new Kvm(operator).create("agent-config", { history: 10 });
    await remote.start();
    commands.attach(agentLink);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const latencies: number[] = [];
    for (let index = 0; index < pushes; index++) {
      const applied = new Promise<ConfigStatus>((resolve) => (resolveApplied = resolve));
      const began = performance.now();
      await kv.put("machine.bench", JSON.stringify({ heartbeatSeconds: 10 + (index % 50) }));
      const status = await Promise.race([
        applied,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no status within 10 s")), 10_000)),
      ]);
      if (status.status !== "APPLIED") throw new Error(`push ${index}: ${status.status} ${status.error}`);
      latencies.push(performance.now() - began);
    }
    latencies.sort((a, b) => a - b);
    const at = (quantile: number): number => Number((quantileOfSorted(latencies, quantile) ?? 0).toFixed(2));
    return { pushes, putToAppliedMs: { p50: at(0.5), p99: at(0.99), max: at(1) } };
  } finally {
    await commands.stop();
    await remote.stop();
    await agentLink.close();
    await operator.close();
    await server.dispose();
    await rm(configDir, { recursive: true, force: true });
  }
}
