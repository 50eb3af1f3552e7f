import packageJson from "../../package.json" with { type: "json" };

/** The agent's version, from package.json (bundled into the single executable at build time). */
export const AGENT_VERSION: string = packageJson.version;
export const AGENT_TYPE = "edge-agent";
