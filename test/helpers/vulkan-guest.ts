/**
 * Running Vulkan programs in the Debian guest through mdgpu's ICD (libvulkan_mdgpu, installed
 * from the mdgpu-vulkan-icd package): a real daemon with one or more vGPUs on the host's compute
 * device, a Debian guest per vGPU booted under TCG, `modprobe mdgpu`, then the job, whose console
 * the caller parses. Programs that are not in the image (test fixtures) are compiled in the kit
 * against trixie's Vulkan headers and loader, cached by content, and copied into the guest.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDaemon, type RunningVgpu, type VgpuConfig } from '../../src/cli/daemon.js';
import { runInChroot } from '../../src/kit/chroot.js';
import type { GuestFile } from '../../src/kit/initramfs.js';
import type { Kit } from '../../src/kit/kit-tree.js';
import { acquireLock } from '../../src/kit/locks.js';
import { runGuest, type AccelChoice, type GuestResult } from '../../src/kit/qemu.js';
import { debianGuest } from '../../src/guest/debian-boot.js';
import { ensureDebianImage, type DebianImage } from '../../src/guest/rootfs.js';

/** Where the ICD's manifest is in the guest (the mdgpu-vulkan-icd package). */
export const ICD_MANIFEST = '/usr/share/vulkan/icd.d/mdgpu_icd.x86_64.json';

/** The job's prelude: the module, then only mdgpu's ICD for the loader. */
export const VULKAN_PRELUDE = `modprobe mdgpu || { echo "MDGPU-VK modprobe FAIL"; exit 1; }
export VK_DRIVER_FILES=${ICD_MANIFEST}
`;

/**
 * Compile C programs against Vulkan in the kit (gcc, libvulkan-dev): `sources` are host paths,
 * each becomes a binary of its base name. Cached in `<cache>/vkprog-<hash>/` by content.
 */
export async function buildVulkanPrograms(kit: Kit, sources: string[], log: (l: string) => void = () => {}): Promise<Record<string, string>> {
  const h = createHash('sha256').update(`vkprog-1 gcc -O2 -Wall -Werror -std=gnu11 -lvulkan -lpthread -lm\0kit=${kit.hash}\0`);
  for (const s of sources) h.update(`${path.basename(s)}\0`).update(await fsp.readFile(s));
  const dir = path.join(path.dirname(kit.root), `vkprog-${h.digest('hex').slice(0, 16)}`);
  const names = sources.map((s) => path.basename(s, '.c'));
  const outputs = Object.fromEntries(names.map((n) => [n, path.join(dir, n)]));
  if (names.every((n) => fs.existsSync(outputs[n]!))) return outputs;
  const release = await acquireLock(`${dir}.lock`, 'building Vulkan programs', log);
  try {
    if (names.every((n) => fs.existsSync(outputs[n]!))) return outputs;
    const work = await fsp.mkdtemp(path.join(kit.root, 'tmp', 'mdgpu-vkprog-'));
    try {
      for (const s of sources) await fsp.copyFile(s, path.join(work, path.basename(s)));
      const inKit = `/tmp/${path.basename(work)}`;
      for (const n of names) {
        await runInChroot(kit.root, inKit, `gcc -O2 -Wall -Werror -std=gnu11 -o ${n} ${n}.c -lvulkan -lpthread -lm`, { log, tag: '[vkprog]' });
      }
      const stage = `${dir}.tmp-${process.pid}`;
      await fsp.rm(stage, { recursive: true, force: true });
      await fsp.mkdir(stage, { recursive: true });
      for (const n of names) await fsp.copyFile(path.join(work, n), path.join(stage, n));
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.rename(stage, dir);
    } finally {
      await fsp.rm(work, { recursive: true, force: true });
    }
  } finally {
    await release();
  }
  return outputs;
}

export interface VulkanGuestJob {
  /** Shell text run after {@link VULKAN_PRELUDE} (module loaded, VK_DRIVER_FILES set). */
  body: string;
  /** Files added to the guest's root. */
  files?: GuestFile[];
}

export interface VulkanGuestOptions {
  /** One job per vGPU (each its own guest, all on one daemon). */
  jobs: VulkanGuestJob[];
  apertureSize?: number;
  quota?: number;
  memoryMiB?: number;
  accel?: AccelChoice;
  timeoutMs?: number;
  /** Console lines as they arrive (with the vGPU's name). */
  onLine?: (vgpu: string, line: string) => void;
  /** Extra vGPU settings. */
  vgpu?: Partial<VgpuConfig>;
  /** Called with the daemon's vGPUs once they run (to watch them from the host). */
  onStart?: (vgpus: RunningVgpu[]) => void;
  /** More QEMU arguments for every guest (e.g. a second serial port the host talks through). */
  extraArgs?: string[];
  log?: (line: string) => void;
}

export interface VulkanGuestResult {
  vgpu: string;
  guest: GuestResult;
  /** The job's exit status (`MDGPU-VK-END rc=N`), or null if it never ended. */
  rc: number | null;
  /** The console lines of the job (between its BEGIN and END lines). */
  lines: string[];
}

const MARKER = 'MDGPU-VK';

/** Boot one Debian guest per job against one daemon and run the jobs. */
export async function runVulkanGuests(kit: Kit, options: VulkanGuestOptions): Promise<VulkanGuestResult[]> {
  const log = options.log ?? (() => {});
  const image: DebianImage = await ensureDebianImage(kit, { log });
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdgpu-vk-'));
  const apertureSize = options.apertureSize ?? 256 << 20;
  const daemon = startDaemon({
    vgpus: options.jobs.map((_, i) => ({
      name: `vk${i}`,
      socket: path.join(dir, `vk${i}.sock`),
      apertureSize,
      quota: options.quota ?? apertureSize / 2,
      ...options.vgpu,
    })),
    compute: {},
  });
  try {
    options.onStart?.(daemon.vgpus);
    return await Promise.all(
      daemon.vgpus.map(async (vgpu, i) => {
        const job = options.jobs[i]!;
        const guest = await runGuest(kit, {
          ...(await debianGuest(kit, image, VULKAN_PRELUDE + job.body, { marker: MARKER, files: job.files ?? [] })),
          accel: options.accel ?? 'tcg',
          memoryMiB: options.memoryMiB ?? 1024,
          timeoutMs: options.timeoutMs ?? 600_000,
          vfioUser: [{ socket: vgpu.config.socket, id: 'mdgpu0' }],
          ...(options.extraArgs ? { extraArgs: options.extraArgs } : {}),
          ...(options.onLine ? { onLine: (l: string) => options.onLine!(vgpu.config.name, l) } : {}),
        });
        const all = guest.output.split('\n').map((l) => l.replace(/\r$/, ''));
        const begin = all.findIndex((l) => l.trim() === `${MARKER}-BEGIN`);
        const endAt = all.findIndex((l) => l.startsWith(`${MARKER}-END rc=`));
        const rc = endAt >= 0 ? Number(/rc=(\d+)/.exec(all[endAt]!)?.[1]) : null;
        const lines = all.slice(begin >= 0 ? begin + 1 : 0, endAt >= 0 ? endAt : all.length);
        return { vgpu: vgpu.config.name, guest, rc, lines };
      }),
    );
  } finally {
    await daemon.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
