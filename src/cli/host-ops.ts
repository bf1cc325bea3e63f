/**
 * The device model's host facilities (memfd, mmap, eventfd, fd readiness) implemented with the
 * native addon: the wiring between the device model and the syscall layer, so neither knows the
 * other (src/native offers syscalls and knows no device; src/vgpu declares DeviceHostOps and
 * knows no syscall). This is the only place that binds the model's injected interfaces to them.
 */
import * as fs from 'node:fs';
import { isErrno, type NativeBinding } from '../native/binding.js';
import type { DeviceHostOps } from '../vgpu/device.js';

export function nativeHostOps(native: NativeBinding): DeviceHostOps {
  return {
    createMemfd(name, size) {
      const fd = native.memfdCreate(name, 0);
      try {
        native.ftruncate(fd, size);
      } catch (err) {
        native.close(fd);
        throw err;
      }
      return fd;
    },
    discard(fd, offset, length) {
      native.punchHole(fd, offset, length);
    },
    mmap(fd, offset, length, writable) {
      return native.mmap(fd, offset, length, native.PROT_READ | (writable ? native.PROT_WRITE : 0));
    },
    munmap(buffer) {
      native.munmap(buffer);
    },
    close(fd) {
      native.close(fd);
    },
    fileSize(fd) {
      return native.fstatSize(fd);
    },
    fileId(fd) {
      // bigint: inode numbers need not fit a double.
      const st = fs.fstatSync(fd, { bigint: true });
      return `${st.dev}:${st.ino}`;
    },
    signal(fd) {
      native.eventfdWrite(fd, 1);
    },
    watch(fd, onReadable) {
      const poller = new native.Poller(fd, (err) => {
        if (err !== null) return;
        // Drain the counter so the fd stops being readable, then report one event.
        try {
          native.eventfdRead(fd);
        } catch (readErr) {
          if (!isErrno(readErr, 'EAGAIN')) throw readErr;
          return;
        }
        onReadable();
      });
      poller.start(native.POLL_READABLE);
      return () => {
        poller.stop();
        poller.close();
      };
    },
  };
}
