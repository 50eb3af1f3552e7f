import { type Service, type ServiceMsg, Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { type MachineSubjects, SERVICE_NAME } from "../contracts/index.ts";
import type { Logger } from "../runtime/index.ts";

/** One request/reply endpoint, `machine.{id}.rpc.<name>`: takes the request body (may be empty), returns a JSON-able reply. */
export interface RpcEndpointHandler {
  readonly name: "health" | "status" | "collect" | "config";
  handle(request: Uint8Array): Promise<unknown> | unknown;
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
  endpoints: readonly RpcEndpointHandler[];
  logger: Logger;
}): Promise<Service> {
  const { subjects, logger } = options;
  const service = await new Svcm(options.connection).add({
    name: SERVICE_NAME,
    version: options.version,
    description: "edge-agent device agent",
    metadata: { machineId: options.machineId },
    // Replies go to the one agent that owns the subject: no queue group sharing across machines.
    queue: "",
  });
  const subjectOf = {
    health: subjects.rpcHealth,
    status: subjects.rpcStatus,
    collect: subjects.rpcCollect,
    config: subjects.rpcConfig,
  } as const;
  for (const { name, handle } of options.endpoints) {
    const subject = subjectOf[name];
    service.addEndpoint(name, {
      subject,
      handler: (error: Error | null, message: ServiceMsg) => {
        if (error) {
          logger.error({ err: error, endpoint: name }, "rpc endpoint failed");
          return;
        }
        Promise.resolve()
          .then(() => handle(message.data))
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
