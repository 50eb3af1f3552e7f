import type { Service } from "@nats-io/services";
import type { CapabilityFactory } from "../capability/index.ts";
import { AGENT_VERSION } from "../runtime/index.ts";
import { startRpcService } from "../transport/index.ts";

/**
 * Request/reply: the `edge-agent` micro service with the endpoints the capabilities declare
 * (`health` and `status` from the agent, `collect` from telemetry, `config` from remote config).
 * Its subscriptions live on the connection, which nats.js re-establishes after every reconnect,
 * so it is registered once.
 */
export const rpcCapability: CapabilityFactory = (context) => {
  let service: Promise<Service> | null = null;
  return {
    name: "rpc",
    async attach({ connection }) {
      if (service !== null) return;
      service = startRpcService({
        connection,
        machineId: context.machineId,
        version: AGENT_VERSION,
        subjects: context.subjects,
        logger: context.logger,
        endpoints: context.contributions.rpcEndpoints,
      });
      await service;
    },
    async stop() {
      await (await service?.catch(() => null))?.stop();
    },
  };
};
