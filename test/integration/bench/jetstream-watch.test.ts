import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, createInbox, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { ApiLimitAdvisories, readJsz } from "../../../bench/jetstream-watch.ts";
import { selectedNatsServerVersion } from "../../../scripts/nats-server-runtime.ts";
import {
  APP_AND_SYSTEM_ACCOUNTS,
  freeLoopbackPort,
  type NatsServerHandle,
  startNatsServer,
} from "../../helpers/nats-server.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** Far more than the queue below holds: sent at once, they overflow it. */
const FLOOD = 2_000;
/**
 * A lone nats-server 2.10 answers JetStream API requests as they come, with no queue to limit
 * (`request_queue_limit` binds a lone server from 2.11): measured on 2.10.27, 15,000 requests sent
 * at once over a limit of 5 were all answered, with no advisory.
 */
const [major = 0, minor = 0] = selectedNatsServerVersion().split(".").map(Number);
const queuesApiRequests = major > 2 || (major === 2 && minor >= 11);

describe("the fleet benchmark's JetStream watch", () => {
  let server: NatsServerHandle | undefined;
  let client: NatsConnection | undefined;
  let watch: ApiLimitAdvisories | undefined;

  afterEach(async () => {
    await watch?.close();
    await client?.close();
    await server?.dispose();
  });

  it("counts the API limit advisories the server publishes in its system account, and reads /jsz", async () => {
    const monitorPort = await freeLoopbackPort();
    // A later `jetstream` block replaces the helper's: the store stays in a temp dir, the queue is tiny.
    const storeDir = join(scratchDir("ea-jswatch-"), "store");
    server = await startNatsServer({
      configLines: [
        `http: "127.0.0.1:${monitorPort}"`,
        ...APP_AND_SYSTEM_ACCOUNTS,
        "no_auth_user: app",
        `jetstream { store_dir: "${storeDir}", request_queue_limit: 5 }`,
      ],
    });
    watch = await ApiLimitAdvisories.open(server.url, "sys", "sys");
    client = await connect({ servers: server.url });
    await (await jetstreamManager(client)).streams.add({ name: "FLOODED", subjects: ["flooded.>"] });
    expect(watch.total()).toEqual({ advisories: 0, droppedRequests: 0 });

    const mark = watch.total();
    const replies = createInbox();
    let answered = 0;
    client.subscribe(`${replies}.>`, {
      callback: () => {
        answered += 1;
      },
    });
    for (let index = 0; index < FLOOD; index++)
      client.publish("$JS.API.STREAM.INFO.FLOODED", "", { reply: `${replies}.${index}` });
    await client.flush();

    if (!queuesApiRequests) {
      // Nothing overflows: every request is answered, and the watch counts no advisory.
      await waitFor("every request answered", () => answered === FLOOD);
      expect(watch.since(mark)).toEqual({ advisories: 0, droppedRequests: 0 });
      return;
    }
    const seen = await waitFor(
      "an API limit advisory",
      () => (watch?.since(mark).advisories ?? 0) > 0 && watch?.since(mark),
    );
    expect(seen.droppedRequests).toBeGreaterThan(0);
    const jsz = await readJsz(`http://127.0.0.1:${monitorPort}`);
    // The stream's creation and what the queue took before it overflowed.
    expect(jsz.apiTotal).toBeGreaterThan(1);
    expect(jsz.apiTotal).toBeLessThanOrEqual(FLOOD + 1);
  });
});
