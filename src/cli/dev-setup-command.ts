import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { CommandError, connectOnce, ExitCode } from "../cli-kit/index.ts";
import {
  AGENT_CONFIG_BUCKET,
  DEFAULT_TELEMETRY_PARTITIONS,
  MAX_PARTITIONS,
  PLATFORM_STREAMS,
  type WantedStreamOptions,
  wantedStreamConfig,
} from "../contracts/index.ts";
import type { Settings } from "../settings/index.ts";
import { planStreams, type WantedStream } from "./stream-plan.ts";

/** The streams of docs/DESIGN.md, as dev-setup wants them on a server of this version. */
export function wantedStreams(serverVersion: string, options: WantedStreamOptions = {}): WantedStream[] {
  return PLATFORM_STREAMS.map((stream) => {
    const { subjects, storage, ...rest } = wantedStreamConfig(stream, serverVersion, options);
    return { ...rest, subjects: [...subjects], storage: storage as StreamConfig["storage"] };
  });
}

/** `--telemetry-partitions`: a whole number from 0 (unpartitioned) to MAX_PARTITIONS; 1 means none too. */
export function parseTelemetryPartitions(flag: string | undefined): number {
  if (flag === undefined) return DEFAULT_TELEMETRY_PARTITIONS;
  const partitions = /^\d+$/.test(flag.trim()) ? Number(flag.trim()) : Number.NaN;
  if (!Number.isInteger(partitions) || partitions > MAX_PARTITIONS)
    throw new CommandError(
      `--telemetry-partitions ${JSON.stringify(flag)}: give a whole number from 0 (unpartitioned) to ${MAX_PARTITIONS}`,
      ExitCode.badSettings,
    );
  return partitions;
}

/**
 * Creates the streams of docs/DESIGN.md and the `agent-config` bucket, and only ever adds to what a
 * server already has (stream-plan.ts): a stream another platform made keeps its subjects and
 * limits, gains the subjects the agent needs, and nothing is deleted. Prints one line per stream
 * saying what it changed.
 */
export async function devSetup(
  settings: Settings,
  report: (line: string) => void,
  options: WantedStreamOptions = { telemetryPartitions: DEFAULT_TELEMETRY_PARTITIONS },
): Promise<void> {
  const connection = await connectOnce(settings, "edge-agent-dev-setup");
  try {
    const manager = await jetstreamManager(connection);
    const existing: StreamConfig[] = [];
    for await (const info of manager.streams.list()) existing.push(info.config);
    const version = connection.info?.version ?? "2.10.0";
    for (const plan of planStreams(wantedStreams(version, options), existing)) {
      if (plan.action === "create") await manager.streams.add({ ...plan.config, name: plan.name });
      else if (plan.action === "update") await manager.streams.update(plan.name, plan.config);
      const what = plan.changes.length > 0 ? plan.changes.join("; ") : "up to date, unchanged";
      report(`stream ${plan.name}: ${what}`);
      for (const note of plan.notes) report(`stream ${plan.name}: ${note}`);
    }
    const bucketStream = `KV_${AGENT_CONFIG_BUCKET}`;
    const bucketExisted = existing.some((stream) => stream.name === bucketStream);
    await new Kvm(connection).create(AGENT_CONFIG_BUCKET, { history: 10 });
    report(`key-value bucket ${AGENT_CONFIG_BUCKET}: ${bucketExisted ? "already there, unchanged" : "created"}`);
  } finally {
    await connection.close();
  }
}
