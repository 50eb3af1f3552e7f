import { readFileSync } from "node:fs";
import type { BaseOptions } from "@platformatic/kafka";
import type { BridgeSettings } from "../settings/bridge-settings.ts";

export class KafkaSecretFileError extends Error {
  readonly code = "EDGE_BRIDGE_KAFKA_SECRET_FILE";
  constructor(message: string) {
    super(message);
    this.name = "KafkaSecretFileError";
  }
}

function readSecret(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new KafkaSecretFileError(`cannot read the ${what} file ${path}: ${(error as Error).message}`);
  }
}

/**
 * The connection options every Kafka client of the bridge shares: brokers, client id, SASL and
 * TLS. Secret files are read here, when a client is made (so a rotated file is picked up by the
 * next client). `timeout` is also the transaction timeout the broker enforces: long enough for a
 * transaction on a busy broker, short enough that a dead owner's open one is soon aborted.
 */
export function kafkaClientOptions(kafka: BridgeSettings["kafka"], clientIdSuffix: string): BaseOptions {
  const { sasl, tls } = kafka;
  const password = sasl.passwordFile !== undefined ? readSecret(sasl.passwordFile, "Kafka SASL password").trim() : sasl.password;
  const tlsOptions =
    tls.enabled || tls.caFile !== undefined || tls.certFile !== undefined
      ? {
          tls: {
            ...(tls.caFile ? { ca: readSecret(tls.caFile, "Kafka TLS CA") } : {}),
            ...(tls.certFile && tls.keyFile ? { cert: readSecret(tls.certFile, "Kafka TLS certificate"), key: readSecret(tls.keyFile, "Kafka TLS key") } : {}),
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
    retryDelay: 500,
    ...(sasl.mechanism ? { sasl: { mechanism: sasl.mechanism, username: sasl.username ?? "", password: password ?? "" } } : {}),
    ...tlsOptions,
  };
}
