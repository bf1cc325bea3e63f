/**
 * Plays a guest driver from the host side of a device: mailbox operations through trapped
 * register accesses, and a queue filled by writing straight into the aperture (as a guest
 * process does through its mapping).
 */
import type { MdgpuDevice } from '../../src/vgpu/device.js';
import { REGISTER_BAR } from '../../src/vgpu/device.js';
import { MDGPU_REGS } from '../../src/vgpu/regs.js';
import { KERNEL_STATES, MAILBOX_OPS } from '../../src/vgpu/mailbox-ops.js';
import { QUEUE_CONTROL_SIZE, QueueControl } from '../../src/vgpu/queue-ring.js';

export class HostGuest {
  readonly view: DataView;
  readonly ctx: number;
  done: (string | null)[] = [];
  private waiters: (() => void)[] = [];
  /** Queues this guest created: their completions are its own. */
  private readonly queues = new Set<number>();

  constructor(readonly dev: MdgpuDevice) {
    this.view = new DataView(dev.aperture.buffer);
    this.ctx = this.op(MAILBOX_OPS.CTX_CREATE.code).ret;
    // Several guests may share a device (contexts of one VM): each counts its own queues only.
    const previous = dev.queues.onSubmissionDone;
    dev.queues.onSubmissionDone = (q, error, ns, latencyMs) => {
      previous?.(q, error, ns, latencyMs);
      if (!this.queues.has(q)) return;
      this.done.push(error);
      this.waiters.splice(0).forEach((f) => f());
    };
  }

  write(name: string, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.dev.pci.regionWrite(REGISTER_BAR, MDGPU_REGS[name as keyof typeof MDGPU_REGS].offset, b);
  }

  read(name: string): number {
    return new DataView(this.dev.pci.regionRead(REGISTER_BAR, MDGPU_REGS[name as keyof typeof MDGPU_REGS].offset, 4).buffer).getUint32(0, true);
  }

  op(code: number, ...args: number[]): { result: number; ret: number; ret1: number } {
    args.forEach((v, i) => this.write(`MBOX_ARG${i}`, v));
    this.write('MBOX_OPCODE', code);
    this.write('MBOX_DOORBELL', 1);
    return { result: this.read('MBOX_STATUS') & 0xffff, ret: this.read('MBOX_RET0'), ret1: this.read('MBOX_RET1') };
  }

  alloc(size: number): { handle: number; offset: number } {
    const r = this.op(MAILBOX_OPS.BO_ALLOC.code, this.ctx, size, 0, 0, 0);
    if (r.result !== 0) throw new Error(`BO_ALLOC failed: ${r.result}`);
    return { handle: r.ret, offset: r.ret1 };
  }

  /** KERNEL_CREATE, then KERNEL_STATUS until the build ended (as the guest driver does, contract 1.2). */
  async kernel(spirv: Uint8Array, bindings: number, pushBytes: number): Promise<number> {
    const bo = this.alloc(spirv.length);
    this.dev.aperture.set(spirv, bo.offset);
    const r = this.op(MAILBOX_OPS.KERNEL_CREATE.code, this.ctx, bo.handle, 0, spirv.length, bindings, pushBytes);
    if (r.result !== 0) throw new Error(`KERNEL_CREATE failed: ${r.result}`);
    const status = await this.kernelSettled(r.ret);
    if (status.state !== KERNEL_STATES.READY.code) throw new Error(`kernel ${r.ret} failed to build: result ${status.result}`);
    return r.ret;
  }

  /** KERNEL_STATUS of a kernel, polled until it is no longer BUILDING. */
  async kernelSettled(kernel: number, ctx = this.ctx): Promise<{ state: number; result: number }> {
    for (;;) {
      const s = this.op(MAILBOX_OPS.KERNEL_STATUS.code, ctx, kernel);
      if (s.result !== 0) throw new Error(`KERNEL_STATUS failed: ${s.result}`);
      if (s.ret !== KERNEL_STATES.BUILDING.code) return { state: s.ret, result: s.ret1 };
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** A queue and a publish function following the notification protocol. */
  queue(ringBytes = 0x10000): (bytes: Uint8Array) => void {
    const ring = this.alloc(QUEUE_CONTROL_SIZE + ringBytes);
    const q = this.op(MAILBOX_OPS.QUEUE_CREATE.code, this.ctx, ring.handle, 0);
    if (q.result !== 0) throw new Error(`QUEUE_CREATE failed: ${q.result}`);
    this.queues.add(q.ret);
    let tail = 0n;
    return (bytes) => {
      for (let i = 0; i < bytes.length; i++) this.dev.aperture[ring.offset + QUEUE_CONTROL_SIZE + Number((tail + BigInt(i)) % BigInt(ringBytes))] = bytes[i]!;
      tail += BigInt(bytes.length);
      this.view.setBigUint64(ring.offset + QueueControl.fields.tail.offset, tail, true);
      if (this.view.getUint32(ring.offset + QueueControl.fields.doorbellNeeded.offset, true) === 1) this.write('QUEUE_DOORBELL', q.ret);
    };
  }

  async completions(n: number): Promise<void> {
    while (this.done.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}
