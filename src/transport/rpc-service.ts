import type { NatsConnection } from "@nats-io/transport-node";
import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import { SERVICE_NAME, type MachineSubjects } from "../contracts/index.ts";
import type { Logger } from "../runtime/logger.ts";

/** One request/reply endpoint: takes the request body (may be empty), returns a JSON-able reply. */
export type RpcHandler = (request: Uint8Array) => Promise<unknown> | unknown;

export interface RpcHandlers {
  readonly health: RpcHandler;
  readonly status: RpcHandler;
  readonly collect?: RpcHandler;
  readonly config?: RpcHandler;
}

/**
 * The `edge-agent` NATS micro service: discoverable with `$SRV.PING|INFO|STATS`, with one
 * endpoint per `machine.{id}.rpc.*` subject. Its subscriptions live on the connection, which
 * nats.js re-establishes after every reconnect, so it is registered once per connection.
 */
export async function startRpcService(options: {
  connection: NatsConnection;
  machineId: string;
  version: string;
  subjects: MachineSubjects;
  handlers: RpcHandlers;
  logger: Logger;
}): Promise<Service> {
  const { handlers, subjects, logger } = options;
  const service = await new Svcm(options.connection).add({
    name: SERVICE_NAME,
    version: options.version,
    description: "edge-agent device agent",
    metadata: { machineId: options.machineId },
    // Replies go to the one agent that owns the subject: no queue group sharing across machines.
    queue: "",
  });
  const endpoints: Array<[string, string, RpcHandler | undefined]> = [
    ["health", subjects.rpcHealth, handlers.health],
    ["status", subjects.rpcStatus, handlers.status],
    ["collect", subjects.rpcCollect, handlers.collect],
    ["config", subjects.rpcConfig, handlers.config],
  ];
  for (const [name, subject, handler] of endpoints) {
    if (!handler) continue;
    service.addEndpoint(name, {
      subject,
      handler: (error: Error | null, message: ServiceMsg) => {
        if (error) {
          logger.error({ err: error, endpoint: name }, "rpc endpoint failed");
          return;
        }
        Promise.resolve()
          .then(() => handler(message.data))
          .then((reply) => message.respond(JSON.stringify(reply)))
          .catch((failure: unknown) => {
            logger.warn({ err: failure, endpoint: name }, "rpc request failed");
            message.respondError(500, failure instanceof Error ? failure.message : String(failure));
          });
      },
    });
  }
  return service;
}
