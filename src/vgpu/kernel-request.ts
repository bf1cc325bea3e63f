/**
 * What a kernel is built from, and what a build gives back: the request the registry
 * (kernels.ts) copies out of guest memory for the executor, and how two requests are
 * told apart (kernel-cache.ts: a digest to find a candidate, every byte compared to use it).
 */
import { createHash } from 'node:crypto';
import type { KernelBinding } from '../device-commands.js';

/** What the backend is asked to build: everything copied out of guest memory. */
export interface KernelBuildRequest {
  spirv: Uint32Array;
  pushConstantBytes: number;
  /** Contract 1.1 kernels: exactly this many storage buffers, set 0, bindings 0..n-1. */
  bindings?: number;
  entryPoint?: string;
  specialization?: { entries: { constantId: number; offset: number; size: number }[]; data: Uint8Array };
  dispatchBase: boolean;
}

/** A built kernel: the backend's handle for it (opaque here) and what it declares. */
export interface BuiltKernel {
  readonly handle: unknown;
  readonly layout: readonly KernelBinding[];
}

/** The SHA-256 of a request's canonical encoding (every field, lengths first). */
export function requestDigest(r: KernelBuildRequest): string {
  const h = createHash('sha256');
  const spec = r.specialization;
  const entry = r.entryPoint === undefined ? null : Buffer.from(r.entryPoint, 'utf8');
  const head = new DataView(new ArrayBuffer(28));
  head.setUint32(0, 1, true); // encoding version
  head.setUint32(4, r.bindings ?? 0xffff_ffff, true);
  head.setUint32(8, r.pushConstantBytes, true);
  head.setUint32(12, r.dispatchBase ? 1 : 0, true);
  head.setUint32(16, entry === null ? 0xffff_ffff : entry.length, true);
  head.setUint32(20, spec === undefined ? 0xffff_ffff : spec.entries.length, true);
  head.setUint32(24, r.spirv.byteLength, true);
  h.update(new Uint8Array(head.buffer));
  if (entry !== null) h.update(entry);
  if (spec !== undefined) {
    const map = new DataView(new ArrayBuffer(12 * spec.entries.length + 4));
    spec.entries.forEach((e, i) => {
      map.setUint32(12 * i, e.constantId, true);
      map.setUint32(12 * i + 4, e.offset, true);
      map.setUint32(12 * i + 8, e.size, true);
    });
    map.setUint32(12 * spec.entries.length, spec.data.length, true);
    h.update(new Uint8Array(map.buffer));
    h.update(spec.data);
  }
  h.update(new Uint8Array(r.spirv.buffer, r.spirv.byteOffset, r.spirv.byteLength));
  return h.digest('hex');
}

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Every field of two requests equal, every byte of their SPIR-V and specialization data. */
export function sameRequest(a: KernelBuildRequest, b: KernelBuildRequest): boolean {
  if (a.bindings !== b.bindings || a.pushConstantBytes !== b.pushConstantBytes || a.dispatchBase !== b.dispatchBase || a.entryPoint !== b.entryPoint) {
    return false;
  }
  const sa = a.specialization;
  const sb = b.specialization;
  if ((sa === undefined) !== (sb === undefined)) return false;
  if (sa !== undefined && sb !== undefined) {
    if (sa.entries.length !== sb.entries.length || !sameBytes(sa.data, sb.data)) return false;
    for (let i = 0; i < sa.entries.length; i++) {
      const x = sa.entries[i]!;
      const y = sb.entries[i]!;
      if (x.constantId !== y.constantId || x.offset !== y.offset || x.size !== y.size) return false;
    }
  }
  return sameBytes(a.spirv, b.spirv);
}
