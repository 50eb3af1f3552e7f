import * as z from "zod";
import { echoInput } from "../runtime/index.ts";

/**
 * One way of saying what is wrong with a setting's value, whoever read it: the settings file, the
 * environment, a flag, `config set`, or a remote document. `must be a whole number (got "ten")`,
 * never zod's own "Invalid input: expected number, received string".
 */

/** The schema a dotted path leads to inside `schema` (through objects, optionals and defaults), if any. */
export function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let node: z.ZodType | undefined = schema;
  for (const key of path) {
    node = unwrap(node);
    if (node instanceof z.ZodObject) node = (node.shape as Record<string, z.ZodType>)[String(key)];
    else if (node instanceof z.ZodRecord) node = node.valueType as z.ZodType;
    else if (node instanceof z.ZodArray) node = node.element as z.ZodType;
    else return undefined;
  }
  return node === undefined ? undefined : unwrap(node);
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let node = schema;
  while (node instanceof z.ZodOptional || node instanceof z.ZodDefault || node instanceof z.ZodNullable)
    node = node.unwrap() as z.ZodType;
  return node;
}

/** The value at a path of what was validated. */
export function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let node = value;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

const wholeNumber = (schema: z.ZodType | undefined): boolean =>
  schema instanceof z.ZodNumber && (schema.format === "safeint" || schema.format === "int32");

function oneOf(values: readonly unknown[]): string {
  const words = values.map((value) => String(value));
  return words.length <= 1 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

const KINDS: Readonly<Record<string, string>> = {
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  string: "text",
  object: "an object",
  record: 'an object ({"key": "value", ...})',
  array: "a list",
};

/** What is wrong, in the project's words: `must be ... (got <the value as given>)`. */
export function describeIssue(issue: z.core.$ZodIssue, value: unknown, schema?: z.ZodType): string {
  const got = value === undefined ? "" : ` (got ${echoInput(value)})`;
  switch (issue.code) {
    case "invalid_type": {
      const expected = issue.expected === "number" && wholeNumber(schema) ? "int" : issue.expected;
      return `must be ${KINDS[expected] ?? expected}${got}`;
    }
    case "too_small": {
      const bound = Number(issue.minimum);
      if (issue.origin === "string")
        return bound <= 1 ? `must not be empty` : `must be at least ${bound} characters long${got}`;
      if (issue.origin === "array" || issue.origin === "set") return `must hold at least ${bound}${got}`;
      return `must be ${issue.inclusive ? "at least" : "more than"} ${bound}${got}`;
    }
    case "too_big": {
      const bound = Number(issue.maximum);
      if (issue.origin === "string") return `must be at most ${bound} characters long${got}`;
      if (issue.origin === "array" || issue.origin === "set") return `must hold at most ${bound}${got}`;
      return `must be ${issue.inclusive ? "at most" : "less than"} ${bound}${got}`;
    }
    case "invalid_value":
      return `must be ${issue.values.length === 1 ? "" : "one of "}${oneOf(issue.values)}${got}`;
    case "not_multiple_of":
      return `must be a multiple of ${String(issue.divisor)}${got}`;
    case "unrecognized_keys":
      return `has keys no setting has: ${issue.keys.join(", ")}`;
    default:
      // Our own refinements (custom issues) already say it our way.
      return issue.message;
  }
}
