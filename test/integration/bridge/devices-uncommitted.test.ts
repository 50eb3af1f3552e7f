import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeviceState } from "../../../src/bridge/devices/device-state.ts";
import {
  EventType,
  eventHeaderEntries,
  type MachinePinotMessage,
  machineSubjects,
  SCHEMA_VERSION,
  subjectFor,
} from "../../../src/contracts/index.ts";
import { inventoryOf } from "../../fixtures/bridge/simulated-fleet.ts";
import { type DevicesHarness, startDevicesHarness } from "../../helpers/devices-harness.ts";
import { manualClock } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";

const GROUP = "uncommitted-test";
const MACHINES = ["u1", "u2", "u3", "u4"];

/**
 * What a devices table that reads Kafka uncommitted (OpenFrame's stock Pinot table) keeps of a
 * machine: among every row written, aborted transactions' included, the one with the greatest
 * ingestionTime, the later one on a tie (Pinot's FULL upsert on its comparison column).
 */
function upsertFold(rows: readonly MachinePinotMessage[]): Map<string, MachinePinotMessage> {
  const table = new Map<string, MachinePinotMessage>();
  for (const row of rows) {
    const held = table.get(row.machineId);
    if (!held || row.ingestionTime >= held.ingestionTime) table.set(row.machineId, row);
  }
  return table;
}

/**
 * The devices shard's transactions aborted, redone, and fenced under a zombie owner, on a real
 * nats-server and KV bucket: every row any transaction wrote, as an uncommitted reader sees them,
 * upserted on ingestionTime, ends in the same table as the committed rows alone.
 */
describe("devices rows from aborted transactions, read uncommitted", () => {
  let server: NatsServerHandle;
  let app: NatsConnection;
  const harnesses: DevicesHarness[] = [];
  let eventCount = 0;

  const start = async (name: string): Promise<DevicesHarness> => {
    const harness = await startDevicesHarness({ connection: app, clock: manualClock(Date.now()), group: GROUP, name });
    harnesses.push(harness);
    return harness;
  };
  /** A machine's event as its agent publishes it. */
  const publish = async (machineId: string, type: EventType, body: unknown, sequence: number): Promise<void> => {
    const eventId = `event-${++eventCount}`;
    const headers = natsHeaders();
    for (const [name, value] of eventHeaderEntries({
      eventId,
      eventType: type,
      machineId,
      timestamp: new Date().toISOString(),
      correlationId: eventId,
      schemaVersion: SCHEMA_VERSION,
      sequence,
    }))
      headers.set(name, value);
    await jetstream(app).publish(subjectFor(machineSubjects(machineId), type), JSON.stringify(body), {
      headers,
      msgID: eventId,
    });
  };

  beforeEach(async () => {
    server = await startNatsServer();
    app = await connect({ servers: server.url });
    await createPlatformStreams(app);
  });

  afterEach(async () => {
    for (const harness of harnesses.splice(0)) await harness.stop();
    await app.close();
    await server.dispose();
  });

  it("aborted batches, redone with more events, and a fenced zombie owner leave no wrong state in the upserted table", async () => {
    // Seeded: the same run every time.
    let seed = 20_261_208;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const sequences = new Map<string, number>();
    const publishSomething = async (): Promise<void> => {
      const machineId = pick(MACHINES);
      const sequence = (sequences.get(machineId) ?? 0) + 1;
      sequences.set(machineId, sequence);
      const roll = random();
      if (roll < 0.4) {
        await publish(
          machineId,
          EventType.inventory,
          inventoryOf(machineId, { site: pick(["a", "b", "c"]) }),
          sequence,
        );
        return;
      }
      // Device clocks that lag by up to a minute: order comes from the server's clock, lowered by theirs.
      const timestamp = new Date(Date.now() - Math.floor(random() * 60_000)).toISOString();
      await publish(
        machineId,
        EventType.clientConnection,
        { timestamp, client: { name: machineId }, type: roll < 0.7 ? "DISCONNECT" : "CONNECT" },
        sequence,
      );
    };

    const everyRow: MachinePinotMessage[] = [];
    const committedRows: MachinePinotMessage[] = [];
    let owner = await start("owner-1");
    for (let round = 0; round < 40; round++) {
      const events = 1 + Math.floor(random() * 3);
      for (let index = 0; index < events; index++) await publishSomething();
      const roll = random();
      if (roll < 0.15) {
        // A zombie: the previous owner prepares its last batch (its state is in the bucket), then
        // the new owner's producer fences it and that transaction aborts.
        const zombie = owner;
        owner = await start(`owner-${round + 2}`);
        everyRow.push(...(await zombie.batch({ commit: false })));
        await zombie.stop();
        harnesses.splice(harnesses.indexOf(zombie), 1);
        continue;
      }
      const commit = roll >= 0.45;
      const rows = await owner.batch({ commit });
      everyRow.push(...rows);
      if (commit) committedRows.push(...rows);
    }
    // The last word: a batch that commits, whatever was pending.
    const last = await owner.batch();
    everyRow.push(...last);
    committedRows.push(...last);

    expect(everyRow.length).toBeGreaterThan(committedRows.length);
    const uncommittedTable = upsertFold(everyRow);
    const committedTable = upsertFold(committedRows);
    expect([...uncommittedTable.keys()].sort()).toEqual([...committedTable.keys()].sort());
    const bucket = await new Kvm(app).open(`${GROUP}-devices`);
    for (const [machineId, row] of committedTable) {
      expect(uncommittedTable.get(machineId), machineId).toEqual(row);
      // Which is the state the bridge holds: nothing pending that the table does not show.
      const state = (await bucket.get(machineId))?.json<DeviceState>();
      expect(state?.lastRow, machineId).toEqual(row);
    }
    // Per machine, ingestionTime never went backwards from one committed row to the next.
    for (const machineId of MACHINES) {
      const times = committedRows.filter((row) => row.machineId === machineId).map((row) => row.ingestionTime);
      expect(
        [...times].sort((a, b) => a - b),
        machineId,
      ).toEqual(times);
    }
  });
});
