export { AgentCommands } from "./agent-commands.ts";
