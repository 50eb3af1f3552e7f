/**
 * Runs jobs one after another, in the order given: a job starts once the one before it settled,
 * whether it succeeded or failed. For a state file or a set of marks that one writer at a time
 * must read, change and write back.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(job, job);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every job given so far has settled. */
  async idle(): Promise<void> {
    await this.#tail;
  }
}
