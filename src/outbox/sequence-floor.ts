import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";

/**
 * A small file that bounds the device sequence from below, outside the database. If the database
 * is ever lost to corruption, the sequence restarts past anything it may have handed out, so a
 * number is never reused (the platform sees a gap, which is the truth: events were lost).
 */
export class SequenceFloor {
  /** The file is rewritten every STRIDE sequences; a restart after corruption adds STRIDE to be safe. */
  static readonly STRIDE = 10_000;
  readonly #path: string;
  #lastPersisted = 0;

  constructor(path: string) {
    this.#path = path;
  }

  read(): number {
    try {
      const value = Number.parseInt(readFileSync(this.#path, "utf8"), 10);
      this.#lastPersisted = Number.isFinite(value) ? value : 0;
    } catch {
      this.#lastPersisted = 0;
    }
    return this.#lastPersisted;
  }

  safeRestartPoint(): number {
    return this.read() + SequenceFloor.STRIDE;
  }

  observe(sequence: number): void {
    if (sequence - this.#lastPersisted >= SequenceFloor.STRIDE) this.persist(sequence);
  }

  persist(sequence: number): void {
    try {
      const temporary = `${this.#path}.tmp`;
      const fd = openSync(temporary, "w", 0o600);
      try {
        writeSync(fd, `${sequence}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, this.#path);
      this.#lastPersisted = sequence;
    } catch {
      // Best effort: the database's own counter is the primary record.
    }
  }
}
