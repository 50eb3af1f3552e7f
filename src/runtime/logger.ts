import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };
export type LogLevel = LevelWithSilent;

/**
 * JSON lines on stdout, one event per line, so journald and the Windows event log capture them
 * as they are. Every line carries the machine id (the bridge: its instance id).
 */
export function createLogger(options: { level: LogLevel; machineId?: string; fields?: Record<string, string>; destination?: NodeJS.WritableStream }): Logger {
  const base = { ...(options.machineId ? { machineId: options.machineId } : {}), ...options.fields };
  return pino(
    { level: options.level, base, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    // A synchronous destination: a daemon killed mid-write must not lose the line that says why.
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
