import * as z from "zod";
import { isSafeToken } from "../../contracts/index.ts";
import { textOf } from "../records/index.ts";

/**
 * The parts presence reads of nats-server's own client advisories (`$SYS.ACCOUNT.<account>.CONNECT`
 * and `.DISCONNECT`, sent by the server, readable only in the system account): when, and who.
 */
export const ServerClientEvent = z.object({
  /** The server's time of the event (RFC 3339). */
  timestamp: z.string().optional(),
  client: z.object({
    /**
     * Who authenticated: the user name (user/password), the user's public key (nkey, or a user
     * JWT's subject). The server fills it from the credentials it checked.
     */
    user: z.string().optional(),
    /** The connection name: whatever the client chose to send. */
    name: z.string().optional(),
    /** The user JWT the client connected with (decentralized auth); the server verified it. */
    jwt: z.string().optional(),
  }),
});
export type ServerClientEvent = z.infer<typeof ServerClientEvent>;

/** Claims of a user JWT that name it: the user's public key and the name the account gave it. */
const UserJwtClaims = z.object({ sub: z.string(), name: z.string() });

export function parseServerClientEvent(data: Uint8Array): ServerClientEvent | null {
  try {
    const parsed = ServerClientEvent.safeParse(JSON.parse(textOf(data)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The name inside a user JWT, if the JWT is about `user` (its subject): the server checked its signature. */
function nameInUserJwt(jwt: string, user: string | undefined): string | null {
  const payload = jwt.split(".")[1];
  if (payload === undefined) return null;
  try {
    const claims = UserJwtClaims.safeParse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
    return claims.success && claims.data.sub === user ? claims.data.name : null;
  } catch {
    return null;
  }
}

export interface ClientIdentityRule {
  /**
   * Take the connection name any client sets for the machine (development setups where agents
   * share one user): anyone able to connect can then move any machine's presence.
   */
  readonly trustConnectionNames: boolean;
}

/**
 * The machine a client advisory is about, by the identity the server authenticated: the user
 * name, or for decentralized auth the name of the user JWT (the platform names each machine's
 * NATS identity after its machine id). Never the connection name, unless the rule trusts it.
 * Null when the identity names no machine (a bridge, an operator, an nkey user without a name).
 */
export function machineOfClientEvent(event: ServerClientEvent, rule: ClientIdentityRule): string | null {
  const { user, name, jwt } = event.client;
  const identity = rule.trustConnectionNames ? name : jwt !== undefined ? nameInUserJwt(jwt, user) : user;
  return identity !== undefined && identity !== null && isSafeToken(identity) ? identity : null;
}
