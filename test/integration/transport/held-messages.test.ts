import { AckPolicy, type Consumer, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemTimers } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { HeldMessages } from "../../../src/transport/held-messages.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("held messages (work that outlives the consumer's handler)", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let consumer: Consumer;

  const ackPending = async (): Promise<number> =>
    (await (await jetstreamManager(connection)).consumers.info("HELD", "worker")).num_ack_pending;

  beforeEach(async () => {
    server = await startNatsServer();
    connection = await connect({ servers: server.url });
    const jsm = await jetstreamManager(connection);
    await jsm.streams.add({ name: "HELD", subjects: ["held.>"] });
    // A 1 s ack wait, so a redelivery happens within the test.
    await jsm.consumers.add("HELD", {
      durable_name: "worker",
      ack_policy: AckPolicy.Explicit,
      ack_wait: 1_000_000_000,
    });
    consumer = await jetstream(connection).consumers.get("HELD", "worker");
    await jetstream(connection).publish("held.command", "install");
  });

  afterEach(async () => {
    await connection.close();
    await server.dispose();
  });

  it("keeps a held message alive past its ack wait: the server does not deliver it again", async () => {
    const held = new HeldMessages({ logger: silentLogger(), timers: systemTimers });
    const first = await consumer.next();
    if (!first) throw new Error("no message");
    const work = held.hold(first, 300);
    if (!work) throw new Error("not held");
    // Three ack waits pass while the work goes on.
    expect(await consumer.next({ expires: 3_000 })).toBeNull();
    work.settle({ kind: "ack" });
    await waitFor("the ack", async () => (await ackPending()) === 0);
    expect(held.size).toBe(0);
  });

  it("joins a copy delivered again to the one held, and settles the newest delivery", async () => {
    const held = new HeldMessages({ logger: silentLogger(), timers: systemTimers });
    const first = await consumer.next();
    if (!first) throw new Error("no message");
    // Kept alive too slowly for the ack wait: the server delivers it again.
    const work = held.hold(first, 10_000);
    if (!work) throw new Error("not held");
    const again = await consumer.next({ expires: 5_000 });
    if (!again) throw new Error("not delivered again");
    expect(again.info.deliveryCount).toBe(2);
    expect(held.hold(again, 10_000)).toBeNull();
    expect(held.size).toBe(1);
    expect(work.deliveryCount).toBe(2);
    work.settle({ kind: "ack" });
    await waitFor("the ack of the newest copy", async () => (await ackPending()) === 0);
    expect(await consumer.next({ expires: 1_500 })).toBeNull();
  });

  it("has room for no more than its capacity, and lets waiters go when closed", async () => {
    const held = new HeldMessages({ logger: silentLogger(), capacity: 1, timers: systemTimers });
    const first = await consumer.next();
    if (!first) throw new Error("no message");
    const work = held.hold(first, 300);
    let roomMade: boolean | null = null;
    void held.waitForRoom().then((room) => (roomMade = room));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(roomMade).toBeNull();
    work?.settle({ kind: "ack" });
    await waitFor("room", () => roomMade === true);

    held.hold(first, 300);
    let afterClose: boolean | null = null;
    void held.waitForRoom().then((room) => (afterClose = room));
    held.close();
    await waitFor("the waiter released", () => afterClose === false);
  });
});
