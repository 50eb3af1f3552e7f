import { readFileSync } from "node:fs";
import type { BaseOptions, RetryDelayGetter } from "@platformatic/kafka";
import { EdgeError } from "../../../errors/index.ts";
import type { BridgeSettings } from "../../settings/index.ts";

export class KafkaSecretFileError extends EdgeError {
  readonly code = "EDGE_BRIDGE_KAFKA_SECRET_FILE";
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = "KafkaSecretFileError";
  }
}

function readSecret(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new KafkaSecretFileError(`cannot read the ${what} file ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Calls the transaction coordinator answers with "busy, try again" in the normal course of things. */
const COORDINATOR_OPERATIONS = new Set([
  "addPartitionsToTransaction",
  "findCoordinator",
  "initProducerId",
  "endTransaction",
]);

/**
 * How long the client waits before trying a call again. A transaction's partitions are added right
 * after the previous transaction committed, while the broker still writes that one's markers: the
 * coordinator answers CONCURRENT_TRANSACTIONS, which clears in milliseconds. The client's one fixed
 * delay (1 s by default) made every transaction after the first take a second; these calls retry
 * after 10 ms, growing to 200 ms (Kafka's own producer does much the same); anything else after 500 ms.
 */
export const transactionAwareRetryDelay: RetryDelayGetter = (_client, operationId, attempt) =>
  COORDINATOR_OPERATIONS.has(operationId) ? Math.min(200, 10 * attempt) : 500;

/**
 * The connection options every Kafka client of the bridge shares: brokers, client id, SASL and
 * TLS. Secret files are read here, when a client is made (so a rotated file is picked up by the
 * next client). `timeout` is also the transaction timeout the broker enforces: long enough for a
 * transaction on a busy broker, short enough that a dead owner's open one is soon aborted.
 */
export function kafkaClientOptions(kafka: BridgeSettings["kafka"], clientIdSuffix: string): BaseOptions {
  const { sasl, tls } = kafka;
  const password =
    sasl.passwordFile !== undefined ? readSecret(sasl.passwordFile, "Kafka SASL password").trim() : sasl.password;
  const tlsOptions =
    tls.enabled || tls.caFile !== undefined || tls.certFile !== undefined
      ? {
          tls: {
            ...(tls.caFile ? { ca: readSecret(tls.caFile, "Kafka TLS CA") } : {}),
            ...(tls.certFile && tls.keyFile
              ? {
                  cert: readSecret(tls.certFile, "Kafka TLS certificate"),
                  key: readSecret(tls.keyFile, "Kafka TLS key"),
                }
              : {}),
          },
          ...(tls.serverName ? { tlsServerName: tls.serverName } : {}),
        }
      : {};
  return {
    clientId: `${kafka.clientId}-${clientIdSuffix}`,
    bootstrapBrokers: [...kafka.brokers],
    timeout: 30_000,
    connectTimeout: 10_000,
    retries: 3,
    retryDelay: transactionAwareRetryDelay,
    ...(sasl.mechanism
      ? { sasl: { mechanism: sasl.mechanism, username: sasl.username ?? "", password: password ?? "" } }
      : {}),
    ...tlsOptions,
  };
}
