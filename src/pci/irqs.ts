/**
 * Interrupt delivery through the eventfds the client hands over (vfio's SET_IRQS semantics,
 * linux `include/uapi/linux/vfio.h`).
 *
 * The controller owns every fd given to it: an fd is closed when it is replaced, when its index
 * is disabled, and when the client goes away (`releaseAll`). MSI-X vector masking is emulated by
 * QEMU, so the device never masks MSI-X vectors itself; it only keeps a pending bit for a vector
 * that fired before the client assigned an eventfd to it.
 */
import { guestError, tracer } from '../log.js';

const traceIrq = tracer('irq');

export const IrqIndex = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;
export const IRQ_INDEX_COUNT = 5;
export const IRQ_INDEX_NAMES = ['INTx', 'MSI', 'MSI-X', 'ERR', 'REQ'] as const;

/** The syscalls the controller needs, injected so the model runs without the native addon. */
export interface EventFdOps {
  /** Add 1 to the eventfd's counter (write(2) of a u64). */
  signal(fd: number): void;
  close(fd: number): void;
  /** Call `onReadable` whenever `fd` becomes readable (after draining it); returns a stop function. */
  watch(fd: number, onReadable: () => void): () => void;
}

export type IrqData = { kind: 'none' } | { kind: 'bool'; values: boolean[] } | { kind: 'eventfd'; fds: number[] };

/** A decoded SET_IRQS request, in device terms. */
export interface SetIrqsRequest {
  index: number;
  action: 'mask' | 'unmask' | 'trigger';
  start: number;
  count: number;
  data: IrqData;
}

/** An error the transport turns into an errno reply (EINVAL unless stated). */
export class IrqError extends Error {
  constructor(
    message: string,
    readonly errno: 'EINVAL' | 'ENOTSUP' = 'EINVAL',
  ) {
    super(message);
  }
}

export interface IrqControllerConfig {
  /** MSI-X vectors (0 = no MSI-X capability). */
  msixVectors: number;
  /** Whether the function has an INTx pin. */
  intx: boolean;
}

export class IrqController {
  private readonly triggers: (number | null)[][];
  private intxResampleFd: number | null = null;
  private stopResampleWatch: (() => void) | null = null;
  private intxMasked = false;
  private intxLevel = false;
  private intxDisabledByCommand = false;
  private readonly msixPending: boolean[];
  /** Count of interrupts signalled per index, for metrics and tests. */
  readonly signalled = [0, 0, 0, 0, 0];

  constructor(
    private readonly config: IrqControllerConfig,
    private readonly ops: EventFdOps,
  ) {
    this.triggers = [new Array<number | null>(config.intx ? 1 : 0).fill(null), [], new Array<number | null>(config.msixVectors).fill(null), [], []];
    this.msixPending = new Array<boolean>(config.msixVectors).fill(false);
  }

  /** Vectors (subindices) available at an index; what GET_IRQ_INFO reports. */
  count(index: number): number {
    return this.triggers[index]?.length ?? 0;
  }

  /** Apply a SET_IRQS request. Fds in `data` become owned by the controller even on error. */
  set(req: SetIrqsRequest): void {
    const fds = req.data.kind === 'eventfd' ? req.data.fds : [];
    try {
      this.apply(req);
    } catch (err) {
      for (const fd of fds) this.ops.close(fd);
      throw err;
    }
  }

  private apply(req: SetIrqsRequest): void {
    const vectors = this.triggers[req.index];
    if (vectors === undefined) throw new IrqError(`Bad IRQ index: ${req.index}`);
    const name = IRQ_INDEX_NAMES[req.index] ?? String(req.index);
    traceIrq(
      () =>
        `SET_IRQS ${name} ${req.action} ${req.data.kind} start=${req.start} count=${req.count}` +
        (req.data.kind === 'eventfd' ? ` fds=[${req.data.fds.join(',')}]` : ''),
    );

    // "DATA_NONE, count 0" disables the whole index (vfio.h: "ACTION_TRIGGER with DATA_NONE and count 0").
    if (req.action === 'trigger' && req.data.kind === 'none' && req.count === 0) {
      if (req.start !== 0) throw new IrqError(`Disabling ${name} needs start 0, got ${req.start}`);
      this.disableIndex(req.index);
      return;
    }
    if (req.count === 0 || req.start + req.count > vectors.length) {
      throw new IrqError(`IRQ range out of bounds: ${name} ${req.start}+${req.count} > ${vectors.length}`);
    }
    if (req.data.kind === 'bool' && req.data.values.length !== req.count) {
      throw new IrqError(`IRQ bool data has ${req.data.values.length} entries, count is ${req.count}`);
    }
    if (req.data.kind === 'eventfd' && req.data.fds.length !== 0 && req.data.fds.length !== req.count) {
      throw new IrqError(`IRQ eventfd data has ${req.data.fds.length} fds, count is ${req.count}`);
    }

    switch (req.action) {
      case 'trigger':
        if (req.data.kind === 'eventfd') {
          for (let i = 0; i < req.count; i++) this.assign(req.index, req.start + i, req.data.fds[i] ?? null);
        } else {
          // Loopback triggering (DATA_NONE / DATA_BOOL): fire as if the device had.
          for (let i = 0; i < req.count; i++) {
            if (req.data.kind === 'none' || req.data.values[i] === true) this.fire(req.index, req.start + i);
          }
        }
        return;
      case 'mask':
      case 'unmask':
        if (req.index !== IrqIndex.INTX) {
          // Only INTx is maskable here; MSI-X masking is emulated by QEMU (we do not report MASKABLE).
          throw new IrqError(`${name} is not maskable`);
        }
        if (req.action === 'unmask' && req.data.kind === 'eventfd') {
          this.setResampleFd(req.data.fds[0] ?? null);
        } else if (req.action === 'mask' && req.data.kind === 'eventfd') {
          throw new IrqError('INTx mask eventfds are not supported', 'ENOTSUP');
        } else if (req.data.kind === 'none' || (req.data.kind === 'bool' && req.data.values[0] === true)) {
          if (req.action === 'mask') this.intxMasked = true;
          else this.unmaskIntx();
        }
        return;
    }
  }

  private assign(index: number, vector: number, fd: number | null): void {
    const vectors = this.triggers[index]!;
    const old = vectors[vector];
    if (old !== null && old !== undefined && old !== fd) this.ops.close(old);
    vectors[vector] = fd;
    // Deliver an MSI-X interrupt that fired while the vector had no eventfd yet.
    if (fd !== null && index === IrqIndex.MSIX && this.msixPending[vector] === true) {
      this.msixPending[vector] = false;
      this.signal(index, fd);
    }
  }

  private disableIndex(index: number): void {
    const vectors = this.triggers[index]!;
    for (let i = 0; i < vectors.length; i++) this.assign(index, i, null);
    if (index === IrqIndex.INTX) {
      this.setResampleFd(null);
      this.intxMasked = false;
    }
    if (index === IrqIndex.MSIX) this.msixPending.fill(false);
  }

  private setResampleFd(fd: number | null): void {
    this.stopResampleWatch?.();
    this.stopResampleWatch = null;
    if (this.intxResampleFd !== null && this.intxResampleFd !== fd) this.ops.close(this.intxResampleFd);
    this.intxResampleFd = fd;
    if (fd !== null) {
      // KVM signals the resample fd when the guest EOIs the level interrupt: unmask, and
      // re-assert if the device still wants service (level semantics).
      this.stopResampleWatch = this.ops.watch(fd, () => this.unmaskIntx());
    }
  }

  private unmaskIntx(): void {
    this.intxMasked = false;
    this.updateIntx();
  }

  private fire(index: number, vector: number): void {
    if (index === IrqIndex.INTX) {
      this.intxLevel = true;
      this.updateIntx();
      return;
    }
    const fd = this.triggers[index]?.[vector];
    if (fd === null || fd === undefined) {
      if (index === IrqIndex.MSIX) this.msixPending[vector] = true;
      return;
    }
    this.signal(index, fd);
  }

  private signal(index: number, fd: number): void {
    this.signalled[index]!++;
    try {
      this.ops.signal(fd);
    } catch (err) {
      guestError('irq-signal', `Signalling ${IRQ_INDEX_NAMES[index]} eventfd ${fd} failed: ${(err as Error).message}`);
    }
  }

  /** Raise MSI-X vector `vector` (no-op with a log if out of range). */
  raiseMsix(vector: number): void {
    if (vector < 0 || vector >= this.config.msixVectors) {
      guestError('irq-vector', `MSI-X vector ${vector} out of range (${this.config.msixVectors} vectors)`);
      return;
    }
    this.fire(IrqIndex.MSIX, vector);
  }

  /** Set the INTx line level; an asserted, unmasked line signals once and then auto-masks. */
  setIntxLevel(level: boolean): void {
    this.intxLevel = level;
    this.updateIntx();
  }

  /** The COMMAND register's INTx-disable bit. */
  setIntxDisabled(disabled: boolean): void {
    this.intxDisabledByCommand = disabled;
    this.updateIntx();
  }

  get intxAsserted(): boolean {
    return this.intxLevel;
  }

  private updateIntx(): void {
    if (!this.intxLevel || this.intxMasked || this.intxDisabledByCommand) return;
    const fd = this.triggers[IrqIndex.INTX]?.[0];
    if (fd === null || fd === undefined) return;
    // Level-triggered: after asserting, treat the line as masked until the guest's EOI comes
    // back through the resample fd (KVM) or an UNMASK message (QEMU's userspace INTx path).
    this.intxMasked = true;
    this.signal(IrqIndex.INTX, fd);
  }

  /** MSI-X pending bits, 64 per u64, as the PBA reports them. */
  msixPendingBits(): boolean[] {
    return this.msixPending.slice();
  }

  hasMsixVector(vector: number): boolean {
    const fd = this.triggers[IrqIndex.MSIX]?.[vector];
    return fd !== null && fd !== undefined;
  }

  /** The client went away: close every eventfd it gave us. Device state (levels) stays. */
  releaseAll(): void {
    for (let index = 0; index < IRQ_INDEX_COUNT; index++) this.disableIndex(index);
    this.intxMasked = false;
  }

  /** Device reset: interrupts are deasserted, pending bits cleared; eventfds stay assigned. */
  reset(): void {
    this.intxLevel = false;
    this.intxMasked = false;
    this.intxDisabledByCommand = false;
    this.msixPending.fill(false);
  }

  /** Fds currently held, for leak checks. */
  heldFds(): number[] {
    const fds: number[] = [];
    for (const vectors of this.triggers) for (const fd of vectors) if (fd !== null) fds.push(fd);
    if (this.intxResampleFd !== null) fds.push(this.intxResampleFd);
    return fds;
  }
}
