import { setTimeout as sleep } from "node:timers/promises";
import { CommandError, ExitCode } from "../cli-kit/index.ts";
import { type OutboxListingEntry, OutboxNotFoundError, OutboxReader } from "../outbox/index.ts";
import type { Settings } from "../settings/index.ts";
import { anySubjectMatcher, type SubjectMatcher, SubjectPatternError } from "./subject-pattern.ts";

export interface EventsOptions {
  readonly follow: boolean;
  readonly json: boolean;
  readonly subjects: readonly string[];
  /** How often --follow looks at the outbox again. Default 500 ms. */
  readonly pollMs?: number;
}

/** Events read per query: a listing pages through the outbox, it never loads it whole. */
const PAGE_SIZE = 500;
const SUMMARY_WIDTH = 80;

/** Where a listing stands in each table; each cursor only rises. */
interface Cursors {
  sent: number;
  deadLetters: number;
  pending: number;
}

/**
 * Prints the outbox of `dataDir`: the sent events it remembers, its dead letters, then what is
 * pending; with `follow`, then each event newly stored or settled, until `stop` aborts.
 */
export async function listEvents(
  dataDir: string,
  options: EventsOptions,
  write: (line: string) => void,
  stop: AbortSignal,
): Promise<void> {
  let matches: SubjectMatcher;
  try {
    matches = anySubjectMatcher(options.subjects);
  } catch (error) {
    if (error instanceof SubjectPatternError)
      throw new CommandError(error.message, ExitCode.badSettings, { cause: error });
    throw error;
  }
  let reader: OutboxReader;
  try {
    reader = new OutboxReader(dataDir);
  } catch (error) {
    if (error instanceof OutboxNotFoundError) throw new CommandError(error.message, ExitCode.failure, { cause: error });
    throw error;
  }
  const format = options.json ? formatJson : formatLine;
  const cursors: Cursors = { sent: 0, deadLetters: 0, pending: 0 };
  const printNew = (): void => {
    const entries = reader.consistently(() => [
      ...drain((cursor) => reader.sentAfter(cursor, PAGE_SIZE), cursors, "sent"),
      ...drain((cursor) => reader.deadLettersAfter(cursor, PAGE_SIZE), cursors, "deadLetters"),
      ...drain((cursor) => reader.pendingAfter(cursor, PAGE_SIZE), cursors, "pending"),
    ]);
    for (const entry of entries) if (matches(entry.subject)) write(format(entry));
  };
  try {
    printNew();
    while (options.follow && !stop.aborted) {
      await sleep(options.pollMs ?? 500, undefined, { signal: stop }).catch(() => undefined);
      if (!stop.aborted) printNew();
    }
  } finally {
    reader.close();
  }
}

/** Every entry past the cursor, page by page (bounded: each page moves the cursor through a finite table). */
function drain(
  next: (cursor: number) => { entries: OutboxListingEntry[]; cursor: number },
  cursors: Cursors,
  which: keyof Cursors,
): OutboxListingEntry[] {
  const all: OutboxListingEntry[] = [];
  for (;;) {
    const page = next(cursors[which]);
    all.push(...page.entries);
    cursors[which] = page.cursor;
    if (page.entries.length < PAGE_SIZE) return all;
  }
}

/** `edge-agent events`: resolves the data dir, stops --follow on SIGINT or SIGTERM. */
export async function eventsCommand(
  settings: Settings,
  options: EventsOptions,
  write: (line: string) => void,
): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await listEvents(settings.dataDir, options, write, stop.signal);
    return ExitCode.ok;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The start of the body on one line, cut to the listing's width. */
function shortSummary(entry: OutboxListingEntry): string {
  const flat = entry.summary.replace(/\s+/g, " ");
  const cut = flat.length > SUMMARY_WIDTH || entry.bodyBytes > Buffer.byteLength(entry.summary);
  return cut ? `${flat.slice(0, SUMMARY_WIDTH - 1)}…` : flat;
}

export function formatLine(entry: OutboxListingEntry): string {
  const columns = [
    new Date(entry.createdAtMs).toISOString(),
    entry.state.padEnd(11),
    `#${entry.sequence}`.padStart(7),
    entry.eventType.padEnd(24),
    entry.subject,
    formatBytes(entry.bodyBytes),
    shortSummary(entry),
  ];
  return columns.join("  ") + (entry.reason ? `  (refused: ${entry.reason})` : "");
}

export function formatJson(entry: OutboxListingEntry): string {
  return JSON.stringify({
    time: new Date(entry.createdAtMs).toISOString(),
    state: entry.state,
    sequence: entry.sequence,
    type: entry.eventType,
    subject: entry.subject,
    bytes: entry.bodyBytes,
    eventId: entry.eventId,
    settledAt: entry.settledAtMs === null ? null : new Date(entry.settledAtMs).toISOString(),
    ...(entry.reason === null ? {} : { reason: entry.reason }),
    summary: entry.summary,
  });
}
