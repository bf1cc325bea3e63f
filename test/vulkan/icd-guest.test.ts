/**
 * mdgpu's Vulkan driver (libvulkan_mdgpu, package mdgpu-vulkan-icd) in a real Debian guest
 * under TCG, against a real daemon on the host's Vulkan device: Debian's `vulkaninfo` (the full
 * output) exits 0 and lists the mdgpu device, whose limits are the capability record's as the
 * host computes it (docs/device.md, "Capabilities"), and vk-probe (test/vulkan/fixtures) sees the
 * instance, the device, its memory types and queue family, and runs checked work through the
 * loader: saxpy through a compute pipeline, fill, update, an unaligned copy, timestamps, a
 * command buffer larger than one submission may be (split by the driver), and a timeline
 * semaphore the queue waits for and the host signals.
 */
import t from 'tap';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureKit } from '../../src/kit/kit.js';
import { setLogSink } from '../../src/log.js';
import type { CapsRecord } from '../../src/vgpu/caps.js';
import type { RunningVgpu } from '../../src/cli/daemon.js';
import { buildVulkanPrograms, runVulkanGuests } from '../helpers/vulkan-guest.js';

setLogSink(() => {});
const here = path.dirname(fileURLToPath(import.meta.url));
const kit = await ensureKit();
const programs = await buildVulkanPrograms(kit, [path.resolve(here, '../../../test/vulkan/fixtures/vk-probe.c')]);

let host: { caps: Omit<CapsRecord, 'maxMemoryAllocationSize'>; quota: number } | undefined;
const [run] = await runVulkanGuests(kit, {
  jobs: [
    {
      body: `vulkaninfo > /tmp/vulkaninfo.txt 2>&1; echo "VKINFO-RC $?"; cat /tmp/vulkaninfo.txt
vk-probe /usr/share/mdgpu/saxpy.spv; echo "VKPROBE-RC $?"`,
      files: [{ path: '/usr/local/bin/vk-probe', hostPath: programs['vk-probe']!, mode: 0o755 }],
    },
  ],
  apertureSize: 256 << 20,
  quota: 128 << 20,
  onStart: (vgpus: RunningVgpu[]) => {
    const v = vgpus[0]!;
    host = { caps: v.executor!.caps(v.device.queues.limits), quota: v.device.memory.quota };
  },
});
const lines = run!.lines.map((l) => l.trim());
const text = lines.join('\n');

t.test('the guest ran the job', async (t) => {
  t.equal(run!.rc, 0, `the job ended (rc ${run!.rc})`);
  t.notOk(run!.guest.timedOut, 'QEMU exited by itself');
});

/** vulkaninfo's `name = value` of the device's first section that has it. */
function info(name: string): string | undefined {
  const m = new RegExp(`^${name}\\s*= (.*)$`, 'm').exec(text);
  return m?.[1]?.trim();
}

/** vulkaninfo's `name: count = 3` arrays. */
function infoArray(name: string): number[] {
  const at = lines.findIndex((l) => l.startsWith(`${name}: count =`));
  if (at < 0) return [];
  const n = Number(/count = (\d+)/.exec(lines[at]!)?.[1]);
  return lines.slice(at + 1, at + 1 + n).map(Number);
}

t.test('vulkaninfo (full output): exit 0, the mdgpu device with the capability record as its limits', async (t) => {
  t.ok(lines.includes('VKINFO-RC 0'), 'vulkaninfo exits 0');
  t.ok(host, 'the host side of the record');
  const c = host!.caps;
  t.equal(info('deviceType'), 'PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU');
  t.equal(info('vendorID'), '0x4d44', "mdgpu's PCI vendor id");
  t.equal(info('deviceID'), '0x4750');
  t.match(info('deviceName') ?? '', /^mdgpu \(/, `deviceName: ${info('deviceName')}`);
  t.match(info('apiVersion') ?? '', /^1\.3\./, `apiVersion ${info('apiVersion')}`);
  t.equal(info('driverName'), 'mdgpu');
  const name = new TextDecoder().decode(c.hostDeviceName).replace(/\0.*$/s, '');
  t.ok(info('deviceName')?.includes(name), `the host device's name in it (${name})`);
  const limits: [string, number][] = [
    ['maxComputeSharedMemorySize', c.maxComputeSharedMemorySize],
    ['maxComputeWorkGroupInvocations', c.maxComputeWorkGroupInvocations],
    ['maxPushConstantsSize', c.maxPushConstantsSize],
    ['maxBoundDescriptorSets', c.maxBoundDescriptorSets],
    ['maxPerStageDescriptorStorageBuffers', c.maxPerStageDescriptorStorageBuffers],
    ['maxPerStageDescriptorUniformBuffers', c.maxPerStageDescriptorUniformBuffers],
    ['maxDescriptorSetStorageBuffers', c.maxDescriptorSetStorageBuffers],
    ['maxDescriptorSetUniformBuffers', c.maxDescriptorSetUniformBuffers],
    ['maxStorageBufferRange', c.maxStorageBufferRange],
    ['maxUniformBufferRange', c.maxUniformBufferRange],
    ['minStorageBufferOffsetAlignment', c.minStorageBufferOffsetAlignment],
    ['minUniformBufferOffsetAlignment', c.minUniformBufferOffsetAlignment],
  ];
  for (const [k, v] of limits) t.equal(Number(info(k)), v, `${k} = ${v}, the record's`);
  t.same(
    infoArray('maxComputeWorkGroupCount'),
    [c.maxComputeWorkGroupCountX, c.maxComputeWorkGroupCountY, c.maxComputeWorkGroupCountZ],
    'maxComputeWorkGroupCount',
  );
  t.same(infoArray('maxComputeWorkGroupSize'), [c.maxComputeWorkGroupSizeX, c.maxComputeWorkGroupSizeY, c.maxComputeWorkGroupSizeZ], 'maxComputeWorkGroupSize');
  t.equal(Number(info('timestampPeriod')), 1, 'timestampPeriod: TIMESTAMP writes ns');
  t.equal(Number(info('subgroupSize')), c.subgroupSize, `subgroupSize ${c.subgroupSize}`);
  t.equal(Number(info('maxMemoryAllocationSize')), host!.quota, 'maxMemoryAllocationSize: the quota');
  t.match(text, /queueFlags\s*= QUEUE_COMPUTE_BIT \| QUEUE_TRANSFER_BIT/, 'one queue family: compute and transfer');
  t.match(text, /timestampValidBits\s*= 64/, 'with timestamps');
  t.match(text, /VK_EXT_memory_budget/, 'VK_EXT_memory_budget offered');
  t.notMatch(text, /VK_KHR_swapchain/, 'no presentation');
});

t.test('vk-probe: the device through the loader, and checked work on it', async (t) => {
  const probe = lines.filter((l) => l.startsWith('VKPROBE'));
  if (!t.ok(lines.includes('VKPROBE-RC 0'), 'vk-probe exits 0')) t.comment(probe.join('\n'));
  t.ok(probe.includes('VKPROBE devices count=1'), 'one physical device');
  t.ok(probe.includes('VKPROBE memtype index=0 flags=0x7 heap=0'), 'memory type 0: device-local, host-visible, coherent');
  t.ok(probe.includes('VKPROBE memtype index=1 flags=0xf heap=0'), 'memory type 1: ... and host-cached');
  t.ok(probe.includes(`VKPROBE heap size=${host!.quota} flags=0x1`), 'one device-local heap: the quota');
  t.ok(probe.includes('VKPROBE queuefamily index=0 flags=0x6 count=1 timestampbits=64'), 'the queue family');
  t.ok(probe.includes('VKPROBE format rgba8 linear=0x0 optimal=0x0 buffer=0x0'), 'no format has features');
  for (const check of ['fence', 'saxpy', 'fill', 'update', 'copy-unaligned', 'timestamps', 'split', 'timeline']) {
    const l = probe.find((x) => x.startsWith(`VKPROBE-CHECK ${check} `));
    t.match(l ?? '', / ok=1 /, l ?? `${check}: no line`);
  }
  t.ok(probe.includes('VKPROBE-END fail=0'), 'nothing failed');
});
