import { type CheckResult, fail, pass, warn } from "./check-result.ts";

/** A time the server stamped on an answer, and the local clock around the request that got it. */
export interface ServerTimeSample {
  readonly serverMs: number;
  readonly sentMs: number;
  readonly receivedMs: number;
  /** What answered, for the report. */
  readonly source: string;
}

/**
 * Skew that is worth a warning: event times (`X-Timestamp`, telemetry) then disagree with the
 * server's by more than a dashboard shows as "now".
 */
export const SKEW_WARN_MS = 2_000;
/**
 * Skew that breaks things: past a minute the platform files telemetry under the wrong minute,
 * signed documents' times and the bridge's presence judgement (a few heartbeats) go wrong.
 */
export const SKEW_FAIL_MS = 60_000;

const CHECK = "clock skew";

/**
 * Judges the local clock against the server's. The server's time lies somewhere between sending
 * and receiving, so the skew is measured from the midpoint and only the part beyond half the
 * round trip counts.
 */
export function judgeClockSkew(sample: ServerTimeSample): CheckResult {
  const midpointMs = (sample.sentMs + sample.receivedMs) / 2;
  const skewMs = midpointMs - sample.serverMs;
  const uncertaintyMs = Math.max(0, sample.receivedMs - sample.sentMs) / 2;
  const beyondMs = Math.max(0, Math.abs(skewMs) - uncertaintyMs);
  const direction = skewMs > 0 ? "ahead of" : "behind";
  const reason = `this machine's clock is ${(Math.abs(skewMs) / 1000).toFixed(1)} s ${direction} the server's (±${(uncertaintyMs / 1000).toFixed(2)} s, from ${sample.source})`;
  const fix = "synchronise the clock (systemd-timesyncd, chrony or ntpd: timedatectl set-ntp true)";
  if (beyondMs >= SKEW_FAIL_MS) return fail(CHECK, reason, fix);
  if (beyondMs >= SKEW_WARN_MS) return warn(CHECK, reason, fix);
  return pass(CHECK, reason);
}

/**
 * No answer this identity could get carried the server's time. Every supported server stamps
 * stream and consumer info, so the likely cause is that the streams it asks about are missing
 * (the streams check says which) or that it may ask for none.
 */
export function clockSkewUnmeasured(serverVersion: string | undefined): CheckResult {
  return warn(
    CHECK,
    `cannot measure: no JetStream answer to this identity carried the server's time (nats-server ${serverVersion ?? "?"} stamps stream and consumer info; are the streams there?)`,
    "make sure the clock is synchronised (timedatectl: 'System clock synchronized: yes')",
  );
}
