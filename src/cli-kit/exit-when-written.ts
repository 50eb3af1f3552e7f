/**
 * Exits with `code` once what was written to stdout and stderr has left the process. Writes to a
 * pipe are asynchronous on POSIX (Node's "note on process I/O"), so `process.exit` right after a
 * large output cuts its end: `edge-agent task run --json | ...` lost its result and summary lines
 * after a flood of output. A stream that cannot take more (closed, EPIPE) is not waited for.
 */
export function exitWhenWritten(
  code: number,
  streams: readonly NodeJS.WritableStream[] = [process.stdout, process.stderr],
): void {
  let waiting = streams.length;
  const written = (): void => {
    waiting -= 1;
    if (waiting === 0) process.exit(code);
  };
  if (waiting === 0) {
    process.exit(code);
    return;
  }
  for (const stream of streams) {
    const writable = stream as NodeJS.WritableStream & { writableLength?: number; destroyed?: boolean };
    if (writable.destroyed === true || !writable.writable || writable.writableLength === 0) written();
    // A write's callback runs once every write before it has been handed to the OS (or failed).
    else stream.write("", () => written());
  }
}
