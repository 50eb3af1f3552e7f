import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  type Permissions,
} from "@nats-io/jwt";

/**
 * Decentralized (JWT) auth for a test server, minted in the test: an operator, a system account,
 * one account with JetStream enabled, and users of that account. nats-server reads the accounts
 * from its memory resolver (`resolver: MEMORY` with `resolver_preload`); a user connects with a
 * `.creds` file (its JWT and seed).
 */
export interface DecentralizedAuth {
  /** Lines for the server config (`startNatsServer({ configLines })`). */
  readonly configLines: readonly string[];
  /** A `.creds` file's text for a user of the account; without permissions, the user may do anything. */
  userCreds(name: string, permissions?: Partial<Permissions>): Promise<string>;
  /** A `.creds` file's text for a user of the system account (sees the server's $SYS events). */
  systemUserCreds(name: string): Promise<string>;
}

export async function mintDecentralizedAuth(): Promise<DecentralizedAuth> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const operatorJwt = await encodeOperator("edge-test-operator", operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount("SYS", system, { limits: unlimited }, { signer: operator });
  const accountJwt = await encodeAccount(
    "EDGE",
    account,
    { limits: { ...unlimited, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } },
    { signer: operator },
  );
  return {
    configLines: [
      `operator: ${operatorJwt}`,
      `system_account: ${system.getPublicKey()}`,
      "resolver: MEMORY",
      `resolver_preload: { ${system.getPublicKey()}: ${systemJwt}, ${account.getPublicKey()}: ${accountJwt} }`,
      // A user JWT travels in CONNECT, a control line: one with a machine's permission set is 6-8 KB,
      // beyond nats-server's default 4 KB.
      "max_control_line: 16384",
    ],
    async userCreds(name, permissions = {}) {
      const user = createUser();
      const jwt = await encodeUser(name, user, account, permissions);
      return new TextDecoder().decode(fmtCreds(jwt, user));
    },
    async systemUserCreds(name) {
      const user = createUser();
      const jwt = await encodeUser(name, user, system);
      return new TextDecoder().decode(fmtCreds(jwt, user));
    },
  };
}
