import { AuthorizationError, ConnectionError, TimeoutError } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { serverUnreachable } from "../../../src/transport/connect-failure.ts";
import { freeLoopbackPort } from "../../helpers/nats-server.ts";

describe("a failed connect that only means no server answers (logged at warn, not error)", () => {
  it("is what nats.js throws for a port nobody listens on", async () => {
    const port = await freeLoopbackPort();
    const error = await connect({ servers: `nats://127.0.0.1:${port}`, reconnect: false, timeout: 2_000 }).then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect(serverUnreachable(error)).toBe(true);
  });

  it("covers timeouts and names that do not resolve; a server that refused is not one", () => {
    expect(serverUnreachable(new TimeoutError())).toBe(true);
    expect(serverUnreachable(Object.assign(new Error("getaddrinfo"), { code: "ENOTFOUND" }))).toBe(true);
    expect(
      serverUnreachable(new ConnectionError("x", { cause: Object.assign(new Error("y"), { code: "EHOSTUNREACH" }) })),
    ).toBe(true);
    expect(serverUnreachable(new AuthorizationError("Authorization Violation"))).toBe(false);
    expect(
      serverUnreachable(
        new ConnectionError("tls", { cause: Object.assign(new Error("z"), { code: "CERT_HAS_EXPIRED" }) }),
      ),
    ).toBe(false);
    expect(serverUnreachable(new Error("anything else"))).toBe(false);
  });
});
