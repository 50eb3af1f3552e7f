/**
 * A progress line while the JVMs start: on a terminal one line rewritten every second, otherwise a
 * line every ten seconds, naming what is still awaited and for how long.
 */
export class Progress {
  private readonly pending = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private shown = false;
  private readonly out: NodeJS.WriteStream;
  private readonly interactive: boolean;

  constructor(out: NodeJS.WriteStream, interactive: boolean = Boolean(out.isTTY)) {
    this.out = out;
    this.interactive = interactive;
    this.timer = setInterval(() => this.show(), interactive ? 1_000 : 10_000);
    this.timer.unref();
  }

  /** Shows `name` as awaited until `promise` settles. */
  track<T>(name: string, promise: Promise<T>): Promise<T> {
    this.pending.set(name, performance.now());
    const done = (): void => {
      this.pending.delete(name);
    };
    promise.then(done, done);
    return promise;
  }

  /** Prints a line of its own (clearing the progress line first on a terminal). */
  line(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }

  stop(): void {
    clearInterval(this.timer);
    this.clear();
  }

  private show(): void {
    if (this.pending.size === 0) return;
    const now = performance.now();
    const parts = [...this.pending].map(([name, since]) => `${name} (${Math.round((now - since) / 1000)} s)`);
    const text = `  waiting for ${parts.join(", ")}...`;
    if (this.interactive) {
      this.out.write(`\r\x1b[2K${text}`);
      this.shown = true;
    } else this.out.write(`${text}\n`);
  }

  private clear(): void {
    if (!this.shown) return;
    this.out.write("\r\x1b[2K");
    this.shown = false;
  }
}
