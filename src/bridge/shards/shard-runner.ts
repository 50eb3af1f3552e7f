import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { BaseOptions } from "@platformatic/kafka";
import { jitteredBackoff } from "../../runtime/backoff.ts";
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import { OrderedStreamSource, type SourceCounters } from "../../transport/ordered-stream-source.ts";
import { type CheckpointValue, checkpointRecord, loadShardState } from "../kafka/checkpoint.ts";
import { classifyKafkaError, describeKafkaError } from "../kafka/kafka-errors.ts";
import type { TransactionWriter } from "../kafka/transactional-writer.ts";
import type { OutputRecord, SourceMessage } from "../records/source-message.ts";
import type { PreparedBatch, ShardProcessor } from "./shard-processor.ts";

export type ShardState = "starting" | "running" | "retrying" | "stopped";

/** A batch made into one transaction's records, with what the shard adopts once it commits. */
interface PreparedTransaction {
  readonly messages: readonly SourceMessage[];
  readonly afterBatch: Readonly<Record<string, number>>;
  readonly prepared: PreparedBatch;
  readonly checkpoint: CheckpointValue;
  readonly records: readonly OutputRecord[];
}

interface InFlight {
  readonly batch: PreparedTransaction;
  /** null once committed, else the failure (never rejects). */
  readonly outcome: Promise<unknown>;
}

export interface StreamStats extends SourceCounters {
  /** The last stream sequence committed to Kafka. */
  readonly committedSequence: number;
  readonly buffered: number;
}

export interface ShardStats {
  readonly shard: string;
  readonly state: ShardState;
  readonly transactionalId: string;
  readonly produced: number;
  readonly deadLetters: number;
  readonly duplicatesDropped: number;
  readonly unverifiableSequences: number;
  readonly transactionsCommitted: number;
  readonly transactionsAborted: number;
  readonly takeovers: number;
  readonly lastCommitAt: string | null;
  readonly lastError: string | null;
  readonly streams: Readonly<Record<string, StreamStats>>;
  readonly processor: Record<string, number>;
}

export interface ShardRunnerOptions {
  readonly processor: ShardProcessor;
  readonly connection: NatsConnection;
  readonly kafkaClientOptions: () => BaseOptions;
  /** A new (not yet opened) transactional producer for the shard's transactional id. */
  readonly newWriter: () => TransactionWriter;
  readonly checkpointTopic: string;
  readonly transactionalId: string;
  readonly consumerName: (stream: string) => string;
  readonly maxEvents: number;
  readonly lingerMs: number;
  readonly logger: Logger;
  /** What the stream sources' health checks and retries run on. */
  readonly clock: Clock;
  /** Whether this instance still holds the shard's lease (a fenced producer may only go on if so). */
  readonly stillOwned: () => boolean;
  /** A failure that waiting cannot fix (not authorised, bad credentials): the bridge must stop. */
  readonly onFatal: (error: unknown) => void;
  /** How the dead letter of a message too large for the broker looks (its topic, no body). */
  readonly tooLargeDeadLetter: (message: SourceMessage, reason: string) => OutputRecord;
}

/**
 * Runs one shard: its transactional producer, its stream consumers and its processor.
 *
 * The guarantee (exactly once into Kafka, for read_committed readers): each batch's records, the
 * processor's state records and the shard's checkpoint (stream -> last sequence) are written in
 * one Kafka transaction. NATS is acked only after the commit, and the ack is not what decides
 * what is read again: on every (re)start the shard fences the previous producer of its
 * transactional id, reads its committed checkpoint, and reads each stream again from the sequence
 * after it (ordered-stream-source.ts). A batch is therefore either in Kafka together with the
 * position past it, or in neither, and then read again. Per stream, messages reach Kafka in
 * stream order (batches are sequential), so a machine's events keep their order in a partition.
 *
 * Any failure of the path (Kafka or NATS down, a commit whose outcome is unknown) ends in a new
 * takeover after a backoff: fence, read the checkpoint, position. A fenced producer means another
 * owner took over, unless we still hold the lease (the broker aborted a slow transaction).
 */
export class ShardRunner {
  readonly #options: ShardRunnerOptions;
  readonly #logger: Logger;
  readonly #processor: ShardProcessor;
  #writer: TransactionWriter | null = null;
  #sources = new Map<string, OrderedStreamSource>();
  #committed: Record<string, number> = {};
  #streamCreated: Record<string, string> = {};
  #transactions = 0;
  #stopping = false;
  #stopSignal = new AbortController();
  #running: Promise<void> | null = null;
  #state: ShardState = "stopped";
  #counters = {
    produced: 0,
    deadLetters: 0,
    duplicatesDropped: 0,
    unverifiableSequences: 0,
    transactionsCommitted: 0,
    transactionsAborted: 0,
    takeovers: 0,
  };
  #retiredSourceCounters = new Map<string, SourceCounters>();
  #lastCommitAt: string | null = null;
  #lastError: string | null = null;

  constructor(options: ShardRunnerOptions) {
    this.#options = options;
    this.#processor = options.processor;
    this.#logger = options.logger.child({ shard: options.processor.name });
  }

  get name(): string {
    return this.#processor.name;
  }

  start(): void {
    this.#stopping = false;
    this.#stopSignal = new AbortController();
    this.#running ??= this.#run().finally(() => {
      this.#running = null;
      this.#state = "stopped";
    });
  }

  /**
   * Stops after the transaction in flight, if any, has committed or failed. After `timeoutMs`
   * the producer is closed under it: the broker aborts what was open, and the batch is read again
   * by whoever takes the shard next. Either way nothing is lost or doubled.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    this.#stopSignal.abort();
    const running = this.#running;
    if (!running) return;
    const timedOut = await Promise.race([
      running.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), timeoutMs).unref()),
    ]);
    if (timedOut) {
      this.#logger.warn(
        { timeoutMs },
        "the open transaction did not finish in time; closing the producer (the broker aborts it, the batch is read again)",
      );
      await this.#writer?.close();
      await running.catch(() => undefined);
    }
  }

  stats(): ShardStats {
    const streams: Record<string, StreamStats> = {};
    for (const stream of this.#processor.streams) {
      const source = this.#sources.get(stream);
      const live = source?.counters ?? { redeliveriesDropped: 0, missingFromStream: 0, repositions: 0 };
      const retired = this.#retiredSourceCounters.get(stream) ?? {
        redeliveriesDropped: 0,
        missingFromStream: 0,
        repositions: 0,
      };
      streams[stream] = {
        committedSequence: this.#committed[stream] ?? 0,
        buffered: source?.buffered ?? 0,
        redeliveriesDropped: live.redeliveriesDropped + retired.redeliveriesDropped,
        missingFromStream: live.missingFromStream + retired.missingFromStream,
        repositions: live.repositions + retired.repositions,
      };
    }
    return {
      shard: this.name,
      state: this.#state,
      transactionalId: this.#options.transactionalId,
      ...this.#counters,
      lastCommitAt: this.#lastCommitAt,
      lastError: this.#lastError,
      streams,
      processor: this.#processor.stats?.() ?? {},
    };
  }

  async #run(): Promise<void> {
    // Capped at 10 s: once Kafka is back, the shard should notice soon.
    const backoff = jitteredBackoff({ baseMs: 500, maxMs: 10_000 });
    let lastLogged: string | null = null;
    while (!this.#stopping) {
      try {
        this.#state = "starting";
        await this.#takeover();
        this.#state = "running";
        if (lastLogged !== null) this.#logger.info("bridging again");
        lastLogged = null;
        await this.#pump(() => backoff.reset());
      } catch (error) {
        if (this.#stopping) break;
        const kind = classifyKafkaError(error);
        const reason = describeKafkaError(error);
        this.#lastError = reason;
        if (kind === "fatal") {
          this.#logger.fatal({ reason }, "Kafka refuses the bridge for good (check credentials and ACLs); stopping");
          this.#options.onFatal(error);
          break;
        }
        if (kind === "fenced" && !this.#options.stillOwned()) {
          this.#logger.info({ reason }, "another instance took this shard over");
          break;
        }
        this.#state = "retrying";
        // One line per kind of trouble, not one per retry: a Kafka outage is one warning.
        if (reason !== lastLogged)
          this.#logger.warn({ reason, kind }, "cannot bridge right now; nothing is acked until Kafka has it, retrying");
        lastLogged = reason;
        await this.#sleep(backoff.next());
      } finally {
        await this.#teardown();
      }
    }
    await this.#processor
      .release()
      .catch((error: unknown) => this.#logger.warn({ err: error }, "processor did not release cleanly"));
  }

  async #takeover(): Promise<void> {
    this.#counters.takeovers++;
    const clientOptions = this.#options.kafkaClientOptions();
    const writer = this.#options.newWriter();
    this.#writer = writer;
    // Fences every earlier producer of this shard: from here, what Kafka holds is final.
    await writer.open();
    const loaded = await loadShardState(clientOptions, this.#options.checkpointTopic, this.name);
    const manager = await jetstreamManager(this.#options.connection);
    this.#committed = {};
    this.#streamCreated = {};
    for (const stream of this.#processor.streams) {
      const info = await manager.streams.info(stream);
      const position = loaded.checkpoint?.positions[stream];
      let after = position?.sequence ?? 0;
      if (position && position.streamCreated !== info.created) {
        this.#logger.warn(
          { stream, checkpoint: position, created: info.created },
          "the stream was made again since the checkpoint: reading it from its start",
        );
        after = 0;
      }
      this.#committed[stream] = after;
      this.#streamCreated[stream] = info.created;
    }
    this.#transactions = loaded.checkpoint?.transaction ?? 0;
    await this.#processor.takeover({
      checkpoint: loaded.checkpoint,
      states: loaded.states,
      connection: this.#options.connection,
    });
    for (const stream of this.#processor.streams) {
      const source = new OrderedStreamSource({
        connection: this.#options.connection,
        stream,
        consumerName: this.#options.consumerName(stream),
        logger: this.#logger,
        clock: this.#options.clock,
        // One batch waiting, one being prepared, one committing: what a shard holds at most.
        bufferMessages: this.#options.maxEvents,
        maxAckPending: 3 * this.#options.maxEvents,
      });
      this.#sources.set(stream, source);
      await source.startAfter(this.#committed[stream] ?? 0);
    }
    this.#logger.info(
      { positions: this.#committed, transactionalId: this.#options.transactionalId },
      "shard taken over: bridging from the committed checkpoint",
    );
  }

  /**
   * Batches go to Kafka one transaction at a time, in order. While one commits, the next is read
   * and prepared (for a processor that prepares from uncommitted state, see ShardProcessor): the
   * broker's work on one overlaps ours on the next. It is only written once the one before it
   * committed; if that one failed, both are given up and the shard is taken over again.
   */
  async #pump(onProgress: () => void): Promise<void> {
    let inFlight: InFlight | null = null;
    const settle = async (): Promise<"committed" | "redone"> => {
      const current = inFlight as InFlight;
      inFlight = null;
      const failure = await current.outcome;
      if (failure === null) {
        this.#adopt(current.batch);
        onProgress();
        return "committed";
      }
      this.#counters.transactionsAborted++;
      if (classifyKafkaError(failure) !== "too-large") throw failure;
      this.#processor.discardUncommitted?.();
      await this.#commitSmaller(current.batch.messages, describeKafkaError(failure));
      return "redone";
    };
    try {
      while (!this.#stopping) {
        const messages = await this.#collect(inFlight?.outcome ?? null);
        if (inFlight !== null && (messages.length === 0 || !this.#processor.preparesAhead)) await settle();
        if (messages.length === 0) continue;
        let batch = await this.#prepare(messages, inFlight?.batch.afterBatch ?? this.#committed);
        // The one before must have committed before this one is written; if it had to be redone
        // in smaller parts, this one is prepared again on what they committed.
        if (inFlight !== null && (await settle()) === "redone") batch = await this.#prepare(messages, this.#committed);
        const writer = this.#writer;
        if (!writer) throw new Error("no producer");
        inFlight = {
          batch,
          outcome: writer.write(batch.records).then(
            () => null,
            (error: unknown) => error ?? new Error("transaction failed"),
          ),
        };
      }
    } finally {
      // Stopping: the open transaction commits or fails before the shard lets go.
      if (inFlight !== null) await settle().catch(() => undefined);
    }
  }

  /** Waits for at least one message (or for the transaction in flight to settle), lingers briefly for more, then takes up to maxEvents. */
  async #collect(inFlight: Promise<unknown> | null): Promise<SourceMessage[]> {
    const sources = [...this.#sources.values()];
    const buffered = (): number => sources.reduce((total, source) => total + source.buffered, 0);
    if (buffered() === 0) {
      const waiting = new AbortController();
      const onStop = (): void => waiting.abort();
      this.#stopSignal.signal.addEventListener("abort", onStop, { once: true });
      await Promise.race([
        ...sources.map((source) => source.waitForMessage(waiting.signal)),
        ...(inFlight !== null ? [inFlight] : []),
      ]);
      waiting.abort();
      this.#stopSignal.signal.removeEventListener("abort", onStop);
      if (this.#stopping || buffered() === 0) return [];
      if (this.#options.lingerMs > 0 && buffered() < this.#options.maxEvents) await this.#sleep(this.#options.lingerMs);
    }
    const batch: SourceMessage[] = [];
    for (const source of sources) batch.push(...source.take(this.#options.maxEvents - batch.length));
    // The source never hands out what the checkpoint covers; this guards the guarantee anyway.
    return batch.filter((message) => message.streamSequence > (this.#committed[message.stream] ?? 0));
  }

  /** A batch's records, state and checkpoint, prepared on top of `base` (the positions before it). */
  async #prepare(
    messages: readonly SourceMessage[],
    base: Readonly<Record<string, number>>,
  ): Promise<PreparedTransaction> {
    const afterBatch = { ...base };
    for (const message of messages)
      afterBatch[message.stream] = Math.max(afterBatch[message.stream] ?? 0, message.streamSequence);
    const prepared = await this.#processor.prepare(messages, { committed: this.#committed, afterBatch });
    this.#transactions++;
    const checkpoint: CheckpointValue = {
      shard: this.name,
      positions: Object.fromEntries(
        Object.entries(afterBatch).map(([stream, sequence]) => [
          stream,
          { sequence, streamCreated: this.#streamCreated[stream] ?? "" },
        ]),
      ),
      transaction: this.#transactions,
      committedAt: new Date().toISOString(),
    };
    return {
      messages,
      afterBatch,
      prepared,
      checkpoint,
      records: [
        ...prepared.records,
        ...prepared.stateRecords,
        checkpointRecord(this.#options.checkpointTopic, checkpoint),
      ],
    };
  }

  /** The transaction committed: its positions, state and counts are the shard's; NATS may forget what it covers. */
  #adopt(batch: PreparedTransaction): void {
    this.#committed = batch.afterBatch;
    batch.prepared.committed();
    this.#counters.transactionsCommitted++;
    this.#counters.produced += batch.prepared.counts.produced;
    this.#counters.deadLetters += batch.prepared.counts.deadLetters;
    this.#counters.duplicatesDropped += batch.prepared.counts.duplicatesDropped;
    this.#counters.unverifiableSequences += batch.prepared.counts.unverifiableSequences;
    this.#lastCommitAt = batch.checkpoint.committedAt;
    this.#lastError = null;
    for (const source of this.#sources.values()) source.ackTaken(batch.afterBatch[source.stream] ?? 0);
  }

  /** Writes one batch now (no transaction in flight) and adopts it. */
  async #commitNow(messages: readonly SourceMessage[]): Promise<void> {
    const batch = await this.#prepare(messages, this.#committed);
    try {
      await (this.#writer as TransactionWriter).write(batch.records);
    } catch (error) {
      this.#counters.transactionsAborted++;
      if (classifyKafkaError(error) !== "too-large") throw error;
      this.#processor.discardUncommitted?.();
      await this.#commitSmaller(messages, describeKafkaError(error));
      return;
    }
    this.#adopt(batch);
  }

  /**
   * The broker refused the batch as too large (its limit is below our maxRecordBytes): halves it
   * until the one message at fault is alone, and makes that one a dead letter.
   */
  async #commitSmaller(messages: readonly SourceMessage[], reason: string): Promise<void> {
    if (messages.length > 1) {
      const half = Math.ceil(messages.length / 2);
      await this.#commitNow(messages.slice(0, half));
      await this.#commitNow(messages.slice(half));
      return;
    }
    const message = messages[0] as SourceMessage;
    this.#logger.warn(
      { subject: message.subject, streamSequence: message.streamSequence, reason },
      "the broker refused an event as too large: it goes to the dead-letter topic",
    );
    const afterBatch = { ...this.#committed, [message.stream]: message.streamSequence };
    this.#transactions++;
    const checkpoint: CheckpointValue = {
      shard: this.name,
      positions: Object.fromEntries(
        Object.entries(afterBatch).map(([stream, sequence]) => [
          stream,
          { sequence, streamCreated: this.#streamCreated[stream] ?? "" },
        ]),
      ),
      transaction: this.#transactions,
      committedAt: new Date().toISOString(),
    };
    await this.#writer?.write([
      this.#options.tooLargeDeadLetter(message, reason),
      checkpointRecord(this.#options.checkpointTopic, checkpoint),
    ]);
    this.#committed = afterBatch;
    this.#counters.transactionsCommitted++;
    this.#counters.deadLetters++;
  }

  async #teardown(): Promise<void> {
    const sources = [...this.#sources.values()];
    this.#sources = new Map();
    await Promise.all(sources.map((source) => source.stop()));
    for (const source of sources) {
      const retired = this.#retiredSourceCounters.get(source.stream) ?? {
        redeliveriesDropped: 0,
        missingFromStream: 0,
        repositions: 0,
      };
      const { counters } = source;
      this.#retiredSourceCounters.set(source.stream, {
        redeliveriesDropped: retired.redeliveriesDropped + counters.redeliveriesDropped,
        missingFromStream: retired.missingFromStream + counters.missingFromStream,
        repositions: retired.repositions + counters.repositions,
      });
    }
    await this.#writer?.close();
    this.#writer = null;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopSignal.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#stopSignal.signal.addEventListener("abort", done, { once: true });
    });
  }
}
