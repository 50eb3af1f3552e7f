import { randomUUID } from "node:crypto";
import { closeSync, fdatasyncSync, fsyncSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { crc32 } from "node:zlib";
import { EdgeError } from "../errors/index.ts";
import { syncDirectorySync } from "../runtime/index.ts";
import type { Durability } from "./sqlite-store.ts";

/**
 * The device sequence's floor, kept outside the database so that a number is never handed out
 * twice, whatever fails: a full disk, kill -9, a power cut, a lost database.
 *
 * Guarantee: a sequence number is used only once the floor file says, durably (fdatasync), that
 * numbers up to it may have been used. Numbers are reserved a block ahead (`BLOCK`), so this costs
 * one small write per block, not per event. The file has a fixed size (two 512-byte slots) and is
 * only ever overwritten in place, never renamed or grown, so writing it needs no free space: it
 * works on a full disk. The slots alternate and each carries a generation and a checksum, so a
 * write torn by a power cut leaves the previous record readable (whose reservation was never
 * exceeded).
 *
 * On start the sequence continues from `restartSequence`: exactly where it stopped after a clean
 * stop, or after a crash when the database provably holds every number used (nothing was held in
 * memory, and the same boot or `full` durability, so no committed write was lost); otherwise past
 * the whole reservation, leaving a gap (allowed, and the truth: events may have been lost).
 *
 * The file also names the outbox life the numbers belong to (`outboxId`, see `outboxIdFor`): a
 * sequence is unique only within one life, so (machine, outbox id, sequence) is what names an
 * event for good.
 *
 * If even this file cannot be written (it cannot be created on a full disk at the very first
 * start, or the disk fails with EIO or goes read-only), no number can be made safe, and the event
 * is refused with `OutboxRefusedError` rather than given a number that could be reused: an event
 * not yet accepted may be refused loudly; an accepted one is never lost or renumbered.
 */
export class SequenceFloor {
  /** Numbers reserved ahead of use: a crash that loses events leaves a gap of up to this many. */
  static readonly BLOCK = 1_000;
  static readonly SLOT_BYTES = 512;
  readonly #path: string;
  readonly #bootId: string | null;
  #fd: number | null = null;
  #generation = 0;
  /** What the file says durably now (null until the first write or read). */
  #durable: FloorRecord | null = null;
  /** What it should say: each write puts all of it. */
  #wanted: Omit<FloorRecord, "generation" | "bootId"> = {
    base: 0,
    reserved: 0,
    state: "running",
    settledThrough: 0,
    outboxId: null,
  };

  constructor(path: string, bootId: string | null) {
    this.#path = path;
    this.#bootId = bootId;
  }

  /** What the last run left; never throws (an unreadable file counts as none). */
  read(): { record: FloorRecord | null; legacyFloor: number | null } {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.#path);
    } catch {
      return { record: null, legacyFloor: null };
    }
    const records = [0, 1]
      .map((slot) => parseSlot(bytes.subarray(slot * SequenceFloor.SLOT_BYTES, (slot + 1) * SequenceFloor.SLOT_BYTES)))
      .filter((record): record is FloorRecord => record !== null);
    const record = records.sort((a, b) => b.generation - a.generation)[0] ?? null;
    if (record) {
      this.#generation = record.generation;
      this.#durable = record;
      this.#wanted = {
        base: record.base,
        reserved: record.reserved,
        state: record.state,
        settledThrough: record.settledThrough,
        outboxId: record.outboxId,
      };
      return { record, legacyFloor: null };
    }
    // Before this format the file held one number, rewritten every 10,000 sequences.
    const legacy = /^\s*(\d+)\s*$/.exec(bytes.toString("latin1").replace(/\0+$/, ""));
    return { record: null, legacyFloor: legacy ? Number(legacy[1]) : null };
  }

  get settledThrough(): number {
    return this.#wanted.settledThrough;
  }

  /**
   * Starts a run at `sequence` (the last number used) in the outbox life `outboxId`: reserves the
   * first block. Throws when the file cannot be written (the id is written with the next write).
   */
  begin(sequence: number, outboxId: string): void {
    this.#wanted = { ...this.#wanted, base: sequence, reserved: sequence, state: "running", outboxId };
    this.#durable = null;
    this.cover(sequence);
  }

  /** Makes numbers up to `sequence` safe to use: returns only once the file covers them. */
  cover(sequence: number): void {
    if (this.#durable !== null && this.#durable.reserved >= sequence) return;
    this.#commit({ reserved: Math.max(this.#wanted.reserved, sequence + SequenceFloor.BLOCK) });
  }

  /** Events with numbers now live only in memory (true), or all are in the database again (false). */
  markHolding(holding: boolean): void {
    const state: FloorState = holding ? "holding" : "running";
    if (this.#durable?.state === state) return;
    this.#commit({ state });
  }

  /** Every event up to `sequence` has left the outbox, though the database may not know yet. */
  recordSettled(sequence: number): void {
    if (sequence <= this.#wanted.settledThrough) return;
    this.#commit({ settledThrough: sequence });
  }

  /** A clean stop: `last` is exactly the last number used. Throws when the file cannot be written. */
  close(last: number, settledThrough: number): void {
    try {
      this.#commit({
        base: last,
        reserved: Math.max(this.#wanted.reserved, last),
        state: "clean",
        settledThrough: Math.max(this.#wanted.settledThrough, settledThrough),
      });
    } finally {
      if (this.#fd !== null) closeSync(this.#fd);
      this.#fd = null;
    }
  }

  #commit(change: Partial<Omit<FloorRecord, "generation" | "bootId">>): void {
    const wanted = { ...this.#wanted, ...change };
    const record: FloorRecord = { generation: this.#generation + 1, ...wanted, bootId: this.#bootId };
    const fd = this.#open();
    const slot = Buffer.alloc(SequenceFloor.SLOT_BYTES);
    slot.write(formatSlot(record), "latin1");
    try {
      if (writeSync(fd, slot, 0, slot.length, (record.generation % 2) * SequenceFloor.SLOT_BYTES) !== slot.length)
        throw new Error("short write");
      fdatasyncSync(fd);
    } catch (error) {
      throw new SequenceFloorError(`cannot write the sequence floor ${this.#path}`, error);
    }
    this.#generation = record.generation;
    this.#wanted = wanted;
    this.#durable = record;
  }

  #open(): number {
    if (this.#fd !== null) return this.#fd;
    try {
      this.#fd = openSync(this.#path, "r+");
      const existing = Buffer.alloc(1);
      // A file shorter than both slots (the old format) is grown once, while there is room.
      if (readSync(this.#fd, existing, 0, 1, 2 * SequenceFloor.SLOT_BYTES - 1) === 0) this.#preallocate(this.#fd);
      return this.#fd;
    } catch (error) {
      if (this.#fd !== null) closeSync(this.#fd);
      this.#fd = null;
      if ((error as NodeJS.ErrnoException).code !== "ENOENT")
        throw new SequenceFloorError(`cannot open the sequence floor ${this.#path}`, error);
    }
    try {
      const fd = openSync(this.#path, "wx+", 0o600);
      this.#fd = fd;
      this.#preallocate(fd);
      syncDirectorySync(dirname(this.#path));
      return fd;
    } catch (error) {
      throw new SequenceFloorError(`cannot create the sequence floor ${this.#path}`, error);
    }
  }

  #preallocate(fd: number): void {
    const size = 2 * SequenceFloor.SLOT_BYTES;
    const existing = Buffer.alloc(size);
    const length = readSync(fd, existing, 0, size, 0);
    existing.fill(0, length);
    if (writeSync(fd, existing, 0, size, 0) !== size) throw new Error("short write");
    fsyncSync(fd);
  }
}

export type FloorState = "clean" | "running" | "holding";

export interface FloorRecord {
  readonly generation: number;
  /** Clean: exactly the last number used. Running or holding: the last number used before this run began. */
  readonly base: number;
  /** No number above this has been used. */
  readonly reserved: number;
  /** Running: every number used is in the database. Holding: some live only in memory. */
  readonly state: FloorState;
  /** Every event up to this sequence has left the outbox (delivered or dead-lettered, or evicted). */
  readonly settledThrough: number;
  /** The boot the record was written in (Linux), to tell a crash of the agent from one of the machine. */
  readonly bootId: string | null;
  /** The outbox life these numbers belong to (null: written by a version before outbox ids). */
  readonly outboxId: string | null;
}

/** Named, with a code an operator can search for. */
export class SequenceFloorError extends EdgeError {
  readonly code = "EDGE_OUTBOX_SEQUENCE_FLOOR";
  constructor(message: string, cause: unknown) {
    super(`${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "SequenceFloorError";
  }
}

/** What is known at start about the last run. */
export interface RestartFacts {
  readonly record: FloorRecord | null;
  readonly legacyFloor: number | null;
  /** kept: the database the last run wrote; lost: none, or set aside as damaged; unavailable: cannot be opened now. */
  readonly database: "kept" | "lost" | "unavailable";
  /** The database's own counter (0 when lost or unavailable). */
  readonly databaseLastSequence: number;
  readonly bootId: string | null;
  readonly durability: Durability;
}

const LEGACY_STRIDE = 10_000;

/** The last sequence to count on from: never below any number the last run may have used. */
export function restartSequence(facts: RestartFacts): number {
  const { record, databaseLastSequence } = facts;
  if (record) {
    if (record.state === "clean") return Math.max(databaseLastSequence, record.base);
    // After a crash the database holds every number used only if none was held in memory, and no
    // committed write can have been lost: an fsync per commit, or the machine did not go down.
    const databaseHasEveryNumber =
      record.state === "running" &&
      facts.database === "kept" &&
      (facts.durability === "full" || (facts.bootId !== null && facts.bootId === record.bootId));
    return Math.max(databaseLastSequence, databaseHasEveryNumber ? record.base : record.reserved);
  }
  if (facts.legacyFloor !== null)
    return facts.database === "kept"
      ? Math.max(databaseLastSequence, facts.legacyFloor)
      : facts.legacyFloor + LEGACY_STRIDE;
  return databaseLastSequence;
}

/**
 * The outbox life a run numbers in: the one the floor names while the numbering goes on, and a new
 * random one whenever it starts again from 1 (a reinstall, or the database and the floor both
 * lost), so a machine's second life is never taken for its first. A new one is also made when the
 * floor names none (the first start after an upgrade, or a floor lost while the database was
 * kept): a life changing while numbering goes on costs at most a late copy being bridged twice,
 * never an event.
 */
export function outboxIdFor(record: FloorRecord | null, restartAt: number, newId: () => string = randomUUID): string {
  return restartAt > 0 && record?.outboxId ? record.outboxId : newId();
}

/** Linux's id of this boot; null elsewhere (a crash then counts as one that may have lost writes). */
export function readBootId(): string | null {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || null;
  } catch {
    return null;
  }
}

const SLOT_TAG = "edge-agent-sequence-floor v2";
/** What an outbox id may be: a header value and part of the bridge's state keys. */
const OUTBOX_ID = /^[A-Za-z0-9_-]{1,64}$/;

function formatSlot(record: FloorRecord): string {
  const body = JSON.stringify(record);
  return `${SLOT_TAG} ${crc32(body).toString(16)} ${body}\n`;
}

function parseSlot(slot: Buffer): FloorRecord | null {
  const text = slot.toString("latin1").replace(/\0+$/, "").trimEnd();
  if (!text.startsWith(`${SLOT_TAG} `)) return null;
  const rest = text.slice(SLOT_TAG.length + 1);
  const space = rest.indexOf(" ");
  const body = rest.slice(space + 1);
  if (space < 0 || crc32(body).toString(16) !== rest.slice(0, space)) return null;
  try {
    const parsed = JSON.parse(body) as Partial<FloorRecord>;
    const numbers = [parsed.generation, parsed.base, parsed.reserved, parsed.settledThrough];
    if (!numbers.every((value) => Number.isSafeInteger(value) && (value as number) >= 0)) return null;
    if (parsed.state !== "clean" && parsed.state !== "running" && parsed.state !== "holding") return null;
    return {
      ...(parsed as FloorRecord),
      bootId: typeof parsed.bootId === "string" ? parsed.bootId : null,
      outboxId: typeof parsed.outboxId === "string" && OUTBOX_ID.test(parsed.outboxId) ? parsed.outboxId : null,
    };
  } catch {
    return null;
  }
}
