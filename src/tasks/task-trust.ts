import { type CommandTrust, UntrustedReason } from "../trust/index.ts";

/** How this agent takes tasks: signed only, unsigned too (tasks.allowUnsigned, development), or none. */
export type TaskTrustMode = CommandTrust["mode"];

/**
 * The gate tasks and their cancels pass. With a signing key, the agent's one gate: signature,
 * scope, serial, expiry, replay. Without one, tasks do NOT follow the agent's `allowUnsigned` (nor
 * a platform's conventions, which set it): running any program a message names is not something
 * a development setting for configuration may switch on by the way. Only `tasks.allowUnsigned`
 * takes unsigned tasks, and the refusal names it.
 */
export function taskTrust(agentTrust: CommandTrust, allowUnsignedTasks: boolean): CommandTrust {
  if (agentTrust.signing) return agentTrust;
  if (allowUnsignedTasks) {
    return {
      signing: false,
      mode: "unsigned",
      admit: async () => ({ admitted: true, serial: null }),
      finish: async () => undefined,
    };
  }
  const error = `this agent has no configSigningKey to check a task's signature, and unsigned tasks are refused unless tasks.allowUnsigned (EDGE_AGENT_TASKS_ALLOW_UNSIGNED, development only) is set; allowUnsigned and the platform's conventions do not cover tasks (${UntrustedReason.noKey})`;
  return {
    signing: false,
    mode: "refused",
    admit: async () => ({ admitted: false, code: UntrustedReason.noKey, error, retryLater: false }),
    finish: async () => undefined,
  };
}
