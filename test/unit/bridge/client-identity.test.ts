import { createAccount, createUser, encodeUser } from "@nats-io/jwt";
import { describe, expect, it } from "vitest";
import {
  machineOfClientEvent,
  parseServerClientEvent,
  type ServerClientEvent,
} from "../../../src/bridge/devices/client-identity.ts";

const authenticated = { trustConnectionNames: false };
const event = (client: ServerClientEvent["client"]): ServerClientEvent => ({
  timestamp: "2026-12-08T10:00:00.000Z",
  client,
});

describe("who a $SYS client advisory is about", () => {
  it("reads nats-server's advisory (unknown fields ignored) and refuses what is not one", () => {
    const advisory = {
      type: "io.nats.server.advisory.v1.client_disconnect",
      id: "x",
      timestamp: "2026-12-08T10:00:00.123Z",
      server: { name: "n1" },
      client: { start: "2026-12-08T09:00:00Z", acc: "APP", user: "m1", name: "m1", lang: "nats.js", kind: "Client" },
      reason: "Client Closed",
    };
    expect(parseServerClientEvent(Buffer.from(JSON.stringify(advisory)))).toEqual({
      timestamp: "2026-12-08T10:00:00.123Z",
      client: { user: "m1", name: "m1" },
    });
    expect(parseServerClientEvent(Buffer.from("not json"))).toBeNull();
    expect(parseServerClientEvent(Buffer.from(JSON.stringify({ client: "m1" })))).toBeNull();
  });

  it("is the authenticated user, never the connection name the client chose", () => {
    expect(machineOfClientEvent(event({ user: "m1", name: "m1" }), authenticated)).toBe("m1");
    expect(machineOfClientEvent(event({ user: "intruder", name: "m1" }), authenticated)).toBe("intruder");
    expect(machineOfClientEvent(event({ name: "m1" }), authenticated)).toBeNull();
    // A token user is "[REDACTED]" in the advisory: no machine.
    expect(machineOfClientEvent(event({ user: "[REDACTED]", name: "m1" }), authenticated)).toBeNull();
  });

  it("with decentralized auth, is the name of the user JWT whose subject the server authenticated", async () => {
    const account = createAccount();
    const user = createUser();
    const jwt = await encodeUser("m1", user, account);
    expect(machineOfClientEvent(event({ user: user.getPublicKey(), name: "other", jwt }), authenticated)).toBe("m1");
    // A JWT about another key than the one the server authenticated: nobody.
    expect(
      machineOfClientEvent(event({ user: createUser().getPublicKey(), name: "m1", jwt }), authenticated),
    ).toBeNull();
    expect(
      machineOfClientEvent(event({ user: user.getPublicKey(), name: "m1", jwt: "a.b.c" }), authenticated),
    ).toBeNull();
  });

  it("is the connection name only under the explicit development setting", () => {
    const trusting = { trustConnectionNames: true };
    expect(machineOfClientEvent(event({ user: "shared", name: "m1" }), trusting)).toBe("m1");
    expect(machineOfClientEvent(event({ user: "shared", name: "not a token" }), trusting)).toBeNull();
    expect(machineOfClientEvent(event({ user: "shared" }), trusting)).toBeNull();
  });
});
