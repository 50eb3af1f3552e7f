import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OrderedStreamSource } from "../../../src/bridge/source/ordered-stream-source.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { manualClock } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const STREAM = "EVENTS";

/** The ordered stream source's gap logic against what a real nats-server delivers. */
describe("ordered stream source: gaps, copies and messages gone from the stream", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let source: OrderedStreamSource | null = null;

  const publish = async (count: number): Promise<void> => {
    const js = jetstream(connection);
    for (let index = 0; index < count; index++) await js.publish(`events.${index}`, `body-${index}`);
  };
  const newSource = (ackWaitMs?: number, filterSubject?: string): OrderedStreamSource => {
    source = new OrderedStreamSource({
      connection,
      stream: STREAM,
      consumerName: "reader",
      ...(filterSubject === undefined ? {} : { filterSubject }),
      logger: silentLogger(),
      clock: manualClock(),
      healthCheckMs: 600_000,
      ...(ackWaitMs === undefined ? {} : { ackWaitMs }),
    });
    return source;
  };
  const sequencesOf = (taken: ReturnType<OrderedStreamSource["take"]>): number[] =>
    taken.map((message) => message.streamSequence);

  beforeEach(async () => {
    server = await startNatsServer();
    connection = await connect({ servers: server.url });
    await (await jetstreamManager(connection)).streams.add({ name: STREAM, subjects: ["events.>"] });
  });

  afterEach(async () => {
    await source?.stop();
    source = null;
    await connection.close();
    await server.dispose();
  });

  it("reads again from the expected sequence when delivery jumps, and counts a message that was really gone", async () => {
    await publish(5);
    await (await jetstreamManager(connection)).streams.deleteMessage(STREAM, 3);
    const reader = newSource();
    await reader.startAfter(0);
    await waitFor("1, 2, 4 and 5 read", () => reader.buffered === 4);
    expect(sequencesOf(reader.take(10))).toEqual([1, 2, 4, 5]);
    // 4 after 2 is a gap on a consumer already reading: made again at 3, whose first message is 4.
    expect(reader.counters).toEqual({ redeliveriesDropped: 0, missingFromStream: 1, repositions: 1 });
  });

  it("drops the server's redeliveries of what it already handed out (taken, not acked, the ack wait passed)", async () => {
    await publish(3);
    const reader = newSource(1_000);
    await reader.startAfter(0);
    await waitFor("three read", () => reader.buffered === 3);
    expect(sequencesOf(reader.take(10))).toEqual([1, 2, 3]);
    await waitFor("the redeliveries dropped", () => reader.counters.redeliveriesDropped >= 3);
    await publish(1);
    await waitFor("the next one read", () => reader.buffered === 1);
    expect(sequencesOf(reader.take(10))).toEqual([4]);
    expect(reader.counters.missingFromStream).toBe(0);
  });

  it("starts after a position whose next messages expired: counts them, reads on from the first that exists", async () => {
    await publish(5);
    await (await jetstreamManager(connection)).streams.purge(STREAM, { seq: 4 });
    const reader = newSource();
    await reader.startAfter(1);
    await waitFor("4 and 5 read", () => reader.buffered === 2);
    expect(sequencesOf(reader.take(10))).toEqual([4, 5]);
    expect(reader.counters).toEqual({ redeliveriesDropped: 0, missingFromStream: 2, repositions: 0 });
  });

  it("filtered to one partition, reads its messages in order without taking the others' sequences for gaps; drops redeliveries", async () => {
    const js = jetstream(connection);
    // Partition a at odd stream sequences, b at even ones.
    for (let index = 0; index < 10; index++) await js.publish(`events.${index % 2 === 0 ? "a" : "b"}.${index}`, "x");
    const reader = newSource(1_000, "events.a.*");
    await reader.startAfter(0);
    await waitFor("partition a read", () => reader.buffered === 5);
    expect(sequencesOf(reader.take(10))).toEqual([1, 3, 5, 7, 9]);
    // Taken, not acked: the server delivers them again after the ack wait; they are copies.
    await waitFor("the redeliveries dropped", () => reader.counters.redeliveriesDropped >= 5);
    await js.publish("events.b.10", "x");
    await js.publish("events.a.11", "x");
    await waitFor("the next one read", () => reader.buffered === 1);
    expect(sequencesOf(reader.take(10))).toEqual([12]);
    expect(reader.counters).toMatchObject({ missingFromStream: 0, repositions: 0 });
  });
});
