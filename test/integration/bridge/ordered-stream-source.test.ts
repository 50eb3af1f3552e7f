import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OrderedStreamSource } from "../../../src/bridge/source/ordered-stream-source.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { manualClock, settle } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** Far longer than the test runs: only the manual clock can bring a health check. */
const HEALTH_CHECK_MS = 600_000;
/** The source's longest retry backoff. */
const MAX_BACKOFF_MS = 15_000;

describe("ordered stream source on the injected clock", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let source: OrderedStreamSource | null = null;

  beforeEach(async () => {
    server = await startNatsServer();
    connection = await connect({ servers: server.url });
  });

  afterEach(async () => {
    await source?.stop();
    source = null;
    await connection.close();
    await server.dispose();
  });

  it("retries a missing stream only when the injected clock moves, and checks its consumer on the clock's timers", async () => {
    const clock = manualClock();
    source = new OrderedStreamSource({
      connection,
      stream: "EVENTS",
      consumerName: "reader",
      logger: silentLogger(),
      clock,
      healthCheckMs: HEALTH_CHECK_MS,
    });
    await source.startAfter(0);
    // The health checks and the backoff after "stream not found": both on the manual clock.
    await waitFor("the retry wait on the manual clock", () => source?.lastProblem !== null && clock.pending === 2);
    await (await jetstreamManager(connection)).streams.add({ name: "EVENTS", subjects: ["events.>"] });
    await jetstream(connection).publish("events.one", "first");
    await settle();
    expect(source.buffered).toBe(0);
    clock.advance(MAX_BACKOFF_MS);
    await waitFor("the message read", () => source?.buffered === 1);
    expect(source.take(10).map((message) => new TextDecoder().decode(message.data))).toEqual(["first"]);
    expect(source.lastProblem).toBeNull();

    // Someone watching the JetStream API sees each look at the consumer the health check makes.
    const watcher = await connect({ servers: server.url });
    try {
      let infoRequests = 0;
      const requests = watcher.subscribe("$JS.API.CONSUMER.INFO.EVENTS.reader", {
        callback: () => {
          infoRequests += 1;
        },
      });
      await watcher.flush();
      await settle();
      expect(infoRequests).toBe(0);
      clock.advance(HEALTH_CHECK_MS);
      await waitFor("a health check", () => infoRequests === 1);
      requests.unsubscribe();
    } finally {
      await watcher.close();
    }
    await source.stop();
    source = null;
    expect(clock.pending).toBe(0);
  });
});
