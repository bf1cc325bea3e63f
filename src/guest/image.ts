/**
 * A guest initramfs with the guest driver: the kit's busybox, mdgpu.ko at
 * /lib/modules/mdgpu.ko, the tools in /usr/bin, the compute kernels' SPIR-V in
 * /usr/share/mdgpu (where mdgpu-run looks for them), and an /init that runs `initBody`.
 *
 * None of the kit kernel's own modules go in: mdgpu.ko needs only built-in symbols, and the
 * init loads it by path with busybox `insmod` (no modules.dep, no modprobe).
 */
import type { Kit } from '../kit/kit-tree.js';
import { guestInitramfs, initScript, type GuestFile } from '../kit/initramfs.js';
import { GUEST_KERNELS, GUEST_TOOLS, type GuestDriverBuild } from './build.js';

/** Where the module is in the guest. */
export const GUEST_MODULE_PATH = '/lib/modules/mdgpu.ko';
/** Where the tools are in the guest (on the init's PATH). */
export const GUEST_TOOLS_DIR = '/usr/bin';
/** Where the compute kernels are in the guest: `<name>.spv`. */
export const GUEST_KERNELS_DIR = '/usr/share/mdgpu';

export interface GuestImageOptions {
  /** Marker for the `<marker>-BEGIN` / `<marker>-END rc=N` lines (default `MDGPU-INIT`). */
  marker?: string;
  /** More files to add. */
  files?: GuestFile[];
}

/** The files that carry the driver into a guest. */
export function driverFiles(build: GuestDriverBuild): GuestFile[] {
  return [
    { path: GUEST_MODULE_PATH, hostPath: build.module, mode: 0o644 },
    ...GUEST_TOOLS.map((tool) => ({ path: `${GUEST_TOOLS_DIR}/${tool}`, hostPath: build.tools[tool], mode: 0o755 })),
    ...GUEST_KERNELS.map((kernel) => ({ path: `${GUEST_KERNELS_DIR}/${kernel}.spv`, hostPath: build.kernels[kernel], mode: 0o644 })),
  ];
}

/** A gzip newc initramfs: busybox, the driver and its tools, and an /init running `initBody`. */
export function guestImage(kit: Pick<Kit, 'busybox'>, build: GuestDriverBuild, initBody: string, opts: GuestImageOptions = {}): Promise<Buffer> {
  return guestInitramfs(kit, {
    init: initScript(initBody, opts.marker !== undefined ? { marker: opts.marker } : {}),
    files: [...driverFiles(build), ...(opts.files ?? [])],
  });
}
