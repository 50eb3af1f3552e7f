import { join } from "node:path";
import type { CapabilityFactory } from "../capability/index.ts";
import { createToolManager } from "./tool-manager.ts";

/**
 * The platform's tools: installed, updated and removed on its commands, watched while installed,
 * and the files pushed into their folders.
 */
export const toolsCapability: CapabilityFactory = (context) => {
  const { settings } = context;
  const tools = createToolManager({
    machineId: context.machineId,
    toolsDir: join(settings.dataDir, "tools"),
    clock: context.clock,
    logger: context.logger,
    sink: context.sink,
    platform: context.platform,
    serverUrl: settings.natsServers[0] ?? "",
    policy: settings.toolPolicy,
    openframe: settings.openframe,
    download: {
      stallTimeoutMs: settings.toolPolicy.downloadStallSeconds * 1000,
      deadlineMs: settings.toolPolicy.downloadDeadlineSeconds * 1000,
    },
    // What the outbox may grow to stays free: unpacking a tool never takes the outbox's room.
    diskReserveBytes: settings.outbox.maxBytes,
    trust: context.trust,
    commands: context.commands,
  });
  return {
    name: "tools",
    // Installs cut short are cleaned up here; the command desk reports one a crash cut short FAILED, never run again.
    start: () => tools.start().catch((error: unknown) => context.recordError("tools", error)),
    attach: ({ connection }) => tools.attach(connection),
    stop: () => tools.stop(),
    status: async () =>
      (await tools.list()).map(({ toolAgentId, version, state, error, agentToolId, downloads }) => ({
        toolAgentId,
        version,
        state,
        error,
        agentToolId,
        downloads,
      })),
    appliers: [
      {
        name: "tool-policy",
        apply: (next) =>
          tools.updatePolicy({
            allowMissingChecksum: next.toolPolicy?.allowMissingChecksum ?? settings.toolPolicy.allowMissingChecksum,
          }),
      },
    ],
    pushedFileTargets: [
      {
        name: "tool file",
        // `<toolAgentId>/<path in its folder>`.
        accepts: (name) => /^[^/]+\/./.test(name),
        async receive(file, entry) {
          const [toolAgentId = "", ...rest] = (entry.agentFileName ?? entry.fileName ?? "").split("/");
          await tools.writeFile(
            { toolAgentId, relativePath: rest.join("/"), serviceName: entry.serviceName ?? null },
            file,
          );
          return "applied";
        },
      },
    ],
  };
};
