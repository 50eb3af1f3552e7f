import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { AGENT_CONFIG_BUCKET, PLATFORM_STREAMS, wantedStreamConfig } from "../contracts/index.ts";
import type { Settings } from "../settings/index.ts";
import { connectOnce } from "./one-shot-connection.ts";

/**
 * Creates every stream of docs/DESIGN.md and the `agent-config` bucket, idempotently: an existing
 * stream is updated to the wanted subjects, never deleted, so its data stays.
 */
export async function devSetup(settings: Settings, report: (line: string) => void): Promise<void> {
  const connection = await connectOnce(settings, "edge-agent-dev-setup");
  try {
    const manager = await jetstreamManager(connection);
    const version = connection.info?.version ?? "2.10.0";
    for (const stream of PLATFORM_STREAMS) {
      const { subjects, ...wanted } = wantedStreamConfig(stream, version);
      const config = { ...wanted, subjects: [...subjects] };
      try {
        await manager.streams.info(stream.name);
        const { name: _name, storage: _storage, ...changeable } = config;
        await manager.streams.update(stream.name, changeable);
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
