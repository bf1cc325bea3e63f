/**
 * Booting the Debian guest image (src/guest/rootfs.ts) fast, without an init system:
 *
 * 1. the guest kernel (the root's own /boot/vmlinuz, the kit's kernel version) starts a small
 *    busybox initramfs made per boot: it loads virtio_blk, ext4 and overlay (uncompressed in the
 *    base root's cache entry), finds the two read-only disks by their serial numbers, mounts
 *    them, stacks them with a tmpfs on top (`lowerdir=layer:base`), copies the job in and
 *    `switch_root`s into Debian;
 * 2. Debian's /bin/sh runs our init there: /proc, /sys, /dev/pts, tmpfs on /run and /tmp, then
 *    `<marker>-BEGIN`, the job, `<marker>-END rc=N`, and `busybox poweroff -f`.
 *
 * The disks are attached read-only, so any number of guests share one image and none can change
 * it; what a guest writes goes to its tmpfs and is gone when it powers off.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureKit } from '../kit/kit.js';
import type { Kit } from '../kit/kit-tree.js';
import { guestInitramfs, initScript, type GuestFile } from '../kit/initramfs.js';
import { runGuest, type RunGuestOptions, type VirtioDisk } from '../kit/qemu.js';
import { ensureDebianImage, type DebianImage } from './rootfs.js';

/** Serial numbers of the two disks; stage 1 finds them by these in /sys/block/vd*\/serial. */
export const BASE_DISK_SERIAL = 'mdgpu-base';
export const LAYER_DISK_SERIAL = 'mdgpu-layer';
/** Where the job's init is in the Debian root. */
export const DEBIAN_INIT_PATH = '/usr/local/sbin/mdgpu-init';
/** Prefix of stage 1's lines (`MDGPU-STAGE1 FAIL <why>` when it cannot reach Debian). */
export const STAGE1_MARKER = 'MDGPU-STAGE1';

/** The busybox /init of the initramfs: modules, disks, overlay, switch_root. */
export function stage1Init(modules: string[]): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "${STAGE1_MARKER} FAIL $*"; sync; poweroff -f; }
echo "${STAGE1_MARKER} start uptime=$(cut -d' ' -f1 /proc/uptime)"
for m in ${modules.map(q).join(' ')}; do insmod "/lib/modules/$m" || fail "insmod $m"; done
disk() {
  for b in /sys/block/vd*; do
    [ "$(cat "$b/serial" 2>/dev/null)" = "$1" ] && { echo "/dev/\${b##*/}"; return 0; }
  done
  return 1
}
i=0
until base=$(disk ${BASE_DISK_SERIAL}) && layer=$(disk ${LAYER_DISK_SERIAL}); do
  i=$((i + 1)); [ $i -le 200 ] || fail "no disks with serials ${BASE_DISK_SERIAL} and ${LAYER_DISK_SERIAL}"; usleep 50000
done
mkdir -p /mnt/base /mnt/layer /mnt/rw /newroot
mount -t ext4 -o ro "$base" /mnt/base || fail "mount $base"
mount -t ext4 -o ro "$layer" /mnt/layer || fail "mount $layer"
mount -t tmpfs -o mode=0755 tmpfs /mnt/rw && mkdir /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/layer:/mnt/base,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot || fail "mount overlay"
cp -a /stage2/. /newroot/ || fail "copy the job"
echo "${STAGE1_MARKER} ok base=$base layer=$layer uptime=$(cut -d' ' -f1 /proc/uptime)"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot ${DEBIAN_INIT_PATH}
fail "switch_root"
`;
}

/**
 * The init that runs in Debian (by Debian's /bin/sh, as PID 1): the prelude, `<marker>-BEGIN`,
 * `body` in a subshell, `<marker>-END rc=<its status>`, power off.
 */
export function debianInit(body: string, marker = 'MDGPU-INIT'): string {
  return `#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname -F /etc/hostname 2>/dev/null
cd /root
echo ${marker}-BEGIN
(
${body}
)
echo "${marker}-END rc=$?"
sync
busybox poweroff -f
`;
}

export interface DebianGuestOptions {
  /** Marker for the `<marker>-BEGIN` / `<marker>-END rc=N` lines (default `MDGPU-INIT`). */
  marker?: string;
  /** Files added to the Debian root (on its tmpfs layer) before the job runs. */
  files?: GuestFile[];
}

/** The two read-only disks: the base root and mdgpu's layer. */
export function debianDrives(image: DebianImage): VirtioDisk[] {
  return [
    { file: image.root.image, serial: BASE_DISK_SERIAL, id: 'base' },
    { file: image.layer.image, serial: LAYER_DISK_SERIAL, id: 'layer' },
  ];
}

/** The initramfs that boots `image` into Debian and runs `body` there. */
export async function debianInitramfs(kit: Pick<Kit, 'busybox'>, image: DebianImage, body: string, opts: DebianGuestOptions = {}): Promise<Buffer> {
  const files: GuestFile[] = image.root.stage1Modules.map((m) => ({ path: `/lib/modules/${path.basename(m)}`, hostPath: m, mode: 0o644 }));
  files.push({ path: `/stage2${DEBIAN_INIT_PATH}`, data: debianInit(body, opts.marker), mode: 0o755 });
  for (const f of opts.files ?? []) files.push({ ...f, path: `/stage2/${f.path.replace(/^\/+/, '')}` });
  await Promise.all(files.filter((f) => f.hostPath).map((f) => fsp.access(f.hostPath!)));
  return guestInitramfs(kit, {
    init: stage1Init(image.root.stage1Modules.map((m) => path.basename(m))),
    files,
  });
}

/**
 * What {@link runGuest} needs to boot `image` and run `body` in Debian: spread it into the
 * options (`runGuest(kit, { ...(await debianGuest(kit, image, body)), vfioUser, … })`).
 */
export async function debianGuest(
  kit: Pick<Kit, 'busybox'>,
  image: DebianImage,
  body: string,
  opts: DebianGuestOptions = {},
): Promise<Required<Pick<RunGuestOptions, 'kernel' | 'initrd' | 'drives'>>> {
  return { kernel: image.root.kernel, initrd: await debianInitramfs(kit, image, body, opts), drives: debianDrives(image) };
}

/**
 * `node build/src/guest/debian-boot.js [runs]`: boot the Debian image and, for comparison, the
 * kit's busybox initramfs with a job that only reports the guest's uptime, under TCG, and print
 * the times (the image is built first if needed).
 */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const runs = Number(argv[0] ?? 3);
  const kit = await ensureKit();
  const t0 = Date.now();
  const image = await ensureDebianImage(kit);
  process.stdout.write(`image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const body = 'echo "MDGPU-UPTIME $(cut -d" " -f1 /proc/uptime)"';
  const kinds = {
    debian: async () => debianGuest(kit, image, body),
    initramfs: async () => ({ initrd: await guestInitramfs(kit, { init: initScript(body) }) }),
  };
  for (const [name, boot] of Object.entries(kinds)) {
    for (let i = 0; i < runs; i++) {
      const r = await runGuest(kit, { ...(await boot()), accel: 'tcg', memoryMiB: 512, timeoutMs: 120_000 });
      const uptime = /MDGPU-UPTIME (\S+)/.exec(r.output)?.[1] ?? '?';
      process.stdout.write(
        `${name.padEnd(9)} run ${i + 1}: job started at guest uptime ${uptime} s, QEMU start to exit ${(r.durationMs / 1000).toFixed(2)} s (exit ${r.code})\n`,
      );
    }
  }
  return 0;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
