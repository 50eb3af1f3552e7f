import { createHash, randomUUID } from "node:crypto";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { EdgeError } from "../../errors/index.ts";
import type { Logger } from "../../runtime/index.ts";
import { type Cancel, type Clock, sleepOn, timersOf } from "../../runtime/index.ts";
import { isRevisionConflict } from "../../transport/index.ts";

export interface ShardLeasesOptions {
  readonly connection: NatsConnection;
  readonly bucket: string;
  readonly instanceId: string;
  /** This process: shown to an operator whose second instance is refused. */
  readonly pid: number;
  readonly host: string;
  /** Whether a process of this host runs (a restart need not wait for its dead predecessor). */
  readonly processAlive: (pid: number) => boolean;
  readonly shards: readonly string[];
  /**
   * Shards balanced apart: each class is spread evenly over the live instances on its own (a
   * stream's partitions, which share its load). Default: one class.
   */
  readonly balanceClassOf?: (shard: string) => string;
  readonly leaseMs: number;
  /** Leases are judged on its monotonic time and renewed on its timers: a step of the host's clock changes nothing. */
  readonly clock: Clock;
  readonly logger: Logger;
  /** The shard is ours: start it. */
  readonly acquired: (shard: string) => void;
  /**
   * The shard is no longer ours (or must be handed over): stop it; resolves once it stopped. It may
   * take a while (an open transaction finishes): renewals of the other leases never wait for it.
   */
  readonly lost: (shard: string) => Promise<void>;
}

export class InstanceIdInUseError extends EdgeError {
  readonly code = "EDGE_BRIDGE_INSTANCE_ID_IN_USE";
  constructor(instanceId: string, holder: string) {
    super(
      `instance id ${instanceId} is in use by a running bridge (${holder}); give each instance its own EDGE_BRIDGE_INSTANCE_ID`,
    );
    this.name = "InstanceIdInUseError";
  }
}

interface InstanceRecord {
  readonly instanceId: string;
  readonly nonce: string;
  readonly pid: number;
  readonly host: string;
  readonly at: string;
  /** Shards it holds (not counting those it is handing over). */
  readonly held: number;
  /** The same, per balance class (absent from instances of versions before classes: all in the default one). */
  readonly heldByClass?: Readonly<Record<string, number>>;
}

interface Held {
  revision: number;
  /**
   * When the last renewal that succeeded was sent, on the monotonic clock: the server's expiry
   * counts from a moment after it, so the lease is surely ours until this + leaseMs.
   */
  renewedAtMs: number;
}

/**
 * Who runs which shard, among the instances of one bridge group. A lease is a key in a KV bucket
 * whose entries expire `leaseMs` after their last write (the server's clock decides): created by
 * the instance that takes the shard, rewritten by compare-and-set every third of the lease. An
 * instance that dies stops renewing; its leases expire and the others take them, and the new
 * owner's producer fences the old one in Kafka, so a paused "dead" instance that wakes up cannot
 * commit any more.
 *
 * Balance: every instance also keeps an `instance.<id>` key alive; each aims at
 * ceil(shards / live instances) of each balance class (a stream's partitions apart from the rest,
 * so they spread evenly) and prefers shards by rendezvous hashing (each instance ranks
 * shards by hash(shard, instance)), so instances mostly want different shards and converge
 * without talking to each other. One with more than its share hands the extra ones over
 * gracefully: it stops them (finishing the open transaction) and deletes their keys.
 *
 * Time: whether a lease is still ours is measured on the monotonic clock, and ticks run on the
 * clock's timers, so stepping the host's clock neither keeps a lost lease nor drops a held one.
 * Ticks are serialized, and nothing in a tick waits for a shard to stop: a lost shard is stopped
 * beside the ticks (and not taken again until it has), so one slow stop cannot starve the
 * renewals of the others.
 */
export class ShardLeases {
  readonly #options: ShardLeasesOptions;
  readonly #held = new Map<string, Held>();
  /** Shards being handed over: still held and renewed until their runner stopped, then deleted. */
  readonly #releasing = new Map<string, Promise<void>>();
  /** Shards lost (expired or taken): their runner stopping. Not taken again before it has. */
  readonly #stopping = new Map<string, Promise<void>>();
  #kv: KV | null = null;
  #cancelTicks: Cancel | null = null;
  #ticking: Promise<void> | null = null;
  #stopped = false;
  #liveInstances = 1;
  #rounds = 0;
  #lastProblem: string | null = null;
  /** Tells this process from an earlier one with the same instance id. */
  readonly #nonce = randomUUID();

  constructor(options: ShardLeasesOptions) {
    this.#options = options;
  }

  get heldShards(): string[] {
    return [...this.#held.keys()].sort();
  }

  get liveInstances(): number {
    return this.#liveInstances;
  }

  /** Lease rounds finished (each renews, balances and takes), whether they succeeded or not. */
  get rounds(): number {
    return this.#rounds;
  }

  /** Whether the lease is surely still ours (renewed within the lease time). */
  holds(shard: string): boolean {
    const held = this.#held.get(shard);
    return held !== undefined && this.#options.clock.monotonicMs() - held.renewedAtMs < this.#options.leaseMs;
  }

  async start(): Promise<void> {
    const kv = await new Kvm(this.#options.connection).create(this.#options.bucket, {
      history: 1,
      ttl: this.#options.leaseMs,
    });
    this.#kv = kv;
    await this.#refuseDuplicateInstance(kv);
    await this.#reclaimOwnLeases(kv);
    await this.#tick();
    this.#cancelTicks = timersOf(this.#options.clock).every(
      Math.max(500, Math.floor(this.#options.leaseMs / 3)),
      () => {
        this.#ticking ??= this.#tick().finally(() => {
          this.#ticking = null;
        });
      },
    );
  }

  /** Stops every shard and gives its lease back at once, so another instance need not wait for it to expire. */
  async stop(): Promise<void> {
    // No more taking or balancing; renewals go on until every shard has stopped.
    this.#stopped = true;
    for (const shard of this.#active()) this.#releaseInBackground(shard);
    // A renewal may still find a lease lost meanwhile: its stop joins the wait.
    while (this.#releasing.size > 0 || this.#stopping.size > 0)
      await Promise.all([...this.#releasing.values(), ...this.#stopping.values()]);
    this.#cancelTicks?.();
    this.#cancelTicks = null;
    await this.#ticking;
    await this.#kv?.delete(this.#instanceKey()).catch(() => undefined);
  }

  /**
   * An instance key still renewed by someone else means another live process has our id: two
   * owners of one lease would fence each other in turn. One not renewed is an earlier us, dead.
   */
  async #refuseDuplicateInstance(kv: KV): Promise<void> {
    const before = await kv.get(this.#instanceKey());
    if (before?.operation !== "PUT") return;
    let previous: Partial<InstanceRecord> = {};
    try {
      previous = before.json<InstanceRecord>();
    } catch {
      previous = {};
    }
    // Restarted on the same host (the usual case): its process is gone, nothing to wait for.
    if (
      previous.host === this.#options.host &&
      typeof previous.pid === "number" &&
      !this.#options.processAlive(previous.pid)
    )
      return;
    await sleepOn(this.#options.clock, Math.floor(this.#options.leaseMs / 3) + 500);
    const after = await kv.get(this.#instanceKey());
    if (after && after.operation === "PUT" && after.revision !== before.revision) {
      const holder = after.json<InstanceRecord>();
      throw new InstanceIdInUseError(this.#options.instanceId, `pid ${holder.pid}, last seen ${holder.at}`);
    }
  }

  /** Leases an earlier process with our id held are ours: taken back at once, not after they expire. */
  async #reclaimOwnLeases(kv: KV): Promise<void> {
    for (const shard of this.#options.shards) {
      const entry = await kv.get(this.#leaseKey(shard));
      if (entry?.operation !== "PUT") continue;
      let holder: string | undefined;
      try {
        holder = entry.json<{ instanceId?: string }>().instanceId;
      } catch {
        holder = undefined;
      }
      if (holder !== this.#options.instanceId) continue;
      const sentAt = this.#options.clock.monotonicMs();
      try {
        const revision = await kv.update(this.#leaseKey(shard), this.#leaseValue(), entry.revision);
        this.#held.set(shard, { revision, renewedAtMs: sentAt });
        this.#options.logger.info({ shard }, "took back a shard this instance held before it restarted");
        this.#options.acquired(shard);
      } catch (error) {
        // Expired or taken meanwhile: the normal round decides.
        if (!isRevisionConflict(error))
          this.#options.logger.warn({ shard, err: error }, "cannot take back a shard held before the restart yet");
      }
    }
  }

  #instanceKey(): string {
    return `instance.${this.#options.instanceId}`;
  }

  async #tick(): Promise<void> {
    try {
      await this.#round();
    } finally {
      this.#rounds++;
    }
  }

  async #round(): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    if (this.#stopped) {
      await this.#renewAll(kv).catch(() => undefined);
      return;
    }
    try {
      const record: InstanceRecord = {
        instanceId: this.#options.instanceId,
        nonce: this.#nonce,
        pid: this.#options.pid,
        host: this.#options.host,
        at: new Date(this.#options.clock.now()).toISOString(),
        held: this.#active().length,
        heldByClass: this.#heldByClass(),
      };
      await kv.put(this.#instanceKey(), JSON.stringify(record));
      await this.#renewAll(kv);
      const others: Array<Partial<InstanceRecord>> = [];
      for await (const key of await kv.keys("instance.*")) {
        if (key === this.#instanceKey()) continue;
        const entry = await kv.get(key).catch(() => null);
        if (entry?.operation === "PUT") others.push(entry.json<Partial<InstanceRecord>>());
      }
      this.#liveInstances = others.length + 1;
      const ranked = this.#ranked();
      for (const balanceClass of new Set(this.#options.shards.map((shard) => this.#classOf(shard)))) {
        const heldByOthers = others.map((other) =>
          other.heldByClass ? (other.heldByClass[balanceClass] ?? 0) : balanceClass === "" ? (other.held ?? 0) : 0,
        );
        await this.#balance(
          kv,
          ranked.filter((shard) => this.#classOf(shard) === balanceClass),
          heldByOthers,
        );
      }
      if (this.#lastProblem !== null) this.#options.logger.info("leases are renewed again");
      this.#lastProblem = null;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (reason !== this.#lastProblem)
        this.#options.logger.warn({ reason }, "cannot renew or take leases right now; retrying");
      this.#lastProblem = reason;
      // A lease not renewed in time is lost: stop those shards before someone else takes them.
      for (const [shard, held] of [...this.#held])
        if (!this.holds(shard)) this.#lose(shard, held, "not renewed in time");
    }
  }

  /**
   * One balance class: hand over down to the ceiling, and one more while another instance has
   * less than the floor; the group settles at floor or ceiling each (4/3/3 for ten shards on
   * three instances). Then take shards, in this instance's order of preference, up to the ceiling.
   */
  async #balance(kv: KV, ranked: readonly string[], heldByOthers: readonly number[]): Promise<void> {
    const floor = Math.floor(ranked.length / this.#liveInstances);
    const ceiling = Math.ceil(ranked.length / this.#liveInstances);
    const mine = ranked.filter((shard) => this.#active().includes(shard));
    const shed = Math.max(
      mine.length - ceiling,
      mine.length > floor && heldByOthers.some((held) => held < floor) ? 1 : 0,
    );
    for (const shard of mine.slice(mine.length - shed)) {
      this.#options.logger.info(
        { shard, liveInstances: this.#liveInstances, floor, ceiling },
        "handing a shard over to balance the group",
      );
      this.#releaseInBackground(shard);
    }
    const activeHere = (): number => this.#active().filter((shard) => ranked.includes(shard)).length;
    for (const shard of ranked) {
      if (activeHere() >= ceiling || this.#stopped || shed > 0) break;
      if (this.#held.has(shard) || this.#stopping.has(shard)) continue;
      await this.#tryAcquire(kv, shard);
    }
  }

  #classOf(shard: string): string {
    return this.#options.balanceClassOf?.(shard) ?? "";
  }

  #heldByClass(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const shard of this.#active()) counts[this.#classOf(shard)] = (counts[this.#classOf(shard)] ?? 0) + 1;
    return counts;
  }

  /** Shards held and not being handed over. */
  #active(): string[] {
    return [...this.#held.keys()].filter((shard) => !this.#releasing.has(shard));
  }

  /** Renewals go out together: a tick must stay well inside a third of the lease even for many shards. */
  async #renewAll(kv: KV): Promise<void> {
    await Promise.all([...this.#held].map(([shard, held]) => this.#renew(kv, shard, held)));
  }

  async #renew(kv: KV, shard: string, held: Held): Promise<void> {
    const sentAt = this.#options.clock.monotonicMs();
    try {
      held.revision = await kv.update(this.#leaseKey(shard), this.#leaseValue(), held.revision);
      held.renewedAtMs = sentAt;
    } catch (error) {
      // The key is not at our revision: it expired (and may have been taken), so it is not ours.
      if (isRevisionConflict(error)) this.#lose(shard, held, "the lease expired and was taken");
      else throw error;
    }
  }

  /** Stops the shard (its open transaction finishes) while its lease is still renewed, then gives the lease back. */
  #releaseInBackground(shard: string): void {
    if (this.#releasing.has(shard)) return;
    const releasing = this.#release(shard)
      .catch((error: unknown) => this.#options.logger.warn({ shard, err: error }, "shard did not hand over cleanly"))
      .finally(() => this.#releasing.delete(shard));
    this.#releasing.set(shard, releasing);
  }

  async #tryAcquire(kv: KV, shard: string): Promise<void> {
    const sentAt = this.#options.clock.monotonicMs();
    try {
      const revision = await kv.create(this.#leaseKey(shard), this.#leaseValue());
      this.#held.set(shard, { revision, renewedAtMs: sentAt });
      this.#options.logger.info({ shard }, "took shard");
      this.#options.acquired(shard);
    } catch (error) {
      // Someone else holds it.
      if (!isRevisionConflict(error)) throw error;
    }
  }

  /** The lease is no longer ours: the shard stops beside the ticks, which go on renewing the others. */
  #lose(shard: string, held: Held, why: string): void {
    // Already lost, or held anew since this renewal went out.
    if (this.#held.get(shard) !== held) return;
    this.#held.delete(shard);
    this.#options.logger.warn({ shard, why }, "lost shard");
    // Being handed over: its stop is under way already.
    if (this.#releasing.has(shard)) return;
    const stopping = this.#options
      .lost(shard)
      .catch((error: unknown) => this.#options.logger.warn({ shard, err: error }, "lost shard did not stop cleanly"))
      .finally(() => this.#stopping.delete(shard));
    this.#stopping.set(shard, stopping);
  }

  async #release(shard: string): Promise<void> {
    await this.#options.lost(shard);
    // The revision as last renewed: renewals went on while the shard stopped.
    const held = this.#held.get(shard);
    this.#held.delete(shard);
    if (held) await this.#kv?.delete(this.#leaseKey(shard), { previousSeq: held.revision }).catch(() => undefined);
  }

  #leaseKey(shard: string): string {
    return `shard.${shard}`;
  }

  #leaseValue(): string {
    return JSON.stringify({
      instanceId: this.#options.instanceId,
      at: new Date(this.#options.clock.now()).toISOString(),
    });
  }

  #ranked(): string[] {
    const score = (shard: string): string =>
      createHash("sha256").update(`${shard}\u0000${this.#options.instanceId}`).digest("hex");
    return [...this.#options.shards].sort((a, b) => (score(a) < score(b) ? 1 : -1));
  }
}
