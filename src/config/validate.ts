import { validate as isValidCron } from "node-cron";
import { AgentConfiguration } from "../contracts/index.ts";
import { verifyDocument } from "./signature.ts";

export class ConfigRejectedError extends Error {
  readonly code = "EDGE_CONFIG_REJECTED";
  constructor(message: string) {
    super(message);
    this.name = "ConfigRejectedError";
  }
}

/**
 * Checks one stored document (a KV value or a pushed file) before anything uses it: JSON, the
 * schema, cron expressions, and the signature when a signing key is configured.
 */
export function validateDocument(raw: unknown, where: string, signingPublicKey: string | undefined): Record<string, unknown> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigRejectedError(`${where}: must be a JSON object`);
  const document = raw as Record<string, unknown>;
  if (signingPublicKey) {
    try {
      verifyDocument(document, signingPublicKey);
    } catch (error) {
      throw new ConfigRejectedError(`${where}: ${(error as Error).message}`);
    }
  }
  // The revision is the store's (see remote-config.ts); a document may carry its own or none.
  const parsed = AgentConfiguration.safeParse({ revision: 0, ...document });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigRejectedError(`${where}: ${issue?.path.join(".") || "document"}: ${issue?.message ?? "invalid"}`);
  }
  for (const key of ["telemetrySchedule", "inventorySchedule"] as const) {
    const expression = parsed.data[key];
    if (expression !== undefined && !isValidCron(expression)) throw new ConfigRejectedError(`${where}: ${key}: ${JSON.stringify(expression)} is not a cron expression`);
  }
  const { signature: _signature, ...rest } = document;
  return rest;
}
