import { connect as connectTcp } from "node:net";

/**
 * Publishes over the raw NATS protocol (HPUB), header block as given: what a client other than
 * nats.js can send, and nats.js itself would refuse to make. Resolves once the server answered PONG.
 */
export function publishRawHeaders(port: number, subject: string, headerBlock: string, body: string): Promise<void> {
  return new Promise((resolvePublished, reject) => {
    const socket = connectTcp(port, "127.0.0.1");
    let received = "";
    socket.setEncoding("utf8");
    socket.setTimeout(10_000, () => socket.destroy(new Error("no PONG from nats-server within 10 s")));
    socket.on("error", reject);
    socket.on("data", (chunk: string) => {
      received += chunk;
      if (received.startsWith("INFO") && !received.includes("CONNECT_SENT")) {
        const total = Buffer.byteLength(headerBlock) + Buffer.byteLength(body);
        socket.write(
          `CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n` +
            `HPUB ${subject} ${Buffer.byteLength(headerBlock)} ${total}\r\n${headerBlock}${body}\r\nPING\r\n`,
        );
        received += "CONNECT_SENT";
      }
      if (received.includes("-ERR")) socket.destroy(new Error(`nats-server refused it: ${received}`));
      else if (received.includes("PONG")) {
        socket.end();
        resolvePublished();
      }
    });
  });
}
