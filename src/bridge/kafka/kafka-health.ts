import type { Logger } from "../../runtime/index.ts";
import { type Cancel, type Clock, timersOf } from "../../runtime/index.ts";
import { classifyKafkaError, describeKafkaError, kafkaErrorIds } from "./kafka-errors.ts";

/** What the bridge's status says of Kafka. */
export interface KafkaHealthStatus {
  /** False once Kafka has not answered (or only failed) for `warnAfterMs`. */
  readonly reachable: boolean;
  /** Since when (ISO-8601) Kafka has been unreachable; null when it is reachable. */
  readonly unreachableSince: string | null;
  /** One line for an operator: what is wrong and what to look at; null when all is well. */
  readonly problem: string | null;
}

export const DEFAULT_UNREACHABLE_WARNING_MS = 5_000;

/**
 * Tells the operator about Kafka trouble while it lasts, once for the whole bridge rather than
 * once per shard and retry: a warning when no Kafka call has succeeded for `warnAfterMs` while
 * calls were waiting or failing (a broker that went away is often not an error at all, just a
 * call that hangs), and one line when a call succeeds again, with how long it lasted. A refusal of
 * the records' timestamps (INVALID_TIMESTAMP) names its likely cause: this host's clock.
 *
 * Durations are monotonic (the clock's `monotonicMs`); only the times shown are wall times.
 */
export class KafkaHealth {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #brokers: readonly string[];
  readonly #warnAfterMs: number;
  readonly #pending = new Map<number, number>();
  #nextCall = 0;
  /** Monotonic time of the first failure since the last success. */
  #failingSinceMs: number | null = null;
  #lastFailure: string | null = null;
  /** Set while the warning stands: monotonic and wall time it began. */
  #unreachable: { sinceMs: number; sinceWallMs: number } | null = null;
  #timestampsRefused = false;
  #stopChecks: Cancel | null = null;

  constructor(options: { clock: Clock; logger: Logger; brokers: readonly string[]; warnAfterMs?: number }) {
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#brokers = options.brokers;
    this.#warnAfterMs = options.warnAfterMs ?? DEFAULT_UNREACHABLE_WARNING_MS;
  }

  start(): void {
    this.#stopChecks ??= timersOf(this.#clock).every(1_000, () => this.check());
  }

  stop(): void {
    this.#stopChecks?.();
    this.#stopChecks = null;
  }

  /**
   * Follows one Kafka call: its success or failure is what health is made of. Only a committed
   * transaction (`transaction`) shows that the records' timestamps are taken again.
   */
  async track<T>(work: Promise<T>, kind: "transaction" | "call" = "call"): Promise<T> {
    const call = this.#nextCall++;
    this.#pending.set(call, this.#clock.monotonicMs());
    try {
      const result = await work;
      this.#pending.delete(call);
      this.succeeded(kind);
      return result;
    } catch (error) {
      this.#pending.delete(call);
      this.failed(error);
      throw error;
    }
  }

  succeeded(kind: "transaction" | "call" = "call"): void {
    this.#failingSinceMs = null;
    this.#lastFailure = null;
    if (this.#timestampsRefused && kind === "transaction") {
      this.#timestampsRefused = false;
      this.#logger.info("Kafka takes the records' timestamps again");
    }
    if (this.#unreachable && !this.#stalledCall()) {
      const seconds = Math.round((this.#clock.monotonicMs() - this.#unreachable.sinceMs) / 1_000);
      this.#unreachable = null;
      this.#logger.warn({ brokers: this.#brokers, unreachableSeconds: seconds }, "Kafka is reachable again");
    }
  }

  failed(error: unknown): void {
    // Another owner fencing us, or a record too large, is Kafka answering, not Kafka away.
    const kind = classifyKafkaError(error);
    if (kind === "fenced" || kind === "too-large") return;
    this.#failingSinceMs ??= this.#clock.monotonicMs();
    this.#lastFailure = describeKafkaError(error);
    if (kafkaErrorIds(error).has("INVALID_TIMESTAMP") && !this.#timestampsRefused) {
      this.#timestampsRefused = true;
      this.#logger.error(
        { hostTime: new Date(this.#clock.now()).toISOString(), reason: this.#lastFailure },
        "Kafka refuses the records' timestamps (INVALID_TIMESTAMP): this host's clock is probably wrong, by more than the topics' message.timestamp.before.max.ms / after.max.ms allow; events wait in NATS until it is set right",
      );
    }
    this.check();
  }

  /** Raises the warning once trouble has lasted `warnAfterMs` (also run every second). */
  check(): void {
    if (this.#unreachable) return;
    const now = this.#clock.monotonicMs();
    const stalledSinceMs = this.#stalledCall();
    const troubleSinceMs =
      stalledSinceMs === null || this.#failingSinceMs === null
        ? (stalledSinceMs ?? this.#failingSinceMs)
        : Math.min(stalledSinceMs, this.#failingSinceMs);
    if (troubleSinceMs === null || now - troubleSinceMs < this.#warnAfterMs) return;
    this.#unreachable = { sinceMs: troubleSinceMs, sinceWallMs: this.#clock.now() - (now - troubleSinceMs) };
    this.#logger.warn(
      {
        brokers: this.#brokers,
        unreachableSeconds: Math.round((now - troubleSinceMs) / 1_000),
        reason: this.#lastFailure ?? "no answer yet",
      },
      "Kafka has not answered the bridge for a while: events wait in NATS, nothing is acked until Kafka has them",
    );
  }

  status(): KafkaHealthStatus {
    if (this.#timestampsRefused)
      return {
        reachable: this.#unreachable === null,
        unreachableSince: this.#unreachableSince(),
        problem: `Kafka refuses the records' timestamps (INVALID_TIMESTAMP): check this host's clock (it says ${new Date(this.#clock.now()).toISOString()})`,
      };
    if (this.#unreachable)
      return {
        reachable: false,
        unreachableSince: this.#unreachableSince(),
        problem: `Kafka unreachable for ${Math.round((this.#clock.monotonicMs() - this.#unreachable.sinceMs) / 1_000)} s: ${this.#lastFailure ?? "no answer"}`,
      };
    return { reachable: true, unreachableSince: null, problem: null };
  }

  /** When the oldest call still waiting after `warnAfterMs` began, or null when none waits that long. */
  #stalledCall(): number | null {
    const now = this.#clock.monotonicMs();
    let oldest: number | null = null;
    for (const startedMs of this.#pending.values())
      if (now - startedMs >= this.#warnAfterMs && (oldest === null || startedMs < oldest)) oldest = startedMs;
    return oldest;
  }

  #unreachableSince(): string | null {
    return this.#unreachable ? new Date(this.#unreachable.sinceWallMs).toISOString() : null;
  }
}
