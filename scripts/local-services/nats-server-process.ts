/**
 * How a local nats-server with JetStream is configured and known to be up: shared by the tests'
 * helper (test/helpers/nats-server.ts) and `npm run platform` (scripts/platform/), which both run
 * the project's own nats-server (scripts/nats-server-runtime.ts).
 */
import { LOOPBACK, portAccepts } from "./loopback.ts";

/** The config file's text: loopback only, JetStream stored in `storeDir`, then `extraLines`. */
export function natsServerConfig(port: number, storeDir: string, extraLines: readonly string[] = []): string {
  return `${[`listen: "${LOOPBACK}:${port}"`, `jetstream { store_dir: "${storeDir}" }`, ...extraLines].join("\n")}\n`;
}

/**
 * Resolves once the server accepts connections on `port`; rejects after `deadlineMs`, or as soon as
 * `failure()` says the process is gone.
 */
export async function waitForNatsServer(
  port: number,
  deadlineMs: number,
  failure: () => string | undefined = () => undefined,
): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const failed = failure();
    if (failed) throw new Error(`nats-server ${failed}`);
    if (await portAccepts(port)) return;
    if (Date.now() > until) throw new Error(`nats-server did not open port ${port} within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
