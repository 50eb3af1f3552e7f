import type { CapabilityFactory } from "../capability/index.ts";
import { AGENT_VERSION, osNameOf } from "../runtime/index.ts";
import { createSelfUpdater } from "./self-updater.ts";

/**
 * Self-update. `requestRestart` stops the agent and starts it again through the service manager
 * (the daemon gives one); without it, updates are refused (nothing could start the new version).
 */
export function selfUpdateCapability(options: {
  requestRestart?: ((reason: string) => void) | undefined;
  childEnvironment?: NodeJS.ProcessEnv | undefined;
  /** What runs this agent (status says it): the single executable unless told it is the sources. */
  runningFrom?: "executable" | "sources" | undefined;
}): CapabilityFactory {
  return (context) => {
    const updater = createSelfUpdater({
      machineId: context.machineId,
      os: osNameOf(context.platform),
      arch: context.arch,
      dataDir: context.settings.dataDir,
      runningVersion: AGENT_VERSION,
      clock: context.clock,
      logger: context.logger,
      sink: context.sink,
      trust: context.trust,
      commands: context.commands,
      ...(options.requestRestart ? { requestRestart: options.requestRestart } : {}),
      childEnvironment: options.childEnvironment,
      checksumPolicy: {
        allowMissingChecksum: context.settings.toolPolicy.allowMissingChecksum,
        allowedDownloadHosts: context.settings.toolPolicy.allowedDownloadHosts,
      },
    });
    const failed =
      (what: string) =>
      (error: unknown): void => {
        context.recordError("update", error);
        context.logger.error({ err: error }, what);
      };
    return {
      name: "update",
      start: () => updater.start().catch(failed("self-update state unusable; updates may fail until it is fixed")),
      // Connected is what "healthy" means for a version on trial after a self-update.
      attach: ({ connection }) => void updater.linkUp(connection).catch(failed("self-update could not take the link")),
      stop: () => updater.stop(),
      status: () => ({ ...updater.status(), runningFrom: options.runningFrom ?? "executable" }),
      appliers: [
        {
          name: "update-checksum-policy",
          apply: (next) =>
            updater.updateChecksumPolicy(
              next.toolPolicy?.allowMissingChecksum ?? context.settings.toolPolicy.allowMissingChecksum,
            ),
        },
      ],
    };
  };
}
