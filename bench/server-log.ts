/**
 * What the fleet benchmark reads from nats-server's own log (a file: `log_file`). Lines look like
 * `[13283] 2026/12/07 04:33:26.607194 [INF] Server is ready`.
 */

const LINE = /^\[\d+\] (\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{1,9}) \[(\w+)\] (.*)$/;

interface LogLine {
  /** Milliseconds in the server's clock (its log's local time read as UTC: only differences are used). */
  readonly atMs: number;
  readonly level: string;
  readonly text: string;
}

function parseLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split("\n")) {
    const match = LINE.exec(line);
    if (!match) continue;
    const [, year, month, day, hour, minute, second, fraction, level, rest] = match;
    const atMs =
      Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)) +
      Number(`0.${fraction}`) * 1000;
    lines.push({ atMs, level: level as string, text: rest as string });
  }
  return lines;
}

/** The server's warnings and errors by kind (digits and client ids stripped), most frequent first: what it struggled with. */
export function serverWarnings(text: string): Record<string, number> {
  const counts = new Map<string, number>();
  for (const { level, text: rest } of parseLines(text)) {
    if (level !== "WRN" && level !== "ERR") continue;
    const kind =
      `${level} ${rest.replace(/^[\d.:]+ - (cid|rid|lid):\d+ - ("[^"]*" - )?/, "").replace(/[\d.]+(ms|s|µs)?/g, "N")}`.slice(
        0,
        160,
      );
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, 8));
}

export interface RestartTimeline {
  /** From the stop signal to the old process's last line. */
  readonly shutdownMs: number;
  /** From the old process's last line to the new one's first (the test helper starting it). */
  readonly downMs: number;
  /** From the new process's first line to "Server is ready" (JetStream recovered, listening). */
  readonly startupMs: number;
}

/** The last stop and start the log holds (a restart), or null when it holds none. */
export function restartTimeline(text: string): RestartTimeline | null {
  const lines = parseLines(text);
  const lastStart = lines.findLastIndex((line) => line.text === "Starting nats-server");
  if (lastStart <= 0) return null;
  const stopSignal = lines.findLastIndex((line, index) => index < lastStart && line.text.startsWith("Trapped "));
  const exiting = lines.findLastIndex((line, index) => index < lastStart && line.text.startsWith("Server Exiting"));
  const ready = lines.findIndex((line, index) => index > lastStart && line.text === "Server is ready");
  if (stopSignal < 0 || exiting < 0 || ready < 0) return null;
  const at = (index: number): number => (lines[index] as LogLine).atMs;
  return {
    shutdownMs: Math.round(at(exiting) - at(stopSignal)),
    downMs: Math.round(at(lastStart) - at(exiting)),
    startupMs: Math.round(at(ready) - at(lastStart)),
  };
}
