export {
  ACCOUNTS,
  accountLayoutConfig,
  MIRROR_DELIVER_PREFIX,
  mirroredStreams,
  PLATFORM_API_PREFIX,
} from "./account-layout.ts";
export { MACHINE_ID_FILE, MachineIdError, resolveMachineId } from "./machine-id.ts";
export { agentPermissions, InboxPrefixError, inboxPrefixOf, toJwtPermissions } from "./permissions.ts";
