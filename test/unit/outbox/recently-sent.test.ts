import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OUTBOX_FILE, OutboxReader, RECENTLY_SENT_LIMIT } from "../../../src/outbox/index.ts";
import { OutboxStore } from "../../../src/outbox/sqlite-store.ts";
import type { StoredOutboxEntry } from "../../../src/outbox/types.ts";
import { testEvent } from "../../fixtures/outbox/test-events.ts";

const noCounters = { last_sequence: 0, delivered: 0, evicted_telemetry: 0, evicted_state: 0, dead_letters: 0 };

describe("the outbox's record of recently sent events", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  const storeWith = (count: number): { store: OutboxStore; dataDir: string } => {
    const dataDir = mkdtempSync(join(tmpdir(), "ea-sent-"));
    dirs.push(dataDir);
    const store = new OutboxStore(join(dataDir, OUTBOX_FILE), "normal");
    const entries: StoredOutboxEntry[] = Array.from({ length: count }, (_, index) => ({
      ...testEvent(index),
      sequence: index + 1,
      createdAtMs: 1_000 + index,
    }));
    store.insert(entries, count);
    return { store, dataDir };
  };

  it("keeps the newest RECENTLY_SENT_LIMIT delivered events, in the order they were settled, and deletes them from the events", () => {
    const total = RECENTLY_SENT_LIMIT + 150;
    const { store, dataDir } = storeWith(total);
    // Settled out of order, as a retried batch is: 2..total first, 1 last.
    store.settle(
      Array.from({ length: total - 1 }, (_, index) => index + 2),
      [],
      noCounters,
      5_000,
    );
    store.settle([1], [], noCounters, 6_000);
    const reader = new OutboxReader(dataDir);
    try {
      const sent = reader.sentAfter(0, 10_000).entries;
      expect(sent).toHaveLength(RECENTLY_SENT_LIMIT);
      expect(sent.at(-1)).toMatchObject({
        state: "sent",
        sequence: 1,
        settledAtMs: 6_000,
        createdAtMs: 1_000,
        eventType: "telemetry",
        subject: "machine.m1.telemetry",
      });
      expect(sent[0]?.sequence).toBe(total - RECENTLY_SENT_LIMIT + 2);
      expect(sent[0]?.summary.startsWith('{"index":')).toBe(true);
      expect(reader.pendingAfter(0, 10).entries).toEqual([]);
    } finally {
      reader.close();
      store.close();
    }
  });

  it("lists sent, dead-lettered and pending events from one snapshot", () => {
    const { store, dataDir } = storeWith(3);
    const refused = { ...testEvent(9), sequence: 3, createdAtMs: 1_002 };
    store.settle([1], [{ entry: refused, reason: "permissions violation", failedAtMs: 7_000 }], noCounters, 5_000);
    const reader = new OutboxReader(dataDir);
    try {
      const listed = reader.consistently(() => [
        ...reader.sentAfter(0, 10).entries,
        ...reader.deadLettersAfter(0, 10).entries,
        ...reader.pendingAfter(0, 10).entries,
      ]);
      expect(listed.map((entry) => [entry.state, entry.sequence])).toEqual([
        ["sent", 1],
        ["dead-letter", 3],
        ["pending", 2],
      ]);
      expect(listed[1]).toMatchObject({ reason: "permissions violation", settledAtMs: 7_000 });
      expect(reader.pendingAfter(2, 10)).toEqual({ entries: [], cursor: 2 });
    } finally {
      reader.close();
      store.close();
    }
  });
});
