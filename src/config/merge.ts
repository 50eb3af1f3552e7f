/** Deep merge for configuration documents: objects merge key by key, anything else replaces. */
export function mergeDocuments(
  ...documents: ReadonlyArray<Record<string, unknown> | undefined>
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const document of documents) {
    if (!document) continue;
    for (const [key, value] of Object.entries(document)) {
      const existing = result[key];
      result[key] = isPlainObject(existing) && isPlainObject(value) ? mergeDocuments(existing, value) : value;
    }
  }
  return result;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
