/**
 * In-memory stand-ins for the host syscalls, so the PCI and vGPU models can be unit tested in
 * milliseconds. Tests of the real syscalls live in test/native and test/server.
 */
import type { DeviceHostOps } from '../../src/vgpu/device.js';

export class FakeHost implements DeviceHostOps {
  private nextFd = 1000;
  readonly files = new Map<number, Uint8Array>();
  readonly open = new Set<number>();
  readonly signals: number[] = [];
  readonly watchers = new Map<number, () => void>();
  mapped = 0;

  createMemfd(_name: string, size: number): number {
    const fd = this.nextFd++;
    this.files.set(fd, new Uint8Array(size));
    this.open.add(fd);
    return fd;
  }

  /** A file the "client" owns, as a DMA_MAP fd would be. */
  clientFile(size: number): number {
    return this.createMemfd('client', size);
  }

  eventfd(): number {
    const fd = this.nextFd++;
    this.open.add(fd);
    return fd;
  }

  discard(fd: number, offset: number, length: number): void {
    this.files.get(fd)!.fill(0, offset, offset + length);
  }

  mmap(fd: number, offset: number, length: number): ArrayBuffer {
    const file = this.files.get(fd);
    if (file === undefined || !this.open.has(fd)) throw Object.assign(new Error('EBADF: bad file descriptor, mmap'), { code: 'EBADF' });
    if (offset + length > file.length) throw Object.assign(new Error('EINVAL: invalid argument, mmap'), { code: 'EINVAL' });
    this.mapped++;
    // A whole-file mapping shares memory with the "file", like MAP_SHARED; an ArrayBuffer cannot
    // alias part of another, so partial mappings are copies (tests that need aliasing use native).
    if (offset === 0 && length === file.length) return file.buffer as ArrayBuffer;
    return new Uint8Array(file.buffer, offset, length).slice().buffer as ArrayBuffer;
  }

  munmap(): void {
    this.mapped--;
  }

  close(fd: number): void {
    if (!this.open.delete(fd)) throw new Error(`close of fd ${fd} that is not open`);
  }

  signal(fd: number): void {
    if (!this.open.has(fd)) throw new Error(`signal of closed fd ${fd}`);
    this.signals.push(fd);
  }

  watch(fd: number, onReadable: () => void): () => void {
    this.watchers.set(fd, onReadable);
    return () => this.watchers.delete(fd);
  }
}
