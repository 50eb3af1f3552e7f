import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { AGENT_CONFIG_BUCKET, PLATFORM_STREAMS, STREAM_DUPLICATE_WINDOW_MS } from "../contracts/index.ts";
import type { Settings } from "../settings/index.ts";
import { connectOnce } from "./one-shot-connection.ts";

const nanos = (ms: number): number => ms * 1_000_000;

/**
 * Creates every stream of docs/DESIGN.md and the `agent-config` bucket, idempotently: an existing
 * stream is updated to the wanted subjects, never deleted, so its data stays.
 */
export async function devSetup(settings: Settings, report: (line: string) => void): Promise<void> {
  const connection = await connectOnce(settings, "edge-agent-dev-setup");
  try {
    const manager = await jetstreamManager(connection);
    for (const stream of PLATFORM_STREAMS) {
      const config = {
        name: stream.name,
        subjects: [...stream.subjects],
        storage: "file" as const,
        duplicate_window: nanos(STREAM_DUPLICATE_WINDOW_MS),
      };
      try {
        await manager.streams.info(stream.name);
        await manager.streams.update(stream.name, {
          subjects: config.subjects,
          duplicate_window: config.duplicate_window,
        });
        report(`stream ${stream.name}: up to date`);
      } catch (error) {
        if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.StreamNotFound) throw error;
        await manager.streams.add(config);
        report(`stream ${stream.name}: created`);
      }
    }
    await new Kvm(connection).create(AGENT_CONFIG_BUCKET, { history: 10 });
    report(`key-value bucket ${AGENT_CONFIG_BUCKET}: ready`);
  } finally {
    await connection.close();
  }
}
