import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Outbox, openOutbox } from "../../../src/outbox/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { createJetStreamPublisher, NO_STREAM_REASON } from "../../../src/transport/jetstream-publisher.ts";
import { testEvent } from "../../fixtures/outbox/test-events.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams, streamSequences } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "../../fixtures/outbox/outbox-process.ts");

function range(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index + 1);
}

describe("outbox delivery to a real JetStream", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let dataDir: string;
  let outbox: Outbox | undefined;

  const start = async (configLines?: string[]): Promise<void> => {
    server = await startNatsServer(configLines ? { configLines } : {});
    connection = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await createPlatformStreams(connection);
  };

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "edge-agent-outbox-"));
  });

  afterEach(async () => {
    await outbox?.stop();
    outbox = undefined;
    await connection?.close();
    await server?.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("keeps events appended with no server, and delivers them in order, each once, when it appears", async () => {
    outbox = openOutbox({ dataDir, clock: systemClock, logger: silentLogger() });
    for (let index = 0; index < 300; index++)
      outbox.append(testEvent(index, { eventClass: index % 3 === 0 ? "state" : "telemetry" }));
    expect(outbox.stats().pendingCount).toBe(300);

    await start();
    outbox.start(createJetStreamPublisher(jetstream(connection)));
    await waitFor("the outbox to empty", () => outbox?.stats().pendingCount === 0, 30_000);

    const telemetry = await streamSequences(connection, "TELEMETRY");
    const state = await streamSequences(connection, "CLIENT_CONNECTIONS");
    expect(telemetry).toEqual([...telemetry].sort((a, b) => a - b));
    expect(state).toEqual([...state].sort((a, b) => a - b));
    expect([...telemetry, ...state].sort((a, b) => a - b)).toEqual(range(300));
    expect(outbox.stats()).toMatchObject({ deliveredCount: 300, deadLetters: 0, lastSequence: 300 });
  });

  it("loses nothing when the broker is killed and restarted in the middle of a drain", async () => {
    await start();
    outbox = openOutbox({ dataDir, clock: systemClock, logger: silentLogger(), batchSize: 200 });
    const total = 5_000;
    for (let offset = 0; offset < total; offset += 500)
      outbox.appendBatch(Array.from({ length: 500 }, (_, index) => testEvent(offset + index)));
    outbox.start(createJetStreamPublisher(jetstream(connection), { timeoutMs: 2_000 }));
    const running = outbox;
    await waitFor(
      "part of the drain",
      () => running.stats().deliveredCount > 0 && running.stats().pendingCount > 0,
      20_000,
      5,
    );
    await server.kill();
    // Back once the outbox has met the broker's absence (a publish failed), not after a guess at it.
    await waitFor("the outbox to see the broker gone", () => running.stats().deliveryProblem !== null, 20_000, 5);
    await server.start();
    outbox.wake();
    await waitFor("the outbox to empty", () => running.stats().pendingCount === 0, 60_000);
    const sequences = await streamSequences(connection, "TELEMETRY");
    expect(new Set(sequences).size).toBe(sequences.length);
    expect([...sequences].sort((a, b) => a - b)).toEqual(range(total));
  });

  /** Resolves at the connection's next status of `type` (nats.js's own events). */
  const nextStatus = async (type: "disconnect" | "reconnect"): Promise<void> => {
    for await (const status of connection.status()) if (status.type === type) return;
  };

  it("pins nats.js: a JetStream publish made while the client reconnects is dropped, its ack awaited until the timeout", async () => {
    await start();
    const down = nextStatus("disconnect");
    await server.stop();
    await down;
    const js = jetstream(connection);
    const lost = js.publish("machine.m1.telemetry", "made while reconnecting", { timeout: 2_000 }).then(
      () => "acked",
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    const back = nextStatus("reconnect");
    await server.start();
    await back;
    // nats.js empties its outbound buffer at every dial: the message never reached the server.
    expect(await lost).toMatch(/timeout/i);
    expect(await streamSequences(connection, "TELEMETRY")).toEqual([]);
  });

  it("holds delivery while the link is down: an event stored then goes out once the link is back, not after a publish timeout", async () => {
    await start();
    outbox = openOutbox({ dataDir, clock: systemClock, logger: silentLogger() });
    // Were the event published while the link is down, its ack would be awaited this long: longer than the wait below.
    outbox.start(createJetStreamPublisher(jetstream(connection), { timeoutMs: 60_000 }));
    outbox.append(testEvent(0));
    const running = outbox;
    await waitFor("the first event delivered", () => running.stats().deliveredCount === 1);
    const down = nextStatus("disconnect");
    await server.stop();
    await down;
    // What the agent does on its link's events (agent/agent-link.ts).
    running.hold();
    running.append(testEvent(1));
    const back = nextStatus("reconnect");
    await server.start();
    await back;
    running.wake();
    await waitFor("the event stored while offline delivered", () => running.stats().pendingCount === 0, 30_000);
    expect(await streamSequences(connection, "TELEMETRY")).toEqual([1, 2]);
  });

  it("moves a poison event (over the server's max_payload) to dead letters and delivers the rest", async () => {
    await start(["max_payload: 4096"]);
    outbox = openOutbox({ dataDir, clock: systemClock, logger: silentLogger() });
    outbox.append(testEvent(0));
    outbox.append(testEvent(1, { bodyBytes: 10_000 }));
    outbox.append(testEvent(2));
    outbox.start(createJetStreamPublisher(jetstream(connection)));
    const running = outbox;
    await waitFor("the outbox to settle", () => running.stats().pendingCount === 0, 20_000);
    expect(running.stats()).toMatchObject({ deliveredCount: 2, deadLetters: 1 });
    expect(await streamSequences(connection, "TELEMETRY")).toEqual([1, 3]);
  });

  it("keeps events for a subject no stream stores, and delivers them once the stream exists", async () => {
    await start();
    const manager = await jetstreamManager(connection);
    await manager.streams.delete("TELEMETRY");
    outbox = openOutbox({ dataDir, clock: systemClock, logger: silentLogger() });
    for (let index = 0; index < 10; index++) outbox.append(testEvent(index));
    outbox.start(createJetStreamPublisher(jetstream(connection), { timeoutMs: 1_000 }));
    const waiting = outbox;
    // The server answered "no stream": the events wait, and say why.
    await waitFor("the outbox to find no stream", () => waiting.stats().deliveryProblem === NO_STREAM_REASON);
    expect(outbox.stats()).toMatchObject({ pendingCount: 10, deadLetters: 0 });
    await manager.streams.add({
      name: "TELEMETRY",
      subjects: ["machine.*.telemetry"],
      duplicate_window: 120_000_000_000,
    });
    outbox.wake();
    const running = outbox;
    await waitFor("delivery after the stream appears", () => running.stats().pendingCount === 0, 20_000);
    expect(await streamSequences(connection, "TELEMETRY")).toEqual(range(10));
  });

  it("delivers every sequence exactly once although the draining process is killed -9 at random points", async () => {
    await start();
    const total = Number(process.env.OUTBOX_KILL_EVENTS ?? 10_000);
    const rounds = Number(process.env.OUTBOX_KILL_ROUNDS ?? 10);
    const run = (args: string[]): { kill: () => void; exited: Promise<number | null> } => {
      const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ["ignore", "ignore", "inherit"] });
      return {
        kill: () => child.kill("SIGKILL"),
        exited: new Promise((resolveExit) => child.once("exit", (code) => resolveExit(code))),
      };
    };
    expect(await run(["fill", dataDir, String(total)]).exited).toBe(0);

    const manager = await jetstreamManager(connection);
    const stored = async (): Promise<number> => (await manager.streams.info("TELEMETRY")).state.messages;
    let killedMidDrain = 0;
    for (let round = 0; round < rounds; round++) {
      const before = await stored();
      if (before >= total) break;
      const drain = run(["drain", dataDir, server.url]);
      // A random point inside the drain: after a random number of new acks in this round.
      const target = before + 1 + Math.floor(Math.random() * Math.max(1, total / (rounds * 2)));
      let finished = false;
      void drain.exited.then(() => (finished = true));
      await waitFor("progress in this round", async () => finished || (await stored()) >= target, 30_000, 5);
      if (!finished) {
        drain.kill();
        await drain.exited;
        killedMidDrain += 1;
      }
    }
    expect(await run(["drain", dataDir, server.url]).exited).toBe(0);

    const sequences = await streamSequences(connection, "TELEMETRY");
    expect(sequences.length).toBe(total);
    expect(new Set(sequences).size).toBe(total);
    expect([...sequences].sort((a, b) => a - b)).toEqual(range(total));
    expect(killedMidDrain).toBe(rounds);
  }, 180_000);
});
