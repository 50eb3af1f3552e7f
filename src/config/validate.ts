import { validate as isValidCron } from "node-cron";
import { AgentConfiguration, SIGNED_CLAIM_FIELDS } from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";
import { echoInput } from "../runtime/index.ts";
import { describeIssue, schemaAt, valueAt } from "../settings-kit/index.ts";
import { unknownSettingProblem } from "./setting-paths.ts";

export class ConfigRejectedError extends EdgeError {
  readonly code = "EDGE_CONFIG_REJECTED";
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = "ConfigRejectedError";
  }
}

/**
 * Checks one stored document (a KV value or a pushed file) before anything uses it: a JSON object,
 * only known settings, the schema (tags bounded included) and cron expressions. Whether it may act at all (signature,
 * scope, serial) is the trust gate's call, made before this; the claims are dropped here.
 */
export function validateDocument(raw: unknown, where: string): Record<string, unknown> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigRejectedError(`${where}: must be a JSON object`);
  const document = raw as Record<string, unknown>;
  // Refused, not skipped: a misspelt setting applied as "nothing changed" would be reported APPLIED.
  const unknown = unknownSettingProblem(document);
  if (unknown !== null) throw new ConfigRejectedError(`${where}: ${unknown}`);
  // The revision is the store's (see remote-config.ts); a document may carry its own or none.
  const parsed = AgentConfiguration.safeParse({ revision: 0, ...document });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const problem = issue
      ? describeIssue(issue, valueAt(document, issue.path), schemaAt(AgentConfiguration, issue.path))
      : "is invalid";
    throw new ConfigRejectedError(`${where}: invalid setting ${issue?.path.join(".") || "document"}: ${problem}`);
  }
  for (const key of ["telemetrySchedule", "inventorySchedule"] as const) {
    const expression = parsed.data[key];
    if (expression !== undefined && !isValidCron(expression))
      throw new ConfigRejectedError(`${where}: ${key}: ${echoInput(expression)} is not a cron expression`);
  }
  return withoutClaims(document);
}

/** The document without `scope`, `serial` and `signature`: they say where it may act, not what. */
export function withoutClaims(document: Record<string, unknown>): Record<string, unknown> {
  const settings = { ...document };
  for (const field of SIGNED_CLAIM_FIELDS) delete settings[field];
  return settings;
}
