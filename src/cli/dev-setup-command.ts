import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connectOnce } from "../cli-kit/index.ts";
import { AGENT_CONFIG_BUCKET, PLATFORM_STREAMS, wantedStreamConfig } from "../contracts/index.ts";
import type { Settings } from "../settings/index.ts";
import { planStreams, type WantedStream } from "./stream-plan.ts";

/** The streams of docs/DESIGN.md, as dev-setup wants them on a server of this version. */
export function wantedStreams(serverVersion: string): WantedStream[] {
  return PLATFORM_STREAMS.map((stream) => {
    const { subjects, storage, ...rest } = wantedStreamConfig(stream, serverVersion);
    return { ...rest, subjects: [...subjects], storage: storage as StreamConfig["storage"] };
  });
}

/**
 * Creates the streams of docs/DESIGN.md and the `agent-config` bucket, and only ever adds to what a
 * server already has (stream-plan.ts): a stream another platform made keeps its subjects and
 * limits, gains the subjects the agent needs, and nothing is deleted. Prints one line per stream
 * saying what it changed.
 */
export async function devSetup(settings: Settings, report: (line: string) => void): Promise<void> {
  const connection = await connectOnce(settings, "edge-agent-dev-setup");
  try {
    const manager = await jetstreamManager(connection);
    const existing: StreamConfig[] = [];
    for await (const info of manager.streams.list()) existing.push(info.config);
    const version = connection.info?.version ?? "2.10.0";
    for (const plan of planStreams(wantedStreams(version), existing)) {
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
