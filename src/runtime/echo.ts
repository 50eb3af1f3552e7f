/**
 * What the agent echoes back of input it was sent (in an error, a status, a log line) is cut to a
 * few hundred characters: enough to recognise the value, never its bulk. A 1 MB field otherwise
 * travels back into every status and log line that mentions it, and a status over the server's
 * max_payload is never delivered at all.
 */

/** The most characters of one input value echoed back. */
export const ECHO_MAX_CHARS = 120;
/** The most characters of the problems listed from a validation (the count of the rest follows). */
export const ISSUES_MAX_CHARS = 600;
const ISSUES_LISTED = 5;

/** `text` itself when short enough, else its start and how much was left out. */
export function truncateInput(text: string, maxChars = ECHO_MAX_CHARS): string {
  if (text.length <= maxChars) return text;
  return `${text.slice(0, maxChars)}…(${text.length - maxChars} more chars)`;
}

/** A value quoted for an error message (JSON, so control characters stay visible), truncated. */
export function echoInput(value: unknown, maxChars = ECHO_MAX_CHARS): string {
  if (typeof value === "string") {
    if (value.length <= maxChars) return JSON.stringify(value);
    return `${JSON.stringify(value.slice(0, maxChars))}…(${value.length - maxChars} more chars)`;
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return truncateInput(text, maxChars);
}

/** The shape of a zod issue (or any validator's): where, and what is wrong. */
export interface ValidationIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/**
 * `path: message; path: message` for the first few issues, each part truncated: a message with
 * thousands of bad entries, or keys and messages that quote the input, stays one short line.
 */
export function describeIssues(issues: readonly ValidationIssue[]): string {
  const listed = issues.slice(0, ISSUES_LISTED).map((issue) => {
    const path = truncateInput(issue.path.map(String).join("."), 60);
    return `${path}: ${truncateInput(issue.message)}`;
  });
  const more = issues.length > ISSUES_LISTED ? `; and ${issues.length - ISSUES_LISTED} more` : "";
  return `${truncateInput(listed.join("; "), ISSUES_MAX_CHARS)}${more}`;
}
