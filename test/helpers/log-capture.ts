import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../src/runtime/logger.ts";

export interface CapturedLog {
  readonly logger: Logger;
  /** Every line logged so far, parsed. */
  lines(): Array<Record<string, unknown> & { level: string; msg: string }>;
  /** The lines whose message contains `text`. */
  matching(text: string): Array<Record<string, unknown> & { level: string; msg: string }>;
}

/** A real pino logger (the daemon's format) whose lines a test can read. */
export function captureLog(level: "debug" | "info" | "warn" = "debug"): CapturedLog {
  const lines: Array<Record<string, unknown> & { level: string; msg: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line.trim() !== "")
          lines.push(JSON.parse(line) as Record<string, unknown> & { level: string; msg: string });
      done();
    },
  });
  return {
    logger: createLogger({ level, destination }),
    lines: () => [...lines],
    matching: (text) => lines.filter((line) => line.msg.includes(text)),
  };
}
