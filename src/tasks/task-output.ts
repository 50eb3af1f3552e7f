import { StringDecoder } from "node:string_decoder";
import { TASK_LIMITS, type TaskOutputChunk, type TaskOutputStream } from "../contracts/index.ts";
import { type Cancel, type Clock, timersOf } from "../runtime/index.ts";

export interface TaskOutputOptions {
  readonly taskId: string;
  /** Bytes of output kept and sent, both streams together; the rest is counted and dropped. */
  readonly maxOutputBytes: number;
  readonly clock: Clock;
  /** Sends one chunk (through the outbox); resolves once it is stored, rejects when it was refused. */
  readonly send: (chunk: TaskOutputChunk) => Promise<unknown>;
  /** A chunk is sent once this many bytes are gathered (default TASK_LIMITS.maxChunkBytes)... */
  readonly chunkBytes?: number;
  /** ...or this long after the first byte of it (default 100 ms). */
  readonly flushAfterMs?: number;
  /** Told when a chunk could not be stored (its output is lost; the result says truncated). */
  readonly onLost?: (error: unknown) => void;
}

/** What a task's output came to, for its result. */
export interface OutputSummary {
  readonly bytesSeen: Record<TaskOutputStream, number>;
  readonly truncated: boolean;
  readonly chunks: number;
  readonly lastLines: Record<TaskOutputStream, string[]>;
}

const STREAMS: readonly TaskOutputStream[] = ["stdout", "stderr"];
/** Raw bytes kept of each stream's end, for its last lines (whether its output was kept or dropped). */
const TAIL_BYTES = TASK_LIMITS.lastLinesBytes;
/** Each stream's last lines take at most this many bytes (TASK_LIMITS' bound is for both together). */
const LAST_LINES_BYTES_PER_STREAM = Math.floor(TASK_LIMITS.lastLinesBytes / STREAMS.length);

const isContinuation = (byte: number | undefined): boolean => byte !== undefined && (byte & 0xc0) === 0x80;

/** The longest prefix of `bytes` at most `limit` long that does not end inside a UTF-8 character. */
function boundaryAtMost(bytes: Buffer, limit: number): number {
  if (limit >= bytes.length) return bytes.length;
  let cut = limit;
  // At most three bytes back: a character is at most four long (anything else is not UTF-8 anyway).
  while (cut > 0 && cut > limit - 3 && isContinuation(bytes[cut])) cut -= 1;
  return isContinuation(bytes[cut]) ? limit : cut;
}

class StreamState {
  readonly decoder = new StringDecoder("utf8");
  pending: Buffer[] = [];
  pendingBytes = 0;
  seen = 0;
  tail: Buffer = Buffer.alloc(0);
  timer: Cancel | null = null;

  keepTail(data: Buffer): void {
    this.tail =
      data.length >= TAIL_BYTES
        ? Buffer.from(data.subarray(data.length - TAIL_BYTES))
        : Buffer.concat([this.tail, data]).subarray(-TAIL_BYTES);
  }

  take(bytes: number): Buffer {
    const all = Buffer.concat(this.pending);
    const taken = all.subarray(0, bytes);
    const rest = all.subarray(bytes);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return taken;
  }
}

/**
 * A running task's stdout and stderr, read as they come: sent as numbered chunks (one `seq` over
 * both streams) once 16 KiB are gathered or 100 ms after the first byte of a chunk, decoded as
 * UTF-8 and never split inside a character (a stream's decoder carries a character's start over to
 * its next chunk). At most `maxOutputBytes` are kept and sent; past that, output is still read (the
 * process never blocks on a full pipe), counted and dropped. Memory stays bounded: at most one
 * chunk and one pipe read gathered per stream, plus each stream's last 4 KiB for its last lines.
 */
export class TaskOutput {
  readonly #options: TaskOutputOptions;
  readonly #timers;
  readonly #chunkBytes: number;
  readonly #flushAfterMs: number;
  readonly #streams: Record<TaskOutputStream, StreamState> = { stdout: new StreamState(), stderr: new StreamState() };
  readonly #sending = new Set<Promise<unknown>>();
  #kept = 0;
  #truncated = false;
  #nextSeq = 0;
  #finished = false;

  constructor(options: TaskOutputOptions) {
    this.#options = options;
    this.#timers = timersOf(options.clock);
    this.#chunkBytes = options.chunkBytes ?? TASK_LIMITS.maxChunkBytes;
    this.#flushAfterMs = options.flushAfterMs ?? 100;
  }

  /** Bytes read from one of the process's pipes. */
  write(name: TaskOutputStream, data: Buffer): void {
    if (this.#finished || data.length === 0) return;
    const stream = this.#streams[name];
    stream.seen += data.length;
    stream.keepTail(data);
    const room = this.#options.maxOutputBytes - this.#kept;
    if (room <= 0) {
      this.#truncated = true;
      return;
    }
    const keep = boundaryAtMost(data, room);
    // Cut here: nothing later is kept, or the output sent would have a hole in its middle.
    if (keep < data.length) this.#truncated = true;
    this.#kept = keep < data.length ? this.#options.maxOutputBytes : this.#kept + keep;
    if (keep === 0) return;
    stream.pending.push(data.subarray(0, keep));
    stream.pendingBytes += keep;
    while (stream.pendingBytes >= this.#chunkBytes) this.#send(name, stream.take(this.#chunkBytes));
    if (stream.pendingBytes > 0 && stream.timer === null) {
      stream.timer = this.#timers.after(this.#flushAfterMs, () => {
        stream.timer = null;
        this.#flush(name);
      });
    }
  }

  /** The process's pipes are closed: what is gathered is sent; resolves once every chunk is stored (or refused). */
  async finish(): Promise<OutputSummary> {
    if (!this.#finished) {
      this.#finished = true;
      for (const name of STREAMS) {
        this.#flush(name);
        const rest = this.#streams[name].decoder.end();
        if (rest !== "") this.#emit(name, rest);
      }
    }
    await Promise.allSettled([...this.#sending]);
    return {
      bytesSeen: { stdout: this.#streams.stdout.seen, stderr: this.#streams.stderr.seen },
      truncated: this.#truncated,
      chunks: this.#nextSeq,
      lastLines: { stdout: lastLinesOf(this.#streams.stdout.tail), stderr: lastLinesOf(this.#streams.stderr.tail) },
    };
  }

  #flush(name: TaskOutputStream): void {
    const stream = this.#streams[name];
    stream.timer?.();
    stream.timer = null;
    while (stream.pendingBytes > 0) this.#send(name, stream.take(this.#chunkBytes));
  }

  #send(name: TaskOutputStream, bytes: Buffer): void {
    const text = this.#streams[name].decoder.write(bytes);
    // Only the start of a character: it goes with the next chunk.
    if (text !== "") this.#emit(name, text);
  }

  #emit(name: TaskOutputStream, data: string): void {
    const chunk: TaskOutputChunk = {
      taskId: this.#options.taskId,
      seq: this.#nextSeq,
      stream: name,
      data,
      at: new Date(this.#options.clock.now()).toISOString(),
    };
    this.#nextSeq += 1;
    const sending = this.#options.send(chunk).catch((error: unknown) => {
      // A chunk the outbox refused: that output is lost, and the result says the output is not whole.
      this.#truncated = true;
      this.#options.onLost?.(error);
    });
    this.#sending.add(sending);
    void sending.finally(() => this.#sending.delete(sending));
  }
}

/** The last lines of a stream's tail, within the per-stream bound (the oldest dropped, a long one cut at its start). */
export function lastLinesOf(tail: Buffer): string[] {
  let start = 0;
  // The tail may begin inside a character: skip to the next one.
  while (start < tail.length && start < 3 && isContinuation(tail[start])) start += 1;
  const lines = tail.subarray(start).toString("utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  const kept: string[] = [];
  let budget = LAST_LINES_BYTES_PER_STREAM;
  for (let index = lines.length - 1; index >= 0 && kept.length < TASK_LIMITS.lastLines; index--) {
    const line = (lines[index] as string).replace(/\r$/, "");
    const size = Buffer.byteLength(line, "utf8");
    if (size <= budget) {
      kept.unshift(line);
      budget -= size;
      continue;
    }
    if (budget > 0) kept.unshift(endOf(line, budget));
    break;
  }
  return kept;
}

/** The end of `line` in at most `bytes` UTF-8 bytes, starting on a character. */
function endOf(line: string, bytes: number): string {
  const encoded = Buffer.from(line, "utf8");
  let start = encoded.length - bytes;
  while (start < encoded.length && isContinuation(encoded[start])) start += 1;
  return encoded.subarray(start).toString("utf8");
}
