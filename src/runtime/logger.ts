import { type LevelWithSilent, type Logger, pino } from "pino";

export type { Logger };
export type LogLevel = LevelWithSilent;
/** The levels a setting may name (both programs' `logLevel`). */
export const LOG_LEVELS = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
] as const satisfies readonly LogLevel[];

/**
 * JSON lines on stdout, one event per line, so journald and the Windows event log capture them
 * as they are. Every line carries the machine id (the bridge: its instance id).
 */
export function createLogger(options: {
  level: LogLevel;
  machineId?: string;
  fields?: Record<string, string>;
  destination?: NodeJS.WritableStream;
}): Logger {
  const base = { ...(options.machineId ? { machineId: options.machineId } : {}), ...options.fields };
  const baseKeys = Object.keys(base);
  return pino(
    {
      level: options.level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        // Every line is valid JSON with unique keys: a field the line repeats from the base (its
        // instance id, its machine id) is written once, by the base.
        log: (object) => {
          if (!baseKeys.some((key) => key in object)) return object;
          const rest = { ...object };
          for (const key of baseKeys) delete rest[key];
          return rest;
        },
      },
    },
    // A synchronous destination: a daemon killed mid-write must not lose the line that says why.
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * One agent's loggers: a root and the children made from it. pino children copy their level when
 * made, so a live level change goes to each one; and only to these: another agent in the same
 * process, or the logger this one was made from, keeps its own level.
 */
export interface LoggerFamily {
  readonly root: Logger;
  child(bindings: Record<string, string>): Logger;
  setLevel(level: LogLevel): void;
}

export function createLoggerFamily(root: Logger): LoggerFamily {
  const members: Logger[] = [root];
  return {
    root,
    child(bindings) {
      const child = root.child(bindings);
      members.push(child);
      return child;
    },
    setLevel(level) {
      for (const member of members) member.level = level;
    },
  };
}
