/** Kernel layouts for validator tests. */
import type { KernelBinding } from '../../src/device-commands.js';

/** A contract 1.1 kernel's layout: `n` storage buffers at set 0, bindings 0..n-1. */
export function storageLayout(n: number): KernelBinding[] {
  return Array.from({ length: n }, (_, i) => ({ set: 0, binding: i, type: 'storage' as const, count: 1 }));
}
