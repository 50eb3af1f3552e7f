import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Clock, Logger } from "../runtime/index.ts";
import { writeFileAtomic } from "../runtime/index.ts";
import type { NatsLink } from "../transport/index.ts";
import type { KafkaHealth } from "./kafka/index.ts";
import { type BridgeStatus, shardStatus } from "./service/index.ts";
import type { BridgeSettings } from "./settings/index.ts";
import type { ShardRunners } from "./shard-runners.ts";
import type { ShardLeases } from "./shards/index.ts";

export const BRIDGE_STATUS_FILE = "status.json";

/** What one bridge's status is read from (`leases` and `fatalReason` as they are at the time). */
export interface BridgeStatusSources {
  readonly settings: BridgeSettings;
  readonly version: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly clock: Clock;
  readonly link: NatsLink;
  readonly runners: ShardRunners;
  readonly kafkaHealth: KafkaHealth;
  readonly memory: () => BridgeStatus["memory"];
  readonly leases: () => ShardLeases | null;
  readonly fatalReason: () => string | null;
}

/** The bridge's status now: its links, Kafka's health, the group's leases and each shard this instance ran. */
export async function bridgeStatusOf(sources: BridgeStatusSources): Promise<BridgeStatus> {
  const { settings, link, runners, clock } = sources;
  const connection = link.connection;
  const leases = sources.leases();
  const shards = await Promise.all(
    runners.all.map((runner) =>
      shardStatus(connection, runner.stats(), runners.consumerName(runner.name), runners.filterSubject(runner.name)),
    ),
  );
  return {
    instanceId: settings.instanceId,
    group: settings.group,
    version: sources.version,
    pid: sources.pid,
    startedAt: sources.startedAt,
    reportedAt: new Date(clock.now()).toISOString(),
    nats: {
      connected: link.state === "connected",
      server: connection && !connection.isClosed() ? connection.getServer() : null,
    },
    kafkaBrokers: settings.kafka.brokers,
    kafka: sources.kafkaHealth.status(),
    liveInstances: leases?.liveInstances ?? 0,
    shardsHeld: leases?.heldShards ?? [],
    shards: shards.sort((a, b) => a.shard.localeCompare(b.shard)),
    fatal: sources.fatalReason(),
    memory: sources.memory(),
  };
}

/** Leaves the status in `<dataDir>/status.json` (for `edge-bridge status` without a link); a failure is only logged. */
export async function writeBridgeStatusFile(
  dataDir: string,
  status: () => Promise<BridgeStatus>,
  logger: Logger,
): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(dataDir, BRIDGE_STATUS_FILE), `${JSON.stringify(await status(), null, 2)}\n`, 0o600);
  } catch (error) {
    logger.warn({ err: error }, "cannot write the status file");
  }
}
