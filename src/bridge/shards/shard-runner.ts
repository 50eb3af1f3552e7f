import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { EdgeError } from "../../errors/index.ts";
import type { Logger } from "../../runtime/index.ts";
import { type Clock, jitteredBackoff, sleepOn } from "../../runtime/index.ts";
import type { KafkaHealth, TransactionWriter } from "../kafka/index.ts";
import { classifyKafkaError, describeKafkaError } from "../kafka/index.ts";
import type { OutputRecord, SourceMessage } from "../records/index.ts";
import { OrderedStreamSource, type SourceCounters } from "../source/index.ts";
import {
  type CheckpointValue,
  type LoadedShardState,
  PredecessorNotDrainedError,
  type ShardStateStore,
} from "../state/index.ts";
import type { PreparedBatch, ShardProcessor } from "./shard-processor.ts";

export type ShardState =
  | "starting"
  | "running"
  | "retrying"
  | "waiting-for-stream"
  /** A partition of a stream, before the stream's own shard has bridged what was stored unpartitioned. */
  | "waiting-for-predecessor"
  | "stopped";

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
  /** How long the last takeover took to read the shard's state, and how many bytes it read. */
  readonly lastTakeoverMs: number | null;
  readonly lastTakeoverBytes: number | null;
  readonly lastCommitAt: string | null;
  readonly lastError: string | null;
  readonly streams: Readonly<Record<string, StreamStats>>;
  readonly processor: Record<string, number>;
}

export interface ShardRunnerOptions {
  readonly processor: ShardProcessor;
  readonly connection: NatsConnection;
  /** A new (not yet opened) transactional producer for the shard's transactional id. */
  readonly newWriter: () => TransactionWriter;
  /** Where the shard's checkpoint and state live (state/shard-state-store.ts). */
  readonly state: ShardStateStore;
  readonly transactionalId: string;
  readonly consumerName: (stream: string) => string;
  /** The subjects of each stream the shard reads (one partition of a partitioned stream); undefined: all. */
  readonly filterSubject?: (stream: string) => string | undefined;
  readonly maxEvents: number;
  readonly lingerMs: number;
  readonly logger: Logger;
  /** Every wait of the shard (backoff, linger, the stop deadline) and the records' timestamps. */
  readonly clock: Clock;
  /** Whether this instance still holds the shard's lease (a fenced producer may only go on if so). */
  readonly stillOwned: () => boolean;
  /** A failure that waiting cannot fix (not authorised, bad credentials): the bridge must stop. */
  readonly onFatal: (error: unknown) => void;
  /** How the dead letter of a message too large for the broker looks (its topic, no body). */
  readonly tooLargeDeadLetter: (message: SourceMessage, reason: string) => OutputRecord;
  /** Told of every Kafka call, so an outage is reported once for the bridge (kafka/kafka-health.ts). */
  readonly kafkaHealth?: KafkaHealth;
  /** How often a stream that does not exist is looked for again. Default 30 s. */
  readonly streamRetryMs?: number;
}

/** The broker refused a transaction as too large: its events go again in smaller ones. */
class BatchTooLargeError extends EdgeError {
  readonly code = "EDGE_BRIDGE_BATCH_TOO_LARGE";
  readonly messages: readonly SourceMessage[];
  readonly reason: string;
  constructor(messages: readonly SourceMessage[], reason: string, cause: unknown) {
    super(`the broker refused a transaction of ${messages.length} events as too large: ${reason}`, { cause });
    this.name = "BatchTooLargeError";
    this.messages = messages;
    this.reason = reason;
  }
}

/** While narrowing down a too-large batch: transactions of at most `maxEvents`, until `until` is committed. */
interface BatchCap {
  readonly maxEvents: number;
  readonly until: Readonly<Record<string, number>>;
}

const DEFAULT_STREAM_RETRY_MS = 30_000;
/** How often a partition waiting for its predecessor looks again (one read of that shard's state topic). */
const PREDECESSOR_RETRY_MS = 5_000;

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
 * Any failure of the path (Kafka or NATS down, a commit whose outcome is unknown, a transaction
 * the broker refused as too large) ends in a new takeover: fence, read the checkpoint, position.
 * Nothing is ever written after a fencing without reading the checkpoint first, so an owner that
 * lost the shard for a moment never writes on top of what its successor committed. A fenced
 * producer means another owner took over, unless we still hold the lease (the broker aborted a
 * slow transaction). A stream that does not exist is waited for without touching Kafka.
 */
export class ShardRunner {
  readonly #options: ShardRunnerOptions;
  readonly #logger: Logger;
  readonly #processor: ShardProcessor;
  readonly #clock: Clock;
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
  #lastTakeover: { ms: number; bytes: number } | null = null;
  /** The streams found missing at the last look (null: all exist), so the wait is logged once. */
  #missingStreams: string | null = null;
  #cap: BatchCap | null = null;
  /** The one event the broker refused on its own: it becomes a dead letter when it comes again. */
  #refused: { stream: string; streamSequence: number; reason: string } | null = null;

  constructor(options: ShardRunnerOptions) {
    this.#options = options;
    this.#processor = options.processor;
    this.#clock = options.clock;
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
    const timedOut = await Promise.race([running.then(() => false), sleepOn(this.#clock, timeoutMs).then(() => true)]);
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
      lastTakeoverMs: this.#lastTakeover?.ms ?? null,
      lastTakeoverBytes: this.#lastTakeover?.bytes ?? null,
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
        if (this.#missingStreams === null && this.#state !== "waiting-for-predecessor") this.#state = "starting";
        const created = await this.#streamsCreated();
        if (created === null) continue;
        await this.#takeover(created);
        this.#state = "running";
        if (lastLogged !== null) this.#logger.info("bridging again");
        lastLogged = null;
        await this.#pump(() => backoff.reset());
      } catch (error) {
        if (this.#stopping) break;
        if (error instanceof BatchTooLargeError) {
          this.#narrowDown(error);
          continue;
        }
        if (error instanceof PredecessorNotDrainedError) {
          if (this.#state !== "waiting-for-predecessor") this.#logger.info({ reason: error.message }, "waiting");
          this.#state = "waiting-for-predecessor";
          this.#lastError = error.message;
          await this.#sleep(PREDECESSOR_RETRY_MS);
          continue;
        }
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

  /**
   * When each of the shard's streams was made, or null after waiting a while because one does not
   * exist: a shard whose stream is missing neither fences nor reads Kafka until it appears.
   */
  async #streamsCreated(): Promise<Record<string, string> | null> {
    const manager = await jetstreamManager(this.#options.connection);
    const created: Record<string, string> = {};
    const missing: string[] = [];
    for (const stream of this.#processor.streams) {
      try {
        created[stream] = (await manager.streams.info(stream)).created;
      } catch (error) {
        if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.StreamNotFound) throw error;
        missing.push(stream);
      }
    }
    if (missing.length === 0) {
      if (this.#missingStreams !== null)
        this.#logger.info({ streams: this.#processor.streams }, "the stream exists now");
      this.#missingStreams = null;
      return created;
    }
    const names = missing.join(", ");
    const retryMs = this.#options.streamRetryMs ?? DEFAULT_STREAM_RETRY_MS;
    if (this.#missingStreams !== names)
      this.#logger.warn(
        { streams: missing, retrySeconds: Math.round(retryMs / 1_000) },
        "the shard's stream does not exist: nothing to bridge until it is made (edge-agent dev-setup, or the platform); looked for again periodically",
      );
    this.#missingStreams = names;
    this.#state = "waiting-for-stream";
    this.#lastError = `stream ${names} does not exist`;
    await this.#sleep(retryMs);
    return null;
  }

  async #takeover(created: Readonly<Record<string, string>>): Promise<void> {
    this.#counters.takeovers++;
    const began = this.#clock.monotonicMs();
    const writer = this.#options.newWriter();
    this.#writer = writer;
    // Fences every earlier producer of this shard: from here, what Kafka holds is final.
    await this.#kafka(writer.open());
    const loaded = await this.#kafka(this.#options.state.load());
    this.#committed = {};
    this.#streamCreated = {};
    for (const stream of this.#processor.streams) {
      const streamCreated = created[stream] as string;
      const position = loaded.checkpoint?.positions[stream];
      let after = position?.sequence ?? 0;
      if (position && position.streamCreated !== streamCreated) {
        this.#logger.warn(
          { stream, checkpoint: position, created: streamCreated },
          "the stream was made again since the checkpoint: reading it from its start",
        );
        after = 0;
      }
      this.#committed[stream] = after;
      this.#streamCreated[stream] = streamCreated;
    }
    this.#transactions = loaded.checkpoint?.transaction ?? 0;
    await this.#processor.takeover({
      checkpoint: loaded.checkpoint,
      states: loaded.states,
      connection: this.#options.connection,
    });
    if (loaded.unreadable > 0)
      this.#logger.warn(
        { unreadable: loaded.unreadable, stateTopic: this.#options.state.topic },
        "state records that are not JSON were skipped (each is one dedupe window forgotten: a late copy may be bridged twice, none is lost)",
      );
    if (loaded.migratedFrom !== null) await this.#moveState(loaded);
    this.#lastTakeover = { ms: Math.round(this.#clock.monotonicMs() - began), bytes: loaded.bytesRead };
    for (const stream of this.#processor.streams) {
      const source = new OrderedStreamSource({
        connection: this.#options.connection,
        stream,
        consumerName: this.#options.consumerName(stream),
        ...this.#filterOf(stream),
        logger: this.#logger,
        clock: this.#clock,
        // One batch waiting, one being prepared, one committing: what a shard holds at most.
        bufferMessages: this.#options.maxEvents,
        maxAckPending: 3 * this.#options.maxEvents,
      });
      this.#sources.set(stream, source);
      await source.startAfter(this.#committed[stream] ?? 0);
    }
    this.#logger.info(
      {
        positions: this.#committed,
        transactionalId: this.#options.transactionalId,
        stateTopic: this.#options.state.topic,
        stateRecords: loaded.states.size,
        stateBytesRead: loaded.bytesRead,
        takeoverMs: this.#lastTakeover.ms,
      },
      "shard taken over: bridging from the committed checkpoint",
    );
  }

  #filterOf(stream: string): { filterSubject?: string } {
    const filterSubject = this.#options.filterSubject?.(stream);
    return filterSubject === undefined ? {} : { filterSubject };
  }

  /**
   * The shard's state came from elsewhere (the legacy shared topic, or the shard a partition
   * succeeds, state/shard-state-store.ts): its first transaction writes it all into its own.
   */
  async #moveState(loaded: LoadedShardState): Promise<void> {
    const checkpoint = this.#checkpointAt(this.#committed);
    await this.#kafka(
      (this.#writer as TransactionWriter).write(
        this.#options.state.migrationRecords(loaded, checkpoint),
        this.#clock.now(),
      ),
      "transaction",
    );
    this.#counters.transactionsCommitted++;
    this.#lastCommitAt = checkpoint.committedAt;
    this.#logger.info(
      { from: loaded.migratedFrom, to: this.#options.state.topic, stateRecords: loaded.states.size },
      "took the shard's state from another topic into its own state topic",
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
    const settle = async (current: InFlight): Promise<void> => {
      inFlight = null;
      const failure = await current.outcome;
      if (failure === null) {
        this.#adopt(current.batch);
        onProgress();
        return;
      }
      this.#counters.transactionsAborted++;
      this.#processor.discardUncommitted?.();
      if (classifyKafkaError(failure) === "too-large")
        throw new BatchTooLargeError(current.batch.messages, describeKafkaError(failure), failure);
      throw failure;
    };
    try {
      // Each round in a call of its own: an async function keeps its locals while it waits, so a
      // loop body here would hold the last batch (its messages and records) for as long as the
      // shard then sits idle: every shard's last batch, 30 MB of an idle bridge's heap.
      while (!this.#stopping) inFlight = await this.#round(inFlight, settle);
    } finally {
      // Stopping: the open transaction commits or fails before the shard lets go.
      const current = inFlight as InFlight | null;
      if (current !== null)
        await settle(current).catch((error: unknown) =>
          this.#logger.warn(
            { reason: describeKafkaError(error), kind: classifyKafkaError(error) },
            "the last transaction did not commit while the shard stopped: its events are read again by the shard's next owner",
          ),
        );
    }
  }

  /** One batch of the pump: read, prepared and written once the one in flight (if any) settled; what is in flight after it. */
  async #round(inFlight: InFlight | null, settle: (current: InFlight) => Promise<void>): Promise<InFlight | null> {
    const messages = await this.#collect(inFlight?.outcome ?? null);
    // Stopping: what is in flight is settled (and its failure said) by the pump.
    if (this.#stopping) return inFlight;
    if (inFlight !== null && (messages.length === 0 || !this.#processor.preparesAhead)) {
      await settle(inFlight);
      inFlight = null;
    }
    if (messages.length === 0) return inFlight;
    const refused = this.#refused;
    const first = messages[0] as SourceMessage;
    if (refused && first.stream === refused.stream && first.streamSequence === refused.streamSequence) {
      if (inFlight !== null) await settle(inFlight);
      await this.#deadLetterRefused(first, refused.reason);
      return null;
    }
    const batch = await this.#prepare(messages, inFlight?.batch.afterBatch ?? this.#committed);
    // The one before must have committed before this one is written.
    if (inFlight !== null) await settle(inFlight);
    const writer = this.#writer;
    if (!writer) throw new Error("no producer");
    return {
      batch,
      outcome: this.#kafka(writer.write(batch.records, this.#clock.now()), "transaction").then(
        () => null,
        (error: unknown) => error ?? new Error("transaction failed"),
      ),
    };
  }

  /** Waits for at least one message (or for the transaction in flight to settle), lingers briefly for more, then takes up to maxEvents. */
  async #collect(inFlight: Promise<unknown> | null): Promise<SourceMessage[]> {
    const sources = [...this.#sources.values()];
    const buffered = (): number => sources.reduce((total, source) => total + source.buffered, 0);
    const maxEvents = this.#cap?.maxEvents ?? this.#options.maxEvents;
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
      if (this.#options.lingerMs > 0 && buffered() < maxEvents) await this.#sleep(this.#options.lingerMs);
    }
    const batch: SourceMessage[] = [];
    for (const source of sources) batch.push(...source.take(maxEvents - batch.length));
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
    const checkpoint = this.#checkpointAt(afterBatch);
    return {
      messages,
      afterBatch,
      prepared,
      checkpoint,
      records: [...prepared.records, ...this.#options.state.records(checkpoint, prepared.stateChanges)],
    };
  }

  #checkpointAt(positions: Readonly<Record<string, number>>): CheckpointValue {
    this.#transactions++;
    return {
      shard: this.name,
      positions: Object.fromEntries(
        Object.entries(positions).map(([stream, sequence]) => [
          stream,
          { sequence, streamCreated: this.#streamCreated[stream] ?? "" },
        ]),
      ),
      transaction: this.#transactions,
      committedAt: new Date(this.#clock.now()).toISOString(),
    };
  }

  /** The transaction committed: its positions, state and counts are the shard's; NATS may forget what it covers. */
  #adopt(batch: PreparedTransaction): void {
    batch.prepared.committed();
    this.#counters.produced += batch.prepared.counts.produced;
    this.#counters.deadLetters += batch.prepared.counts.deadLetters;
    this.#counters.duplicatesDropped += batch.prepared.counts.duplicatesDropped;
    this.#counters.unverifiableSequences += batch.prepared.counts.unverifiableSequences;
    this.#adoptPositions(batch.afterBatch, batch.checkpoint.committedAt);
  }

  #adoptPositions(afterBatch: Readonly<Record<string, number>>, committedAt: string): void {
    this.#committed = { ...afterBatch };
    this.#counters.transactionsCommitted++;
    this.#lastCommitAt = committedAt;
    this.#lastError = null;
    for (const source of this.#sources.values()) source.ackTaken(afterBatch[source.stream] ?? 0);
    const cap = this.#cap;
    if (cap && Object.entries(cap.until).every(([stream, sequence]) => (this.#committed[stream] ?? 0) >= sequence)) {
      this.#cap = null;
      this.#logger.info("past the events of the refused transaction: transactions are full-sized again");
    }
  }

  /**
   * The broker refused a transaction as too large (a topic's limit below what we knew of it):
   * the shard is taken over again and the same events go in transactions half the size, until
   * the one event at fault is alone; that one becomes a dead letter.
   */
  #narrowDown(error: BatchTooLargeError): void {
    const until: Record<string, number> = { ...this.#cap?.until };
    for (const message of error.messages)
      until[message.stream] = Math.max(until[message.stream] ?? 0, message.streamSequence);
    const [only] = error.messages;
    if (error.messages.length === 1 && only) {
      this.#refused = { stream: only.stream, streamSequence: only.streamSequence, reason: error.reason };
      this.#cap = { maxEvents: 1, until };
      return;
    }
    const maxEvents = Math.ceil(error.messages.length / 2);
    this.#cap = { maxEvents, until };
    this.#logger.warn(
      { events: error.messages.length, nextTransactionEvents: maxEvents, reason: error.reason },
      "the broker refused a transaction as too large: its events go again in smaller transactions, to find the one at fault",
    );
  }

  async #deadLetterRefused(message: SourceMessage, reason: string): Promise<void> {
    this.#logger.warn(
      { subject: message.subject, streamSequence: message.streamSequence, reason },
      "the broker refused an event as too large: it goes to the dead-letter topic",
    );
    const afterBatch = { ...this.#committed, [message.stream]: message.streamSequence };
    const checkpoint = this.#checkpointAt(afterBatch);
    const records = [this.#options.tooLargeDeadLetter(message, reason), ...this.#options.state.records(checkpoint, [])];
    await this.#kafka((this.#writer as TransactionWriter).write(records, this.#clock.now()), "transaction");
    this.#refused = null;
    this.#counters.deadLetters++;
    this.#adoptPositions(afterBatch, checkpoint.committedAt);
  }

  /** A Kafka call, told to the bridge's Kafka health. */
  #kafka<T>(work: Promise<T>, kind: "transaction" | "call" = "call"): Promise<T> {
    return this.#options.kafkaHealth ? this.#options.kafkaHealth.track(work, kind) : work;
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
    this.#processor.discardUncommitted?.();
    await this.#writer?.close();
    this.#writer = null;
  }

  #sleep(ms: number): Promise<void> {
    return sleepOn(this.#clock, ms, this.#stopSignal.signal);
  }
}
