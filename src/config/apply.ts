import type { ConfigApplier } from "../capability/index.ts";
import type { AgentConfiguration } from "../contracts/index.ts";
import type { Logger } from "../runtime/index.ts";

/** A part of the agent that takes live settings: each capability declares its own (capability.ts). */
export type ConfigurableComponent = ConfigApplier;

export type ApplyOutcome = { readonly status: "APPLIED" } | { readonly status: "ROLLED_BACK"; readonly error: string };

/**
 * All or nothing: every component takes `next`, or every component that already changed (and the
 * one that failed, which may have half-changed) is given `previous` back, newest first.
 */
export async function applyToComponents(
  components: readonly ConfigurableComponent[],
  next: AgentConfiguration,
  previous: AgentConfiguration,
  logger: Logger,
): Promise<ApplyOutcome> {
  const touched: ConfigurableComponent[] = [];
  for (const component of components) {
    touched.push(component);
    try {
      await component.apply(next, previous);
    } catch (error) {
      const reason = `${component.name}: ${error instanceof Error ? error.message : String(error)}`;
      for (const changed of touched.reverse()) {
        try {
          await changed.apply(previous, next);
        } catch (rollbackError) {
          logger.error({ err: rollbackError, component: changed.name }, "rolling back a component failed");
        }
      }
      return { status: "ROLLED_BACK", error: reason };
    }
  }
  return { status: "APPLIED" };
}
