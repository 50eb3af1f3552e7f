/**
 * How a local nats-server with JetStream is configured: shared by the tests' helper
 * (test/helpers/nats-server.ts) and `npm run platform` (scripts/platform/), which both run the
 * project's own nats-server (scripts/nats-server-runtime.ts).
 */
import { LOOPBACK } from "./loopback.ts";

/** The config file's text: loopback only, JetStream stored in `storeDir`, then `extraLines`. */
export function natsServerConfig(port: number, storeDir: string, extraLines: readonly string[] = []): string {
  return `${[`listen: "${LOOPBACK}:${port}"`, `jetstream { store_dir: "${storeDir}" }`, ...extraLines].join("\n")}\n`;
}
