import * as z from "zod";

/**
 * `TelemetrySample` (machine.{id}.telemetry) and `Inventory` (machine.{id}.inventory): ours, not
 * OpenFrame's. Rates are per second over the interval since the previous sample; a part that could
 * not be read is null and named in `errors`, never a guess.
 */
const rate = z.number().nonnegative();

export const CollectorError = z.object({ collector: z.string(), message: z.string() });

export const TelemetrySample = z.object({
  machineId: z.string().min(1),
  timestamp: z.iso.datetime({ offset: true }),
  /** Seconds since the previous sample the rates were computed over; null on the first. */
  intervalSeconds: z.number().positive().nullable(),
  cpu: z
    .object({ totalPercent: z.number().min(0).max(100), perCorePercent: z.array(z.number().min(0).max(100)) })
    .nullable(),
  load: z.object({ one: z.number(), five: z.number(), fifteen: z.number() }).nullable(),
  memory: z
    .object({
      totalBytes: z.number().int().nonnegative(),
      usedBytes: z.number().int().nonnegative(),
      availableBytes: z.number().int().nonnegative(),
      swapTotalBytes: z.number().int().nonnegative(),
      swapUsedBytes: z.number().int().nonnegative(),
    })
    .nullable(),
  filesystems: z.array(
    z.object({
      mount: z.string(),
      fsType: z.string(),
      totalBytes: z.number().int().nonnegative(),
      usedBytes: z.number().int().nonnegative(),
      availableBytes: z.number().int().nonnegative(),
    }),
  ),
  network: z.array(
    z.object({
      interface: z.string(),
      rxBytesPerSecond: rate,
      txBytesPerSecond: rate,
      rxErrorsPerSecond: rate,
      txErrorsPerSecond: rate,
      rxDropsPerSecond: rate,
      txDropsPerSecond: rate,
    }),
  ),
  disks: z.array(
    z.object({
      device: z.string(),
      readBytesPerSecond: rate,
      writeBytesPerSecond: rate,
      readsPerSecond: rate,
      writesPerSecond: rate,
    }),
  ),
  uptimeSeconds: z.number().nonnegative().nullable(),
  processCount: z.number().int().nonnegative().nullable(),
  agent: z.object({
    rssBytes: z.number().int().nonnegative(),
    heapUsedBytes: z.number().int().nonnegative(),
    cpuPercent: z.number().nonnegative(),
  }),
  outbox: z
    .object({
      pendingCount: z.number().int().nonnegative(),
      pendingBytes: z.number().int().nonnegative(),
      oldestPendingAgeMs: z.number().nonnegative().nullable(),
      evictedTelemetry: z.number().int().nonnegative(),
      evictedState: z.number().int().nonnegative(),
      deadLetters: z.number().int().nonnegative(),
    })
    .nullable(),
  tagKeyValues: z.array(z.string()),
  errors: z.array(CollectorError),
});
export type TelemetrySample = z.infer<typeof TelemetrySample>;

/**
 * Named as OpenFrame's MachinePinotMessage names them (its OsType enum: WINDOWS, MAC_OS; LINUX and
 * OTHER are ours), so a bridge copies them without guessing. Agents before 0.2 sent `MACOS`.
 */
export const PinotOsType = z.preprocess(
  (os) => (os === "MACOS" ? "MAC_OS" : os),
  z.enum(["LINUX", "WINDOWS", "MAC_OS", "OTHER"]),
);
export const PinotDeviceType = z.enum(["DESKTOP", "LAPTOP", "SERVER", "VIRTUAL_MACHINE", "OTHER"]);

export const Inventory = z.object({
  machineId: z.string().min(1),
  timestamp: z.iso.datetime({ offset: true }),
  /** sha256 of the inventory without timestamp and hash: equal hashes, equal inventories. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  osType: PinotOsType,
  deviceType: PinotDeviceType,
  /** Tag names, and `key:value` pairs: MachinePinotMessage's `tags` and `tagKeyValues`. */
  tags: z.array(z.string()),
  tagKeyValues: z.array(z.string()),
  hostname: z.string(),
  system: z
    .object({ manufacturer: z.string(), model: z.string(), serial: z.string(), uuid: z.string(), virtual: z.boolean() })
    .nullable(),
  bios: z.object({ vendor: z.string(), version: z.string(), releaseDate: z.string() }).nullable(),
  os: z
    .object({ platform: z.string(), distro: z.string(), release: z.string(), kernel: z.string(), arch: z.string() })
    .nullable(),
  cpu: z
    .object({
      manufacturer: z.string(),
      brand: z.string(),
      cores: z.number().int(),
      physicalCores: z.number().int(),
      speedGHz: z.number(),
    })
    .nullable(),
  memory: z
    .object({
      totalBytes: z.number().int(),
      modules: z.array(
        z.object({ sizeBytes: z.number().int(), type: z.string(), clockSpeedMHz: z.number().nullable() }),
      ),
    })
    .nullable(),
  disks: z.array(
    z.object({ device: z.string(), type: z.string(), name: z.string(), sizeBytes: z.number(), serial: z.string() }),
  ),
  networkInterfaces: z.array(
    z.object({ name: z.string(), mac: z.string(), ipv4: z.string(), ipv6: z.string(), virtual: z.boolean() }),
  ),
  software: z.array(z.object({ name: z.string(), version: z.string() })),
  errors: z.array(CollectorError),
});
export type Inventory = z.infer<typeof Inventory>;

/**
 * What the machine itself reports (`edge-agent inventory --json`, run as a child of the daemon):
 * the inventory without the agent's own parts (identity, time, tags, hash).
 */
export const MachineInventory = Inventory.omit({
  machineId: true,
  timestamp: true,
  hash: true,
  tags: true,
  tagKeyValues: true,
});
export type MachineInventory = z.infer<typeof MachineInventory>;

/** `machine.{id}.outbox`: the outbox's depth and losses, sent with every telemetry sample. */
export const OutboxGauge = z.object({
  machineId: z.string().min(1),
  timestamp: z.iso.datetime({ offset: true }),
  pendingCount: z.number().int().nonnegative(),
  pendingBytes: z.number().int().nonnegative(),
  oldestPendingAgeMs: z.number().nonnegative().nullable(),
  lastSequence: z.number().int().nonnegative(),
  deliveredCount: z.number().int().nonnegative(),
  evictedTelemetry: z.number().int().nonnegative(),
  evictedState: z.number().int().nonnegative(),
  deadLetters: z.number().int().nonnegative(),
  heldInMemory: z.number().int().nonnegative(),
  /**
   * Numbers an earlier run reserved that this one jumped over after a crash that may have lost
   * events (held in memory on a full disk, a power cut): a gap in (after, through] is this, not a
   * loss in transit. Absent when the sequence continued where it stopped.
   */
  sequenceSkip: z
    .object({ after: z.number().int().nonnegative(), through: z.number().int().nonnegative() })
    .nullable()
    .optional(),
});
export type OutboxGauge = z.infer<typeof OutboxGauge>;
