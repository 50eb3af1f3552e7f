import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { EventPublisher } from "../../../src/outbox/index.ts";
import { type Outbox, openOutbox } from "../../../src/outbox/index.ts";
import {
  type FloorRecord,
  outboxIdFor,
  type RestartFacts,
  restartSequence,
  SequenceFloor,
} from "../../../src/outbox/sequence-floor.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { testEvent } from "../../fixtures/outbox/test-events.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const record = (state: FloorRecord["state"], bootId: string | null = "boot-1"): FloorRecord => ({
  generation: 7,
  base: 100,
  reserved: 1_100,
  state,
  settledThrough: 0,
  bootId,
  outboxId: "life-1",
});
const facts = (change: Partial<RestartFacts>): RestartFacts => ({
  record: null,
  legacyFloor: null,
  database: "kept",
  databaseLastSequence: 150,
  bootId: "boot-1",
  durability: "normal",
  ...change,
});

describe("where the sequence continues after a stop or a crash", () => {
  it("continues exactly after a clean stop, and after a crash only when the database provably holds every number used", () => {
    expect(restartSequence(facts({ record: { ...record("clean"), base: 150 } }))).toBe(150);
    // Same boot, nothing held in memory: an agent crash loses no committed write.
    expect(restartSequence(facts({ record: record("running") }))).toBe(150);
    // Events held in memory died with the process: their numbers are past the database's counter.
    expect(restartSequence(facts({ record: record("holding") }))).toBe(1_100);
    // The machine went down: under "normal" durability the last commits may be gone.
    expect(restartSequence(facts({ record: record("running"), bootId: "boot-2" }))).toBe(1_100);
    expect(restartSequence(facts({ record: record("running"), bootId: "boot-2", durability: "full" }))).toBe(150);
    expect(restartSequence(facts({ record: record("running", null), bootId: null }))).toBe(1_100);
    // The database is gone or cannot be opened: only the floor tells.
    expect(restartSequence(facts({ record: record("running"), database: "lost", databaseLastSequence: 0 }))).toBe(
      1_100,
    );
    expect(
      restartSequence(facts({ record: record("running"), database: "unavailable", databaseLastSequence: 0 })),
    ).toBe(1_100);
    // The file of earlier versions held one number, rewritten every 10,000.
    expect(restartSequence(facts({ legacyFloor: 120 }))).toBe(150);
    expect(restartSequence(facts({ legacyFloor: 120, database: "lost", databaseLastSequence: 0 }))).toBe(10_120);
  });
});

describe("the sequence floor file", () => {
  const open: Outbox[] = [];
  afterEach(async () => {
    for (const outbox of open.splice(0)) await outbox.stop();
  });

  it("is written in place at a fixed size, and a torn write leaves the previous record", () => {
    const path = join(scratchDir("ea-floor-"), "outbox.sequence");
    const floor = new SequenceFloor(path, "boot-1");
    floor.begin(0, "life-1");
    floor.cover(SequenceFloor.BLOCK + 5);
    expect(statSync(path).size).toBe(2 * SequenceFloor.SLOT_BYTES);
    const good = new SequenceFloor(path, "boot-1").read().record;
    expect(good).toMatchObject({ state: "running", base: 0, reserved: 2 * SequenceFloor.BLOCK + 5 });

    floor.markHolding(true);
    expect(new SequenceFloor(path, "boot-1").read().record).toMatchObject({ state: "holding" });
    // Tear the newest slot: the reader falls back to the one before it.
    const bytes = readFileSync(path);
    const newest = ((good?.generation ?? 0) + 1) % 2;
    bytes.fill(0x41, newest * SequenceFloor.SLOT_BYTES + 40, newest * SequenceFloor.SLOT_BYTES + 60);
    writeFileSync(path, bytes);
    expect(new SequenceFloor(path, "boot-1").read().record).toEqual(good);
    expect(statSync(path).size).toBe(2 * SequenceFloor.SLOT_BYTES);
  });

  it("takes over the one-number file of earlier versions", async () => {
    const dataDir = scratchDir("ea-floor-");
    writeFileSync(join(dataDir, "outbox.sequence"), "20000\n");
    const outbox = openOutbox({ dataDir, clock: systemClock, logger: silentLogger() });
    open.push(outbox);
    // No database beside it: the old file may lag by up to 10,000.
    expect(outbox.append(testEvent(0)).sequence).toBe(30_001);
    await outbox.stop();
    expect(statSync(join(dataDir, "outbox.sequence")).size).toBe(2 * SequenceFloor.SLOT_BYTES);
    expect(new SequenceFloor(join(dataDir, "outbox.sequence"), null).read().record).toMatchObject({
      state: "clean",
      base: 30_001,
    });
  });

  it("never hands out again the numbers of events that were only in memory when the process died", async () => {
    const dataDir = scratchDir("ea-floor-");
    // A directory where the database should be: it cannot be opened, as on a broken disk.
    mkdirSync(join(dataDir, "outbox.db"));
    const crashed = openOutbox({ dataDir, clock: systemClock, logger: silentLogger(), bootId: "boot-1" });
    expect(crashed.appendBatch([testEvent(0), testEvent(1)]).map((entry) => entry.sequence)).toEqual([1, 2]);
    expect(crashed.stats()).toMatchObject({ heldInMemory: 2 });

    // kill -9 (no stop): the held events die. The disk is fine on the next start.
    rmSync(join(dataDir, "outbox.db"), { recursive: true });
    const next = openOutbox({ dataDir, clock: systemClock, logger: silentLogger(), bootId: "boot-1" });
    open.push(next);
    const sequence = next.append(testEvent(2)).sequence;
    expect(sequence).toBeGreaterThan(2);
    // The jump is declared (status and the outbox gauge), so the platform can tell it from a loss in transit.
    expect(next.stats().sequenceSkip).toEqual({ after: expect.any(Number), through: sequence - 1 });
    expect(next.stats().sequenceSkip?.after).toBeLessThanOrEqual(2);
  });

  it("continues right after the last number when the agent (not the machine) crashed, and past the reservation after a reboot", async () => {
    const dataDir = scratchDir("ea-floor-");
    const first = openOutbox({ dataDir, clock: systemClock, logger: silentLogger(), bootId: "boot-1" });
    expect(first.appendBatch([testEvent(0), testEvent(1), testEvent(2)]).at(-1)?.sequence).toBe(3);
    // kill -9 (no stop), same boot: the database has every number; no gap.
    const second = openOutbox({ dataDir, clock: systemClock, logger: silentLogger(), bootId: "boot-1" });
    expect(second.append(testEvent(3)).sequence).toBe(4);
    // kill -9, then the machine rebooted: a "normal" commit may have been lost with the power.
    const third = openOutbox({ dataDir, clock: systemClock, logger: silentLogger(), bootId: "boot-2" });
    open.push(third);
    expect(third.append(testEvent(4)).sequence).toBeGreaterThan(4 + SequenceFloor.BLOCK - 1);
  });

  it("names the outbox life (X-Outbox-ID on every event): kept while numbering goes on, a new one when it starts from 1 again", async () => {
    const headersSeen: string[] = [];
    const publisher: EventPublisher = {
      async publish(_subject, _payload, headers) {
        headersSeen.push(headers.find(([name]) => name === "X-Outbox-ID")?.[1] ?? "none");
        return { kind: "acked", streamSequence: headersSeen.length, duplicate: false };
      },
    };
    const lifeOf = async (dataDir: string, index: number): Promise<{ id: string; sequence: number }> => {
      const outbox = openOutbox({ dataDir, clock: systemClock, logger: silentLogger(), bootId: "boot-1" });
      const before = headersSeen.length;
      const { sequence } = outbox.append(testEvent(index));
      outbox.start(publisher);
      await waitFor("the event published", () => headersSeen.length > before, 15_000, 10);
      await outbox.stop();
      return { id: headersSeen.at(-1) as string, sequence };
    };
    const dataDir = scratchDir("ea-floor-");
    const first = await lifeOf(dataDir, 0);
    expect(first).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), sequence: 1 });
    // A restart, and even a lost database: the floor keeps the numbering, and the life with it.
    expect(await lifeOf(dataDir, 1)).toEqual({ id: first.id, sequence: 2 });
    rmSync(join(dataDir, "outbox.db"));
    const afterLostDatabase = await lifeOf(dataDir, 2);
    expect(afterLostDatabase.id).toBe(first.id);
    expect(afterLostDatabase.sequence).toBeGreaterThan(2);
    // A reinstall: nothing left, numbering from 1 again, and a life of its own.
    rmSync(dataDir, { recursive: true });
    mkdirSync(dataDir);
    const reinstalled = await lifeOf(dataDir, 3);
    expect(reinstalled.sequence).toBe(1);
    expect(reinstalled.id).not.toBe(first.id);
  });

  it("outboxIdFor: the floor's id while numbers go on; a new id from 1, or when the floor names none", () => {
    const made = (): string => "new-life";
    expect(outboxIdFor(record("clean"), 150, made)).toBe("life-1");
    expect(outboxIdFor(record("clean"), 0, made)).toBe("new-life");
    expect(outboxIdFor({ ...record("clean"), outboxId: null }, 150, made)).toBe("new-life");
    expect(outboxIdFor(null, 150, made)).toBe("new-life");
  });
});
