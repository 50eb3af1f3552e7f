import { createServer, type Server } from "node:net";

/**
 * Loopback ports for the servers tests start, and claims on them that every test process on this
 * machine respects.
 *
 * A port picked by binding port 0 is free at that moment only. A server a test stops and starts
 * again keeps its port while it is down, and in that gap the kernel may hand the same port to
 * another worker's pick (or to another developer's run): the restarted server then cannot bind,
 * and a readiness check that only connects to the port talks to the other server. A claim closes
 * that gap: it is an abstract Unix socket named after the port, which exists once per network
 * namespace, lives exactly as long as the process holding it (kill -9 included, no file is left
 * behind), and makes `freeLoopbackPort` and `claimLoopbackPort` pass over the port.
 */
export interface PortClaim {
  readonly port: number;
  /** Gives the port back; calling it again does nothing. */
  release(): Promise<void>;
}

/** Bounds the search: a machine where this many picks in a row are claimed has a leak to find. */
const MAX_PICKS = 50;

const claimName = (port: number): string => `\0edge-agent-test-port-127.0.0.1:${port}`;

/** A port the kernel says is free on 127.0.0.1 now (bind to port 0, read it, close). */
function kernelPickedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      server.close(() => resolve(address.port));
    });
  });
}

/** Takes the claim on `port`, or null when a process on this machine holds it. */
function tryClaim(port: number): Promise<PortClaim | null> {
  return new Promise((resolve, reject) => {
    const holder: Server = createServer((socket) => socket.destroy());
    holder.unref();
    holder.on("error", (error: NodeJS.ErrnoException) => (error.code === "EADDRINUSE" ? resolve(null) : reject(error)));
    holder.listen(claimName(port), () => {
      let released: Promise<void> | undefined;
      resolve({
        port,
        release: () => (released ??= new Promise<void>((done) => holder.close(() => done()))),
      });
    });
  });
}

/** Whether a process on this machine (this one included) holds the claim on `port`. */
export async function isLoopbackPortClaimed(port: number): Promise<boolean> {
  const probe = await tryClaim(port);
  await probe?.release();
  return probe === null;
}

/** A loopback port free now and claimed by nobody; the caller uses it at once. */
export async function freeLoopbackPort(): Promise<number> {
  for (let pick = 0; pick < MAX_PICKS; pick++) {
    const port = await kernelPickedPort();
    if (!(await isLoopbackPortClaimed(port))) return port;
  }
  throw new Error(`no unclaimed loopback port in ${MAX_PICKS} picks`);
}

/** A loopback port free now, claimed for this process until `release()`. */
export async function claimLoopbackPort(): Promise<PortClaim> {
  for (let pick = 0; pick < MAX_PICKS; pick++) {
    const claim = await tryClaim(await kernelPickedPort());
    if (claim !== null) return claim;
  }
  throw new Error(`no unclaimed loopback port in ${MAX_PICKS} picks`);
}
