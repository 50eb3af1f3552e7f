import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../runtime/index.ts";
import { type Cancel, type Clock, jitteredBackoff, sleepOn, timersOf } from "../../runtime/index.ts";
import { readHeaders } from "../../transport/index.ts";
import { DeliveryOrder } from "./delivery-order.ts";

const ACK = new TextEncoder().encode("+ACK");

/** A stream message as a reader sees it: its place in the stream, its subject, headers and body. */
export interface StreamMessage {
  readonly stream: string;
  readonly streamSequence: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** Every header value, in order; a name may repeat. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** When the stream stored it (epoch ms). */
  readonly storedAtMs: number;
  /**
   * Why its headers could not be read (the NATS client refuses, e.g., a name with a space, which a
   * client speaking the raw protocol can send): it then has none, and becomes a dead letter.
   */
  readonly unreadableHeaders?: string;
}

export interface OrderedStreamSourceOptions {
  readonly connection: NatsConnection;
  readonly stream: string;
  /** The durable consumer this source owns (deleted and made again whenever it repositions). */
  readonly consumerName: string;
  /** Only the stream's messages stored under subjects it matches (one partition of a partitioned stream); none: all. */
  readonly filterSubject?: string;
  readonly logger: Logger;
  /** The health checks and the retry backoff run on its timers. */
  readonly clock: Clock;
  /** How many messages may wait in memory, read but not yet taken. Default 2,000. */
  readonly bufferMessages?: number;
  /**
   * How many messages the server may have delivered and not yet seen acked: the bound on what
   * this source holds in memory (nats.js pulls again as soon as messages arrive, not when they are
   * read, so only the server's limit holds a backlog back). Cover the reader's batches in flight
   * plus the buffer. Default 3 x bufferMessages.
   */
  readonly maxAckPending?: number;
  /** Ack wait of the consumer. Default 60 s. */
  readonly ackWaitMs?: number;
  /** How often an idle source checks that its consumer still exists. Default 15 s. */
  readonly healthCheckMs?: number;
}

export interface SourceCounters {
  /** Copies of messages already read (redeliveries), dropped. */
  readonly redeliveriesDropped: number;
  /** Messages that were gone from the stream (expired or deleted) before they could be read. */
  readonly missingFromStream: number;
  readonly repositions: number;
}

/**
 * Reads one stream strictly in stream order, from a given position, for a reader that keeps its
 * own position elsewhere (the bridge keeps it in Kafka, committed with its output).
 *
 * Guarantee: `take()` hands out each stream sequence at most once and never one before a lower one
 * still to come. JetStream itself redelivers out of order (after an ack wait, after a server
 * restart dropped what was in flight), so the source checks each sequence against the next one it
 * expects (delivery-order.ts): a lower one is a copy and is dropped; a higher one is a gap, and
 * the source makes its consumer again at the expected sequence. A new consumer delivers in stream
 * order, so the first message it gives is the next one that exists: anything skipped was gone
 * from the stream, and is counted. A consumer deleted under the source (a server restarted
 * without it) is made again the same way: nothing stalls silently.
 */
export class OrderedStreamSource {
  readonly stream: string;
  readonly #options: OrderedStreamSourceOptions;
  readonly #logger: Logger;
  readonly #capacity: number;
  /**
   * Read and not yet taken: the message and where its ack goes. The client's message object is
   * not kept (it holds the parsed headers and a view into the socket's buffer), only our copy.
   */
  #buffer: Array<{ message: StreamMessage; ackTo: string }> = [];
  #order = new DeliveryOrder();
  #messages: ConsumerMessages | null = null;
  #stopped = true;
  #generation = 0;
  #waiters: Array<() => void> = [];
  #roomWaiters: Array<() => void> = [];
  #pump: Promise<void> | null = null;
  #stopHealthChecks: Cancel | null = null;
  /** Taken and not yet acked, in stream order. */
  #unacked: Array<{ sequence: number; ackTo: string }> = [];
  #counters = { redeliveriesDropped: 0, missingFromStream: 0, repositions: 0 };
  #lastProblem: string | null = null;

  constructor(options: OrderedStreamSourceOptions) {
    this.#options = options;
    this.stream = options.stream;
    this.#logger = options.logger.child({ stream: options.stream, consumer: options.consumerName });
    this.#capacity = options.bufferMessages ?? 2_000;
  }

  get counters(): SourceCounters {
    return { ...this.#counters };
  }

  /** Messages read and waiting to be taken. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** The last problem seen while (re)making the consumer, or null once it reads again. */
  get lastProblem(): string | null {
    return this.#lastProblem;
  }

  /** Starts reading after `sequence` (0: from the beginning), dropping anything buffered. */
  async startAfter(sequence: number): Promise<void> {
    await this.stop();
    this.#stopped = false;
    this.#buffer = [];
    this.#order = new DeliveryOrder(sequence, { filtered: this.#options.filterSubject !== undefined });
    const generation = ++this.#generation;
    this.#pump = this.#run(generation);
    this.#stopHealthChecks = timersOf(this.#options.clock).every(
      this.#options.healthCheckMs ?? 15_000,
      () => void this.#checkHealth(generation),
    );
  }

  /** Up to `max` messages, in stream order, without waiting. */
  take(max: number): StreamMessage[] {
    const taken = this.#buffer.splice(0, max);
    if (taken.length > 0) {
      for (const entry of taken) this.#unacked.push({ sequence: entry.message.streamSequence, ackTo: entry.ackTo });
      for (const wake of this.#roomWaiters.splice(0)) wake();
    }
    return taken.map((entry) => entry.message);
  }

  /** Resolves when a message is waiting (at once if one is), or when `signal` aborts. */
  waitForMessage(signal: AbortSignal): Promise<void> {
    if (this.#buffer.length > 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Tells the server that everything taken up to `sequence` is done with (one ack: the consumer
   * acks all below it too). Only flow control: the reader's own position, not the ack, decides
   * what is read again.
   */
  ackTaken(sequence: number): void {
    let last: { ackTo: string } | undefined;
    while (this.#unacked.length > 0 && (this.#unacked[0] as { sequence: number }).sequence <= sequence)
      last = this.#unacked.shift();
    if (!last) return;
    try {
      // What JsMsg.ack() sends: the consumer (ack policy all) takes it for everything up to here.
      this.#options.connection.publish(last.ackTo, ACK);
    } catch (error) {
      this.#logger.debug({ err: error }, "ack not sent (the consumer starts from the reader's position anyway)");
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#generation++;
    this.#stopHealthChecks?.();
    this.#stopHealthChecks = null;
    this.#messages?.stop();
    this.#messages = null;
    for (const wake of [...this.#waiters.splice(0), ...this.#roomWaiters.splice(0)]) wake();
    await this.#pump?.catch(() => undefined);
    this.#pump = null;
  }

  async #run(generation: number): Promise<void> {
    const backoff = jitteredBackoff({ baseMs: 500, maxMs: 15_000 });
    while (!this.#stopped && generation === this.#generation) {
      try {
        await this.#recreateConsumer(this.#order.expected);
        const consumer = await jetstream(this.#options.connection).consumers.get(
          this.stream,
          this.#options.consumerName,
        );
        const messages = await consumer.consume({
          max_messages: Math.min(this.#capacity, 1_000),
          abort_on_missing_resource: true,
        });
        this.#messages = messages;
        if (generation !== this.#generation) {
          messages.stop();
          return;
        }
        if (this.#lastProblem !== null) this.#logger.info("reading the stream again");
        this.#lastProblem = null;
        backoff.reset();
        const outcome = await this.#consume(messages, generation);
        if (outcome === "stopped") return;
        this.#counters.repositions++;
      } catch (error) {
        if (this.#stopped || generation !== this.#generation) return;
        const reason = error instanceof Error ? error.message : String(error);
        if (reason !== this.#lastProblem) this.#logger.warn({ reason }, "cannot read the stream yet; retrying");
        this.#lastProblem = reason;
        await sleepOn(this.#options.clock, backoff.next());
      }
    }
  }

  /** Reads until stopped ("stopped") or until the consumer must be made again ("reposition"). */
  async #consume(messages: ConsumerMessages, generation: number): Promise<"stopped" | "reposition"> {
    for await (const raw of messages) {
      if (generation !== this.#generation) return "stopped";
      const sequence = raw.seq;
      const expected = this.#order.expected;
      const admission = this.#order.admit(sequence, raw.info.deliverySequence);
      if (admission.kind === "copy") {
        this.#counters.redeliveriesDropped++;
        continue;
      }
      if (admission.kind === "gap") {
        this.#logger.info(
          { expected, got: sequence },
          "gap in delivery (a redelivery is due or messages are gone): reading again from the expected sequence",
        );
        messages.stop();
        return "reposition";
      }
      if (admission.missingBefore > 0) {
        this.#counters.missingFromStream += admission.missingBefore;
        this.#logger.warn(
          { from: expected, to: sequence - 1, missing: admission.missingBefore },
          "messages were gone from the stream before they could be read (expired or deleted)",
        );
      }
      this.#buffer.push({ message: toStreamMessage(this.stream, raw), ackTo: ackSubjectOf(raw) });
      for (const wake of this.#waiters.splice(0)) wake();
      while (this.#buffer.length >= this.#capacity && !this.#stopped && generation === this.#generation) {
        await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
      }
    }
    if (this.#stopped || generation !== this.#generation) return "stopped";
    // The iterator ended by itself: the consumer or stream went away (abort_on_missing_resource).
    throw new Error("the consumer went away");
  }

  async #recreateConsumer(fromSequence: number): Promise<void> {
    const manager = await jetstreamManager(this.#options.connection);
    try {
      await manager.consumers.delete(this.stream, this.#options.consumerName);
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.ConsumerNotFound) throw error;
    }
    await manager.consumers.add(this.stream, {
      durable_name: this.#options.consumerName,
      ack_policy: AckPolicy.All,
      ...(this.#options.filterSubject !== undefined ? { filter_subject: this.#options.filterSubject } : {}),
      ...(fromSequence <= 1
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSequence }),
      ack_wait: (this.#options.ackWaitMs ?? 60_000) * 1_000_000,
      max_ack_pending: this.#options.maxAckPending ?? this.#capacity * 3,
      max_deliver: -1,
    });
    // Acks to the consumer this one replaces would go nowhere.
    this.#unacked = [];
    this.#order.repositioned();
  }

  async #checkHealth(generation: number): Promise<void> {
    if (this.#stopped || generation !== this.#generation || !this.#messages) return;
    try {
      const manager = await jetstreamManager(this.#options.connection);
      await manager.consumers.info(this.stream, this.#options.consumerName);
    } catch (error) {
      if (
        error instanceof JetStreamApiError &&
        (error.code === JetStreamApiCodes.ConsumerNotFound || error.code === JetStreamApiCodes.StreamNotFound)
      ) {
        this.#logger.warn(
          { reason: error.message },
          "the consumer is gone (deleted, or the server lost it): making it again",
        );
        // Ends the current iterator; the pump makes the consumer again at the expected sequence.
        this.#messages?.stop(error);
      }
    }
  }
}

/** Where a message's ack goes: its reply subject (nats.js has it on the message, not in the JsMsg type). */
function ackSubjectOf(raw: JsMsg): string {
  const reply = (raw as JsMsg & { readonly reply?: unknown }).reply;
  if (typeof reply !== "string" || reply === "")
    throw new Error(`stream message ${raw.seq} has no reply subject to ack on`);
  return reply;
}

export function toStreamMessage(stream: string, raw: JsMsg): StreamMessage {
  const message = {
    stream,
    streamSequence: raw.seq,
    subject: raw.subject,
    // A copy: the client's is a view into the socket's read buffer, which it would keep alive.
    data: raw.data.slice(),
    storedAtMs: Math.floor(raw.info.timestampNanos / 1_000_000),
  };
  const headers = readHeaders(raw);
  return headers.kind === "read"
    ? { ...message, headers: headers.entries }
    : { ...message, headers: [], unreadableHeaders: headers.reason };
}
