import { echoInput, type HostPattern, hostAllowed } from "../runtime/index.ts";

/**
 * The rules a download without a sha256 is taken under (`toolPolicy.allowMissingChecksum`, on by
 * default under OpenFrame's conventions, whose downloads carry none):
 *
 * - HTTPS only, its certificate checked as for any HTTPS request, on the link and on every redirect;
 * - from the hosts of `toolPolicy.allowedDownloadHosts` only, the link and every redirect (an
 *   empty list takes none);
 * - at most the download's size limit;
 * - its size and the sha256 of what arrived are recorded and reported (the tool's status, the
 *   self-update's status), so the platform can see a file change under an unchanged link.
 *
 * What it guarantees: the file came over an authenticated channel from a host the operator named,
 * and what ran is known by its hash. What it does not: a compromised or misused allowed host (or
 * one that serves other people's uploads) can serve anything, and the agent runs it; what binds
 * the file to the platform's intent then is a signed command naming its sha256.
 */
export interface UncheckedRule {
  readonly code: string;
  readonly message: string;
}

/** Why `url` (the link or a redirect of a download without a sha256) may not be fetched, or null. */
export function uncheckedUrlRefusal(url: URL, hosts: readonly HostPattern[], link: string): UncheckedRule | null {
  const where = url.href === link ? echoInput(link) : `${echoInput(link)} (redirected to ${echoInput(url.href)})`;
  if (url.protocol !== "https:")
    return {
      code: "EDGE_DOWNLOAD_NOT_HTTPS",
      message: `${where} has no sha256, and a download without one is taken over HTTPS only`,
    };
  if (hosts.length === 0)
    return {
      code: "EDGE_DOWNLOAD_HOST_NOT_ALLOWED",
      message: `${where} has no sha256, and no host may serve a download without one: name the hosts in toolPolicy.allowedDownloadHosts (EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS)`,
    };
  if (!hostAllowed(url, hosts))
    return {
      code: "EDGE_DOWNLOAD_HOST_NOT_ALLOWED",
      message: `${where} has no sha256, and ${echoInput(url.host)} is not one of the hosts allowed to serve a download without one (toolPolicy.allowedDownloadHosts: ${hosts.map((host) => host.text).join(", ")})`,
    };
  return null;
}
