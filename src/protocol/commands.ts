/**
 * vfio-user command numbers, the message header, and the Linux vfio
 * constants that travel on the wire.
 *
 * Sources: qemu `docs/interop/vfio-user.rst` (QEMU 11.1.3), linux
 * `include/uapi/linux/vfio.h`, libvfio-user `include/vfio-user.h`.
 *
 * Flag sets are plain `as const` objects rather than enums: they are bit
 * masks, and a decoded value is any combination of them (or garbage, until
 * validated).
 *
 * @module
 */

import { struct, u16, u32 } from './wire.js';

/**
 * vfio-user command numbers (spec "Commands" table).
 *
 * Never cast a number from the wire into this enum: check it with
 * {@link isCommand} first. {@link commandName} is safe for any number.
 */
export enum Command {
  /** VFIO_USER_VERSION, client → server */
  Version = 1,
  /** VFIO_USER_DMA_MAP, client → server */
  DmaMap = 2,
  /** VFIO_USER_DMA_UNMAP, client → server */
  DmaUnmap = 3,
  /** VFIO_USER_DEVICE_GET_INFO, client → server */
  DeviceGetInfo = 4,
  /** VFIO_USER_DEVICE_GET_REGION_INFO, client → server */
  DeviceGetRegionInfo = 5,
  /** VFIO_USER_DEVICE_GET_REGION_IO_FDS, client → server (QEMU 11.1.3 never sends it) */
  DeviceGetRegionIoFds = 6,
  /** VFIO_USER_DEVICE_GET_IRQ_INFO, client → server */
  DeviceGetIrqInfo = 7,
  /** VFIO_USER_DEVICE_SET_IRQS, client → server */
  DeviceSetIrqs = 8,
  /** VFIO_USER_REGION_READ, client → server */
  RegionRead = 9,
  /** VFIO_USER_REGION_WRITE, client → server */
  RegionWrite = 10,
  /** VFIO_USER_DMA_READ, server → client */
  DmaRead = 11,
  /** VFIO_USER_DMA_WRITE, server → client */
  DmaWrite = 12,
  /** VFIO_USER_DEVICE_RESET, client → server */
  DeviceReset = 13,
  /** VFIO_USER_DIRTY_PAGES: obsolete, still in QEMU's enum, no longer in the spec */
  DirtyPages = 14,
  /** VFIO_USER_REGION_WRITE_MULTI, client → server (QEMU sets NO_REPLY) */
  RegionWriteMulti = 15,
  /** VFIO_USER_DEVICE_FEATURE, client → server */
  DeviceFeature = 16,
  /** VFIO_USER_MIG_DATA_READ, client → server (not in QEMU 11.1.3) */
  MigDataRead = 17,
  /** VFIO_USER_MIG_DATA_WRITE, client → server (not in QEMU 11.1.3) */
  MigDataWrite = 18,
}

const specNames: Readonly<Record<number, string>> = {
  [Command.Version]: 'VFIO_USER_VERSION',
  [Command.DmaMap]: 'VFIO_USER_DMA_MAP',
  [Command.DmaUnmap]: 'VFIO_USER_DMA_UNMAP',
  [Command.DeviceGetInfo]: 'VFIO_USER_DEVICE_GET_INFO',
  [Command.DeviceGetRegionInfo]: 'VFIO_USER_DEVICE_GET_REGION_INFO',
  [Command.DeviceGetRegionIoFds]: 'VFIO_USER_DEVICE_GET_REGION_IO_FDS',
  [Command.DeviceGetIrqInfo]: 'VFIO_USER_DEVICE_GET_IRQ_INFO',
  [Command.DeviceSetIrqs]: 'VFIO_USER_DEVICE_SET_IRQS',
  [Command.RegionRead]: 'VFIO_USER_REGION_READ',
  [Command.RegionWrite]: 'VFIO_USER_REGION_WRITE',
  [Command.DmaRead]: 'VFIO_USER_DMA_READ',
  [Command.DmaWrite]: 'VFIO_USER_DMA_WRITE',
  [Command.DeviceReset]: 'VFIO_USER_DEVICE_RESET',
  [Command.DirtyPages]: 'VFIO_USER_DIRTY_PAGES',
  [Command.RegionWriteMulti]: 'VFIO_USER_REGION_WRITE_MULTI',
  [Command.DeviceFeature]: 'VFIO_USER_DEVICE_FEATURE',
  [Command.MigDataRead]: 'VFIO_USER_MIG_DATA_READ',
  [Command.MigDataWrite]: 'VFIO_USER_MIG_DATA_WRITE',
};

/** True if `n` is one of the {@link Command} numbers. */
export function isCommand(n: number): n is Command {
  return Object.hasOwn(specNames, n);
}

/** Enum name of a command (`RegionRead`), or `Unknown(<n>)` for any other number. */
export function commandName(n: number): string {
  return isCommand(n) ? Command[n] : `Unknown(${n})`;
}

/** Spec name of a command (`VFIO_USER_REGION_READ`), or `Unknown(<n>)` for any other number. */
export function commandSpecName(n: number): string {
  return specNames[n] ?? `Unknown(${n})`;
}

// ---------------------------------------------------------------------------
// Header

/** `struct vfio_user_header`: 16 bytes at the start of every message. */
export const HeaderLayout = struct('vfio_user_header', {
  /** Echoed by the reply; owned by the sender, may repeat. */
  msgId: u16,
  command: u16,
  /** Whole message size in bytes, header included. */
  size: u32,
  flags: u32,
  /** Positive errno, meaningful only in a reply with {@link HeaderFlag.Error}. */
  error: u32,
});

/** A decoded message header. `size` is bytes including the 16-byte header. */
export type Header = ReturnType<typeof HeaderLayout.decode>;

/** Header size in bytes. */
export const HEADER_SIZE = HeaderLayout.size;

/** Header `flags` bits (spec "Header"). */
export const HeaderFlag = {
  /** Bits 0-3: message type, see {@link MessageType}. */
  TypeMask: 0xf,
  /** VFIO_USER_F_NO_REPLY: the sender wants no reply to this command. */
  NoReply: 0x10,
  /** VFIO_USER_F_ERROR: this reply carries an errno in `error`. */
  Error: 0x20,
} as const;

/** Every header flag bit the spec defines; any other bit is a protocol violation. */
export const HEADER_FLAGS_KNOWN = HeaderFlag.TypeMask | HeaderFlag.NoReply | HeaderFlag.Error;

/** Values of the header type bits (flags & 0xf). Anything else makes QEMU drop the connection. */
export const MessageType = {
  /** VFIO_USER_F_TYPE_COMMAND */
  Command: 0,
  /** VFIO_USER_F_TYPE_REPLY */
  Reply: 1,
} as const;

// ---------------------------------------------------------------------------
// Linux vfio constants used on the wire (include/uapi/linux/vfio.h)

/** `vfio_device_info.flags` bits that vfio-user defines. */
export const DeviceInfoFlag = {
  /** VFIO_DEVICE_FLAGS_RESET: the device supports DEVICE_RESET */
  Reset: 1 << 0,
  /** VFIO_DEVICE_FLAGS_PCI */
  Pci: 1 << 1,
} as const;

/** `vfio_region_info.flags` bits. */
export const RegionInfoFlag = {
  /** VFIO_REGION_INFO_FLAG_READ */
  Read: 1 << 0,
  /** VFIO_REGION_INFO_FLAG_WRITE */
  Write: 1 << 1,
  /** VFIO_REGION_INFO_FLAG_MMAP: the reply carries an fd the client can mmap */
  Mmap: 1 << 2,
  /** VFIO_REGION_INFO_FLAG_CAPS: a capability chain follows the struct */
  Caps: 1 << 3,
} as const;

/** Region capability ids (`vfio_info_cap_header.id`). */
export const RegionCapId = {
  /** VFIO_REGION_INFO_CAP_SPARSE_MMAP */
  SparseMmap: 1,
  /** VFIO_REGION_INFO_CAP_TYPE */
  Type: 2,
  /** VFIO_REGION_INFO_CAP_MSIX_MAPPABLE */
  MsixMappable: 3,
} as const;

/** PCI region indices (VFIO_PCI_*_REGION_INDEX). */
export const PciRegion = {
  Bar0: 0,
  Bar1: 1,
  Bar2: 2,
  Bar3: 3,
  Bar4: 4,
  Bar5: 5,
  /** VFIO_PCI_ROM_REGION_INDEX */
  Rom: 6,
  /** VFIO_PCI_CONFIG_REGION_INDEX */
  Config: 7,
  /** VFIO_PCI_VGA_REGION_INDEX */
  Vga: 8,
  /** VFIO_PCI_NUM_REGIONS: number of standard regions */
  Count: 9,
} as const;

/** PCI IRQ indices (VFIO_PCI_*_IRQ_INDEX). */
export const PciIrq = {
  /** VFIO_PCI_INTX_IRQ_INDEX */
  Intx: 0,
  /** VFIO_PCI_MSI_IRQ_INDEX */
  Msi: 1,
  /** VFIO_PCI_MSIX_IRQ_INDEX */
  Msix: 2,
  /** VFIO_PCI_ERR_IRQ_INDEX */
  Err: 3,
  /** VFIO_PCI_REQ_IRQ_INDEX */
  Req: 4,
  /** VFIO_PCI_NUM_IRQS */
  Count: 5,
} as const;

/** `vfio_irq_info.flags` bits. */
export const IrqInfoFlag = {
  /** VFIO_IRQ_INFO_EVENTFD */
  Eventfd: 1 << 0,
  /** VFIO_IRQ_INFO_MASKABLE */
  Maskable: 1 << 1,
  /** VFIO_IRQ_INFO_AUTOMASKED */
  Automasked: 1 << 2,
  /** VFIO_IRQ_INFO_NORESIZE */
  NoResize: 1 << 3,
} as const;

/** `vfio_irq_set.flags` bits: exactly one DATA_ bit and one ACTION_ bit. */
export const IrqSetFlag = {
  /** VFIO_IRQ_SET_DATA_NONE */
  DataNone: 1 << 0,
  /** VFIO_IRQ_SET_DATA_BOOL */
  DataBool: 1 << 1,
  /** VFIO_IRQ_SET_DATA_EVENTFD: the fds travel out of band (SCM_RIGHTS) */
  DataEventfd: 1 << 2,
  /** VFIO_IRQ_SET_ACTION_MASK */
  ActionMask: 1 << 3,
  /** VFIO_IRQ_SET_ACTION_UNMASK */
  ActionUnmask: 1 << 4,
  /** VFIO_IRQ_SET_ACTION_TRIGGER */
  ActionTrigger: 1 << 5,
  /** VFIO_IRQ_SET_DATA_TYPE_MASK */
  DataTypeMask: 0x7,
  /** VFIO_IRQ_SET_ACTION_TYPE_MASK */
  ActionTypeMask: 0x38,
} as const;

/** `vfio_user_dma_map.flags` bits. */
export const DmaMapFlag = {
  /** VFIO_USER_F_DMA_REGION_READ */
  Read: 1 << 0,
  /** VFIO_USER_F_DMA_REGION_WRITE */
  Write: 1 << 1,
  /** VFIO_USER_F_DMA_REGION_MMAP: access mode mmap (needs an fd); new in the 11.1.3 spec, QEMU does not set it */
  ModeMmap: 1 << 2,
  /** VFIO_USER_F_DMA_REGION_FILE_IO: access mode file I/O (needs an fd); new in the 11.1.3 spec, QEMU does not set it */
  ModeFileIo: 1 << 3,
} as const;

/** `vfio_user_dma_unmap.flags` values (at most one is set). */
export const DmaUnmapFlag = {
  /** VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: a `vfio_user_bitmap` follows the struct */
  GetDirtyBitmap: 1 << 0,
  /** VFIO_DMA_UNMAP_FLAG_ALL: unmap everything; address and size must be 0 */
  All: 1 << 1,
} as const;

/** `vfio_user_device_feature.flags` bits. */
export const DeviceFeatureFlag = {
  /** VFIO_DEVICE_FEATURE_MASK: bits 0-15 are the feature number */
  Mask: 0xffff,
  /** VFIO_DEVICE_FEATURE_GET */
  Get: 1 << 16,
  /** VFIO_DEVICE_FEATURE_SET */
  Set: 1 << 17,
  /** VFIO_DEVICE_FEATURE_PROBE */
  Probe: 1 << 18,
} as const;

/** Feature numbers for DEVICE_FEATURE (spec "Device Features"; linux VFIO_DEVICE_FEATURE_*). */
export const DeviceFeatureId = {
  /** VFIO_DEVICE_FEATURE_MIGRATION: GET → `vfio_device_feature_migration` */
  Migration: 1,
  /** VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: GET/SET → `vfio_device_feature_mig_state` */
  MigDeviceState: 2,
  /** VFIO_DEVICE_FEATURE_DMA_LOGGING_START: SET → logging control */
  DmaLoggingStart: 6,
  /** VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP: SET, no data */
  DmaLoggingStop: 7,
  /** VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT: GET → report + bitmap */
  DmaLoggingReport: 8,
} as const;

/** `vfio_device_feature_migration.flags` bits. */
export const MigrationFlag = {
  /** VFIO_MIGRATION_STOP_COPY */
  StopCopy: 1 << 0,
  /** VFIO_MIGRATION_P2P */
  P2p: 1 << 1,
  /** VFIO_MIGRATION_PRE_COPY */
  PreCopy: 1 << 2,
} as const;

/** `enum vfio_device_mig_state` values. */
export const MigState = {
  Error: 0,
  Stop: 1,
  Running: 2,
  StopCopy: 3,
  Resuming: 4,
  /** Not used by vfio-user */
  RunningP2p: 5,
  PreCopy: 6,
  /** Not used by vfio-user */
  PreCopyP2p: 7,
} as const;

/** Sub-region types of DEVICE_GET_REGION_IO_FDS (VFIO_USER_IO_FD_TYPE_*). */
export const IoFdType = {
  /** VFIO_USER_IO_FD_TYPE_IOEVENTFD */
  Ioeventfd: 0,
  /** VFIO_USER_IO_FD_TYPE_IOREGIONFD */
  Ioregionfd: 1,
} as const;

/** KVM ioeventfd flags carried by an ioeventfd sub-region (linux `kvm.h`). */
export const IoeventfdFlag = {
  /** KVM_IOEVENTFD_FLAG_DATAMATCH */
  Datamatch: 1 << 0,
  /** KVM_IOEVENTFD_FLAG_PIO */
  Pio: 1 << 1,
  /** KVM_IOEVENTFD_FLAG_DEASSIGN */
  Deassign: 1 << 2,
  /** KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY */
  VirtioCcwNotify: 1 << 3,
} as const;

/** ioregionfd flags carried by an ioregionfd sub-region. */
export const IoregionfdFlag = {
  /** KVM_IOREGION_PIO */
  Pio: 1 << 0,
  /** KVM_IOREGION_POSTED_WRITES */
  PostedWrites: 1 << 1,
} as const;
