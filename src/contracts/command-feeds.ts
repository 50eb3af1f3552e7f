import { COMMAND_STREAMS } from "./streams.ts";
import {
  AGENT_CONFIG_STREAM,
  assertMachineId,
  assertSafeToken,
  CONFIG_DEFAULTS_KEY,
  configKeyForMachine,
  configKeySubject,
  fleetSubjects,
} from "./subjects.ts";

/**
 * Where an agent reads its commands: one FEED per subject, read without any consumer kept for the
 * machine on the server (docs/DESIGN.md, "How an agent reads its commands"). The agent keeps its own
 * position per feed (the stream sequence of the last message taken), durably, next to its outbox.
 *
 * - `queue` feeds are read message by message from the position on (a short-lived consumer of the
 *   machine's own name, pinned to the feed's subject, made and removed for one catch-up);
 * - `latest` feeds only ever give their newest message (a direct get by subject): a message that
 *   was superseded while the machine was away is never taken.
 *
 * - `sequence` feeds are read message by message too, by direct gets from the position on
 *   (`next_by_subj`): no consumer at all. That request can name any message of its stream, so only a
 *   stream holding nothing but fleet-wide subjects is read this way (FLEET_TASKS).
 *
 * Only a machine's OWN subjects are queue feeds. Fleet-wide subjects (`machine.all.*`, the config
 * defaults) are read by direct get alone: newest only, except the fleet's tasks, which are work to do
 * in order (DESIGN, "Remote tasks"); a copy of an old one that a machine makes the server store is
 * refused as a server's answer.
 */
export type FeedMode = "queue" | "latest" | "sequence";

/**
 * Where a machine that never read a feed begins: at the first message stored (`first`), at the
 * newest (`newest`: it is taken), or after the newest (`next`: only what comes later).
 */
export type FeedStart = "first" | "newest" | "next";

export interface CommandFeed {
  /** The key of its position, unique among one machine's feeds (e.g. `tool-installation`). */
  readonly key: string;
  readonly stream: string;
  /** One literal subject: the one the feed's messages are stored under. */
  readonly subject: string;
  readonly mode: FeedMode;
  readonly start: FeedStart;
}

export interface MachineFeeds {
  readonly toolInstallation: CommandFeed;
  readonly toolUninstall: CommandFeed;
  readonly clientUpdate: CommandFeed;
  readonly clientUpdateAll: CommandFeed;
  readonly downloadConfiguration: CommandFeed;
  readonly downloadConfigurationAll: CommandFeed;
  readonly clientUninstall: CommandFeed;
  readonly configMachine: CommandFeed;
  readonly configDefaults: CommandFeed;
}

export function machineFeeds(machineId: string): MachineFeeds {
  const id = assertMachineId(machineId);
  const base = `machine.${id}`;
  const feed = (key: string, stream: string, subject: string, mode: FeedMode, start: FeedStart): CommandFeed => ({
    key,
    stream,
    subject,
    mode,
    start,
  });
  return {
    // Commands sent before the machine first connected (a tool at registration) are taken too.
    toolInstallation: feed(
      "tool-installation",
      COMMAND_STREAMS.toolInstallation,
      `${base}.tool-installation`,
      "queue",
      "first",
    ),
    toolUninstall: feed("tool-uninstall", COMMAND_STREAMS.toolInstallation, `${base}.tool-uninstall`, "queue", "first"),
    clientUpdate: feed("client-update", COMMAND_STREAMS.clientUpdate, `${base}.client-update`, "latest", "newest"),
    clientUpdateAll: feed(
      "client-update-all",
      COMMAND_STREAMS.clientUpdate,
      fleetSubjects.clientUpdate,
      "latest",
      "newest",
    ),
    downloadConfiguration: feed(
      "download-configuration",
      COMMAND_STREAMS.configPush,
      `${base}.download-configuration`,
      "queue",
      "newest",
    ),
    downloadConfigurationAll: feed(
      "download-configuration-all",
      COMMAND_STREAMS.configPush,
      fleetSubjects.downloadConfiguration,
      "latest",
      "newest",
    ),
    // A fresh installation is never removed by an uninstall left in the stream for an earlier one.
    clientUninstall: feed(
      "client-uninstall",
      COMMAND_STREAMS.clientUninstall,
      `${base}.client-uninstall`,
      "queue",
      "next",
    ),
    configMachine: feed(
      "config-machine",
      AGENT_CONFIG_STREAM,
      configKeySubject(configKeyForMachine(id)),
      "latest",
      "newest",
    ),
    configDefaults: feed(
      "config-defaults",
      AGENT_CONFIG_STREAM,
      configKeySubject(CONFIG_DEFAULTS_KEY),
      "latest",
      "newest",
    ),
  };
}

export interface TaskFeeds {
  readonly task: CommandFeed;
  readonly taskCancel: CommandFeed;
  readonly fleetTask: CommandFeed;
  readonly fleetTaskCancel: CommandFeed;
}

/** Where a machine reads its tasks (DESIGN, "Remote tasks"): from the first read on, never older ones. */
export function taskFeeds(machineId: string): TaskFeeds {
  const base = `machine.${assertMachineId(machineId)}`;
  return {
    task: { key: "task", stream: COMMAND_STREAMS.tasks, subject: `${base}.task`, mode: "queue", start: "next" },
    taskCancel: {
      key: "task-cancel",
      stream: COMMAND_STREAMS.tasks,
      subject: `${base}.task.cancel`,
      mode: "queue",
      start: "next",
    },
    fleetTask: {
      key: "fleet-task",
      stream: COMMAND_STREAMS.fleetTasks,
      subject: fleetSubjects.task,
      mode: "sequence",
      start: "next",
    },
    fleetTaskCancel: {
      key: "fleet-task-cancel",
      stream: COMMAND_STREAMS.fleetTasks,
      subject: fleetSubjects.taskCancel,
      mode: "sequence",
      start: "next",
    },
  };
}

/**
 * The fleet-wide update feed of one installed tool. It starts after the newest update stored when
 * the tool is installed: updates published before that are not for this installation.
 */
export function toolUpdateFeed(toolAgentId: string): CommandFeed {
  const subject = fleetSubjects.toolUpdate(toolAgentId);
  return {
    key: `tool-update:${toolAgentId}`,
    stream: COMMAND_STREAMS.toolUpdate,
    subject,
    mode: "latest",
    start: "next",
  };
}

/**
 * The one consumer name a machine uses for a catch-up on a stream: made for one catch-up (pinned to
 * one of its own subjects by the create request's subject), removed after. Names end in `_reader`
 * and earlier versions' durable names in `_consumer`, so no machine's name equals another's.
 */
export function catchUpConsumerName(machineId: string): string {
  return `machine_${assertMachineId(machineId)}_reader`;
}

/** Every feed a machine reads from its first start: its commands and its tasks (a tool's update feed comes with the tool). */
export function agentFeeds(machineId: string): CommandFeed[] {
  return [...Object.values(machineFeeds(machineId)), ...Object.values(taskFeeds(machineId))];
}

/** The subjects an agent listens on for word of a new command (a hint only: what it reads is checked). */
export function hintSubjects(machineId: string): string[] {
  return [...agentFeeds(machineId).map((feed) => feed.subject), fleetSubjects.toolUpdates];
}

/** Whether `subject` may be read as a queue by a machine: only its own subjects. */
export function isOwnSubject(machineId: string, subject: string): boolean {
  return subject.startsWith(`machine.${assertSafeToken("machineId", machineId)}.`);
}
