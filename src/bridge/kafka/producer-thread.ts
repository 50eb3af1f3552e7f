import { parentPort } from "node:worker_threads";
import { fullGarbageCollector } from "../../runtime/index.ts";
import type { BridgeSettings } from "../settings/index.ts";
import { kafkaClientOptions, TransactionalProducer } from "./client/index.ts";
import { kafkaErrorIds } from "./kafka-errors.ts";
import { decodeRecords } from "./record-frames.ts";

/**
 * The producer thread: every shard's transactional producer lives here, so the Kafka client's work
 * (serialising, checksums, the sockets) runs beside the main thread's (reading NATS, making the
 * records) instead of after it. The main thread talks to it through ThreadedWriter.
 */
export type ProducerRequest =
  | {
      readonly op: "open";
      readonly requestId: number;
      readonly writerId: number;
      readonly kafka: BridgeSettings["kafka"];
      readonly clientIdSuffix: string;
      readonly transactionalId: string;
    }
  | {
      readonly op: "write";
      readonly requestId: number;
      readonly writerId: number;
      readonly frame: ArrayBuffer;
      readonly limits: Readonly<Record<string, number>>;
      /** The records' timestamp (the shard's clock). */
      readonly timestampMs: number;
    }
  | { readonly op: "close"; readonly requestId: number; readonly writerId: number }
  /** The bridge went idle: collect this thread's garbage now (see runtime/full-gc.ts). */
  | { readonly op: "collect-garbage"; readonly requestId: number };

export type ProducerReply =
  | { readonly requestId: number; readonly ok: true }
  | { readonly requestId: number; readonly ok: false; readonly message: string; readonly ids: readonly string[] };

interface Hosted {
  readonly writer: TransactionalProducer;
  limits: Readonly<Record<string, number>>;
}

if (parentPort) {
  const port = parentPort;
  const writers = new Map<number, Hosted>();
  let collectGarbage: (() => void) | null = null;
  const reply = (message: ProducerReply): void => port.postMessage(message);
  const fail = (requestId: number, error: unknown): void =>
    reply({
      requestId,
      ok: false,
      message: error instanceof Error ? error.message : String(error),
      ids: [...kafkaErrorIds(error)],
    });

  port.on("message", (request: ProducerRequest) => {
    void (async () => {
      try {
        switch (request.op) {
          case "open": {
            const hosted: Hosted = {
              limits: {},
              writer: new TransactionalProducer(
                kafkaClientOptions(request.kafka, request.clientIdSuffix),
                request.transactionalId,
                (topic) => hosted.limits[topic] ?? 1_000_000,
              ),
            };
            writers.set(request.writerId, hosted);
            await hosted.writer.open();
            break;
          }
          case "write": {
            const hosted = writers.get(request.writerId);
            if (!hosted) throw new Error(`no producer ${request.writerId} in the producer thread`);
            hosted.limits = request.limits;
            await hosted.writer.write(decodeRecords(request.frame), request.timestampMs);
            break;
          }
          case "collect-garbage": {
            collectGarbage ??= fullGarbageCollector();
            collectGarbage();
            break;
          }
          case "close": {
            const hosted = writers.get(request.writerId);
            writers.delete(request.writerId);
            await hosted?.writer.close();
            break;
          }
        }
        reply({ requestId: request.requestId, ok: true });
      } catch (error) {
        fail(request.requestId, error);
      }
    })();
  });
}
