import { Worker } from "node:worker_threads";
import { EdgeError } from "../../errors/index.ts";
import type { OutputRecord } from "../records/index.ts";
import type { BridgeSettings } from "../settings/index.ts";
import { withDeadline } from "./deadline.ts";
import type { ProducerReply, ProducerRequest } from "./producer-thread.ts";
import { encodeRecords } from "./record-frames.ts";
import type { TransactionWriter } from "./transaction-writer.ts";

/** The name the single executable carries the producer thread's code under (a SEA asset). */
export const PRODUCER_THREAD_ASSET = "producer-thread.cjs";

/** A failure the producer thread reported: the broker's error ids survive the crossing, so it is classified as any other. */
export class KafkaThreadError extends EdgeError {
  readonly code: string;
  readonly errors: ReadonlyArray<{ readonly apiId: string }>;
  constructor(message: string, ids: readonly string[]) {
    super(message);
    this.name = "KafkaThreadError";
    this.code = ids.find((id) => id.startsWith("PLT_KFK_")) ?? "EDGE_BRIDGE_KAFKA";
    this.errors = ids.filter((id) => !id.startsWith("PLT_KFK_")).map((apiId) => ({ apiId }));
  }
}

/**
 * The one producer thread of a bridge process, started on first use and again after it died.
 * From the sources it runs producer-thread.ts; in the single executable, the same code bundled
 * as an asset.
 */
export class ProducerThread {
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

  async request(build: (requestId: number) => ProducerRequest, transfer: ArrayBuffer[] = []): Promise<void> {
    const worker = await this.#ensure();
    const requestId = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(requestId, { resolve, reject });
      worker.postMessage(build(requestId), transfer);
    });
  }

  /** A full garbage collection in the thread, if it runs (none is started for it). */
  async collectGarbage(): Promise<void> {
    if (!this.#worker) return;
    await this.request((requestId) => ({ op: "collect-garbage", requestId }));
  }

  newWriterId(): number {
    return this.#nextId++;
  }

  async stop(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    await worker?.terminate();
  }

  async #ensure(): Promise<Worker> {
    if (this.#worker) return this.#worker;
    const sea = await import("node:sea");
    // Bounded: it holds the batches in flight (a few MB each) and the clients; a V8 heap left to
    // grow freely keeps hundreds of MB it no longer needs.
    const resourceLimits = { maxOldGenerationSizeMb: 256 };
    const worker = sea.isSea()
      ? new Worker(sea.getAsset(PRODUCER_THREAD_ASSET, "utf8"), { eval: true, resourceLimits })
      : new Worker(new URL("./producer-thread.ts", import.meta.url), { resourceLimits });
    worker.unref();
    worker.on("message", (reply: ProducerReply) => {
      const waiting = this.#pending.get(reply.requestId);
      if (!waiting) return;
      this.#pending.delete(reply.requestId);
      if (reply.ok) waiting.resolve();
      else waiting.reject(new KafkaThreadError(reply.message, reply.ids));
    });
    const lost = (why: string): void => {
      if (this.#worker === worker) this.#worker = null;
      for (const [requestId, waiting] of this.#pending) {
        this.#pending.delete(requestId);
        waiting.reject(new KafkaThreadError(`the producer thread ${why}`, []));
      }
    };
    worker.on("error", (error: unknown) => lost(`failed: ${error instanceof Error ? error.message : String(error)}`));
    worker.on("exit", (code) => lost(`exited (${code})`));
    this.#worker = worker;
    return worker;
  }
}

const DEADLINE_MS = 35_000;

/**
 * A shard's transactional producer, run in the producer thread: the same open / write / close as
 * TransactionalProducer, each bounded by a deadline here too (a thread that stopped answering is a
 * Kafka failure like any other: the shard closes this writer and takes over again).
 */
export class ThreadedWriter implements TransactionWriter {
  readonly transactionalId: string;
  readonly #thread: ProducerThread;
  readonly #writerId: number;
  readonly #kafka: BridgeSettings["kafka"];
  readonly #clientIdSuffix: string;
  readonly #limitOf: (topic: string) => number;

  constructor(options: {
    thread: ProducerThread;
    kafka: BridgeSettings["kafka"];
    clientIdSuffix: string;
    transactionalId: string;
    limitOf: (topic: string) => number;
  }) {
    this.transactionalId = options.transactionalId;
    this.#thread = options.thread;
    this.#writerId = options.thread.newWriterId();
    this.#kafka = options.kafka;
    this.#clientIdSuffix = options.clientIdSuffix;
    this.#limitOf = options.limitOf;
  }

  async open(): Promise<void> {
    const request = this.#thread.request((requestId) => ({
      op: "open",
      requestId,
      writerId: this.#writerId,
      kafka: this.#kafka,
      clientIdSuffix: this.#clientIdSuffix,
      transactionalId: this.transactionalId,
    }));
    await withDeadline(request, DEADLINE_MS, `registering transactional id ${this.transactionalId}`);
  }

  async write(records: readonly OutputRecord[], timestampMs: number): Promise<void> {
    const limits: Record<string, number> = {};
    for (const record of records) limits[record.topic] ??= this.#limitOf(record.topic);
    const frame = encodeRecords(records);
    const request = this.#thread.request(
      (requestId) => ({ op: "write", requestId, writerId: this.#writerId, frame, limits, timestampMs }),
      [frame],
    );
    await withDeadline(request, DEADLINE_MS, `a transaction of ${records.length} records`);
  }

  async close(): Promise<void> {
    await withDeadline(
      this.#thread.request((requestId) => ({ op: "close", requestId, writerId: this.#writerId })),
      6_000,
      "closing the producer",
    ).catch(() => undefined);
  }
}
