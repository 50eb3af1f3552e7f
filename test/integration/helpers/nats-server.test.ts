import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:net";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { isLoopbackPortClaimed } from "../../helpers/loopback-ports.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";

/** Whether another process (a fresh Node, as another vitest worker would be) sees `port` claimed. */
function claimedInAnotherProcess(port: number): boolean {
  const module = new URL("../../helpers/loopback-ports.ts", import.meta.url).href;
  const script = `const { isLoopbackPortClaimed } = await import(${JSON.stringify(module)}); process.stdout.write(String(await isLoopbackPortClaimed(${port})));`;
  return execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }) === "true";
}

/** Listens on `port` of loopback as another test's server would. */
function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.end("INFO {}\r\n"));
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("the nats-server test helper", () => {
  let server: NatsServerHandle | undefined;
  let occupier: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (occupier ? occupier.close(resolve) : resolve(undefined)));
    occupier = undefined;
    await server?.dispose();
    server = undefined;
  });

  it("refuses to come back when another process took its port while it was down, instead of answering for it", async () => {
    server = await startNatsServer();
    await server.stop();
    occupier = await occupy(server.port);
    await expect(server.start()).rejects.toMatchObject({ code: "EDGE_TEST_NATS_SERVER_START", portTaken: true });
    expect(server.pid).toBeUndefined();
    await new Promise((resolve) => occupier?.close(resolve));
    occupier = undefined;
    await server.start();
    const client = await connect({ servers: server.url });
    try {
      expect(client.info?.version).toBe(server.version);
    } finally {
      await client.close();
    }
  });

  it("claims its port from start to dispose, down time included, for every process on the machine", async () => {
    server = await startNatsServer();
    const { port } = server;
    expect(claimedInAnotherProcess(port)).toBe(true);
    await server.stop();
    expect(claimedInAnotherProcess(port)).toBe(true);
    await server.dispose();
    server = undefined;
    expect(await isLoopbackPortClaimed(port)).toBe(false);
    expect(claimedInAnotherProcess(port)).toBe(false);
  });
});
