import { chownSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type EnrollmentRequest, planEnrollment, SettingsError, writeEnrollment } from "../../../src/settings/index.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { createSigner } from "../../helpers/signing.ts";

const fresh = (): string => scratchDir("ea-enroll-");
/** An ordinary user enrolling on Linux, unless a test says otherwise. */
const linuxUser = { platform: "linux", privileged: false } as const;
type Request = Omit<EnrollmentRequest, "platform" | "privileged"> &
  Partial<Pick<EnrollmentRequest, "platform" | "privileged">>;
/** Enrolled for development (unsigned) unless a test names a signing key or says otherwise. */
const enroll = async (configDir: string, request: Request) =>
  writeEnrollment(await planEnrollment(configDir, { ...linuxUser, allowUnsigned: true, ...request }));

describe("enrollment", () => {
  it("writes server, machine id, tags and credentials into a 0600 settings file the daemon accepts", async () => {
    const configDir = fresh();
    const credsSource = join(fresh(), "user.creds");
    writeFileSync(credsSource, "-----BEGIN NATS USER JWT-----\n...\n");
    const result = await enroll(configDir, {
      server: "tls://nats.example:4443",
      machineId: "pc-7",
      credsFile: credsSource,
      tags: { site: "lab" },
    });

    expect(statSync(result.settingsFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(configDir, "nats.creds")).mode & 0o777).toBe(0o600);
    expect(result.settings).toMatchObject({
      natsServers: ["tls://nats.example:4443"],
      machineId: "pc-7",
      tags: { site: "lab" },
      auth: { credsFile: join(configDir, "nats.creds") },
    });
    expect(JSON.parse(readFileSync(result.settingsFile, "utf8"))).toMatchObject({
      natsUrl: "tls://nats.example:4443",
      machineId: "pc-7",
    });
  });

  it("writes OpenFrame's conventions: the platform, the allowed download hosts, the token path, and the secret copied 0600", async () => {
    const configDir = fresh();
    const secretSource = join(fresh(), "openframe.secret");
    writeFileSync(secretSource, "0123456789abcdef0123456789abcdef\n");
    const plan = await planEnrollment(configDir, {
      ...linuxUser,
      server: "tls://openframe.example:443",
      token: "t",
      tags: {},
      managementPlatform: "openframe",
      allowedDownloadHosts: "github.com, *.githubusercontent.com",
      openframeSecretFile: secretSource,
      openframeTokenPath: "/var/lib/openframe/shared_token.enc",
    });
    // The link test reads the secret where it is; the file written names its copy.
    expect(plan.settingsBeforeCopy.openframe.secretFile).toBe(secretSource);
    const result = await writeEnrollment(plan);
    expect(result.settings).toMatchObject({
      platform: "openframe",
      allowUnsigned: true,
      toolPolicy: { allowMissingChecksum: true, allowedDownloadHosts: ["github.com", "*.githubusercontent.com"] },
      openframe: { secretFile: join(configDir, "openframe.secret"), tokenPath: "/var/lib/openframe/shared_token.enc" },
    });
    expect(statSync(join(configDir, "openframe.secret")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(configDir, "openframe.secret"), "utf8")).toBe(readFileSync(secretSource, "utf8"));
    await expect(
      planEnrollment(fresh(), {
        ...linuxUser,
        server: "nats://h:4222",
        tags: {},
        allowUnsigned: true,
        managementPlatform: "openfram",
      }),
    ).rejects.toThrow(/platform: must be one of edge or openframe \(got "openfram"\)/);
    // Only OpenFrame's conventions stand in for --allow-unsigned: OpenFrame signs nothing.
    await expect(
      planEnrollment(fresh(), { ...linuxUser, server: "nats://h:4222", tags: {}, managementPlatform: "edge" }),
    ).rejects.toMatchObject({ setting: "--config-signing-key" });
    await expect(
      planEnrollment(fresh(), { ...linuxUser, server: "nats://h:4222", tags: {}, openframeSecretFile: "/nonexistent" }),
    ).rejects.toMatchObject({ setting: "--openframe-secret-file" });
  });

  it("plans without writing anything: the link test uses the secrets where they are, the file names their copies", async () => {
    const configDir = join(fresh(), "config");
    const credsSource = join(fresh(), "user.creds");
    writeFileSync(credsSource, "jwt");
    const plan = await planEnrollment(configDir, {
      server: "nats://h:4222",
      credsFile: credsSource,
      tags: {},
      allowUnsigned: true,
      ...linuxUser,
    });
    expect(existsSync(configDir)).toBe(false);
    expect(plan.settingsBeforeCopy.auth.credsFile).toBe(credsSource);
    expect(plan.settings.auth.credsFile).toBe(join(configDir, "nats.creds"));
  });

  // Root enrolls for a service that runs as its own user: only the privilege it is told gives the files away.
  it.skipIf(process.getuid?.() !== 0)(
    "gives the files to the config dir's owner when told it runs privileged, not otherwise",
    async () => {
      const serviceUid = 4242;
      for (const privileged of [true, false]) {
        const configDir = fresh();
        chownSync(configDir, serviceUid, serviceUid);
        const credsSource = join(fresh(), "user.creds");
        writeFileSync(credsSource, "jwt");
        const result = await enroll(configDir, {
          server: "nats://h:4222",
          credsFile: credsSource,
          tags: {},
          privileged,
        });
        const owner = privileged ? serviceUid : 0;
        expect(statSync(result.settingsFile).uid).toBe(owner);
        expect(statSync(join(configDir, "nats.creds")).uid).toBe(owner);
      }
    },
  );

  it("keeps other settings, and replaces the whole auth block on re-enrollment", async () => {
    const configDir = fresh();
    writeFileSync(join(configDir, "settings.json"), JSON.stringify({ heartbeatSeconds: 5, auth: { token: "old" } }));
    const result = await enroll(configDir, { server: "nats://u:p@h:4222", tags: {} });
    expect(result.settings.heartbeatSeconds).toBe(5);
    expect(result.settings.auth).toEqual({ user: "u", password: "p" });
    expect(result.settings.natsServers).toEqual(["nats://h:4222"]);
  });

  it.each([
    [{ server: "ftp://x" }, "--server"],
    [{ server: "nats://h", machineId: "a.b" }, "--machine-id"],
    [{ server: "nats://h", machineId: "all" }, "--machine-id"],
    [{ server: "nats://h", token: "t", user: "u" }, "--creds/--token/--user/--nkey-seed-file"],
    [{ server: "nats://h", password: "p" }, "--password"],
    [{ server: "nats://h", user: "u" }, "--user"],
    [{ server: "nats://h", credsFile: "/nonexistent/x.creds" }, "--creds"],
    [{ server: "nats://h", credsFile: "/nonexistent/x.creds", credsFlag: "--creds-file" }, "--creds-file"],
    [{ server: "nats://h", nkeySeedFile: "/nonexistent/seed" }, "--nkey-seed-file"],
    [{ server: "nats://h", tlsCaFile: "/nonexistent/ca.pem" }, "--tls-ca"],
  ])("refuses %j naming %s, before writing anything", async (request, setting) => {
    const configDir = join(fresh(), "config");
    const error = await enroll(configDir, { tags: {}, ...request }).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).setting).toBe(setting);
    expect(existsSync(configDir)).toBe(false);
  });

  it("needs the platform's signing key, or an explicit --allow-unsigned for development", async () => {
    const signingKey = createSigner().publicKey;
    const refused = await enroll(fresh(), {
      server: "nats://h:4222",
      token: "t",
      tags: {},
      allowUnsigned: undefined,
    }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(SettingsError);
    expect((refused as SettingsError).message).toMatch(
      /--config-signing-key.*needs the platform's signing key.*--allow-unsigned/,
    );

    const signedDir = fresh();
    const signed = await enroll(signedDir, {
      server: "nats://h:4222",
      token: "t",
      tags: {},
      allowUnsigned: undefined,
      configSigningKey: signingKey,
    });
    expect(signed.settings).toMatchObject({ configSigningKey: signingKey, allowUnsigned: false });
    // Enrolling again without naming it keeps the key the file has.
    const again = await enroll(signedDir, {
      server: "nats://other:4222",
      token: "t",
      tags: {},
      allowUnsigned: undefined,
    });
    expect(again.settings.configSigningKey).toBe(signingKey);

    expect((await enroll(fresh(), { server: "nats://h:4222", token: "t", tags: {} })).settings.allowUnsigned).toBe(
      true,
    );
    await expect(
      enroll(fresh(), {
        server: "nats://h:4222",
        token: "t",
        tags: {},
        configSigningKey: "not-a-key",
        allowUnsigned: undefined,
      }),
    ).rejects.toThrow(/--config-signing-key.*NKey public key/);
    await expect(
      enroll(fresh(), { server: "nats://h:4222", token: "t", tags: {}, configSigningKey: signingKey }),
    ).rejects.toThrow(/give one: a signing key, or unsigned/);
  });
});
