import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as z from "zod";
import { type CommandHandler, done, reject, retryAfter } from "../../../src/capability/command-handler.ts";
import { CommandRunner } from "../../../src/commands/command-desk.ts";
import { type CommandFeed, machineSubjects } from "../../../src/contracts/index.ts";
import type { OutgoingEvent } from "../../../src/events/event-sink.ts";
import { encodeEvent } from "../../../src/events/outbox-event-sink.ts";
import { type InboxMessage, type Outbox, openOutbox } from "../../../src/outbox/index.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { type ManualClock, manualClock, settle as settleTurns } from "../../helpers/manual-clock.ts";

const Command = z.object({ name: z.string() });
type Command = z.infer<typeof Command>;

const queue: CommandFeed = { key: "q", stream: "S", subject: "machine.m1.q", mode: "queue", start: "first" };
const latest: CommandFeed = { key: "l", stream: "S", subject: "machine.all.l", mode: "latest", start: "newest" };

const message = (
  feed: CommandFeed,
  seq: number,
  body: unknown,
  headers: Record<string, string[]> = {},
): InboxMessage => ({
  stream: feed.stream,
  streamSequence: seq,
  subject: feed.subject,
  headers,
  body: new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body)),
  storedAtMs: Date.parse("2026-11-22T10:00:00Z"),
});
const reportOf = (reason: string): OutgoingEvent => ({
  type: "config.status",
  body: { revision: 0, status: "REJECTED", error: reason, timestamp: "2026-11-22T10:00:00.000Z" },
});

/**
 * The runner against a real inbox (the outbox's SQLite database in a temp dir) and a manual clock:
 * what it takes, in which order, how it settles, and what it does with what it must not run.
 */
describe("CommandRunner: takes stored commands and settles each with its result", () => {
  let dataDir: string;
  let clock: ManualClock;
  let outbox: Outbox;
  let runner: CommandRunner;
  let results: OutgoingEvent[];
  let handled: string[];

  const open = (): void => {
    outbox = openOutbox({ dataDir, clock, logger: silentLogger() });
    runner = new CommandRunner({
      inbox: outbox.commands,
      reader: { addFeed: () => undefined, removeFeed: () => undefined },
      encode: (event) => {
        const { eventId: _id, ...entry } = encodeEvent(event, {
          machineId: "m1",
          subjects: machineSubjects("m1"),
          clock,
        });
        return entry;
      },
      stored: (event) => results.push(event),
      clock,
      logger: silentLogger(),
    });
  };
  const handler = (
    work: (command: Command) => ReturnType<CommandHandler<Command>["handle"]>,
  ): CommandHandler<Command> => ({
    what: "test command",
    schema: Command,
    rejection: (reason) => reportOf(reason),
    handle: async (command) => {
      handled.push(command.name);
      return work(command);
    },
  });
  /** The `error` of the n-th result stored (a config status here). */
  const errorOf = (index: number): string => (results[index]?.body as { error?: string } | undefined)?.error ?? "";
  /** Lets the runner's promise chains run (it awaits nothing the test does not control). */
  const settle = (): Promise<void> => settleTurns(20);

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "edge-agent-runner-"));
    clock = manualClock();
    results = [];
    handled = [];
    open();
  });
  afterEach(async () => {
    await runner.stop();
    await outbox.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("takes a queue in order, one at a time, and settles each with its result in the outbox", async () => {
    runner.route({ feeds: [queue], handler: handler(async (command) => done(reportOf(command.name))) });
    outbox.commands.accept("q", [message(queue, 1, { name: "a" }), message(queue, 2, { name: "b" })], 2);
    runner.start();
    await settle();
    expect(handled).toEqual(["a", "b"]);
    expect(results.map((event) => (event.body as { error: string }).error)).toEqual(["a", "b"]);
    expect(outbox.commands.counts()).toEqual({ pending: 0, running: 0, interrupted: 0 });
    // The results are in the outbox, stored with their command's causation id.
    expect(outbox.stats().pendingCount).toBe(2);
  });

  it("takes only the newest of a latest feed: an older one stored behind it is settled unread", async () => {
    runner.route({ feeds: [latest], handler: handler(async () => done()) });
    outbox.commands.accept("l", [message(latest, 3, { name: "old" })], 3);
    outbox.commands.accept("l", [message(latest, 7, { name: "new" })], 7);
    runner.start();
    await settle();
    expect(handled).toEqual(["new"]);
  });

  it("refuses a command whose Nats-TTL passed before it could be taken, with a report that may name it", async () => {
    const raws: unknown[] = [];
    runner.route({
      feeds: [queue],
      handler: {
        ...handler(async () => done()),
        rejection: (reason, raw) => {
          raws.push(raw);
          return reportOf(reason);
        },
      },
    });
    outbox.commands.accept("q", [message(queue, 1, { name: "late" }, { "Nats-TTL": ["30s"] })], 1);
    clock.advance(31_000);
    runner.start();
    await settle();
    expect(handled).toEqual([]);
    expect(errorOf(0)).toMatch(/expired at 2026-11-22T10:00:30.000Z .*Nats-TTL/);
    expect(raws).toEqual([{ name: "late" }]);
  });

  it("refuses a copy of a server's answer stored where a command belongs", async () => {
    runner.route({ feeds: [queue], handler: handler(async () => done()) });
    const copy = { "Nats-Subject": ["machine.m2.q", "machine.m1.q"], "Nats-Sequence": ["4", "9"] };
    outbox.commands.accept("q", [message(queue, 9, { name: "copied" }, copy)], 9);
    runner.start();
    await settle();
    expect(handled).toEqual([]);
    expect(errorOf(0)).toMatch(/a copy of a server's answer/);
  });

  it("waits out a retry on the clock, taking what comes after it meanwhile", async () => {
    let attempts = 0;
    runner.route({
      feeds: [queue],
      handler: handler(async (command) => (command.name === "flaky" && attempts++ === 0 ? retryAfter(60_000) : done())),
    });
    outbox.commands.accept("q", [message(queue, 1, { name: "flaky" }), message(queue, 2, { name: "next" })], 2);
    runner.start();
    await settle();
    expect(handled).toEqual(["flaky", "next"]);
    clock.advance(59_000);
    await settle();
    expect(handled).toEqual(["flaky", "next"]);
    clock.advance(1_000);
    await settle();
    expect(handled).toEqual(["flaky", "next", "flaky"]);
  });

  it("answers the fleet's junk once per subject and reason an hour, however many copies come", async () => {
    const fleet: CommandFeed = { ...latest, key: "f", mode: "queue", start: "first" };
    runner.route({ feeds: [fleet], handler: handler(async () => done()) });
    for (let seq = 1; seq <= 5; seq++)
      outbox.commands.accept("f", [message(fleet, seq, `{"stream":"X","seq":${seq}`)], seq);
    runner.start();
    await settle();
    expect(results).toHaveLength(1);
    clock.advance(3_600_000);
    outbox.commands.accept("f", [message(fleet, 6, '{"stream":"X","seq":6')], 6);
    runner.wake();
    await settle();
    expect(results).toHaveLength(2);
    expect(outbox.commands.counts().pending).toBe(0);
  });

  it("answers each fleet-wide refusal that names its own key (a task's, by its id)", async () => {
    const fleet: CommandFeed = { ...latest, key: "f", mode: "queue", start: "first" };
    runner.route({
      feeds: [fleet],
      handler: handler(async (command) =>
        reject(`task ${command.name} refused: off`, reportOf(command.name), { answerKey: command.name }),
      ),
    });
    outbox.commands.accept(
      "f",
      [1, 2, 3].map((seq) => message(fleet, seq, { name: `task-${seq}` })),
      3,
    );
    outbox.commands.accept("f", [message(fleet, 4, { name: "task-1" })], 4);
    runner.start();
    await settle();
    expect(results.map((event) => (event.body as { error: string }).error)).toEqual(["task-1", "task-2", "task-3"]);
  });

  it("reports a command a crash cut short and never runs it again; a route that may redo its work runs it once more", async () => {
    const redo: CommandFeed = { ...queue, key: "r", subject: "machine.m1.r" };
    runner.route({ feeds: [queue], handler: handler(() => new Promise(() => undefined)) });
    runner.route({ feeds: [redo], interrupted: "retry-once", handler: handler(() => new Promise(() => undefined)) });
    outbox.commands.accept("q", [message(queue, 1, { name: "crashes" })], 1);
    outbox.commands.accept("r", [message(redo, 2, { name: "redone" })], 2);
    runner.start();
    await settle();
    expect(outbox.commands.counts().running).toBe(2);
    // The process dies here: nothing settles; the next run opens the same database.
    outbox = openOutbox({ dataDir, clock, logger: silentLogger() });
    handled = [];
    open();
    runner.route({ feeds: [queue], handler: handler(async () => done()) });
    runner.route({ feeds: [redo], interrupted: "retry-once", handler: handler(async () => done()) });
    runner.start();
    await settle();
    expect(handled).toEqual(["redone"]);
    expect(results.map((event) => (event.body as { error: string }).error)).toEqual([
      expect.stringMatching(/interrupted: the agent stopped unexpectedly .* it is not run again/),
    ]);
    expect(outbox.commands.counts()).toEqual({ pending: 0, running: 0, interrupted: 0 });
  });

  it("keeps a refusal's result and its settlement together: a malformed command is reported, never run", async () => {
    runner.route({ feeds: [queue], handler: handler(async () => reject("never")) });
    outbox.commands.accept("q", [message(queue, 1, "{not json"), message(queue, 2, { other: 1 })], 2);
    runner.start();
    await settle();
    expect(handled).toEqual([]);
    expect(results.map((event) => (event.body as { error: string }).error)).toEqual([
      expect.stringMatching(/^malformed test command: /),
      expect.stringMatching(/^malformed test command: name/),
    ]);
  });

  it("tells a handler its message's Nats-TTL expiry, and a refusal's report whether a crash cut the command short", async () => {
    const expiries: Array<number | null> = [];
    const refusals: Array<{ kind: string; causationId: string }> = [];
    const watching = (work: () => Promise<ReturnType<typeof done>>): CommandHandler<Command> => ({
      what: "test command",
      schema: Command,
      rejection: (reason, _raw, context) => {
        refusals.push(context);
        return reportOf(reason);
      },
      handle: async (_command, delivery) => {
        expiries.push(delivery.expiresAtMs);
        return work();
      },
    });
    runner.route({ feeds: [queue], handler: watching(() => new Promise(() => undefined)) });
    outbox.commands.accept("q", [message(queue, 1, { name: "ttl" }, { "Nats-TTL": ["1h"] })], 1);
    runner.start();
    await settle();
    expect(expiries).toEqual([Date.parse("2026-11-22T11:00:00Z")]);
    outbox = openOutbox({ dataDir, clock, logger: silentLogger() });
    open();
    runner.route({ feeds: [queue], handler: watching(async () => done()) });
    outbox.commands.accept("q", [message(queue, 2, "{not json")], 2);
    runner.start();
    await settle();
    expect(refusals).toEqual([
      { kind: "interrupted", causationId: "S:1" },
      { kind: "refused", causationId: "S:2" },
    ]);
  });

  it("says how many of a route's commands wait their turn", async () => {
    const hold: Array<() => void> = [];
    const route = runner.route({
      feeds: [queue],
      handler: handler(() => new Promise((resolve) => hold.push(() => resolve(done())))),
    });
    const other = runner.route({ feeds: [latest], handler: handler(async () => done()) });
    outbox.commands.accept(
      "q",
      [1, 2, 3].map((seq) => message(queue, seq, { name: `n${seq}` })),
      3,
    );
    runner.start();
    await settle();
    expect(route.waiting()).toBe(2);
    expect(other.waiting()).toBe(0);
    hold.shift()?.();
    await settle();
    expect(route.waiting()).toBe(1);
    for (const release of hold.splice(0)) release();
    await settle();
    hold.shift()?.();
    await settle();
    expect(route.waiting()).toBe(0);
  });
});
