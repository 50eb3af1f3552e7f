import type { CapabilityFactory } from "../capability/index.ts";
import { doneThen } from "../capability/index.ts";
import { ClientUninstallMessage, type ClientUninstallState, EventType, machineFeeds } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import { conventionsOf } from "../settings/index.ts";

/** Removes the agent from this machine (the daemon's: service and package; a library user's: its own). */
export type UninstallAgent = (reason: string) => Promise<void>;

export interface RemoteUninstallOptions {
  readonly uninstall: UninstallAgent;
  /**
   * Waits (at most `timeoutMs`) until the outbox has delivered what it holds, so the UNINSTALLING
   * report reaches the platform before the agent is gone; resolves false when time ran out.
   */
  readonly outboxDrained: (timeoutMs: number) => Promise<boolean>;
  /** How long the report may take to leave before the uninstall goes ahead anyway (default 10 s). */
  readonly reportTimeoutMs?: number;
}

/**
 * Remote uninstall on `machine.{id}.client-uninstall` (stream CLIENT_UNINSTALL, the machine's
 * `client-uninstall` feed). Taken signed: a command signed for this exact subject with a serial
 * above every one accepted before is reported UNINSTALLING on `machine.{id}.client-uninstall.status`,
 * settled, and then the agent is removed (once); anything else is reported REJECTED and changes
 * nothing. Without a configSigningKey every uninstall is refused, unless `allowUnsignedUninstall`
 * is set and unsigned commands are taken: then OpenFrame's unsigned `{issuedAt}` is taken (one
 * without `issuedAt` is refused, so no answer of the server's stored there passes for one). That is
 * safe only where nobody but the platform can make the server store a message on this subject
 * (DESIGN, "Accounts"); the agent says so at every start.
 */
export function remoteUninstallCapability(options: RemoteUninstallOptions): CapabilityFactory {
  return (context) => {
    const { logger, clock } = context;
    // The same rule status and doctor show (settings/conventions.ts).
    const trust = conventionsOf(context.settings).uninstall;
    let uninstalling = false;
    const status = (state: ClientUninstallState, error: string | null): OutgoingEvent => ({
      type: EventType.clientUninstallStatus,
      body: { state, error, timestamp: new Date(clock.now()).toISOString() },
    });
    const route = context.commands.route<ClientUninstallMessage>({
      // Only commands stored after this installation first read the feed (it starts "next"): an
      // uninstall sent while the machine was offline still arrives (the feed keeps its position),
      // but one left in the stream for an earlier installation under the same machine id never
      // removes a fresh one (its trust marks start empty, so the old serial would pass).
      feeds: [machineFeeds(context.machineId).clientUninstall],
      trust: context.trust,
      requireSignature: trust === "signed",
      handler: {
        what: "client-uninstall",
        schema: ClientUninstallMessage,
        refusalOf(command) {
          if (trust === "signed" || command.issuedAt) return null;
          return {
            reason:
              "client-uninstall refused: an unsigned uninstall must say when it was issued (issuedAt), as OpenFrame's does",
            report: true,
          };
        },
        rejection: (reason) => status("REJECTED", reason),
        async handle(command, delivery) {
          logger.warn(
            { causationId: delivery.causationId, issuedAt: command.issuedAt, signed: trust === "signed" },
            trust === "signed"
              ? "verified remote uninstall: reporting it, then removing the agent"
              : "UNSIGNED remote uninstall taken (allowUnsignedUninstall): reporting it, then removing the agent",
          );
          return doneThen(status("UNINSTALLING", null), async () => {
            if (uninstalling) return;
            uninstalling = true;
            const delivered = await options.outboxDrained(options.reportTimeoutMs ?? 10_000);
            if (!delivered)
              logger.warn("the uninstall report is not delivered yet; uninstalling anyway (it stays in the outbox)");
            await options.uninstall(`remote uninstall ${delivery.causationId}`);
          });
        },
      },
    });
    return {
      name: "uninstall",
      start: async () => {
        if (trust === "unsigned")
          logger.warn(
            "allowUnsignedUninstall: this agent removes itself on an UNSIGNED client-uninstall. Safe only if no one but the platform can make the server store a message on its client-uninstall subject: keep machines in the account layout (edge-agent accounts); in one account any machine can make the server store a copy of its own old command on another machine's subject",
          );
        else if (context.settings.allowUnsignedUninstall)
          logger.warn(
            { commands: context.trust.mode },
            "allowUnsignedUninstall has no effect: this agent does not take unsigned commands (it has a configSigningKey, or refuses everything), so an uninstall must be signed",
          );
      },
      stop: () => route.stop(),
      status: () => ({ uninstalling, accepts: trust }),
    };
  };
}
