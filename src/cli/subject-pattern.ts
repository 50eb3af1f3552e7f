import { EdgeError } from "../errors/index.ts";

/**
 * NATS subject patterns, as an operator writes them for a filter: tokens separated by `.`, where
 * `*` matches exactly one token and `>` (last token only) matches one or more.
 */
export class SubjectPatternError extends EdgeError {
  readonly code = "EDGE_BAD_SUBJECT_PATTERN";
  constructor(pattern: string, problem: string) {
    super(`subject pattern ${JSON.stringify(pattern)} ${problem} (e.g. machine.*.telemetry or machine.>)`);
    this.name = "SubjectPatternError";
  }
}

export type SubjectMatcher = (subject: string) => boolean;

export function subjectMatcher(pattern: string): SubjectMatcher {
  const tokens = pattern.split(".");
  if (tokens.some((token) => token === "")) throw new SubjectPatternError(pattern, "has an empty token");
  if (tokens.some((token) => /\s/.test(token))) throw new SubjectPatternError(pattern, "contains whitespace");
  const tail = tokens.indexOf(">");
  if (tail !== -1 && tail !== tokens.length - 1)
    throw new SubjectPatternError(pattern, "has '>' before its last token");
  return (subject) => {
    const parts = subject.split(".");
    for (let index = 0; index < tokens.length; index++) {
      const token = tokens[index];
      if (token === ">") return parts.length > index;
      if (index >= parts.length || (token !== "*" && token !== parts[index])) return false;
    }
    return parts.length === tokens.length;
  };
}

/** Matches when any pattern does; no pattern matches everything. */
export function anySubjectMatcher(patterns: readonly string[]): SubjectMatcher {
  if (patterns.length === 0) return () => true;
  const matchers = patterns.map(subjectMatcher);
  return (subject) => matchers.some((matches) => matches(subject));
}

/** Whether some subject matches both patterns (JetStream refuses two streams whose subjects overlap). */
export function patternsOverlap(first: string, second: string): boolean {
  const a = first.split(".");
  const b = second.split(".");
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const left = a[index];
    const right = b[index];
    // `>` takes one or more tokens: the other pattern must still have one here.
    if (left === ">") return right !== undefined;
    if (right === ">") return left !== undefined;
    if (left === undefined || right === undefined) return false;
    if (left !== "*" && right !== "*" && left !== right) return false;
  }
  return true;
}

/** Whether every subject `inner` matches, `outer` matches too (`machine.*.tool.*.update` covers `machine.all.tool.*.update`). */
export function patternCovers(outer: string, inner: string): boolean {
  const a = outer.split(".");
  const b = inner.split(".");
  for (let index = 0; index < Math.max(a.length, b.length); index++) {
    const wide = a[index];
    const narrow = b[index];
    if (wide === ">") return narrow !== undefined;
    if (wide === undefined || narrow === undefined || narrow === ">") return false;
    if (wide !== "*" && (narrow === "*" || wide !== narrow)) return false;
  }
  return true;
}
