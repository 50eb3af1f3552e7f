import { type CommandHandler, type CommandOutcome, done, reject } from "../capability/index.ts";
import { fleetSubjects, ToolAgentUpdateMessage, type ToolInstallationMessage } from "../contracts/index.ts";
import type { Logger } from "../runtime/index.ts";
import { describeIssues, truncateInput } from "../runtime/index.ts";
import { toolAgentIdRefusal } from "./command-refusal.ts";
import type { ToolRecord } from "./tool-state.ts";
import { FleetToolUpdate, planToolUpdate } from "./tool-update.ts";

/** What the update handler needs of the tool manager: its records, its lock and its install. */
export interface ToolUpdateWork {
  read(toolAgentId: string): Promise<ToolRecord | null>;
  /** Runs `work` as this tool's next command (one at a time per tool). */
  underLock<T>(toolAgentId: string, work: () => Promise<T>): Promise<T>;
  /** True (and logged) when this command's work already finished. */
  alreadyHandled(record: ToolRecord, causationId: string): boolean;
  /** Installs `message`, this version installed or not; reports each step, and FAILED when final; throws on failure. */
  install(message: ToolInstallationMessage, causationId: string): Promise<void>;
  /** Reports FAILED for good; the installed version stays, its record naming the failure. */
  fail(attempted: ToolInstallationMessage, record: ToolRecord, reason: string, causationId: string): Promise<void>;
  /** What a throw from `install` becomes (retried, or refused after its FAILED). */
  outcomeOfFailure(error: unknown, toolAgentId: string): CommandOutcome;
}

/**
 * OpenFrame's fleet-wide tool update (ToolAgentUpdateMessage on `machine.all.tool.{toolAgentId}.update`),
 * as a command handler. Every machine reads every update; one without the tool acks it unread
 * and says nothing, so a malformed update is reported FAILED only by the machines it concerns.
 * For those, the update is applied to the installed tool (tool-update.ts) through the same
 * install as any other: staged, swapped in, the old version back on failure.
 */
export function toolUpdateHandler(work: ToolUpdateWork, logger: Logger): CommandHandler<FleetToolUpdate> {
  const apply = async (envelope: FleetToolUpdate, causationId: string): Promise<CommandOutcome> => {
    const current = await work.read(envelope.toolAgentId);
    if (current?.state !== "INSTALLED") {
      logger.debug({ toolAgentId: envelope.toolAgentId }, "update for a tool not installed here: acked");
      return done();
    }
    if (work.alreadyHandled(current, causationId)) return done();
    const refuse = async (version: unknown, reason: string): Promise<CommandOutcome> => {
      const attempted = { ...current.message, version: typeof version === "string" ? version : null };
      await work.fail(attempted, current, reason, causationId);
      logger.error({ toolAgentId: current.toolAgentId, causationId, reason }, "tool update refused");
      return reject(reason);
    };
    const parsed = ToolAgentUpdateMessage.safeParse(envelope);
    if (!parsed.success)
      return refuse(
        envelope.version,
        truncateInput(`malformed tool update: ${describeIssues(parsed.error.issues)}`, 2_000),
      );
    const plan = planToolUpdate(current.message, current.version, parsed.data);
    if (plan.kind === "refuse") return refuse(parsed.data.version, plan.reason);
    if (plan.kind === "nothing") {
      logger.info({ toolAgentId: current.toolAgentId, causationId }, `tool update: nothing to do, ${plan.reason}`);
      return done();
    }
    logger.info({ toolAgentId: current.toolAgentId, causationId, changes: plan.changes }, "applying a tool update");
    await work.install(plan.message, causationId);
    return done();
  };

  return {
    what: "tool update",
    schema: FleetToolUpdate,
    refusalOf(envelope, delivery) {
      // No tool of that name can be installed here: nothing to report, for any machine.
      const refusal = toolAgentIdRefusal(envelope.toolAgentId);
      if (refusal) return { reason: refusal, report: false };
      // The subject says which machines it concerns (those with that tool): a body naming another tool would reach all.
      if (fleetSubjects.toolOfUpdate(delivery.subject) !== envelope.toolAgentId)
        return {
          reason: `tool update on ${delivery.subject} names another tool (${envelope.toolAgentId})`,
          report: false,
        };
      return null;
    },
    // Without even a tool name it concerns no machine in particular: logged, not reported by all.
    rejection: () => null,
    handle: (envelope, delivery) =>
      work
        .underLock(envelope.toolAgentId, () => apply(envelope, delivery.causationId))
        .catch((error: unknown) => work.outcomeOfFailure(error, envelope.toolAgentId)),
  };
}
