/**
 * The vfio-user protocol layer: layouts, command numbers, pure codecs and
 * errors. No I/O; imports nothing outside `src/protocol` but `node:os`.
 *
 * Codecs work on the payload: the bytes after the 16-byte header
 * (`message.ts` adds and strips headers). For every command there are
 * `encodeXRequest`/`decodeXRequest`/`encodeXReply`/`decodeXReply`.
 * Decoders validate (throwing {@link ProtocolError}, errno EINVAL unless
 * documented), encoders trust their input beyond what each field can hold.
 * Decoded `data` fields are views into the payload passed in.
 *
 * VFIO_USER_DIRTY_PAGES (14) is obsolete and has no codec.
 *
 * @module
 */

export * from './errors.js';
export * from './wire.js';
export * from './commands.js';
export * from './limits.js';
export * from './message.js';
export type { RegionBounds } from './codec/checks.js';
export * from './codec/version.js';
export * from './codec/dma-map.js';
export * from './codec/dma-unmap.js';
export * from './codec/device-get-info.js';
export * from './codec/device-get-region-info.js';
export * from './codec/device-get-region-io-fds.js';
export * from './codec/device-get-irq-info.js';
export * from './codec/device-set-irqs.js';
export * from './codec/region-access.js';
export * from './codec/region-read.js';
export * from './codec/region-write.js';
export * from './codec/dma-access.js';
export * from './codec/dma-read.js';
export * from './codec/dma-write.js';
export * from './codec/device-reset.js';
export * from './codec/region-write-multi.js';
export * from './codec/device-feature.js';
export * from './codec/mig-data.js';
export * from './codec/mig-data-read.js';
export * from './codec/mig-data-write.js';
