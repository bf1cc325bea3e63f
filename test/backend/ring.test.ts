/**
 * The submission ring (src/backend/ring.ts, host-driver/src/ring.c) on the real device: sized for
 * every batch the validator accepts; a batch larger than the ring is refused up front and one
 * larger than its free space waits its turn; a ring written by a broken or hostile writer gets
 * clean failures from the host driver's ring service (a FAILED for a record that lies about its
 * contents, one BROKEN when the framing itself is gone), never a crash. Fails (never skips)
 * without the host driver, Vulkan or the addon.
 */
import t, { type Test } from 'tap';
import { BackendError, type Command } from '../../src/backend/backend.js';
import { HostDevice, type HostMemory } from '../../src/backend/host-driver.js';
import { BatchEncoder, CMD2, DESCRIPTOR } from '../../src/backend/host-records.js';
import { COMPLETE_AREA_SIZE, MAX_OUTSTANDING, RING, RecordType, RingMemory, Stage, SUBMIT_AREA_SIZE, SUBMIT_HEADER } from '../../src/backend/ring.js';
import { loadNative } from '../../src/native/binding.js';
import { CMD_LAYOUTS, DEFAULT_COMMAND_LIMITS, DispatchBinding, DispatchDescriptor } from '../../src/vgpu/commands.js';

const native = loadNative();
const RW = native.PROT_READ | native.PROT_WRITE;

/** A memfd of `size` bytes mapped here, released at the end of the test. */
function memfd(t: Test, size: number): { fd: number; buf: ArrayBuffer } {
  const fd = native.memfdCreate('mdgpu-ring-test', 0);
  native.ftruncate(fd, size);
  const buf = native.mmap(fd, 0, size, RW);
  t.teardown(() => {
    native.munmap(buf);
    native.close(fd);
  });
  return { fd, buf };
}

t.test('the submission area holds the largest batch the validator accepts', (t) => {
  const l = DEFAULT_COMMAND_LIMITS;
  // Each guest command becomes one mdgpu_host_cmd2; what follows a guest command (bindings,
  // descriptors, push constants, UPDATE data) grows at most by the ratio of a host descriptor to
  // the smallest guest record it comes from.
  const smallestGuestDescriptor = Math.min(DispatchBinding.size, DispatchDescriptor.size);
  const growth = DESCRIPTOR.size / smallestGuestDescriptor;
  const bound = SUBMIT_HEADER + CMD2.size * l.maxCommands + Math.ceil(growth * l.maxSubmissionBytes);
  t.ok(
    bound <= SUBMIT_AREA_SIZE,
    `at most ${bound} bytes for a ${l.maxSubmissionBytes}-byte, ${l.maxCommands}-command submission; the area has ${SUBMIT_AREA_SIZE}`,
  );
  t.ok(CMD_LAYOUTS.BARRIER.size >= 8, 'no guest command is smaller than 8 bytes');
  // The completion area holds every outstanding batch's STARTED and longest FAILED, twice over.
  t.ok(MAX_OUTSTANDING * (24 + 24 + 1024) * 2 <= COMPLETE_AREA_SIZE, 'the completion area holds what the outstanding batches can say');
  t.end();
});

t.test('in process: a batch larger than the ring is refused up front; larger than its room, it waits', async (t) => {
  const dev = HostDevice.open({ submitAreaSize: 8192 });
  t.teardown(() => dev.destroy());
  const { buf } = memfd(t, 1 << 20);
  const mem = dev.importMemory(buf);
  const view = new DataView(buf);
  // 5000 bytes of UPDATE data: one such batch fits in the 8 KiB area, two do not.
  const update = (i: number): Command[] => {
    const data = new Uint8Array(5000);
    new DataView(data.buffer).setUint32(0, i + 1, true);
    new DataView(data.buffer).setUint32(4996, i + 1, true);
    return [{ kind: 'update', dst: { offset: i * 8192, size: 5000 }, data }];
  };
  const started: number[] = [];
  const all = Array.from({ length: 40 }, (_, i) => dev.submit(mem, update(i), { started: () => started.push(i) }));
  t.ok(dev.pending > 1, `${dev.pending} batches pending: the ones that do not fit wait their turn`);
  const statuses = await Promise.all(all);
  t.same(
    started,
    Array.from({ length: 40 }, (_, i) => i),
    'all started, in order',
  );
  t.ok(
    statuses.every((s, i) => i === 0 || s.id > statuses[i - 1]!.id),
    'and completed in order',
  );
  let bad = 0;
  for (let i = 0; i < 40; i++) if (view.getUint32(i * 8192, true) !== i + 1 || view.getUint32(i * 8192 + 4996, true) !== i + 1) bad++;
  t.equal(bad, 0, 'every UPDATE landed');
  const big = dev.submit(mem, [{ kind: 'update', dst: { offset: 0, size: 9000 }, data: new Uint8Array(9000) }]);
  await t.rejects(big, { name: 'BackendError', code: 'E2BIG', message: /submission ring, which has 8192/ }, 'larger than the whole ring: refused');
  t.equal(view.getUint32(0, true), 1, 'and nothing of it ran');
  t.equal(dev.pending, 0);
});

t.test('in process: the default ring takes a validator-sized batch', async (t) => {
  const dev = HostDevice.open();
  t.teardown(() => dev.destroy());
  const { buf } = memfd(t, 4 << 20);
  const mem = dev.importMemory(buf);
  // 4096 commands, 16 of them 64 KiB UPDATEs: about 1.3 MiB of records.
  const commands: Command[] = [];
  for (let i = 0; i < 4096; i++) {
    if (i % 256 === 0) commands.push({ kind: 'update', dst: { offset: (i / 256) * 65536, size: 65536 }, data: new Uint8Array(65536).fill(i / 256 + 1) });
    else commands.push({ kind: 'barrier' });
  }
  await dev.submit(mem, commands);
  t.equal(new Uint8Array(buf)[15 * 65536 + 65535], 16, 'the last UPDATE landed');
});

/**
 * A device serving a ring this test writes by hand, as a daemon would (or a broken one): the
 * ring service is the one the compute worker runs.
 */
function served(t: Test) {
  const ring = RingMemory.create(native, 4096, 4096);
  const dev = HostDevice.open({ ring: { fd: ring.fd, submitEvent: ring.submitEvent, completeEvent: ring.completeEvent } });
  t.teardown(async () => {
    await dev.destroy();
    ring.close();
  });
  const { buf } = memfd(t, 1 << 16);
  const mem: HostMemory = dev.importMemory(buf);
  dev.bind(7, mem);
  const v = ring.view;
  let tail = 0;
  let head = 0;
  const cq = RING.headerSize + ring.submitSize;
  /** Publish `bytes` as records at the tail and ring. */
  const publish = (bytes: Uint8Array) => {
    ring.bytes.set(bytes, RING.headerSize + (tail & (ring.submitSize - 1)));
    tail += bytes.length;
    v.setUint32(RING.submitTail, tail, true);
    native.eventfdWrite(ring.submitEvent, 1);
  };
  /** The next completion record: type, tag, error, stage, message. */
  const next = async (ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (v.getUint32(RING.completeTail, true) === head) {
      if (Date.now() > deadline) return null;
      await new Promise((r) => setTimeout(r, 2));
    }
    const at = cq + (head & (ring.completeSize - 1));
    const type = v.getUint32(at, true);
    const size = v.getUint32(at + 4, true);
    const rec = { type, tag: v.getUint32(at + 8, true), error: v.getInt32(at + 12, true), stage: v.getUint32(at + 16, true), message: '' };
    if (type === RecordType.Failed || type === RecordType.Broken) {
      const text = ring.bytes.subarray(at + 24, at + size);
      rec.message = new TextDecoder().decode(text.subarray(0, text.indexOf(0)));
    }
    head += size;
    v.setUint32(RING.completeHead, head, true);
    return rec;
  };
  return { dev, ring, buf, publish, next };
}

/** A SUBMIT record of `commands` on memory id `mem` (kernels by handle), encoded by the daemon's encoder. */
function submitRecord(tag: number, commands: Command[], mem: number): Uint8Array {
  const encoder = new BatchEncoder<unknown>(() => 0);
  const n = encoder.measure(commands);
  const size = (SUBMIT_HEADER + n + 7) & ~7;
  const bytes = new Uint8Array(size);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, RecordType.Submit, true);
  v.setUint32(4, size, true);
  v.setUint32(8, tag, true);
  v.setUint32(12, encoder.cmdCount, true);
  v.setUint32(16, encoder.descriptorCount, true);
  v.setUint32(20, encoder.dataBytes, true);
  encoder.encode(v, bytes, SUBMIT_HEADER, commands, mem);
  return bytes;
}

t.test('a served ring: a record that lies fails alone, and the service goes on', async (t) => {
  const s = served(t);
  const fill = (value: number): Command[] => [{ kind: 'fill', dst: { offset: 0, size: 64 }, value }];
  s.publish(submitRecord(1, fill(0x11), 7));
  let r = await s.next();
  t.equal(r?.type, RecordType.Started, 'a good batch starts');
  r = await s.next();
  t.match(r, { type: RecordType.Done, tag: 1 }, 'and is done');
  t.equal(new DataView(s.buf).getUint32(60, true), 0x11);

  const lying = submitRecord(2, fill(0x22), 7);
  new DataView(lying.buffer).setUint32(12, 3, true); // three commands in a record of one
  s.publish(lying);
  t.match(
    await s.next(),
    { type: RecordType.Failed, tag: 2, error: -22, stage: Stage.Record, message: /malformed SUBMIT record/ },
    'counts that do not add up: FAILED, EINVAL',
  );

  s.publish(submitRecord(3, fill(0x33), 8));
  t.match(await s.next(), { type: RecordType.Failed, tag: 3, error: -2, message: /no memory 8 bound to the ring/ }, 'an id nobody bound: ENOENT');

  s.publish(submitRecord(4, [{ kind: 'fill', dst: { offset: 2, size: 4 }, value: 0 }], 7));
  t.match(
    await s.next(),
    { type: RecordType.Failed, tag: 4, error: -22, stage: Stage.Submit, message: /command 0: FILL offset/ },
    "submit2's own refusal comes back",
  );

  const unknown = new Uint8Array(16);
  new DataView(unknown.buffer).setUint32(0, 77, true);
  new DataView(unknown.buffer).setUint32(4, 16, true);
  s.publish(unknown);
  t.match(await s.next(), { type: RecordType.Failed, tag: 0, message: /unknown type 77/ }, 'a record of an unknown type is skipped, and said so');

  s.publish(submitRecord(5, fill(0x55), 7));
  await s.next();
  t.match(await s.next(), { type: RecordType.Done, tag: 5 }, 'a good batch after all that');
  t.equal(new DataView(s.buf).getUint32(60, true), 0x55);
});

t.test('a served ring: framing that points outside what was published breaks the ring once', async (t) => {
  const s = served(t);
  const liar = new Uint8Array(64);
  new DataView(liar.buffer).setUint32(0, RecordType.Submit, true);
  new DataView(liar.buffer).setUint32(4, 2048, true); // 2 KiB of record, 64 bytes published
  s.publish(liar);
  t.match(await s.next(), { type: RecordType.Broken, error: -71, message: /2048 bytes/ }, 'BROKEN, EPROTO, saying why');
  s.publish(submitRecord(1, [{ kind: 'fill', dst: { offset: 0, size: 64 }, value: 9 }], 7));
  t.equal(await s.next(300), null, 'nothing more is taken');
  t.equal(new DataView(s.buf).getUint32(0, true), 0, 'the batch after it did not run');
  t.ok(s.dev.info.name.length > 0, 'the process lives on');
});

t.test('encoding refuses values of the wrong type before anything is written', async (t) => {
  const dev = HostDevice.open();
  t.teardown(() => dev.destroy());
  const { buf } = memfd(t, 1 << 16);
  const mem = dev.importMemory(buf);
  await t.rejects(dev.submit(mem, [{ kind: 'fill', dst: { offset: 0, size: 4 }, value: 2 ** 33 }]), { code: 'ERR_OUT_OF_RANGE' });
  await t.rejects(dev.submit(mem, [{ kind: 'update', dst: { offset: 0, size: 4 }, data: 'nope' as unknown as Uint8Array }]), TypeError);
  const status = await dev.submit(mem, [{ kind: 'fill', dst: { offset: 0, size: 4 }, value: 5 }]);
  t.ok(status.id > 0n, 'and the ring carries on');
  t.ok(new BackendError('E2BIG', -7, 'x', 'y') instanceof Error);
});
