import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { listeningSocketsOf, parseListeningSockets } from "../../helpers/listening-sockets.ts";

// Rows as a little-endian Linux prints them: LISTEN (0A) rows on 0.0.0.0:2024, 127.0.0.1:14222 and
// 10.1.2.3:80, plus an ESTABLISHED (01) row on loopback.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 441 1 00000000544f8d35 100 0 0 10 0
   1: 0100007F:378E 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2653649 1 000000007fe3f312 100 0 0 10 0
   2: 0302010A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 000000007fe3f312 100 0 0 10 0
   3: 0100007F:378E 0100007F:A8B1 01 00000000:00000000 00:00000000 00000000     0        0 2653650 1 000000007fe3f312 20 4 30 10 -1
`;

// LISTEN rows on [::], [::1], [::ffff:127.0.0.1] and [fe80::1], and a TIME_WAIT (06) row.
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 901 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 902 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:A8B1 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 903 1 0000000000000000 100 0 0 10 0
   3: 000080FE000000000000000001000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 904 1 0000000000000000 100 0 0 10 0
   4: 0000000000000000FFFF00000100007F:A8B1 0000000000000000FFFF00000100007F:B296 06 00000000:00000000 03:0000146C 00000000     0        0 0 3 00000000aa5b81cc
`;

const summary = (table: string, inodes?: ReadonlySet<string>) =>
  parseListeningSockets(table, inodes, true).map(
    ({ address, port, loopback }) => `${address} ${port} ${loopback ? "loopback" : "exposed"}`,
  );

describe("parseListeningSockets", () => {
  it("decodes the IPv4 LISTEN rows and tells loopback from the rest", () => {
    expect(summary(TCP)).toEqual(["0.0.0.0 2024 exposed", "127.0.0.1 14222 loopback", "10.1.2.3 80 exposed"]);
  });

  it("decodes the IPv6 LISTEN rows: the wildcard, ::1, IPv4-mapped loopback, a link-local address", () => {
    expect(summary(TCP6)).toEqual([
      ":: 8080 exposed",
      "::1 8081 loopback",
      "::ffff:127.0.0.1 43185 loopback",
      "fe80::1 8082 exposed",
    ]);
  });

  it("keeps only the rows whose inode is given", () => {
    expect(summary(TCP, new Set(["2653649", "2653650"]))).toEqual(["127.0.0.1 14222 loopback"]);
  });

  it("reads the words in the byte order they were printed in", () => {
    expect(parseListeningSockets(TCP, new Set(["2653649"]), false).map(({ address }) => address)).toEqual([
      "1.0.0.127",
    ]);
  });

  it("refuses an address that is not /proc's hex", () => {
    expect(() => parseListeningSockets(`header\n 0: 7F00:0050 00000000:0000 0A 0 0 0 0 0 5\n`)).toThrow(
      /not a \/proc\/net\/tcp address/,
    );
  });
});

describe("listeningSocketsOf", () => {
  it("finds the loopback listener this process opens, once", async () => {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    try {
      const { port } = server.address() as AddressInfo;
      const sockets = await listeningSocketsOf(process.pid);
      expect(sockets.filter((socket) => socket.port === port)).toMatchObject([
        { address: "127.0.0.1", loopback: true },
      ]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
