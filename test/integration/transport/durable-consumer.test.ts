import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { consumeDurable, type DurableConsumer } from "../../../src/transport/durable-consumer.ts";
import { manualClock, settle } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("durable consumer retries on the injected clock", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let consumer: DurableConsumer | null = null;

  beforeEach(async () => {
    server = await startNatsServer();
    connection = await connect({ servers: server.url });
  });

  afterEach(async () => {
    await consumer?.stop();
    consumer = null;
    await connection.close();
    await server.dispose();
  });

  it("waits for a stream that does not exist yet on the manual clock, and binds once the clock moves past the backoff", async () => {
    const clock = manualClock();
    const handled: string[] = [];
    consumer = consumeDurable({
      connection,
      stream: "LATER",
      name: "worker",
      filterSubject: "later.one",
      logger: silentLogger(),
      clock,
      handle: async (message) => {
        handled.push(message.string());
        message.ack();
      },
    });
    // The backoff wait after "stream not found" is a timer of the injected clock, not a real one.
    await waitFor("the retry wait on the manual clock", () => clock.pending === 1);
    await (await jetstreamManager(connection)).streams.add({ name: "LATER", subjects: ["later.>"] });
    await jetstream(connection).publish("later.one", "hello");
    await settle();
    expect(handled).toEqual([]);
    // Past the longest backoff (60 s): the consumer tries again, binds and hands the message over.
    clock.advance(60_000);
    await waitFor("the message handed over", () => handled.length === 1);
    expect(handled).toEqual(["hello"]);
    expect(clock.pending).toBe(0);
  });

  it("cuts a retry wait short when stopped: nothing stays scheduled on the clock", async () => {
    const clock = manualClock();
    consumer = consumeDurable({
      connection,
      stream: "NONE",
      name: "worker",
      filterSubject: "none.one",
      logger: silentLogger(),
      clock,
      handle: async () => undefined,
    });
    await waitFor("the retry wait on the manual clock", () => clock.pending === 1);
    await consumer.stop();
    consumer = null;
    expect(clock.pending).toBe(0);
  });
});
