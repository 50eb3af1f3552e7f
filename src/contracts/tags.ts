/**
 * Tags travel as `key:value` strings (MachinePinotMessage's `tagKeyValues`) and as names (`tags`).
 * The one place that writes and reads that form: a key never contains ':' (settings refuse it),
 * so the first ':' separates key from value, and a value may contain more.
 */
export function tagKeyValuesOf(tags: Readonly<Record<string, string>>): string[] {
  return Object.entries(tags).map(([key, value]) => `${key}:${value}`);
}

/** The tag name of a `key:value` string (the whole string when it has no ':'). */
export function tagNameOf(pair: string): string {
  const separator = pair.indexOf(":");
  return separator === -1 ? pair : pair.slice(0, separator);
}

/** The value of tag `name` among `key:value` strings, or undefined when it is not there. */
export function tagValueIn(pairs: readonly string[], name: string): string | undefined {
  return pairs.find((pair) => tagNameOf(pair) === name && pair.length > name.length)?.slice(name.length + 1);
}
