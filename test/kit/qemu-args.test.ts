import t from 'tap';
import { DEFAULT_APPEND, kvmPresent, qemuArgs, rootPortId, vfioUserDeviceJson } from '../../src/kit/qemu.js';

/** Values of every occurrence of option `opt`. */
function values(args: string[], opt: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a === opt) out.push(args[i + 1]!);
  });
  return out;
}

t.test('defaults: q35, TCG, memfd share=on backing all RAM, fast boot options', async (t) => {
  const a = qemuArgs({ kernel: '/k', initrd: '/i' });
  t.same(values(a, '-machine'), ['q35,memory-backend=mem']);
  t.same(values(a, '-accel'), ['tcg']);
  t.same(values(a, '-m'), ['512M']);
  t.same(values(a, '-object'), ['memory-backend-memfd,id=mem,size=512M,share=on']);
  for (const flag of ['-nodefaults', '-no-reboot']) t.ok(a.includes(flag), flag);
  t.same(values(a, '-display'), ['none']);
  t.same(values(a, '-nic'), ['none']);
  t.same(values(a, '-serial'), ['stdio']);
  t.same(values(a, '-smp'), ['1']);
  t.same(values(a, '-kernel'), ['/k']);
  t.same(values(a, '-initrd'), ['/i']);
  t.same(values(a, '-append'), [DEFAULT_APPEND]);
  t.match(DEFAULT_APPEND, /console=ttyS0/);
  t.match(DEFAULT_APPEND, /panic=-1/);
  t.match(DEFAULT_APPEND, /no_timer_check/);
  t.same(values(a, '-cpu'), [], 'TCG keeps QEMU’s default CPU');
  t.same(values(a, '-device'), [], 'no devices, no root ports');
});

t.test('vfio-user devices: JSON -device behind pinned root ports', async (t) => {
  const a = qemuArgs({
    vfioUser: [{ socket: '/run/a.sock' }, { socket: '/run/b.sock', id: 'gpu1', props: { 'x-msg-timeout': 10000 } }],
    devices: [{ driver: 'edu' }],
    spareRootPorts: 1,
    memoryMiB: 2048,
    smp: 2,
  });
  t.same(values(a, '-m'), ['2048M']);
  t.same(values(a, '-object'), ['memory-backend-memfd,id=mem,size=2048M,share=on'], 'backend size follows -m');
  t.same(values(a, '-smp'), ['2']);
  const devs = values(a, '-device');
  const ports = devs.filter((d) => d.startsWith('pcie-root-port,'));
  t.same(ports, [
    'pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=0x10.0',
    'pcie-root-port,id=rp1,bus=pcie.0,chassis=2,addr=0x11.0',
    'pcie-root-port,id=rp2,bus=pcie.0,chassis=3,addr=0x12.0',
    'pcie-root-port,id=rp3,bus=pcie.0,chassis=4,addr=0x13.0',
  ]);
  const json = devs.filter((d) => d.startsWith('{')).map((d) => JSON.parse(d) as Record<string, unknown>);
  t.same(json[0], { driver: 'vfio-user-pci', socket: { path: '/run/a.sock', type: 'unix' }, bus: 'rp0', addr: '0', id: 'mdgpu0' });
  t.same(json[1], {
    driver: 'vfio-user-pci',
    socket: { path: '/run/b.sock', type: 'unix' },
    bus: 'rp1',
    addr: '0',
    id: 'gpu1',
    'x-msg-timeout': 10000,
  });
  t.same(json[2], { driver: 'edu', bus: 'rp2', addr: '0', id: 'dev2' });
  t.equal(json.length, 3);
  // Root ports come before the devices that plug into them.
  t.ok(a.indexOf(ports[0]!) < a.indexOf(devs.find((d) => d.includes('vfio-user-pci'))!));
  t.same(values(a, '-kernel'), [], 'no kernel, no -append');
  t.same(values(a, '-append'), []);
});

t.test('accelerators, serial, cpu, extra args', async (t) => {
  const kvm = qemuArgs({ accel: 'kvm', serial: 'file:/tmp/s.log', extraArgs: ['-d', 'guest_errors'], append: 'console=ttyS0 x' });
  t.same(values(kvm, '-accel'), ['kvm']);
  t.same(values(kvm, '-cpu'), ['host'], 'KVM uses the host CPU model');
  t.same(values(kvm, '-serial'), ['file:/tmp/s.log']);
  t.same(kvm.slice(-2), ['-d', 'guest_errors']);
  const q = qemuArgs({ accel: 'qtest' });
  t.same(values(q, '-accel'), ['qtest']);
  t.same(values(q, '-serial'), [], 'qtest has no serial console');
  t.same(values(qemuArgs({ cpu: 'max' }), '-cpu'), ['max']);
  t.same(values(qemuArgs({ kernel: '/k', append: 'quiet' }), '-append'), ['quiet']);
  t.same(
    values(qemuArgs({ rootPortSlot: 0x1c, devices: [{ driver: 'edu', id: 'e' }] }), '-device')[0],
    'pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=0x1c.0',
  );
  t.equal(rootPortId(3), 'rp3');
});

t.test('invalid options are rejected', async (t) => {
  t.throws(() => qemuArgs({ memoryMiB: 0 }), RangeError);
  t.throws(() => qemuArgs({ memoryMiB: 1.5 }), RangeError);
  t.throws(() => qemuArgs({ rootPortSlot: 0x1e, spareRootPorts: 2 }), /Too many root ports/);
});

t.test('vfioUserDeviceJson is the only accepted form: nested socket object', async (t) => {
  const v = JSON.parse(vfioUserDeviceJson({ socket: '/s p"ace.sock' }, 'rp5', 'x')) as { socket: { path: string; type: string } };
  t.same(v.socket, { path: '/s p"ace.sock', type: 'unix' }, 'paths with spaces and quotes survive');
});

t.test('kvmPresent reads vmx/svm from cpuinfo', async (t) => {
  t.equal(kvmPresent('processor : 0\nflags\t\t: fpu vme de pse vmx sse\n'), true);
  t.equal(kvmPresent('flags\t\t: fpu svm\n'), true);
  t.equal(kvmPresent('flags\t\t: fpu hypervisor sse4_2\n'), false);
  t.equal(kvmPresent('vmx appears outside the flags line\nflags : fpu\n'), false);
  t.type(kvmPresent(), 'boolean');
});
