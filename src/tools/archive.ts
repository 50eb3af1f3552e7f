import { once } from "node:events";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rm } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { ReadEntry } from "tar";
import type { Entry, ZipFile } from "yauzl";
import { EdgeError } from "../errors/index.ts";
import { echoInput } from "../runtime/index.ts";
import { UnpackBudget, UnpackLimitError, type UnpackLimits } from "./unpack-budget.ts";

export { UnpackLimitError, type UnpackLimits } from "./unpack-budget.ts";

/** An archive that would write outside its folder, or holds what a tool archive never should. */
export class HostileArchiveError extends EdgeError {
  readonly code = "EDGE_HOSTILE_ARCHIVE";
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = "HostileArchiveError";
  }
}

export type ArchiveKind = "zip" | "tar.gz" | "none";

/** By the file's first bytes, not its name: a link may say anything. */
export async function archiveKindOf(path: string): Promise<ArchiveKind> {
  const handle = await open(path, "r");
  try {
    const header = Buffer.alloc(4);
    await handle.read(header, 0, 4, 0);
    if (header[0] === 0x50 && header[1] === 0x4b && header[2] === 0x03 && header[3] === 0x04) return "zip";
    if (header[0] === 0x1f && header[1] === 0x8b) return "tar.gz";
    return "none";
  } finally {
    await handle.close();
  }
}

/** A relative path that stays inside its folder: no absolute paths, drive letters or `..` steps. */
export function assertContainedPath(entryPath: string): string {
  const unified = entryPath.replace(/\\/g, "/");
  if (unified === "" || isAbsolute(unified) || /^[a-zA-Z]:/.test(unified) || unified.startsWith("/")) {
    throw new HostileArchiveError(`archive entry ${echoInput(entryPath)} has an absolute path`);
  }
  if (unified.split("/").includes(".."))
    throw new HostileArchiveError(`archive entry ${echoInput(entryPath)} climbs out of its folder ('..')`);
  const normalized = normalize(unified);
  if (normalized.startsWith(`..${sep}`) || normalized === "..")
    throw new HostileArchiveError(`archive entry ${echoInput(entryPath)} climbs out of its folder`);
  return normalized;
}

/** Files keep only whether they may be run: an archive does not choose setuid bits or odd owners. */
const fileModeOf = (mode: number): number => (mode & 0o111 ? 0o755 : 0o644);

/**
 * Unpacks into `destination` as a stream, with bounded memory whatever the archive holds: every
 * entry is checked as it comes (absolute paths, `..`, links of any kind and device files are
 * refused), and every byte is counted before it is written, against `limits.maxBytes` and the
 * disk's free space above `limits.reserveFreeBytes`. On any refusal (or `signal`) it stops at
 * once and removes what it wrote, leaving `destination` as it found it.
 */
export async function extractArchive(
  file: string,
  destination: string,
  kind: Exclude<ArchiveKind, "none">,
  limits: UnpackLimits,
  signal?: AbortSignal,
): Promise<void> {
  const before = new Set(await readdir(destination));
  try {
    const budget = await UnpackBudget.open(limits, destination);
    const target = (entryPath: string): string => {
      const contained = assertContainedPath(entryPath);
      // The names already there (the download itself) are not the archive's to replace.
      if (before.has(contained.split(sep)[0] as string))
        throw new HostileArchiveError(`archive entry ${echoInput(entryPath)} would replace a file the agent put there`);
      return join(destination, contained);
    };
    if (kind === "zip") await extractZip(file, target, budget, signal);
    else await extractTarGz(file, target, budget, signal);
  } catch (error) {
    for (const name of await readdir(destination).catch(() => [])) {
      if (!before.has(name)) await rm(join(destination, name), { recursive: true, force: true });
    }
    throw error;
  }
}

/** Writes `chunks` to a new file (never over an existing one), counting each against `budget`. */
class EntryWriter {
  readonly #budget: UnpackBudget;
  constructor(budget: UnpackBudget) {
    this.#budget = budget;
  }

  async open(path: string, mode: number): Promise<{ write(chunk: Buffer): Promise<void>; close(): Promise<void> }> {
    await mkdir(dirname(path), { recursive: true });
    const handle = await open(path, "wx", fileModeOf(mode)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") throw new HostileArchiveError(`archive holds ${echoInput(path)} twice`);
      throw error;
    });
    return {
      write: async (chunk) => {
        await this.#budget.take(chunk.length);
        let offset = 0;
        while (offset < chunk.length) offset += (await handle.write(chunk, offset, chunk.length - offset)).bytesWritten;
      },
      close: () => handle.close(),
    };
  }
}

/** First bytes of a compressed layer inside the gzip: a tool's tar.gz holds a plain tar. */
function isCompressed(start: Buffer): boolean {
  const gzip = start[0] === 0x1f && start[1] === 0x8b;
  const zstd = start[0] === 0x28 && start[1] === 0xb5 && start[2] === 0x2f && start[3] === 0xfd;
  return gzip || zstd;
}

/** A failure of the archive itself (corrupt, truncated, not a tar) is the archive's fault, not ours. */
function asArchiveError(error: Error, what: string, signal: AbortSignal | undefined): Error {
  if (signal?.aborted || error instanceof HostileArchiveError || error instanceof UnpackLimitError) return error;
  // The file system's own trouble (a full disk, permissions) is not the archive's.
  if ((error as NodeJS.ErrnoException).syscall !== undefined) return error;
  return new HostileArchiveError(`unreadable ${what}: ${echoInput(error.message)}`);
}

async function extractTarGz(
  file: string,
  target: (entryPath: string) => string,
  budget: UnpackBudget,
  signal: AbortSignal | undefined,
): Promise<void> {
  // Loaded when a tool is installed, not at start: an idle agent should not carry archive code.
  const { Parser } = await import("tar");
  const writer = new EntryWriter(budget);
  const parser = new Parser({ strict: true });
  let failure: Error | null = null;
  let rejectFailed: (error: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => undefined);
  const fail = (error: Error): void => {
    if (failure) return;
    failure = error;
    rejectFailed(error);
  };
  parser.on("error", (error: Error) => fail(error));

  // The parser hands entries over one at a time: the next only once this one's data is consumed.
  let entries: Promise<void> = Promise.resolve();
  parser.on("entry", (entry: ReadEntry) => {
    entries = entries.then(() =>
      failure ? undefined : unpackTarEntry(entry, target, budget, writer, failed).catch(fail),
    );
  });

  // The gzip layer is ours, not the parser's: node's gunzip stream hands out small chunks and
  // waits while the parser is busy, where the parser's own inflates a whole read at once (a 1 MB
  // read of a bomb became a gigabyte in memory).
  await pipeline(
    createReadStream(file, { highWaterMark: 64 * 1024 }),
    createGunzip({ chunkSize: 64 * 1024 }),
    async (tar: AsyncIterable<Buffer>) => {
      let first = true;
      for await (const chunk of tar) {
        if (failure) throw failure;
        if (first && isCompressed(chunk))
          throw new HostileArchiveError("the tar.gz holds another compressed layer, not a tar");
        first = false;
        if (!parser.write(chunk)) await Promise.race([once(parser, "drain"), failed]);
      }
      // The parser may end within end() itself: listen first.
      const ended = once(parser, "end");
      parser.end();
      await Promise.race([ended, failed]);
    },
    ...(signal ? [{ signal }] : []),
  ).catch((error: unknown) => fail(error as Error));
  await entries;
  if (failure) throw asArchiveError(failure, "tar.gz", signal);
}

async function unpackTarEntry(
  entry: ReadEntry,
  target: (entryPath: string) => string,
  budget: UnpackBudget,
  writer: EntryWriter,
  failed: Promise<never>,
): Promise<void> {
  budget.countEntry();
  const path = target(entry.path);
  if (entry.type === "Directory") {
    await mkdir(path, { recursive: true });
    entry.resume();
    return;
  }
  if (entry.type !== "File" && entry.type !== "OldFile" && entry.type !== "ContiguousFile") {
    throw new HostileArchiveError(
      `archive entry ${echoInput(entry.path)} is a ${entry.type}; tool archives may hold only files and folders`,
    );
  }
  // The header's size refuses a bomb before a byte of it is written; the bytes are counted anyway.
  await budget.checkDeclared(budget.writtenBytes + entry.size);
  const out = await writer.open(path, entry.mode ?? 0o644);
  try {
    const written = new Promise<void>((resolve, reject) => {
      let writing: Promise<void> = Promise.resolve();
      entry.on("data", (chunk: Buffer) => {
        // Paused while this chunk is written: the parser, and the gunzip behind it, wait.
        entry.pause();
        writing = out.write(chunk).then(() => void entry.resume());
        writing.catch(reject);
      });
      entry.on("end", () => void writing.then(resolve, reject));
      entry.on("error", reject);
    });
    // A failure elsewhere (a truncated gzip, a stop) means this entry's data will never end.
    await Promise.race([written, failed]);
  } finally {
    // Closing waits for a write still in flight.
    await out.close();
  }
}

function openZipFile(file: string): Promise<ZipFile> {
  return import("yauzl").then(
    ({ open: openZip }) =>
      new Promise((resolve, reject) =>
        openZip(
          file,
          { lazyEntries: true, autoClose: true, strictFileNames: true, validateEntrySizes: true },
          (error, zip) => (error || !zip ? reject(error ?? new Error("cannot open zip")) : resolve(zip)),
        ),
      ),
  );
}

/** Visits the zip's entries (its central directory) one at a time, in order. */
async function walkZip(file: string, visit: (entry: Entry, zip: ZipFile) => Promise<void>): Promise<void> {
  const zip = await openZipFile(file).catch((error: Error) => {
    throw new HostileArchiveError(`unreadable zip: ${error.message}`);
  });
  await new Promise<void>((resolve, reject) => {
    const stop = (error: unknown): void => {
      zip.close();
      reject(error);
    };
    zip.on("error", (error: Error) => stop(new HostileArchiveError(`unreadable zip: ${error.message}`)));
    zip.on("end", () => resolve());
    zip.on("entry", (entry: Entry) => visit(entry, zip).then(() => zip.readEntry(), stop));
    zip.readEntry();
  });
}

function checkZipEntry(entry: Entry): void {
  assertContainedPath(entry.fileName);
  const type = (entry.externalFileAttributes >>> 16) & 0o170000;
  if (type === 0o120000)
    throw new HostileArchiveError(
      `archive entry ${echoInput(entry.fileName)} is a symbolic link; tool archives may hold only files and folders`,
    );
}

/**
 * An entry's data, whose failures reach whoever reads it. yauzl's stream inflates as soon as it
 * exists and checks the sizes the central directory declares as it goes: an entry that inflates
 * past its declared size fails on the first chunk, before any reader is attached, and an `error`
 * event nobody listens to ends the process. So the stream is piped at once, in yauzl's callback,
 * into one that carries the failure to the reader.
 */
function openZipEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (error, stream) => {
      if (error || !stream) return reject(error ?? new Error("no data stream for the entry"));
      const guarded = new PassThrough();
      // The failure is the reader's to see (pipeline destroys `guarded` with it), not this promise's.
      pipeline(stream, guarded).catch(() => undefined);
      resolve(guarded);
    }),
  );
}

async function extractZip(
  file: string,
  target: (entryPath: string) => string,
  budget: UnpackBudget,
  signal: AbortSignal | undefined,
): Promise<void> {
  // First the central directory: every entry checked, and the sizes it declares refused up front.
  let declared = 0;
  await walkZip(file, async (entry) => {
    checkZipEntry(entry);
    budget.countEntry();
    declared += entry.uncompressedSize;
    await budget.checkDeclared(declared);
  });
  // Then the data, streamed and counted: a lying directory is caught by the count (and yauzl).
  const writer = new EntryWriter(budget);
  await walkZip(file, async (entry, zip) => {
    signal?.throwIfAborted();
    checkZipEntry(entry);
    const path = target(entry.fileName);
    if (entry.fileName.endsWith("/")) {
      await mkdir(path, { recursive: true });
      return;
    }
    const out = await writer.open(path, (entry.externalFileAttributes >>> 16) & 0o777);
    try {
      const data = await openZipEntry(zip, entry);
      for await (const chunk of data as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        await out.write(chunk);
      }
    } catch (error) {
      throw asArchiveError(error as Error, "zip", signal);
    } finally {
      await out.close();
    }
  });
}
