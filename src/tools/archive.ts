import { createWriteStream } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Entry, ZipFile } from "yauzl";

/** An archive that would write outside its folder, or holds what a tool archive never should. */
export class HostileArchiveError extends Error {
  readonly code = "EDGE_HOSTILE_ARCHIVE";
  constructor(message: string) {
    super(message);
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
    throw new HostileArchiveError(`archive entry ${JSON.stringify(entryPath)} has an absolute path`);
  }
  if (unified.split("/").includes("..")) throw new HostileArchiveError(`archive entry ${JSON.stringify(entryPath)} climbs out of its folder ('..')`);
  const normalized = normalize(unified);
  if (normalized.startsWith(`..${sep}`) || normalized === "..") throw new HostileArchiveError(`archive entry ${JSON.stringify(entryPath)} climbs out of its folder`);
  return normalized;
}

/**
 * Extracts into `destination` (an empty staging folder) after checking every entry: absolute
 * paths, `..`, links of any kind and device files are refused, as is more than `maxBytes` in all.
 */
export async function extractArchive(file: string, destination: string, kind: Exclude<ArchiveKind, "none">, maxBytes: number): Promise<void> {
  if (kind === "zip") await extractZip(file, destination, maxBytes);
  else await extractTarGz(file, destination, maxBytes);
}

async function extractTarGz(file: string, destination: string, maxBytes: number): Promise<void> {
  // Loaded when a tool is installed, not at start: an idle agent should not carry archive code.
  const { list: listTar, extract: extractTar } = await import("tar");
  let total = 0;
  let problem: HostileArchiveError | null = null;
  // First pass: look at every entry; nothing is written unless all of them are acceptable.
  await listTar({
    file,
    onReadEntry: (entry) => {
      if (problem) return;
      try {
        assertContainedPath(entry.path);
        if (entry.type !== "File" && entry.type !== "OldFile" && entry.type !== "ContiguousFile" && entry.type !== "Directory") {
          throw new HostileArchiveError(`archive entry ${JSON.stringify(entry.path)} is a ${entry.type}; tool archives may hold only files and folders`);
        }
        total += entry.size ?? 0;
        if (total > maxBytes) throw new HostileArchiveError(`archive unpacks to more than ${maxBytes} bytes`);
      } catch (error) {
        problem = error as HostileArchiveError;
      }
    },
  });
  if (problem) throw problem;
  await extractTar({ file, cwd: destination, strict: true, preservePaths: false, preserveOwner: false, noChmod: false });
}

async function openZipFile(file: string): Promise<ZipFile> {
  const { open: openZip } = await import("yauzl");
  return new Promise((resolve, reject) => openZip(file, { lazyEntries: true, autoClose: true, strictFileNames: true, validateEntrySizes: true }, (error, zip) => (error || !zip ? reject(error ?? new Error("cannot open zip")) : resolve(zip))));
}

async function extractZip(file: string, destination: string, maxBytes: number): Promise<void> {
  // First pass: every entry checked before anything is written.
  const entries: Entry[] = [];
  let total = 0;
  {
    const zip = await openZipFile(file);
    await new Promise<void>((resolve, reject) => {
      zip.on("error", (error: Error) => reject(new HostileArchiveError(`unreadable zip: ${error.message}`)));
      zip.on("end", () => resolve());
      zip.on("entry", (entry: Entry) => {
        try {
          assertContainedPath(entry.fileName);
          const mode = (entry.externalFileAttributes >>> 16) & 0o170000;
          if (mode === 0o120000) throw new HostileArchiveError(`archive entry ${JSON.stringify(entry.fileName)} is a symbolic link; tool archives may hold only files and folders`);
          total += entry.uncompressedSize;
          if (total > maxBytes) throw new HostileArchiveError(`archive unpacks to more than ${maxBytes} bytes`);
          entries.push(entry);
          zip.readEntry();
        } catch (error) {
          zip.close();
          reject(error);
        }
      });
      zip.readEntry();
    });
  }
  const wanted = new Set(entries.map((entry) => entry.fileName));
  const zip = await openZipFile(file);
  await new Promise<void>((resolve, reject) => {
    zip.on("error", reject);
    zip.on("end", () => resolve());
    zip.on("entry", (entry: Entry) => {
      const target = join(destination, assertContainedPath(entry.fileName));
      if (!wanted.has(entry.fileName)) return zip.readEntry();
      if (entry.fileName.endsWith("/")) {
        mkdir(target, { recursive: true }).then(() => zip.readEntry(), reject);
        return;
      }
      const mode = (entry.externalFileAttributes >>> 16) & 0o777;
      zip.openReadStream(entry, (error, stream) => {
        if (error || !stream) return reject(error ?? new Error("no stream"));
        mkdir(dirname(target), { recursive: true })
          .then(() => pipeline(stream, createWriteStream(target, { mode: mode & 0o111 ? 0o755 : 0o644 })))
          .then(() => zip.readEntry(), reject);
      });
    });
    zip.readEntry();
  });
}
