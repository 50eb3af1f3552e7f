import * as z from "zod";
import { AgentConfiguration, SIGNED_CLAIM_FIELDS } from "../contracts/index.ts";
import { closestMatch } from "../runtime/index.ts";
import { isPlainObject } from "./merge.ts";

/** Fields of a document that are not settings: its own revision (pushed files) and the signature's claims. */
const DOCUMENT_FIELDS = new Set<string>(["revision", ...SIGNED_CLAIM_FIELDS]);

type Shape = Readonly<Record<string, z.ZodType>>;

function objectShape(schema: z.ZodType): Shape | null {
  const inner = schema instanceof z.ZodOptional ? (schema.unwrap() as z.ZodType) : schema;
  return inner instanceof z.ZodObject ? (inner.shape as Shape) : null;
}

function leafPaths(shape: Shape, prefix: string): string[] {
  return Object.entries(shape).flatMap(([key, schema]) => {
    if (prefix === "" && DOCUMENT_FIELDS.has(key)) return [];
    const nested = objectShape(schema);
    return nested ? leafPaths(nested, `${prefix}${key}.`) : [`${prefix}${key}`];
  });
}

/**
 * Every setting a remote configuration document may hold, dotted (`heartbeatSeconds`,
 * `outbox.maxBytes`, `tags`), from the AgentConfiguration schema: a setting added there is known here.
 */
export const CONFIG_SETTING_PATHS: readonly string[] = leafPaths(AgentConfiguration.shape as Shape, "");

/** Settings whose value is a map of the operator's own keys (`tags`): any key below them names one entry. */
const RECORD_SETTINGS = new Set(
  Object.entries(AgentConfiguration.shape as Shape)
    .filter(([, schema]) => (schema instanceof z.ZodOptional ? schema.unwrap() : schema) instanceof z.ZodRecord)
    .map(([key]) => key),
);

/** Why `path` names no setting (with the closest one), or null. `tags.site` names one tag. */
export function settingPathProblem(path: string): string | null {
  if (CONFIG_SETTING_PATHS.includes(path)) return null;
  const [head = "", ...below] = path.split(".");
  if (RECORD_SETTINGS.has(head) && below.join(".") !== "") return null;
  const match = closestMatch(path, CONFIG_SETTING_PATHS);
  return `unknown setting ${JSON.stringify(path)}${match === null ? "" : `: did you mean ${JSON.stringify(match)}?`} (settings: ${CONFIG_SETTING_PATHS.join(", ")})`;
}

/**
 * The first key of a document that names no setting, as an error line with the closest one:
 * a typo (`heartbeatSecs`) would otherwise be applied as "nothing changed" and reported APPLIED.
 */
export function unknownSettingProblem(document: Record<string, unknown>): string | null {
  const visit = (node: Record<string, unknown>, shape: Shape, prefix: string): string | null => {
    for (const [key, value] of Object.entries(node)) {
      if (prefix === "" && DOCUMENT_FIELDS.has(key)) continue;
      const schema = shape[key];
      if (schema === undefined) return settingPathProblem(`${prefix}${key}`);
      const nested = objectShape(schema);
      if (nested && isPlainObject(value)) {
        const problem = visit(value, nested, `${prefix}${key}.`);
        if (problem !== null) return problem;
      }
    }
    return null;
  };
  return visit(document, AgentConfiguration.shape as Shape, "");
}
