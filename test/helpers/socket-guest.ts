/**
 * A guest driver played over a real vfio-user socket, the way QEMU and a guest reach mdgpu: the
 * aperture (BAR0) is mapped from the file descriptor the region-info reply carries, so buffer,
 * ring and fence accesses are plain loads and stores with no message at all, and every register
 * access (the mailbox, doorbells) is a REGION_READ/WRITE round trip — a trapped access. Used
 * where the daemon runs in another process (bench:hostile), so that what is measured is what a
 * VM sees.
 */
import { VfioUserClient } from '../../src/client/client.js';
import type { NativeBinding } from '../../src/native/binding.js';
import { encodeSubmission } from '../../src/vgpu/command-builder.js';
import { APERTURE_BAR, REGISTER_BAR } from '../../src/vgpu/device.js';
import { KERNEL_STATES, MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { QUEUE_CONTROL_SIZE, QueueControl } from '../../src/vgpu/queue-ring.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';

type RegName = keyof typeof MDGPU_REGS;

export class SocketGuest {
  readonly aperture: Uint8Array;
  readonly view: DataView;
  ctx = 0;
  private readonly mapping: ArrayBuffer;

  private constructor(
    readonly client: VfioUserClient,
    private readonly native: NativeBinding,
    mapping: ArrayBuffer,
  ) {
    this.mapping = mapping;
    this.aperture = new Uint8Array(mapping);
    this.view = new DataView(mapping);
  }

  /** Connect, map the aperture from its region fd, and create a context. */
  static async connect(native: NativeBinding, socketPath: string): Promise<SocketGuest> {
    const client = VfioUserClient.connect(native, socketPath);
    await client.version();
    const region = await client.regionInfo(APERTURE_BAR);
    if (region.fd === null) throw new Error('the aperture came without a file descriptor');
    const size = Number(region.info.size);
    const mapping = native.mmap(region.fd, Number(region.info.offset), size, native.PROT_READ | native.PROT_WRITE);
    native.close(region.fd);
    const guest = new SocketGuest(client, native, mapping);
    guest.ctx = (await guest.op(MAILBOX_OPS.CTX_CREATE.code)).ret;
    return guest;
  }

  async write(name: RegName, value: number): Promise<void> {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    await this.client.regionWrite(REGISTER_BAR, MDGPU_REGS[name].offset, b);
  }

  async read(name: RegName): Promise<number> {
    const b = await this.client.regionRead(REGISTER_BAR, MDGPU_REGS[name].offset, 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }

  /** One mailbox operation: arguments, opcode, doorbell, then the status and results. */
  async op(code: number, ...args: number[]): Promise<{ result: number; ret: number; ret1: number }> {
    for (const [i, v] of args.entries()) await this.write(`MBOX_ARG${i}` as RegName, v);
    await this.write('MBOX_OPCODE', code);
    await this.write('MBOX_DOORBELL', 1);
    return { result: (await this.read('MBOX_STATUS')) & 0xffff, ret: await this.read('MBOX_RET0'), ret1: await this.read('MBOX_RET1') };
  }

  async alloc(size: number): Promise<{ handle: number; offset: number }> {
    const r = await this.op(MAILBOX_OPS.BO_ALLOC.code, this.ctx, size, 0, 0, 0);
    if (r.result !== 0) throw new Error(`BO_ALLOC failed: ${r.result}`);
    return { handle: r.ret, offset: r.ret1 };
  }

  /** KERNEL_CREATE and wait for the build; resolves with the kernel, or rejects with its result code. */
  async kernel(spirv: Uint8Array, bindings: number, pushBytes: number): Promise<number> {
    const bo = await this.alloc(spirv.length);
    this.aperture.set(spirv, bo.offset);
    const r = await this.op(MAILBOX_OPS.KERNEL_CREATE.code, this.ctx, bo.handle, 0, spirv.length, bindings, pushBytes);
    if (r.result !== 0) throw Object.assign(new Error(`KERNEL_CREATE failed: ${r.result}`), { result: r.result });
    for (;;) {
      const s = await this.op(MAILBOX_OPS.KERNEL_STATUS.code, this.ctx, r.ret);
      if (s.ret === KERNEL_STATES.READY.code) return r.ret;
      if (s.ret === KERNEL_STATES.FAILED.code) throw Object.assign(new Error(`kernel ${r.ret} refused: ${s.ret1}`), { result: s.ret1 });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** A queue: publish(bytes) copies into the ring and rings only when the device asks. */
  async queue(ringBytes = 0x10000): Promise<{ id: number; publish: (bytes: Uint8Array) => Promise<void>; completed: () => bigint; ring: { offset: number } }> {
    const ring = await this.alloc(QUEUE_CONTROL_SIZE + ringBytes);
    const q = await this.op(MAILBOX_OPS.QUEUE_CREATE.code, this.ctx, ring.handle, 0);
    if (q.result !== 0) throw new Error(`QUEUE_CREATE failed: ${q.result}`);
    let tail = 0n;
    const publish = async (bytes: Uint8Array) => {
      for (let i = 0; i < bytes.length; i++) this.aperture[ring.offset + QUEUE_CONTROL_SIZE + Number((tail + BigInt(i)) % BigInt(ringBytes))] = bytes[i]!;
      tail += BigInt(bytes.length);
      this.view.setBigUint64(ring.offset + QueueControl.fields.tail.offset, tail, true);
      if (this.view.getUint32(ring.offset + QueueControl.fields.doorbellNeeded.offset, true) === 1) await this.write('QUEUE_DOORBELL', q.ret);
    };
    const completed = () => this.view.getBigUint64(ring.offset + QueueControl.fields.completed.offset, true);
    return { id: q.ret, publish, completed, ring };
  }

  /** Submissions that completed (successfully or not) so far on a queue, waited for until `n`. */
  async waitCompleted(completed: () => bigint, n: bigint, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (completed() < n) {
      if (Date.now() > deadline) throw new Error(`only ${completed()} of ${n} submissions completed`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** FILL `size` bytes + fence, published, and waited for; returns the fence value seen. */
  static fillWithFence(target: { handle: number }, fence: { handle: number }, value: bigint): Uint8Array {
    return encodeSubmission([{ op: 'fill', dst: { buffer: target.handle, offset: 0 }, size: 0x1000, value: Number(value & 0xffffn) }], {
      dst: { buffer: fence.handle, offset: 0 },
      value,
    });
  }

  close(): void {
    this.native.munmap(this.mapping);
    this.client.close();
  }
}
