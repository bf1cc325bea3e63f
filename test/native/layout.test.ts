import t from 'tap';
import { native } from './fixtures/native.js';

// The layouts of <linux/vfio.h> (uapi, stable), written out by hand from the header.
// The addon reports what the C compiler laid out; the two must agree field by field.
const SIZES: Record<string, number> = {
  vfio_info_cap_header: 8,
  vfio_region_info: 32,
  vfio_region_sparse_mmap_area: 16,
  vfio_region_info_cap_sparse_mmap: 16, // header + nr_areas + reserved; areas[] is flexible
  vfio_irq_info: 16,
  vfio_irq_set: 20, // data[] is flexible
  // vfio_device_info: 20, or 24 with the `pad` that Linux 6.5+ headers add (checked below)
};

const OFFSETS: Record<string, number> = {
  'vfio_info_cap_header.id': 0,
  'vfio_info_cap_header.version': 2,
  'vfio_info_cap_header.next': 4,
  'vfio_device_info.argsz': 0,
  'vfio_device_info.flags': 4,
  'vfio_device_info.num_regions': 8,
  'vfio_device_info.num_irqs': 12,
  'vfio_device_info.cap_offset': 16,
  'vfio_region_info.argsz': 0,
  'vfio_region_info.flags': 4,
  'vfio_region_info.index': 8,
  'vfio_region_info.cap_offset': 12,
  'vfio_region_info.size': 16,
  'vfio_region_info.offset': 24,
  'vfio_region_sparse_mmap_area.offset': 0,
  'vfio_region_sparse_mmap_area.size': 8,
  'vfio_region_info_cap_sparse_mmap.header': 0,
  'vfio_region_info_cap_sparse_mmap.nr_areas': 8,
  'vfio_region_info_cap_sparse_mmap.reserved': 12,
  'vfio_region_info_cap_sparse_mmap.areas': 16,
  'vfio_irq_info.argsz': 0,
  'vfio_irq_info.flags': 4,
  'vfio_irq_info.index': 8,
  'vfio_irq_info.count': 12,
  'vfio_irq_set.argsz': 0,
  'vfio_irq_set.flags': 4,
  'vfio_irq_set.index': 8,
  'vfio_irq_set.start': 12,
  'vfio_irq_set.count': 16,
  'vfio_irq_set.data': 20,
};

t.test('the addon was built with <linux/vfio.h>', (t) => {
  t.ok(Object.keys(native.sizeofs()).length > 0, 'sizeofs is empty: install linux-libc-dev and rebuild the addon');
  t.end();
});

t.test('sizeof of each struct matches', (t) => {
  const sizes = native.sizeofs();
  for (const [name, size] of Object.entries(SIZES)) t.equal(sizes[name], size, name);
  const device = sizes['vfio_device_info'];
  const pad = native.offsetofs()['vfio_device_info.pad'];
  if (pad === undefined) {
    t.equal(device, 20, 'vfio_device_info without pad');
  } else {
    t.equal(pad, 20, 'vfio_device_info.pad follows cap_offset');
    t.equal(device, 24, 'vfio_device_info with pad');
  }
  t.same(Object.keys(sizes).sort(), [...Object.keys(SIZES), 'vfio_device_info'].sort(), 'no struct missing or extra');
  t.end();
});

t.test('offsetof of every field matches', (t) => {
  const offsets = native.offsetofs();
  for (const [name, offset] of Object.entries(OFFSETS)) t.equal(offsets[name], offset, name);
  const extra = Object.keys(offsets).filter((k) => !(k in OFFSETS) && k !== 'vfio_device_info.pad');
  t.same(extra, [], 'no field the table above does not know');
  t.end();
});

t.test('every struct has fields that tile it: each field ends where the next begins', (t) => {
  // A cross-check of the tables themselves (catches a typo in a hand-written offset).
  const sizes = native.sizeofs();
  const offsets = native.offsetofs();
  for (const struct of Object.keys(sizes)) {
    const fields = Object.entries(offsets)
      .filter(([k]) => k.startsWith(`${struct}.`))
      .map(([, v]) => v)
      .sort((a, b) => a - b);
    t.equal(fields[0], 0, `${struct} starts with a field at 0`);
    t.ok(
      fields.every((v, i) => i === 0 || v > fields[i - 1]!),
      `${struct} fields are distinct`,
    );
    t.ok(
      fields.every((v) => v <= sizes[struct]!),
      `${struct} fields lie inside it`,
    );
  }
  t.end();
});
