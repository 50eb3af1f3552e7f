import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DownloadError, type DownloadRequest, download } from "../../../src/download/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { type HttpsFileServer, type ServedOverHttps, startHttpsFileServer } from "../../helpers/https-file-server.ts";
import { manualClock, settle } from "../../helpers/manual-clock.ts";
import { startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const payload = Buffer.from("edge-agent test tool\n".repeat(1_000));
const sha = createHash("sha256").update(payload).digest("hex");

describe("download", () => {
  let server: Server;
  let base: string;
  let directory: string;
  /** Requests the server has taken, by path. */
  const requestsFor = new Map<string, number>();
  /** The response to the last request for /trickle: the test sends its bytes, one at a time. */
  let trickling: ServerResponse | undefined;

  beforeAll(async () => {
    server = createServer((request, response) => {
      requestsFor.set(request.url ?? "", (requestsFor.get(request.url ?? "") ?? 0) + 1);
      if (request.url === "/tool.bin") return void response.end(payload);
      if (request.url === "/busy") return void response.writeHead(503).end();
      if (request.url === "/moved") return void response.writeHead(302, { location: "/tool.bin" }).end();
      if (request.url === "/loop") return void response.writeHead(302, { location: "/loop" }).end();
      if (request.url === "/headers-then-nothing") {
        // A link that hangs: it answers, then never sends a byte.
        response.writeHead(200, { "content-length": String(payload.length) });
        response.flushHeaders();
        return;
      }
      if (request.url === "/silent") return; // accepts the request and never answers it
      if (request.url === "/trickle") {
        // Never stalls, never finishes: a byte whenever the test says.
        response.writeHead(200);
        response.flushHeaders();
        trickling = response;
        return;
      }
      if (request.url === "/endless") {
        // Never says how long it is, and would never stop: as fast as the client reads.
        response.writeHead(200);
        const pour = (): void => {
          while (!response.destroyed && response.write(Buffer.alloc(64 * 1024)));
        };
        response.on("drain", pour);
        pour();
        return;
      }
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no address");
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The hanging links' connections would keep close() waiting.
        server.closeAllConnections();
      }),
  );
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), "edge-agent-download-"));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  const request = (overrides: Partial<DownloadRequest>): DownloadRequest => ({
    link: `${base}/tool.bin`,
    sha256: sha,
    size: payload.length,
    maxBytes: 1 << 20,
    allowMissingChecksum: false,
    allowedHosts: [],
    directory,
    clock: systemClock,
    ...overrides,
  });
  const failure = async (overrides: Partial<DownloadRequest>): Promise<DownloadError> => {
    const error = await download(request(overrides)).then(
      () => new Error("expected a failure"),
      (failed: unknown) => failed,
    );
    expect(error).toBeInstanceOf(DownloadError);
    // A refused download leaves nothing behind.
    expect(await readdir(directory)).toEqual([]);
    return error as DownloadError;
  };

  it("streams to a temporary file in the directory, verified by size and sha256, following redirects", async () => {
    const file = await download(request({ link: `${base}/moved`, sha256: sha.toUpperCase() }));
    expect(file).toMatchObject({ size: payload.length, sha256: sha });
    expect(file.path.startsWith(directory)).toBe(true);
    expect(await readFile(file.path)).toEqual(payload);
  });

  it.each<[Partial<DownloadRequest>, string, boolean]>([
    [{ sha256: "0".repeat(64) }, "EDGE_DOWNLOAD_CHECKSUM_MISMATCH", false],
    [{ size: payload.length + 1 }, "EDGE_DOWNLOAD_SIZE_MISMATCH", false],
    [{ size: payload.length - 1 }, "EDGE_DOWNLOAD_SIZE_MISMATCH", false],
    [{ maxBytes: 1_000, size: null }, "EDGE_DOWNLOAD_TOO_LARGE", false],
    // A promised sha256 is never reached: the size bound stops a link that never ends first.
    [{ link: "/endless", sha256: "0".repeat(64), size: null, maxBytes: 1 << 20 }, "EDGE_DOWNLOAD_TOO_LARGE", false],
    [{ sha256: null }, "EDGE_DOWNLOAD_NO_CHECKSUM", false],
    [{ link: "/loop" }, "EDGE_DOWNLOAD_REDIRECTS", false],
    [{ link: "/missing" }, "EDGE_DOWNLOAD_HTTP", false],
    [{ link: "/busy" }, "EDGE_DOWNLOAD_HTTP", true],
    [{ link: "file:///etc/passwd" }, "EDGE_DOWNLOAD_BAD_LINK", false],
    [{ link: "not a url" }, "EDGE_DOWNLOAD_BAD_LINK", false],
  ])("refuses %j with %s (retryable: %s)", async (overrides, code, retryable) => {
    // Paths in the table are on the test server, whose port is known only once it listens.
    const link = overrides.link?.startsWith("/") ? `${base}${overrides.link}` : overrides.link;
    const error = await failure({ ...overrides, ...(link ? { link } : {}) });
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
  });

  it.each<[string, Partial<DownloadRequest>, string]>([
    ["answers, then sends nothing", { link: "/headers-then-nothing", stallTimeoutMs: 500 }, "EDGE_DOWNLOAD_STALLED"],
    ["never answers", { link: "/silent", stallTimeoutMs: 500 }, "EDGE_DOWNLOAD_STALLED"],
  ])(
    "gives up on a link that %s (%j) with a retryable error, and leaves nothing behind",
    async (_what, overrides, code) => {
      const error = await failure({ ...overrides, link: `${base}${overrides.link}` });
      expect(error.code).toBe(code);
      expect(error.retryable).toBe(true);
    },
    20_000,
  );

  it("gives up on a stalled link when the injected clock passes the stall timeout, not before", async () => {
    const clock = manualClock();
    let settled = false;
    const stalled = failure({ link: `${base}/headers-then-nothing`, clock, stallTimeoutMs: 300_000 }).finally(
      () => (settled = true),
    );
    // The stall and deadline (10 min by default) timers are the manual clock's; no byte will come.
    await waitFor("the download's timers on the manual clock", () => clock.pending === 2);
    await settle();
    clock.advance(299_999);
    await settle();
    expect(settled).toBe(false);
    clock.advance(1);
    expect((await stalled).code).toBe("EDGE_DOWNLOAD_STALLED");
    expect(clock.pending).toBe(0);
  });

  it("gives up on a link that trickles forever at the deadline on the injected clock, though no byte is ever late", async () => {
    const clock = manualClock();
    trickling = undefined;
    const trickle = failure({
      link: `${base}/trickle`,
      clock,
      stallTimeoutMs: 500,
      deadlineMs: 1_500,
      size: null,
      sha256: "0".repeat(64),
    });
    const response = await waitFor("the request for /trickle", () => trickling);
    // A byte every 400 ms of the clock, each before the stall timeout: only the deadline can end it.
    for (let step = 0; step < 4; step++) {
      const armed = clock.armed;
      response.write("x");
      // The download re-arms its stall timer for each byte it receives.
      await waitFor(`byte ${step + 1} received`, () => clock.armed > armed);
      clock.advance(400);
    }
    expect((await trickle).code).toBe("EDGE_DOWNLOAD_DEADLINE");
    expect(clock.pending).toBe(0);
  });

  it("aborts a download in progress at once when its signal aborts (the agent is stopping)", async () => {
    const stopping = new AbortController();
    const asked = requestsFor.get("/headers-then-nothing") ?? 0;
    const aborted = failure({ link: `${base}/headers-then-nothing`, signal: stopping.signal });
    await waitFor("the request to reach the server", () => (requestsFor.get("/headers-then-nothing") ?? 0) > asked);
    stopping.abort();
    const error = await aborted;
    expect(error.code).toBe("EDGE_DOWNLOAD_ABORTED");
    // Not the platform's fault: the command is tried again by the next run.
    expect(error.retryable).toBe(true);
  }, 20_000);

  it("echoes at most the start of an over-long link in its error", async () => {
    const error = await failure({ link: `not a url ${"x".repeat(1_000_000)}` });
    expect(error.code).toBe("EDGE_DOWNLOAD_BAD_LINK");
    expect(error.message.length).toBeLessThan(300);
  });

  it("downloads nats-obj://BUCKET/NAME from a NATS object store, and needs the link for it", async () => {
    const nats = await startNatsServer();
    const connection = await connect({ servers: nats.url });
    try {
      const store = await new Objm(connection).create("tools");
      await store.putBlob({ name: "agent/v1.bin" }, new Uint8Array(payload));
      const file = await download(request({ link: "nats-obj://tools/agent%2Fv1.bin", connection }));
      expect(await readFile(file.path)).toEqual(payload);
      await rm(file.path);
      expect((await failure({ link: "nats-obj://tools/absent", connection })).code).toBe("EDGE_DOWNLOAD_NOT_FOUND");
      expect((await failure({ link: "nats-obj://tools/agent%2Fv1.bin", connection: null })).retryable).toBe(true);
    } finally {
      await connection.close();
      await nats.dispose();
    }
  });

  describe("without a sha256 (toolPolicy.allowMissingChecksum): HTTPS from the allowed hosts only", () => {
    let https: HttpsFileServer;
    let served: ServedOverHttps;

    beforeAll(async () => {
      https = await startHttpsFileServer();
      https.trustInThisProcess();
      served = https.add("tool.bin", payload);
    });
    afterAll(async () => {
      await https.close();
    });

    const unchecked = (overrides: Partial<DownloadRequest>): Partial<DownloadRequest> => ({
      link: served.url,
      sha256: null,
      size: null,
      allowMissingChecksum: true,
      allowedHosts: ["127.0.0.1"],
      ...overrides,
    });

    it("takes it from an allowed host, and says what arrived: its size and sha256, not verified", async () => {
      const file = await download(request(unchecked({})));
      expect(file).toMatchObject({ size: payload.length, sha256: sha, verified: false });
      expect(await readFile(file.path)).toEqual(payload);
      await rm(file.path);
      // With a sha256 given it is verified as ever, on an allowed host too.
      const checked = await download(request(unchecked({ sha256: sha })));
      expect(checked.verified).toBe(true);
      await rm(checked.path);
      const mismatch = await failure(unchecked({ sha256: "0".repeat(64) }));
      expect(mismatch.code).toBe("EDGE_DOWNLOAD_CHECKSUM_MISMATCH");
    });

    it("follows a redirect that stays on the allowed hosts", async () => {
      const link = https.redirect("moved-here", "/tool.bin");
      const file = await download(request(unchecked({ link })));
      expect(file).toMatchObject({ sha256: sha, verified: false });
    });

    it.each<[string, () => Partial<DownloadRequest>, string, RegExp]>([
      [
        "a plain HTTP link",
        () => unchecked({ link: `${base}/tool.bin`, allowedHosts: ["127.0.0.1"] }),
        "EDGE_DOWNLOAD_NOT_HTTPS",
        /over HTTPS only/,
      ],
      [
        "a host not on the list",
        () => unchecked({ link: served.urlByName }),
        "EDGE_DOWNLOAD_HOST_NOT_ALLOWED",
        /"localhost:\d+" is not one of the hosts allowed.*toolPolicy\.allowedDownloadHosts: 127\.0\.0\.1/,
      ],
      [
        "an empty list",
        () => unchecked({ allowedHosts: [] }),
        "EDGE_DOWNLOAD_HOST_NOT_ALLOWED",
        /no host may serve a download without one: name the hosts in toolPolicy\.allowedDownloadHosts/,
      ],
      [
        "the allowed host on another port",
        () => unchecked({ allowedHosts: ["127.0.0.1:1"] }),
        "EDGE_DOWNLOAD_HOST_NOT_ALLOWED",
        /not one of the hosts allowed/,
      ],
      [
        "the policy off",
        () => unchecked({ allowMissingChecksum: false }),
        "EDGE_DOWNLOAD_NO_CHECKSUM",
        /toolPolicy\.allowMissingChecksum is off/,
      ],
      [
        "an object store link",
        () => unchecked({ link: "nats-obj://tools/tool.bin" }),
        "EDGE_DOWNLOAD_NOT_HTTPS",
        /over HTTPS only/,
      ],
    ])("refuses %s, for good", async (_what, overrides, code, message) => {
      const error = await failure(overrides());
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
      expect(error.retryable).toBe(false);
    });

    it("refuses a redirect off the allowed hosts (or to plain HTTP) without asking where it points", async () => {
      const before = https.requests("/elsewhere");
      const offList = https.redirect("to-localhost", served.urlByName.replace("/tool.bin", "/elsewhere"));
      const error = await failure(unchecked({ link: offList }));
      expect(error.code).toBe("EDGE_DOWNLOAD_HOST_NOT_ALLOWED");
      expect(error.message).toMatch(/redirected to "https:\/\/localhost:\d+\/elsewhere"/);
      expect(https.requests("/elsewhere")).toBe(before);
      const downgrade = https.redirect("to-http", `${base}/tool.bin`);
      expect((await failure(unchecked({ link: downgrade }))).code).toBe("EDGE_DOWNLOAD_NOT_HTTPS");
    });

    it("bounds its size like any download", async () => {
      const error = await failure(unchecked({ maxBytes: 1_000 }));
      expect(error.code).toBe("EDGE_DOWNLOAD_TOO_LARGE");
    });
  });
});
