import { createHash } from "node:crypto";
import { hostname as osHostname } from "node:os";
import { type Inventory, type MachineInventory, tagNameOf } from "../contracts/index.ts";
import type { Clock } from "../runtime/index.ts";
import { installedSoftware } from "./installed-software.ts";

type InventoryBody = Omit<Inventory, "machineId" | "timestamp" | "hash" | "errors">;

export interface InventoryRequest {
  readonly machineId: string;
  readonly clock: Clock;
  readonly tagKeyValues: string[];
  /** The host's platform: which package manager lists the software, which osType is reported. */
  readonly platform: NodeJS.Platform;
}
/** Gathers one inventory: in this process (tests, simulators) or in a child (the daemon). */
export type InventoryCollector = (request: InventoryRequest) => Promise<Inventory>;

function osTypeOf(platform: NodeJS.Platform): Inventory["osType"] {
  if (platform === "linux") return "LINUX";
  if (platform === "win32") return "WINDOWS";
  if (platform === "darwin") return "MAC_OS";
  return "OTHER";
}

/** SMBIOS chassis names to the device types the platform's Pinot table uses. */
export function deviceTypeOf(chassisType: string, virtual: boolean): Inventory["deviceType"] {
  if (virtual) return "VIRTUAL_MACHINE";
  const type = chassisType.toLowerCase();
  if (/laptop|notebook|portable|convertible|detachable|tablet|sub notebook/.test(type)) return "LAPTOP";
  if (/rack|server|blade|multi-system|main server/.test(type)) return "SERVER";
  if (/desktop|tower|all in one|mini pc|pizza|lunch box|space-saving|stick/.test(type)) return "DESKTOP";
  return "OTHER";
}

export function inventoryHash(body: InventoryBody): string {
  return createHash("sha256").update(JSON.stringify(body)).digest("hex");
}

/**
 * Gathers the hardware, OS and software inventory with systeminformation (never on a short
 * schedule: some of these calls spawn processes). Each part that fails is named in `errors` and
 * left empty.
 */
export async function collectMachineInventory(platform: NodeJS.Platform): Promise<MachineInventory> {
  const si = await import("systeminformation");
  const errors: MachineInventory["errors"] = [];
  const attempt = async <T>(name: string, work: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      errors.push({ collector: name, message: error instanceof Error ? error.message : String(error) });
      return fallback;
    }
  };
  const [system, bios, chassis, os, cpu, mem, memLayout, disks, interfaces, software] = await Promise.all([
    attempt("system", () => si.system(), null),
    attempt("bios", () => si.bios(), null),
    attempt("chassis", () => si.chassis(), null),
    attempt("os", () => si.osInfo(), null),
    attempt("cpu", () => si.cpu(), null),
    attempt("memory", () => si.mem(), null),
    attempt("memoryLayout", () => si.memLayout(), []),
    attempt("disks", () => si.diskLayout(), []),
    attempt("networkInterfaces", () => si.networkInterfaces(), []),
    attempt("software", () => installedSoftware(platform), []),
  ]);
  return {
    osType: osTypeOf(platform),
    deviceType: deviceTypeOf(chassis?.type ?? "", system?.virtual ?? false),
    hostname: os?.hostname || osHostname(),
    system: system
      ? {
          manufacturer: system.manufacturer,
          model: system.model,
          serial: system.serial,
          uuid: system.uuid,
          virtual: system.virtual,
        }
      : null,
    bios: bios ? { vendor: bios.vendor, version: bios.version, releaseDate: bios.releaseDate } : null,
    os: os ? { platform: os.platform, distro: os.distro, release: os.release, kernel: os.kernel, arch: os.arch } : null,
    cpu: cpu
      ? {
          manufacturer: cpu.manufacturer,
          brand: cpu.brand,
          cores: cpu.cores,
          physicalCores: cpu.physicalCores,
          speedGHz: cpu.speed,
        }
      : null,
    memory: mem
      ? {
          totalBytes: mem.total,
          modules: memLayout.map((module) => ({
            sizeBytes: module.size,
            type: module.type,
            clockSpeedMHz: module.clockSpeed ?? null,
          })),
        }
      : null,
    disks: disks.map((disk) => ({
      device: disk.device,
      type: disk.type,
      name: disk.name,
      sizeBytes: disk.size,
      serial: disk.serialNum,
    })),
    networkInterfaces: interfaces
      .filter((entry) => !entry.internal)
      .map((entry) => ({
        name: entry.iface,
        mac: entry.mac,
        ipv4: entry.ip4,
        ipv6: entry.ip6,
        virtual: entry.virtual,
      })),
    software,
    errors,
  };
}

/** The machine's report plus the agent's parts: identity, time, tags and the change-detection hash. */
export function assembleInventory(machine: MachineInventory, request: InventoryRequest): Inventory {
  const { errors, ...reported } = machine;
  const body: InventoryBody = {
    ...reported,
    tags: request.tagKeyValues.map(tagNameOf),
    tagKeyValues: request.tagKeyValues,
  };
  return {
    machineId: request.machineId,
    timestamp: new Date(request.clock.now()).toISOString(),
    hash: inventoryHash(body),
    ...body,
    errors,
  };
}

/** In this process: systeminformation stays loaded afterwards (about 3 MB). */
export const collectInventory: InventoryCollector = async (request) =>
  assembleInventory(await collectMachineInventory(request.platform), request);
