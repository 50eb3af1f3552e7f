import { statfs } from "node:fs/promises";
import { EdgeError } from "../errors/index.ts";

/** An unpack that would write more than it may: too large, too many entries, or no room on the disk. */
export class UnpackLimitError extends EdgeError {
  readonly code: "EDGE_UNPACK_TOO_LARGE" | "EDGE_UNPACK_NO_SPACE" | "EDGE_UNPACK_TOO_MANY_ENTRIES";
  constructor(code: UnpackLimitError["code"], message: string) {
    super(message);
    this.name = "UnpackLimitError";
    this.code = code;
  }
}

export interface UnpackLimits {
  /** Most bytes an archive may unpack to, counted as they are written. */
  readonly maxBytes: number;
  /** Free space the unpack must leave on the destination's file system (the outbox shares it). */
  readonly reserveFreeBytes: number;
  /** Most files and folders (default 20 000): empty entries cost the disk inodes, not bytes. */
  readonly maxEntries?: number;
}

const DEFAULT_MAX_ENTRIES = 20_000;
/** Free space is looked at again after this much is written: other writers share the disk. */
const RECHECK_EVERY_BYTES = 8 * 1024 * 1024;

async function freeBytesOf(path: string): Promise<number> {
  const info = await statfs(path);
  return info.bavail * info.bsize;
}

/**
 * What one unpack may still write. Every byte written is counted here before it is written: the
 * sizes an archive declares are checked first, where the format gives them, but never trusted.
 */
export class UnpackBudget {
  readonly #limits: UnpackLimits;
  readonly #path: string;
  #written = 0;
  #entries = 0;
  #nextCheckAt = RECHECK_EVERY_BYTES;

  private constructor(limits: UnpackLimits, path: string) {
    this.#limits = limits;
    this.#path = path;
  }

  /** A budget for unpacking into `path`; refused at once when the disk has no room above the reserve. */
  static async open(limits: UnpackLimits, path: string): Promise<UnpackBudget> {
    const budget = new UnpackBudget(limits, path);
    await budget.#checkFreeSpace(1);
    return budget;
  }

  get writtenBytes(): number {
    return this.#written;
  }

  /** One more file or folder. */
  countEntry(): void {
    this.#entries += 1;
    const maxEntries = this.#limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (this.#entries > maxEntries)
      throw new UnpackLimitError(
        "EDGE_UNPACK_TOO_MANY_ENTRIES",
        `archive holds more than ${maxEntries} files and folders`,
      );
  }

  /** Refuses up front what an archive says it holds (zip central directory, a tar header). */
  async checkDeclared(totalBytes: number): Promise<void> {
    this.#refuseOverLimit(totalBytes);
    const free = await freeBytesOf(this.#path);
    if (totalBytes > free - this.#limits.reserveFreeBytes) throw this.#noSpace(free, totalBytes);
  }

  /** Call before writing `bytes` more. */
  async take(bytes: number): Promise<void> {
    this.#written += bytes;
    this.#refuseOverLimit(this.#written);
    if (this.#written >= this.#nextCheckAt) {
      this.#nextCheckAt = this.#written + RECHECK_EVERY_BYTES;
      await this.#checkFreeSpace(RECHECK_EVERY_BYTES);
    }
  }

  #refuseOverLimit(totalBytes: number): void {
    if (totalBytes > this.#limits.maxBytes) {
      throw new UnpackLimitError(
        "EDGE_UNPACK_TOO_LARGE",
        `archive unpacks to more than ${this.#limits.maxBytes} bytes (the tools' maxUnpackedBytes limit)`,
      );
    }
  }

  /** There must be room for `upcoming` more bytes above the reserve. */
  async #checkFreeSpace(upcoming: number): Promise<void> {
    const free = await freeBytesOf(this.#path);
    if (free - upcoming < this.#limits.reserveFreeBytes) throw this.#noSpace(free, upcoming);
  }

  #noSpace(free: number, needed: number): UnpackLimitError {
    return new UnpackLimitError(
      "EDGE_UNPACK_NO_SPACE",
      `not enough free disk to unpack: ${free} bytes free, ${needed} more needed, and ${this.#limits.reserveFreeBytes} must stay free for the outbox`,
    );
  }
}
