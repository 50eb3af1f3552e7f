export { type Agent, createAgent } from "./create-agent.ts";
export { type AgentStatus, readStatusFile, STATUS_FILE, STATUS_FILE_INTERVAL_MS } from "./status.ts";
