import { readFile } from "node:fs/promises";
import type { CapabilityFactory } from "../capability/index.ts";
import type { AgentConfiguration } from "../contracts/index.ts";
import type { Settings } from "../settings/index.ts";
import { createRemoteConfig, remoteConfigRoute } from "./remote-config.ts";

/** The local settings as a configuration: remote documents are merged over it. */
function baselineOf(settings: Settings): AgentConfiguration {
  return {
    revision: 0,
    heartbeatSeconds: settings.heartbeatSeconds,
    telemetrySchedule: settings.telemetrySchedule,
    inventorySchedule: settings.inventorySchedule,
    logLevel: settings.logLevel,
    tags: settings.tags,
    outbox: { maxBytes: settings.outbox.maxBytes, maxAgeSeconds: settings.outbox.maxAgeSeconds },
    toolPolicy: { allowMissingChecksum: settings.toolPolicy.allowMissingChecksum },
  };
}

/**
 * Remote configuration from the `agent-config` KV bucket, applied through every capability's
 * appliers (all or nothing), and configuration documents pushed as `.json` files.
 */
export const remoteConfigCapability: CapabilityFactory = (context) => {
  const remoteConfig = createRemoteConfig({
    machineId: context.machineId,
    configDir: context.settings.configDir,
    clock: context.clock,
    logger: context.logger,
    sink: context.sink,
    // Read when a revision is applied: by then every capability has declared its appliers.
    components: context.contributions.appliers,
    baseline: baselineOf(context.settings),
    trust: context.trust,
  });
  const route = context.commands.route(remoteConfigRoute(context.machineId, remoteConfig));
  return {
    name: "config",
    // The last good remote configuration first, so the link can only bring newer revisions.
    start: () => remoteConfig.start(),
    stop: async () => {
      await route.stop();
      await remoteConfig.stop();
    },
    status: () => ({
      revision: remoteConfig.current().revision,
      lastStatus: remoteConfig.lastStatus(),
    }),
    rpcEndpoints: [
      { name: "config", handle: () => ({ running: remoteConfig.current(), lastStatus: remoteConfig.lastStatus() }) },
    ],
    pushedFileTargets: [
      {
        name: "agent configuration",
        // A pushed `.json` at the top level is an agent configuration document (a tool's file has a folder).
        accepts: (name) => name.toLowerCase().endsWith(".json") && !name.includes("/"),
        async receive(file, entry, causationId) {
          const name = entry.agentFileName ?? entry.fileName ?? "";
          let document: unknown;
          try {
            document = JSON.parse(await readFile(file, "utf8"));
          } catch (error) {
            throw new Error(`${name} is not JSON: ${(error as Error).message}`, { cause: error });
          }
          await remoteConfig.applyPushed(document, causationId);
          return "reported";
        },
      },
    ],
  };
};
