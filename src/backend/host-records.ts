/**
 * A batch as the host driver's own records (`host-driver/include/mdgpu_host.h`, ABI 2.1):
 * `struct mdgpu_host_cmd2` per command, `struct mdgpu_host_descriptor` per descriptor, and the
 * data bytes (push constants, UPDATE data) the commands point into — what
 * `mdgpu_host_submit2` takes, and what a SUBMIT record of the submission ring carries
 * (ring.ts).
 *
 * One encoder for every path to the device, and it loads no C library: the in-process
 * {@link HostDevice} and the daemon's ring writer for the compute worker both use it, and the
 * daemon never loads the Vulkan driver. The layouts are data, below; host-library.ts checks them
 * against its koffi declarations of the same structs when it loads, and the library asserts
 * them statically.
 *
 * Why by hand into bytes: koffi's conversion of an array of objects with unions costs ~2 µs a
 * command, writing the bytes ~0.1 µs, and nothing is allocated per command or per batch: the
 * caller gives the buffer (a ring's mapping, reused forever).
 */
import type { DescriptorType, DeviceCommand, MemoryRange } from '../device-commands.js';

/** `MDGPU_HOST_OP_*`: the commands of `mdgpu_host_submit2`. */
export enum Op {
  Copy = 1, // MDGPU_HOST_OP_COPY
  Fill = 2, // MDGPU_HOST_OP_FILL
  Barrier = 4, // MDGPU_HOST_OP_BARRIER
  Timestamp = 5, // MDGPU_HOST_OP_TIMESTAMP
  Update = 6, // MDGPU_HOST_OP_UPDATE
  Dispatch2 = 7, // MDGPU_HOST_OP_DISPATCH2
}

/** `struct mdgpu_host_cmd2` (64 bytes) and its union members, as byte offsets in the command. */
export const CMD2 = {
  size: 64,
  op: 0,
  flags: 4,
  u: 8,
  copy: { srcMem: 8, dstMem: 12, srcOffset: 16, dstOffset: 24, size: 32 },
  fill: { mem: 8, value: 12, offset: 16, size: 24 },
  timestamp: { mem: 8, offset: 16 },
  update: { mem: 8, size: 12, offset: 16, dataOffset: 24 },
  dispatch2: { kernel: 8, firstDescriptor: 12, descriptorCount: 16, pushOffset: 20, pushSize: 24, base: 28, groups: 40, numWorkgroups: 52 },
} as const;

/** `struct mdgpu_host_descriptor` (40 bytes). */
export const DESCRIPTOR = { size: 40, mem: 0, set: 4, binding: 8, index: 12, type: 16, offset: 24, range: 32 } as const;

/** `struct mdgpu_host_status` (56 bytes). */
export const STATUS = {
  size: 56,
  submission: 0,
  result: 8,
  flags: 12,
  deviceBeginNs: 16,
  deviceEndNs: 24,
  deviceNs: 32,
  submitNs: 40,
  completeNs: 48,
} as const;
/** `MDGPU_HOST_STATUS_DEVICE_TIME`: the device times of a status are valid. */
export const STATUS_DEVICE_TIME = 1 << 0;

/** `enum mdgpu_host_descriptor_type`, by {@link DescriptorType}. */
export const DESCRIPTOR_TYPE = { storage: 0, uniform: 1 } as const;

/** `enum mdgpu_host_descriptor_type` of a {@link DescriptorType}; undefined for anything else. */
function descriptorType(type: unknown): number | undefined {
  return type === 'storage' ? DESCRIPTOR_TYPE.storage : type === 'uniform' ? DESCRIPTOR_TYPE.uniform : undefined;
}

// ---- argument checks (types only: the library checks ranges against the device) ----

/** `value` as an integer in 0..max, or a TypeError / RangeError with a Node-style `code`. */
export function checkIndex(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw Object.assign(new TypeError(`${name} must be an integer, got ${typeof value === 'number' ? value : typeof value}`), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  }
  if (value < 0 || value > max) {
    throw Object.assign(new RangeError(`${name} must be 0..${max}, got ${value}`), { code: 'ERR_OUT_OF_RANGE' });
  }
  return value;
}

/** Write a safe integer `value` (checked) as a little-endian u64, without a BigInt. */
function put64(v: DataView, at: number, i: number, name: string, value: unknown): void {
  const n = checkIndex(`command ${i}: ${name}`, value);
  v.setUint32(at, n >>> 0, true);
  v.setUint32(at + 4, Math.floor(n / 0x1_0000_0000), true);
}

/** A command's range `what`: checked to be an object; its offset (checked by the caller). */
function rangeOffset(i: number, what: string, r: MemoryRange | undefined): unknown {
  if (typeof r !== 'object' || r === null) throw new TypeError(`submit: command ${i}: ${what} must be a range { offset, size }`);
  return r.offset;
}

/** A command's range `what`: its size, checked. */
function rangeSize(i: number, what: string, r: MemoryRange | undefined): number {
  rangeOffset(i, what, r);
  return checkIndex(`command ${i}: ${what}.size`, r!.size);
}

/**
 * Encodes batches of {@link DeviceCommand}s whose kernels are `K` (a device's kernel objects):
 * {@link measure} first (shapes checked, sizes counted), then {@link encode} into the caller's
 * buffer. The counts of the last batch measured are in {@link cmdCount},
 * {@link descriptorCount} and {@link dataBytes}. Reused from batch to batch; allocates nothing.
 */
export class BatchEncoder<K> {
  /** Commands of the batch last measured. */
  cmdCount = 0;
  /** Descriptors of its dispatches. */
  descriptorCount = 0;
  /** Bytes of its data: push constants and UPDATE data, each piece padded to 4. */
  dataBytes = 0;

  /**
   * @param kernelId a dispatch's kernel as the records name it (a handle, or a ring id); throws a
   *                 TypeError for a kernel that is not the device's
   */
  constructor(private readonly kernelId: (kernel: K, i: number) => number) {}

  /**
   * Check the shapes of `commands` (arrays, typed arrays; TypeError otherwise) and count what
   * they need. Returns the bytes of the records: commands, then descriptors, then data.
   */
  measure(commands: readonly DeviceCommand<K>[]): number {
    if (!Array.isArray(commands)) throw new TypeError('submit: commands must be an array');
    let descriptors = 0;
    let data = 0;
    for (let i = 0; i < commands.length; i++) {
      const c = commands[i];
      if (c?.kind === 'dispatch') {
        if (!Array.isArray(c.descriptors)) throw new TypeError(`submit: command ${i}: descriptors must be an array`);
        if (!(c.pushConstants instanceof Uint8Array)) throw new TypeError(`submit: command ${i}: pushConstants must be a Uint8Array`);
        descriptors += c.descriptors.length;
        data += (c.pushConstants.byteLength + 3) & ~3;
      } else if (c?.kind === 'update') {
        if (!(c.data instanceof Uint8Array)) throw new TypeError(`submit: command ${i}: data must be a Uint8Array`);
        data += (c.data.byteLength + 3) & ~3;
      }
    }
    this.cmdCount = commands.length;
    this.descriptorCount = descriptors;
    this.dataBytes = data;
    return commands.length * CMD2.size + descriptors * DESCRIPTOR.size + data;
  }

  /**
   * Write the batch last {@link measure}d at `at` of `bytes` (`view` over the same buffer): its
   * commands, then its descriptors, then its data, every memory named `mem`. The caller zeroed
   * the bytes (pads and reserved fields are 0). Throws a TypeError or RangeError (with a `code`)
   * for a value of the wrong type or out of its field's range; the bytes are then half written.
   */
  encode(view: DataView, bytes: Uint8Array, at: number, commands: readonly DeviceCommand<K>[], mem: number): void {
    const v = view;
    const descAt = at + this.cmdCount * CMD2.size;
    const dataAt = descAt + this.descriptorCount * DESCRIPTOR.size;
    let d = 0; // descriptors so far
    let p = 0; // data bytes so far
    for (let i = 0; i < commands.length; i++) {
      const c = commands[i]!;
      const cmd = at + i * CMD2.size;
      switch (c?.kind) {
        case 'copy': {
          const size = rangeSize(i, 'src', c.src);
          if (rangeSize(i, 'dst', c.dst) !== size) {
            throw Object.assign(new RangeError(`command ${i}: COPY src.size ${size} and dst.size ${c.dst.size} differ`), { code: 'ERR_OUT_OF_RANGE' });
          }
          v.setUint32(cmd + CMD2.op, Op.Copy, true);
          v.setUint32(cmd + CMD2.copy.srcMem, mem, true);
          v.setUint32(cmd + CMD2.copy.dstMem, mem, true);
          put64(v, cmd + CMD2.copy.srcOffset, i, 'src.offset', c.src.offset);
          put64(v, cmd + CMD2.copy.dstOffset, i, 'dst.offset', c.dst.offset);
          put64(v, cmd + CMD2.copy.size, i, 'src.size', size);
          break;
        }
        case 'fill':
          v.setUint32(cmd + CMD2.op, Op.Fill, true);
          v.setUint32(cmd + CMD2.fill.mem, mem, true);
          // Any 32-bit pattern: 0..0xffffffff, or a negative int32 (-1 is 0xffffffff).
          if (typeof c.value !== 'number' || !Number.isInteger(c.value) || c.value < -0x8000_0000 || c.value > 0xffff_ffff) {
            throw Object.assign(new RangeError(`command ${i}: value must be a 32-bit integer, got ${String(c.value)}`), {
              code: 'ERR_OUT_OF_RANGE',
            });
          }
          v.setUint32(cmd + CMD2.fill.value, c.value >>> 0, true);
          put64(v, cmd + CMD2.fill.offset, i, 'dst.offset', rangeOffset(i, 'dst', c.dst));
          put64(v, cmd + CMD2.fill.size, i, 'dst.size', c.dst.size);
          break;
        case 'update': {
          const n = c.data.byteLength;
          if (rangeSize(i, 'dst', c.dst) !== n) {
            throw Object.assign(new RangeError(`command ${i}: UPDATE dst.size ${c.dst.size} is not data.byteLength ${n}`), { code: 'ERR_OUT_OF_RANGE' });
          }
          v.setUint32(cmd + CMD2.op, Op.Update, true);
          v.setUint32(cmd + CMD2.update.mem, mem, true);
          v.setUint32(cmd + CMD2.update.size, n, true);
          put64(v, cmd + CMD2.update.offset, i, 'dst.offset', c.dst.offset);
          v.setUint32(cmd + CMD2.update.dataOffset, p, true);
          bytes.set(c.data, dataAt + p);
          p += (n + 3) & ~3;
          break;
        }
        case 'dispatch': {
          v.setUint32(cmd + CMD2.op, Op.Dispatch2, true);
          v.setUint32(cmd + CMD2.dispatch2.kernel, this.kernelId(c.kernel, i), true);
          v.setUint32(cmd + CMD2.dispatch2.firstDescriptor, d, true);
          v.setUint32(cmd + CMD2.dispatch2.descriptorCount, c.descriptors.length, true);
          for (let j = 0; j < 3; j++) {
            v.setUint32(cmd + CMD2.dispatch2.base + 4 * j, checkIndex(`command ${i}: base[${j}]`, c.base?.[j], 0xffff_ffff), true);
            v.setUint32(cmd + CMD2.dispatch2.groups + 4 * j, checkIndex(`command ${i}: groups[${j}]`, c.groups?.[j], 0xffff_ffff), true);
            // Left out (0,0,0, the caller zeroed the bytes): NumWorkgroups is `groups`. A part of a
            // split dispatch gives the whole dispatch's count.
            if (c.numWorkgroups !== undefined) {
              v.setUint32(cmd + CMD2.dispatch2.numWorkgroups + 4 * j, checkIndex(`command ${i}: numWorkgroups[${j}]`, c.numWorkgroups[j], 0xffff_ffff), true);
            }
          }
          for (let j = 0; j < c.descriptors.length; j++, d++) {
            const desc = c.descriptors[j]!;
            const dat = descAt + d * DESCRIPTOR.size;
            const type = descriptorType(desc?.type);
            if (type === undefined) throw new TypeError(`submit: command ${i}: descriptor ${j}: type must be 'storage' or 'uniform'`);
            v.setUint32(dat + DESCRIPTOR.mem, mem, true);
            v.setUint32(dat + DESCRIPTOR.set, checkIndex(`command ${i}: descriptor ${j}: set`, desc.set, 0xffff_ffff), true);
            v.setUint32(dat + DESCRIPTOR.binding, checkIndex(`command ${i}: descriptor ${j}: binding`, desc.binding, 0xffff_ffff), true);
            v.setUint32(dat + DESCRIPTOR.index, checkIndex(`command ${i}: descriptor ${j}: index`, desc.index, 0xffff_ffff), true);
            v.setUint32(dat + DESCRIPTOR.type, type, true);
            put64(v, dat + DESCRIPTOR.offset, i, `descriptor ${j}: range.offset`, rangeOffset(i, `descriptor ${j}: range`, desc.range));
            put64(v, dat + DESCRIPTOR.range, i, `descriptor ${j}: range.size`, desc.range.size);
          }
          const push = c.pushConstants;
          v.setUint32(cmd + CMD2.dispatch2.pushOffset, p, true);
          v.setUint32(cmd + CMD2.dispatch2.pushSize, push.byteLength, true);
          bytes.set(push, dataAt + p);
          p += (push.byteLength + 3) & ~3;
          break;
        }
        case 'barrier':
          v.setUint32(cmd + CMD2.op, Op.Barrier, true);
          break;
        case 'timestamp':
          v.setUint32(cmd + CMD2.op, Op.Timestamp, true);
          v.setUint32(cmd + CMD2.timestamp.mem, mem, true);
          put64(v, cmd + CMD2.timestamp.offset, i, 'dst.offset', rangeOffset(i, 'dst', c.dst));
          break;
        default:
          throw new TypeError(`submit: command ${i}: unknown kind ${String((c as { kind?: unknown })?.kind)}`);
      }
    }
  }
}
