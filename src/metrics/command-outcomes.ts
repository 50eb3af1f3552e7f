import { EventType, ToolInstallationState } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/index.ts";

/** What a command from the platform came to, as its result event says. */
export interface CommandOutcome {
  /** `tool` (install, uninstall, tool update), `config` (remote configuration and pushes), `client-update`, `client-uninstall`. */
  readonly command: "tool" | "config" | "client-update" | "client-uninstall";
  /** The result's own state, lower case: `installed`, `failed`, `applied`, `rolled_back`, ... */
  readonly outcome: string;
}

/** Tool states that end a command; DOWNLOADING and INSTALLING are steps on the way. */
const FINAL_TOOL_STATES: ReadonlySet<string> = new Set<string>([
  ToolInstallationState.enum.INSTALLED,
  ToolInstallationState.enum.FAILED,
  ToolInstallationState.enum.UNINSTALLED,
]);

/**
 * The outcome a result event reports, or null for any other event (and for a tool's progress).
 * Every command ends in one of these events (see the command handlers), so counting them counts
 * outcomes without a hook in each handler. Events are typed by their type, so each body is known.
 */
export function commandOutcomeOf(event: OutgoingEvent): CommandOutcome | null {
  switch (event.type) {
    case EventType.toolInstallationStatus:
      // A liveness report (connection set) ends no command.
      return FINAL_TOOL_STATES.has(event.body.state) && !event.body.connection
        ? { command: "tool", outcome: event.body.state.toLowerCase() }
        : null;
    case EventType.configStatus:
      return { command: "config", outcome: event.body.status.toLowerCase() };
    case EventType.clientUpdateStatus:
      return { command: "client-update", outcome: event.body.state.toLowerCase() };
    case EventType.clientUninstallStatus:
      return { command: "client-uninstall", outcome: event.body.state.toLowerCase() };
    default:
      return null;
  }
}
