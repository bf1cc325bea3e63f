/**
 * A real mdgpu device served over a real socketpair with the native addon, and our client on the
 * other end: one server step per request, as libvfio-user's `msg()` helper does.
 */
import * as fs from 'node:fs';
import { loadNative, type NativeBinding } from '../../src/native/binding.js';
import { nativeHostOps } from '../../src/cli/host-ops.js';
import { MdgpuDevice } from '../../src/vgpu/device.js';
import { VfioUserServer } from '../../src/server/server.js';
import { VfioUserClient, type ClientOptions } from '../../src/client/client.js';
import { setLogSink } from '../../src/log.js';

export const native: NativeBinding = loadNative();

/** Log lines captured instead of printed (guest errors are expected in these tests). */
export const logLines: string[] = [];
setLogSink((line) => logLines.push(line));

export function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

export function mappingCount(): number {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes('mdgpu')).length;
}

export interface Served {
  device: MdgpuDevice;
  server: VfioUserServer;
  client: VfioUserClient;
  /** Connect a fresh client over a new socketpair. */
  reconnect(options?: ClientOptions): VfioUserClient;
  close(): void;
}

export function serveDevice(options: ClientOptions & { apertureSize?: number } = {}): Served {
  const device = new MdgpuDevice({ name: 'test', apertureSize: options.apertureSize ?? 1 << 20, host: nativeHostOps(native) });
  const server = new VfioUserServer({ socketPath: '/nonexistent', device: device.pci, native });
  const connect = (opts: ClientOptions = options) => {
    const [serverFd, clientFd] = native.socketpair();
    server.serve(serverFd);
    return new VfioUserClient(native, clientFd, opts);
  };
  const served: Served = {
    device,
    server,
    client: connect(),
    reconnect(opts) {
      served.client = connect(opts);
      return served.client;
    },
    close() {
      served.client.close();
      server.close();
      device.close();
    },
  };
  return served;
}

export function u32le(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return b;
}

export function readU32(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
}

/** Resolves when the server has processed everything sent so far and the close was seen. */
export function tick(ms = 5): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
