export type Verdict = "PASS" | "WARN" | "FAIL";

/** One line of `edge-agent doctor`: what was checked, how it went, and what to do about it. */
export interface CheckResult {
  readonly check: string;
  readonly verdict: Verdict;
  readonly reason: string;
  /** What the operator should do; absent on a PASS. */
  readonly action?: string;
}

export const pass = (check: string, reason: string): CheckResult => ({ check, verdict: "PASS", reason });
export const warn = (check: string, reason: string, action: string): CheckResult => ({
  check,
  verdict: "WARN",
  reason,
  action,
});
export const fail = (check: string, reason: string, action: string): CheckResult => ({
  check,
  verdict: "FAIL",
  reason,
  action,
});

export function formatCheck(result: CheckResult): string {
  const line = `${result.verdict}  ${result.check.padEnd(30)}  ${result.reason}`;
  return result.action ? `${line}\n${" ".repeat(36)}-> ${result.action}` : line;
}
