import { EventType, type HostnameMessage } from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Logger } from "../runtime/index.ts";

/** Sends `{hostname}` at start and whenever the machine's name changes. */
export function createHostnameReporter(options: { sink: EventSink; hostname: () => string; logger: Logger }): {
  check(): Promise<void>;
} {
  let lastReported: string | undefined;
  return {
    async check() {
      const hostname = options.hostname();
      if (hostname === lastReported || hostname === "") return;
      const body: HostnameMessage = { hostname };
      await options.sink.emit({ type: EventType.hostname, body });
      if (lastReported !== undefined) options.logger.info({ from: lastReported, to: hostname }, "hostname changed");
      lastReported = hostname;
    },
  };
}
