import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { MIRROR_DELIVER_PREFIX, mirroredStreams, PLATFORM_API_PREFIX } from "../identity/index.ts";

/**
 * Makes, in the account layout's DEVICE_VIEW account (identity/account-layout.ts), a mirror of each
 * command stream and of the `agent-config` bucket's stream: it captures no subject (so nothing a
 * machine's request is answered on can be stored in it), answers direct gets, and republishes each
 * message it stores on that message's own subject (the word machines listen for). Idempotent: an
 * existing mirror is left as it is (a mirror's origin cannot be changed).
 */
export async function setUpDeviceView(connection: NatsConnection, report: (line: string) => void): Promise<void> {
  const manager = await jetstreamManager(connection);
  for (const name of mirroredStreams()) {
    try {
      await manager.streams.info(name);
      report(`mirror ${name} (device view): already there`);
      continue;
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.StreamNotFound) throw error;
    }
    await manager.streams.add({
      name,
      mirror: { name, external: { api: PLATFORM_API_PREFIX, deliver: MIRROR_DELIVER_PREFIX } },
      allow_direct: true,
      republish: { src: ">", dest: ">" },
    });
    report(`mirror ${name} (device view): created`);
  }
}
