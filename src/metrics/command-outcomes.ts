import { ClientUpdateState, ConfigApplyStatus, EventType, ToolInstallationState } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/event-sink.ts";

/** What a command from the platform came to, as its result event says. */
export interface CommandOutcome {
  /** `tool` (install, uninstall, tool update), `config` (remote configuration and pushes), `client-update`. */
  readonly command: "tool" | "config" | "client-update";
  /** The result's own state, lower case: `installed`, `failed`, `applied`, `rolled_back`, ... */
  readonly outcome: string;
}

/** Tool states that end a command; DOWNLOADING and INSTALLING are steps on the way. */
const FINAL_TOOL_STATES: ReadonlySet<string> = new Set<string>([ToolInstallationState.enum.INSTALLED, ToolInstallationState.enum.FAILED, ToolInstallationState.enum.UNINSTALLED]);
const CONFIG_STATES: ReadonlySet<string> = new Set<string>(ConfigApplyStatus.options);
const UPDATE_STATES: ReadonlySet<string> = new Set<string>(ClientUpdateState.options);

/**
 * The outcome a result event reports, or null for any other event (and for a tool's progress).
 * Every command ends in one of these events (see the command handlers), so counting them counts
 * outcomes without a hook in each handler.
 */
export function commandOutcomeOf(event: OutgoingEvent): CommandOutcome | null {
  const field = (name: string): string | null => {
    const value = typeof event.body === "object" && event.body !== null ? (event.body as Record<string, unknown>)[name] : undefined;
    return typeof value === "string" ? value : null;
  };
  switch (event.type) {
    case EventType.toolInstallationStatus: {
      const state = field("state");
      return state !== null && FINAL_TOOL_STATES.has(state) ? { command: "tool", outcome: state.toLowerCase() } : null;
    }
    case EventType.configStatus: {
      const status = field("status");
      return status !== null && CONFIG_STATES.has(status) ? { command: "config", outcome: status.toLowerCase() } : null;
    }
    case EventType.clientUpdateStatus: {
      const state = field("state");
      return state !== null && UPDATE_STATES.has(state) ? { command: "client-update", outcome: state.toLowerCase() } : null;
    }
    default:
      return null;
  }
}
