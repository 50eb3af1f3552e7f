import { AGENT_CONFIG_BUCKET } from "../contracts/index.ts";
import { type CommandTrust, kvScope } from "../trust/index.ts";
import type { ConfigEntry } from "./config-keys.ts";
import { ConfigRejectedError, validateDocument, withoutClaims } from "./validate.ts";

/** `serial`: what the trust gate admitted it with (signed), finished once its status is stored. */
export type ConfigEntryMeaning =
  | { readonly kind: "settings"; readonly document: Record<string, unknown>; readonly serial: number | null }
  | { readonly kind: "deleted"; readonly serial: number | null };

/**
 * What one KV entry asks for: new settings for its key, or the key's removal. Throws
 * ConfigRejectedError for anything that must change nothing. With a signing key, a removal is a
 * signed tombstone put to the key, `{deleted: true, scope, serial, signature}`: a bare DEL or PURGE
 * marker carries no signature (anyone allowed to write the bucket could strip a machine's
 * settings), so it is refused. An operation nobody defined is refused with or without signing.
 */
export async function readConfigEntry(entry: ConfigEntry, trust: CommandTrust): Promise<ConfigEntryMeaning> {
  const where = `${AGENT_CONFIG_BUCKET}/${entry.key} revision ${entry.revision}`;
  // A server's answer stored under the key (see config-keys.ts) is nobody's document.
  if (entry.refusal !== null) throw new ConfigRejectedError(entry.refusal);
  switch (entry.operation) {
    case "PUT":
      break;
    case "DEL":
    case "PURGE":
      if (trust.signing) {
        throw new ConfigRejectedError(
          `${where}: an unsigned ${entry.operation} is refused while signing is on; remove settings by putting a signed tombstone {"deleted": true, "scope", "serial"}`,
        );
      }
      return { kind: "deleted", serial: null };
    default:
      throw new ConfigRejectedError(
        `${where}: unknown KV-Operation ${JSON.stringify(entry.operation.slice(0, 32))}: only PUT, DEL and PURGE mean anything`,
      );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(entry.value));
  } catch (error) {
    throw new ConfigRejectedError(`${where}: not JSON (${(error as Error).message})`, { cause: error });
  }
  // The KV revision is the stream sequence: a re-put of the same document is a new revision.
  const admission = await trust.admit(raw, {
    scope: kvScope(entry.key),
    ref: `KV_${AGENT_CONFIG_BUCKET}:${entry.revision}`,
  });
  // Refused for good, or its mark could not be written: either way nothing changes.
  if (!admission.admitted) throw new ConfigRejectedError(`${where}: ${admission.error}`);
  if (isTombstone(raw)) {
    const extra = Object.keys(withoutClaims(raw)).filter((field) => field !== "deleted");
    if (extra.length > 0)
      throw new ConfigRejectedError(
        `${where}: a tombstone ({"deleted": true}) carries no settings, but this one has ${extra.join(", ")}`,
      );
    return { kind: "deleted", serial: admission.serial };
  }
  return { kind: "settings", document: validateDocument(raw, where), serial: admission.serial };
}

function isTombstone(raw: unknown): raw is Record<string, unknown> & { deleted: true } {
  return (
    raw !== null && typeof raw === "object" && !Array.isArray(raw) && (raw as { deleted?: unknown }).deleted === true
  );
}
