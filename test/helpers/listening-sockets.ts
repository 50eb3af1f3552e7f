import { readdir, readFile, readlink } from "node:fs/promises";
import { endianness } from "node:os";

/**
 * The TCP sockets a process listens on, read from Linux's /proc: its socket inodes from
 * /proc/<pid>/fd, matched against the LISTEN rows of /proc/<pid>/net/tcp and tcp6 (the tables of the
 * process's own network namespace). Lets a test check that a server it started (a JVM, say) listens
 * on loopback only, whatever the server's own logs claim.
 */
export interface ListeningSocket {
  /** Dotted IPv4, or IPv6 in its short form (`::`, `::1`, `::ffff:127.0.0.1`). */
  readonly address: string;
  readonly port: number;
  /** 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6. */
  readonly loopback: boolean;
  /** The socket's inode, as in /proc/<pid>/fd's `socket:[inode]` links. */
  readonly inode: string;
}

/** `st` column of /proc/net/tcp: TCP_LISTEN. */
const LISTEN_STATE = "0A";

/**
 * /proc/net/tcp prints each 32-bit word of an address with printf("%08X") of the word as stored, so on
 * a little-endian machine the bytes of every word come out reversed.
 */
function addressBytes(hex: string, littleEndian: boolean): number[] {
  if (!/^(?:[0-9A-Fa-f]{8}){1,4}$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) {
    throw new Error(`listening-sockets: not a /proc/net/tcp address: ${JSON.stringify(hex)}`);
  }
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    const wordBytes = [0, 2, 4, 6].map((offset) => Number.parseInt(hex.slice(word + offset, word + offset + 2), 16));
    bytes.push(...(littleEndian ? wordBytes.reverse() : wordBytes));
  }
  return bytes;
}

function isIpv4Mapped(bytes: readonly number[]): boolean {
  return bytes.slice(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

function isLoopback(bytes: readonly number[]): boolean {
  if (bytes.length === 4) return bytes[0] === 127;
  if (isIpv4Mapped(bytes)) return bytes[12] === 127;
  return bytes.slice(0, 15).every((byte) => byte === 0) && bytes[15] === 1;
}

/** RFC 5952's short form: the longest run (two or more) of zero groups becomes `::`. */
function formatIpv6(bytes: readonly number[]): string {
  if (isIpv4Mapped(bytes)) return `::ffff:${bytes.slice(12).join(".")}`;
  const groups: number[] = [];
  for (let index = 0; index < 16; index += 2) groups.push(((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < groups.length; start += 1) {
    let length = 0;
    while (start + length < groups.length && groups[start + length] === 0) length += 1;
    if (length > bestLength) [bestStart, bestLength] = [start, length];
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

function formatAddress(bytes: readonly number[]): string {
  return bytes.length === 4 ? bytes.join(".") : formatIpv6(bytes);
}

/**
 * The LISTEN rows of a /proc/net/tcp or /proc/net/tcp6 table, optionally only those whose inode is in
 * `inodes`. `littleEndian` defaults to this machine's byte order (the one /proc printed in).
 */
export function parseListeningSockets(
  table: string,
  inodes?: ReadonlySet<string>,
  littleEndian: boolean = endianness() === "LE",
): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  // Columns: sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
  for (const line of table.split("\n").slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns.length < 10) continue;
    const [, local = "", , state, , , , , , inode = ""] = columns;
    if (state !== LISTEN_STATE || (inodes && !inodes.has(inode))) continue;
    const [addressHex = "", portHex = ""] = local.split(":");
    const bytes = addressBytes(addressHex, littleEndian);
    sockets.push({
      address: formatAddress(bytes),
      port: Number.parseInt(portHex, 16),
      loopback: isLoopback(bytes),
      inode,
    });
  }
  return sockets;
}

/** The inodes of the sockets `pid` holds open (`socket:[inode]` links in /proc/<pid>/fd). */
async function socketInodes(pid: number): Promise<Set<string>> {
  const fdDir = `/proc/${pid}/fd`;
  const inodes = new Set<string>();
  for (const fd of await readdir(fdDir)) {
    // A descriptor closed between readdir and readlink is simply not one of the sockets.
    const target = await readlink(`${fdDir}/${fd}`).catch(() => "");
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1]) inodes.add(match[1]);
  }
  return inodes;
}

/** A kernel without IPv6 has no tcp6 table: then no IPv6 socket listens. */
async function readTcp6Table(pid: number): Promise<string> {
  try {
    return await readFile(`/proc/${pid}/net/tcp6`, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw error;
  }
}

/** Every TCP socket (IPv4 and IPv6) that process `pid` listens on. Linux only. */
export async function listeningSocketsOf(pid: number): Promise<ListeningSocket[]> {
  const inodes = await socketInodes(pid);
  const tables = await Promise.all([readFile(`/proc/${pid}/net/tcp`, "utf8"), readTcp6Table(pid)]);
  return tables.flatMap((table) => parseListeningSockets(table, inodes));
}
