import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InstanceIdInUseError, ShardLeases } from "../../../src/bridge/shards/shard-leases.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { type ManualClock, manualClock, settle } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/**
 * Far longer than a test runs in real time, so the server never expires a key by itself: every
 * renewal, loss and expiry here is the manual clock's doing.
 */
const LEASE_MS = 600_000;
/** A lease round runs every third of the lease. */
const ROUND_MS = LEASE_MS / 3;
const BUCKET = "test-leases";

interface Harness {
  readonly leases: ShardLeases;
  readonly acquired: string[];
  readonly lost: string[];
}

/**
 * ShardLeases against a real nats-server's KV bucket, its rounds and its judgement of time driven
 * by a manual clock.
 */
describe("shard leases on the manual clock", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let kv: KV;
  let clock: ManualClock;
  const running: ShardLeases[] = [];
  /** Stops the test's slow shard stops hold back, so every instance can stop. */
  const unblock: Array<() => void> = [];

  const startLeases = async (
    options: {
      shards?: readonly string[];
      instanceId?: string;
      host?: string;
      stop?: (shard: string) => Promise<void>;
      balanceClassOf?: (shard: string) => string;
    } = {},
  ): Promise<Harness> => {
    const acquired: string[] = [];
    const lost: string[] = [];
    const leases = new ShardLeases({
      connection,
      bucket: BUCKET,
      instanceId: options.instanceId ?? "instance-a",
      pid: process.pid,
      host: options.host ?? "host-a",
      processAlive: () => false,
      shards: options.shards ?? ["s1", "s2"],
      ...(options.balanceClassOf ? { balanceClassOf: options.balanceClassOf } : {}),
      leaseMs: LEASE_MS,
      clock,
      logger: silentLogger(),
      acquired: (shard) => void acquired.push(shard),
      lost: async (shard) => {
        lost.push(shard);
        await options.stop?.(shard);
      },
    });
    running.push(leases);
    await leases.start();
    return { leases, acquired, lost };
  };

  /** One lease round on the clock, waited for to its end. */
  const round = async (leases: ShardLeases): Promise<void> => {
    const before = leases.rounds;
    clock.advance(ROUND_MS);
    await waitFor("the lease round to finish", () => leases.rounds > before);
  };

  const revisionOf = async (shard: string): Promise<number> => (await kv.get(`shard.${shard}`))?.revision ?? 0;

  beforeEach(async () => {
    server = await startNatsServer();
    connection = await connect({ servers: server.url });
    clock = manualClock(Date.now());
    kv = await new Kvm(connection).create(BUCKET, { history: 1, ttl: LEASE_MS });
  });

  afterEach(async () => {
    for (const release of unblock.splice(0)) release();
    await Promise.all(running.splice(0).map((leases) => leases.stop()));
    await connection.close();
    await server.dispose();
  });

  it("judges its leases on monotonic time: the host's clock set forward keeps them, set back does not prolong them", async () => {
    const { leases } = await startLeases();
    expect(leases.heldShards).toEqual(["s1", "s2"]);

    // Forward 30 minutes: still renewed a moment ago, so still surely ours.
    clock.shiftWallClock(30 * 60_000);
    expect(leases.holds("s1")).toBe(true);

    // Back an hour, and a whole lease time passes while the renewal is still on its way: not
    // surely ours any more, whatever the wall clock says.
    clock.shiftWallClock(-90 * 60_000);
    const before = leases.rounds;
    clock.advance(LEASE_MS);
    expect(leases.holds("s1")).toBe(false);
    // The renewal that went out a third of a lease ago lands: ours again until that + a lease.
    await waitFor("the renewal to land", () => leases.rounds > before);
    expect(leases.holds("s1")).toBe(true);
    expect(leases.holds("s2")).toBe(true);
  });

  it("keeps renewing its other leases while a lost shard takes its time to stop, and does not take that shard again until it has stopped", async () => {
    let finishStop: () => void = () => undefined;
    const slowStop = new Promise<void>((resolve) => {
      finishStop = resolve;
    });
    unblock.push(() => finishStop());
    const { leases, acquired, lost } = await startLeases({
      stop: (shard) => (shard === "s1" ? slowStop : Promise.resolve()),
    });
    expect(leases.heldShards).toEqual(["s1", "s2"]);

    // Another instance owns s1 now (ours expired while we were paused, say).
    await kv.put("shard.s1", JSON.stringify({ instanceId: "instance-b" }));
    await round(leases);
    expect(lost).toEqual(["s1"]);
    expect(leases.heldShards).toEqual(["s2"]);

    // s1's stop hangs; round after round, s2 is renewed and stays surely ours.
    for (let index = 0; index < 4; index++) {
      const revision = await revisionOf("s2");
      await round(leases);
      expect(await revisionOf("s2")).toBeGreaterThan(revision);
      expect(leases.holds("s2")).toBe(true);
    }

    // s1 is free again, but its runner has not stopped: not taken yet.
    await kv.delete("shard.s1");
    await round(leases);
    expect(acquired.filter((shard) => shard === "s1")).toHaveLength(1);

    finishStop();
    await settle();
    await round(leases);
    expect(acquired.filter((shard) => shard === "s1")).toHaveLength(2);
    expect(leases.heldShards).toEqual(["s1", "s2"]);
  });

  it("refuses a second live instance with its id after one wait on the clock, not on real timers", async () => {
    const first = await startLeases({ instanceId: "twin", host: "host-a" });
    const pendingBefore = clock.pending;
    const second = new ShardLeases({
      connection,
      bucket: BUCKET,
      instanceId: "twin",
      pid: process.pid + 1,
      host: "host-b",
      processAlive: () => true,
      shards: ["s1", "s2"],
      leaseMs: LEASE_MS,
      clock,
      logger: silentLogger(),
      acquired: () => undefined,
      lost: async () => undefined,
    });
    const refused = second.start().then(
      () => null,
      (error: unknown) => error,
    );
    // It waits a third of a lease on the manual clock for the first to show it is alive.
    await waitFor("the second instance waiting on the clock", () => clock.pending > pendingBefore);
    await round(first.leases);
    clock.advance(500);
    const error = await refused;
    expect(error).toBeInstanceOf(InstanceIdInUseError);
    expect((error as InstanceIdInUseError).code).toBe("EDGE_BRIDGE_INSTANCE_ID_IN_USE");
  });

  it("gives every lease back when it stops, without waiting for real time", async () => {
    const { leases, lost } = await startLeases();
    await leases.stop();
    running.splice(running.indexOf(leases), 1);
    expect(lost.sort()).toEqual(["s1", "s2"]);
    expect((await kv.get("shard.s1"))?.operation).not.toBe("PUT");
    expect((await kv.get("shard.s2"))?.operation).not.toBe("PUT");
    expect(clock.pending).toBe(0);
  });

  it("spreads a stream's partitions evenly over the instances, apart from the other shards", async () => {
    const others = ["s1", "s2", "s3", "s4", "s5", "s6"];
    const partitions = ["p0", "p1", "p2", "p3"];
    const options = {
      shards: [...others, ...partitions],
      balanceClassOf: (shard: string) => (shard.startsWith("p") ? "partitions" : ""),
    };
    const first = await startLeases({ ...options, instanceId: "instance-a", host: "host-a" });
    expect(first.leases.heldShards).toHaveLength(10);
    const second = await startLeases({ ...options, instanceId: "instance-b", host: "host-b" });
    const both = [first.leases, second.leases];
    const spread = (leases: ShardLeases) => ({
      partitions: leases.heldShards.filter((shard) => partitions.includes(shard)).length,
      others: leases.heldShards.filter((shard) => others.includes(shard)).length,
    });
    // Rounds until the first has handed over its extra shards and the second has taken them.
    for (let index = 0; index < 6; index++) {
      const before = both.map((leases) => leases.rounds);
      clock.advance(ROUND_MS);
      await waitFor("both lease rounds to finish", () => both.every((leases, at) => leases.rounds > (before[at] ?? 0)));
      await settle();
    }
    expect(both.map(spread)).toEqual([
      { partitions: 2, others: 3 },
      { partitions: 2, others: 3 },
    ]);
  });
});
