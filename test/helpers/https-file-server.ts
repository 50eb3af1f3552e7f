import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ServedOverHttps {
  /** `https://127.0.0.1:<port>/<name>`. */
  readonly url: string;
  /** The same file by the certificate's other name: `https://localhost:<port>/<name>`. */
  readonly urlByName: string;
  readonly sha256: string;
  readonly size: number;
}

/**
 * Files served from memory over HTTPS on 127.0.0.1, with a self-signed certificate made for this
 * server alone (names `localhost` and `127.0.0.1`; made with the machine's openssl). Nothing trusts
 * it until a test says so: `trustInThisProcess` adds it to this process's default CAs (what fetch
 * checks against) until `close`, and `caFile` is there for a child process's NODE_EXTRA_CA_CERTS.
 */
export interface HttpsFileServer {
  readonly origin: string;
  readonly caFile: string;
  add(name: string, data: Buffer): ServedOverHttps;
  /** `/<name>` answers 302 to `location` (absolute, or a path on this server). */
  redirect(name: string, location: string): string;
  /** How many requests each path got. */
  requests(path: string): number;
  trustInThisProcess(): void;
  close(): Promise<void>;
}

export async function startHttpsFileServer(): Promise<HttpsFileServer> {
  const dir = await mkdtemp(join(tmpdir(), "edge-agent-https-"));
  const keyFile = join(dir, "key.pem");
  const caFile = join(dir, "cert.pem");
  try {
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      caFile,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`cannot make the test certificate with openssl: ${(error as Error).message}`, { cause: error });
  }
  const cert = await readFile(caFile, "utf8");
  const files = new Map<string, Buffer>();
  const redirects = new Map<string, string>();
  const counts = new Map<string, number>();
  const server: Server = createServer({ key: await readFile(keyFile), cert }, (request, response) => {
    const path = request.url ?? "";
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const location = redirects.get(path);
    if (location !== undefined) return void response.writeHead(302, { location }).end();
    const data = files.get(path);
    if (!data) return void response.writeHead(404).end();
    response.end(data);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  const origin = `https://127.0.0.1:${address.port}`;
  let restoreCas: string[] | null = null;
  return {
    origin,
    caFile,
    add(name, data) {
      files.set(`/${name}`, data);
      return {
        url: `${origin}/${name}`,
        urlByName: `https://localhost:${address.port}/${name}`,
        sha256: createHash("sha256").update(data).digest("hex"),
        size: data.length,
      };
    },
    redirect(name, location) {
      redirects.set(`/${name}`, location);
      return `${origin}/${name}`;
    },
    requests: (path) => counts.get(path) ?? 0,
    trustInThisProcess() {
      if (restoreCas !== null) return;
      restoreCas = getCACertificates("default");
      setDefaultCACertificates([...restoreCas, cert]);
    },
    async close() {
      if (restoreCas !== null) setDefaultCACertificates(restoreCas);
      restoreCas = null;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
