/**
 * Numbers QEMU 11.1.3's vfio-user client uses (qemu `hw/vfio-user/protocol.h`,
 * `proxy.c`, `device.c`; VFIO-USER.md §1-2), for callers to pass to the codecs.
 *
 * No codec reads these implicitly for message data sizes: every limit that
 * bounds an allocation (max data transfer size, message size) is a required
 * parameter. Only the capability checks of VERSION default to these values.
 *
 * @module
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** QEMU 11.1.3 client constants. Sizes are in bytes. */
export const QEMU_LIMITS = Object.freeze({
  /** VFIO_USER_MAX_MAX_FDS: most fds either side may advertise in `max_msg_fds`. */
  maxMsgFds: 16,
  /** VFIO_USER_DEF_MAX_FDS: what QEMU assumes if the server omits `max_msg_fds` (the spec says 1). */
  defaultMaxMsgFds: 8,
  /** VFIO_USER_MAX_MAX_XFER: largest `max_data_xfer_size` QEMU accepts (64 MiB). */
  maxDataXferSize: 64 * MiB,
  /** VFIO_USER_DEF_MAX_XFER: `max_data_xfer_size` when omitted (1 MiB). */
  defaultMaxDataXferSize: 1 * MiB,
  /** VFIO_USER_DEF_PGSIZE: `pgsizes` when omitted; values must be multiples of it. */
  defaultPgsize: 4 * KiB,
  /** VFIO_USER_DEF_MAP_MAX: `max_dma_maps` may only be lowered from this. */
  maxDmaMaps: 65535,
  /** VFIO_USER_DEF_MAX_BITMAP: `migration.max_bitmap_size` may only be lowered from this (256 MiB). */
  maxBitmapSize: 256 * MiB,
  /** Payload bytes of QEMU's VERSION request; the reply payload must not be larger. */
  versionRequestPayload: 198,
  /** VFIO_USER_MULTI_MAX: most writes in one REGION_WRITE_MULTI. */
  writeMultiMax: 200,
  /** VFIO_USER_MULTI_DATA: most bytes per write in REGION_WRITE_MULTI. */
  writeMultiData: 8,
  /** VFIO_USER_MAX_REGIONS: most regions QEMU accepts in DEVICE_GET_INFO. */
  maxRegions: 100,
  /** VFIO_USER_MAX_IRQS: most IRQ indices QEMU accepts in DEVICE_GET_INFO. */
  maxIrqs: 50,
});
