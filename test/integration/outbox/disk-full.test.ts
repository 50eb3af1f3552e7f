import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type EventPublisher, type Outbox, type OutboxStats, openOutbox } from "../../../src/outbox/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { testEvent } from "../../fixtures/outbox/test-events.ts";
import { manualClock, settle } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { canMountTmpfs, mountTmpfs, TMPFS_SKIP_REASON, type TmpfsHandle } from "../../helpers/tmpfs.ts";
import { quietFor, waitFor, withDeadline } from "../../helpers/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "../../fixtures/outbox/outbox-agent.ts");
const DUPLICATE_WINDOW_MS = 2_000;

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(): { logger: pino.Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean))
        lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: "debug" }, destination), lines };
}

const fixtures: Array<{ kill(): Promise<void> }> = [];

/** The outbox-agent fixture as a child process: one JSON answer per command. */
function startOutboxAgent(dataDir: string, url: string) {
  const child = spawn(process.execPath, [FIXTURE, dataDir, url], { stdio: ["pipe", "pipe", "pipe"] });
  const answers: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else answers.push(line);
  });
  let logs = "";
  child.stderr.on("data", (chunk: Buffer) => (logs += chunk.toString()));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const ask = async <T>(command: string): Promise<T> => {
    child.stdin.write(`${command}\n`);
    const line =
      answers.shift() ??
      (await withDeadline(`an answer to ${command}`, new Promise<string>((done) => waiting.push(done)), 10_000).catch(
        (error: unknown) => {
          throw new Error(`${(error as Error).message}: ${logs.slice(-2_000)}`, { cause: error });
        },
      ));
    return JSON.parse(line) as T;
  };
  const fixture = {
    emit: async (count: number) =>
      (await ask<{ emitted: Array<{ sequence: number; eventId: string }> }>(`emit ${count}`)).emitted,
    stats: () => ask<OutboxStats>("stats"),
    errorLines: () =>
      logs
        .split("\n")
        .filter((line) => line.startsWith("{") && (JSON.parse(line) as { level: string }).level === "error"),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
  fixtures.push(fixture);
  return fixture;
}

describe.skipIf(!canMountTmpfs())(`the outbox on a full disk (${TMPFS_SKIP_REASON})`, () => {
  let tmpfs: TmpfsHandle;
  const open: Outbox[] = [];

  beforeAll(() => {
    tmpfs = mountTmpfs(2 * 1024 * 1024) as TmpfsHandle;
  });
  afterEach(async () => {
    for (const outbox of open.splice(0)) await outbox.stop();
    for (const fixture of fixtures.splice(0)) await fixture.kill();
    tmpfs.free();
  });
  afterAll(() => tmpfs?.unmount());

  it("delivers events held in memory while the disk is full, publishes each acked event once, and logs the fault once", async () => {
    const dataDir = `${tmpfs.dir}/in-process`;
    const { logger, lines } = capturingLogger();
    const clock = manualClock();
    const outbox = openOutbox({ dataDir, clock, logger, storageRetryMs: 20 });
    open.push(outbox);
    const stored = outbox.appendBatch(Array.from({ length: 20 }, (_, index) => testEvent(index)));
    tmpfs.fill();
    const held = Array.from({ length: 20 }, (_, index) => outbox.append(testEvent(20 + index)));
    expect(outbox.stats()).toMatchObject({ heldInMemory: 20, pendingCount: 40 });

    const published = new Map<string, number>();
    const publisher: EventPublisher = {
      async publish(_subject, _payload, _headers, msgId) {
        published.set(msgId, (published.get(msgId) ?? 0) + 1);
        return { kind: "acked", streamSequence: published.size, duplicate: false };
      },
    };
    outbox.start(publisher);
    await waitFor("every event published", () => published.size === 40);
    // Many storage retries and drain rounds later, still once each.
    for (let round = 0; round < 10; round++) {
      outbox.wake();
      clock.advance(20);
      await settle();
    }
    expect([...published.values()].every((count) => count === 1)).toBe(true);
    expect([...published.keys()].sort()).toEqual([...stored, ...held].map((entry) => entry.metadata.eventId).sort());
    expect(outbox.stats()).toMatchObject({ pendingCount: 0, heldInMemory: 0, deliveredCount: 40 });
    expect(outbox.stats().lastError).toMatch(/full/);
    expect(lines.filter((line) => line.level >= 50)).toHaveLength(1);

    tmpfs.free();
    // The next storage retry finds room for the deletions.
    clock.advance(20);
    expect(outbox.stats().lastError).toBeNull();
    expect(lines.filter((line) => line.msg.startsWith("outbox storage is writable again"))).toHaveLength(1);
    await outbox.stop();
    // Nothing is left to send again after a restart.
    const reopened = openOutbox({ dataDir, clock: systemClock, logger: pino({ level: "silent" }) });
    open.push(reopened);
    expect(reopened.stats()).toMatchObject({ pendingCount: 0, deliveredCount: 40, lastSequence: 40 });
  });

  describe("with a real JetStream", () => {
    let server: NatsServerHandle;
    let observer: NatsConnection;

    beforeAll(async () => {
      server = await startNatsServer();
      observer = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const manager = await jetstreamManager(observer);
      // A short duplicate window: a copy published again after it would be stored twice.
      await manager.streams.add({
        name: "TELEMETRY",
        subjects: ["machine.*.telemetry"],
        storage: "file",
        duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000,
      });
    });
    afterAll(async () => {
      await observer?.close();
      await server?.dispose();
    });

    it("after kill -9 on a full disk, never reuses a sequence number and never sends an acked event again", async () => {
      const dataDir = `${tmpfs.dir}/agent`;
      await server.kill();

      // 1. Broker away: 30 events stored, the disk fills, 20 more only in memory; kill -9 loses those 20.
      const first = startOutboxAgent(dataDir, server.url);
      const stored = await first.emit(30);
      tmpfs.fill();
      const lost = await first.emit(20);
      expect(await first.stats()).toMatchObject({ heldInMemory: 20 });
      await first.kill();

      // 2. Restart on the still-full disk, broker back: the 30 go out (the disk cannot delete them),
      // 10 new ones (held) go out too; then kill -9 again while nothing could be deleted.
      const second = startOutboxAgent(dataDir, server.url);
      await server.start();
      const secondRun = await second.emit(10);
      await waitFor(
        "the second run to deliver everything",
        async () => (await second.stats()).pendingCount === 0,
        30_000,
      );
      expect(await second.stats()).toMatchObject({
        deliveredCount: 40,
        heldInMemory: 0,
        lastError: expect.stringMatching(/full/),
      });
      await quietFor(
        DUPLICATE_WINDOW_MS + 500,
        "past the stream's duplicate window: an acked event sent again now would be stored twice",
      );
      expect(second.errorLines()).toHaveLength(1);
      await second.kill();

      // 3. Disk freed, a third run: nothing acked goes out again, though the duplicate window is long past.
      tmpfs.free();
      const third = startOutboxAgent(dataDir, server.url);
      const thirdRun = await third.emit(5);
      await waitFor("the third run to deliver", async () => (await third.stats()).pendingCount === 0, 30_000);
      // A later round delivers one more: whatever the rounds before it would have sent again is stored by now.
      thirdRun.push(...(await third.emit(1)));
      await waitFor("the third run's marker", async () => (await third.stats()).pendingCount === 0, 30_000);
      await third.kill();

      const messages = await readStream(observer, "TELEMETRY");
      const eventIds = messages.map((message) => message.headers["X-Event-ID"]);
      const sequences = messages.map((message) => Number(message.headers["X-Sequence"]));
      expect(new Set(eventIds).size).toBe(eventIds.length);
      expect(new Set(sequences).size).toBe(sequences.length);
      expect(eventIds.sort()).toEqual([...stored, ...secondRun, ...thirdRun].map((event) => event.eventId).sort());
      // The 20 lost with the first run leave a gap; no number of theirs is ever handed out again.
      const lostMax = Math.max(...lost.map((event) => event.sequence));
      expect(secondRun.every((event) => event.sequence > lostMax)).toBe(true);
      expect(Math.min(...thirdRun.map((event) => event.sequence))).toBeGreaterThan(
        Math.max(...secondRun.map((event) => event.sequence)),
      );
    }, 60_000);
  });
});
