/**
 * Runs jobs one at a time per key, in the order given, and jobs of different keys side by side,
 * at most `concurrency` at once. So one key's slow job (a download that hangs) holds up only that
 * key's later jobs, while other keys go on, and the machine never runs more than a few at once.
 */
export class KeyedSerialQueue {
  readonly #concurrency: number;
  /** Jobs waiting, per key; a key is present while it has a job waiting or running. */
  readonly #waiting = new Map<string, Array<() => Promise<void>>>();
  readonly #running = new Set<string>();
  /** Keys with a job waiting and none running, oldest first. */
  readonly #ready: string[] = [];
  #pending = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new RangeError(`concurrency must be a whole number >= 1 (got ${concurrency})`);
    this.#concurrency = concurrency;
  }

  /** Jobs waiting or running. */
  get size(): number {
    return this.#pending;
  }

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const wrapped = (): Promise<void> => Promise.resolve().then(job).then(resolve, reject);
      const queue = this.#waiting.get(key);
      this.#pending += 1;
      if (queue) queue.push(wrapped);
      else {
        this.#waiting.set(key, [wrapped]);
        this.#ready.push(key);
      }
      this.#startReady();
    });
  }

  /** Resolves once nothing waits or runs. */
  idle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #startReady(): void {
    while (this.#running.size < this.#concurrency && this.#ready.length > 0) {
      const key = this.#ready.shift() as string;
      const job = this.#waiting.get(key)?.shift();
      if (!job) continue;
      this.#running.add(key);
      void job().finally(() => this.#finished(key));
    }
  }

  #finished(key: string): void {
    this.#running.delete(key);
    this.#pending -= 1;
    const queue = this.#waiting.get(key);
    if (queue && queue.length > 0) this.#ready.push(key);
    else this.#waiting.delete(key);
    this.#startReady();
    if (this.#pending === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
