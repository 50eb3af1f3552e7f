import { CommandError, ExitCode } from "../../cli-kit/index.ts";

const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A duration as an operator types it: whole seconds (`90`), or amounts with units (`90s`, `10m`,
 * `1h30m`, `7d`, `500ms`). Refused (exit 2, naming the flag) when it is not one, or not above 0.
 */
export function parseDuration(text: string, flag: string): number {
  const trimmed = text.trim();
  const bad = (): CommandError =>
    new CommandError(
      `${flag} ${JSON.stringify(text)} is not a duration: give seconds (90) or amounts with units (90s, 10m, 1h30m, 7d)`,
      ExitCode.badSettings,
    );
  if (/^\d+$/.test(trimmed)) {
    const ms = Number(trimmed) * 1_000;
    if (ms <= 0 || !Number.isSafeInteger(ms)) throw bad();
    return ms;
  }
  let total = 0;
  let rest = trimmed;
  if (rest === "") throw bad();
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/.exec(rest);
    if (!match) throw bad();
    total += Number(match[1]) * (DURATION_UNIT_MS[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  const ms = Math.round(total);
  if (ms <= 0 || !Number.isSafeInteger(ms)) throw bad();
  return ms;
}

/** `Nats-TTL` as nats-server reads it: whole seconds, at least one. */
export function natsTtlOf(ms: number): string {
  return `${Math.max(1, Math.ceil(ms / 1_000))}s`;
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
};

/** A byte count: `65536`, `64K`, `64KiB`, `1M`, `1MiB` (units of 1,024). */
export function parseByteCount(text: string, flag: string): number {
  const match = /^(\d+)\s*([A-Za-z]*)$/.exec(text.trim());
  const unit = match ? BYTE_UNITS[(match[2] as string).toLowerCase()] : undefined;
  if (!match || unit === undefined)
    throw new CommandError(
      `${flag} ${JSON.stringify(text)} is not a byte count: give bytes (65536) or with a unit (64KiB, 1MiB)`,
      ExitCode.badSettings,
    );
  return Number(match[1]) * unit;
}

/** A duration for people: `850 ms`, `12.3 s`, `4 m 05 s`, `2 h 03 m`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} m ${String(seconds % 60).padStart(2, "0")} s`;
  return `${Math.floor(seconds / 3_600)} h ${String(Math.floor((seconds % 3_600) / 60)).padStart(2, "0")} m`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
