/**
 * How an error's code is printed beside its message: bracketed and named, so it cannot be read as
 * a setting or a file (docs/error-codes.md lists every code with what to do).
 * `message [error code EDGE_TRUST_REPLAYED]`; a broker's own ids follow under their broker's name:
 * `message [error code EDGE_BRIDGE_KAFKA; Kafka: TOPIC_AUTHORIZATION_FAILED]`.
 */
export function withErrorCodes(
  message: string,
  codes: readonly string[],
  foreign: { readonly name: string; readonly ids: readonly string[] } | null = null,
): string {
  const parts = [
    ...(codes.length > 0 ? [`error code${codes.length === 1 ? "" : "s"} ${codes.join(", ")}`] : []),
    ...(foreign && foreign.ids.length > 0 ? [`${foreign.name}: ${foreign.ids.join(", ")}`] : []),
  ];
  return parts.length === 0 ? message : `${message} [${parts.join("; ")}]`;
}
