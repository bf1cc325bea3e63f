/**
 * Layout sizes and offsets against the C structs (linux vfio.h, libvfio-user
 * vfio-user.h, QEMU hw/vfio-user/protocol.h), as constants transcribed from
 * those headers. A native sizeof/offsetof cross-check is planned separately.
 */
import t from 'tap';
import {
  CapHeaderLayout,
  DeviceFeatureLayout,
  DeviceInfoLayout,
  DmaAccessLayout,
  DmaBitmapLayout,
  DmaLoggingControlLayout,
  DmaLoggingRangeLayout,
  DmaLoggingReportLayout,
  DmaMapLayout,
  DmaUnmapLayout,
  HeaderLayout,
  IrqInfoLayout,
  IrqSetLayout,
  MigDataLayout,
  MigDeviceStateLayout,
  MigrationFeatureLayout,
  RegionAccessLayout,
  RegionInfoLayout,
  RegionIoFdsLayout,
  RegionTypeLayout,
  SparseMmapAreaLayout,
  SparseMmapLayout,
  SubRegionIoFdLayout,
  VersionLayout,
  WriteMultiCountLayout,
  WriteMultiEntryLayout,
  type FieldInfo,
} from '../../src/protocol/index.js';

/** sizeof() of each C struct, in bytes (flexible array members excluded). */
const C_SIZES: Array<[string, { size: number }, number]> = [
  ['struct vfio_user_header', HeaderLayout, 16],
  ['struct vfio_user_version', VersionLayout, 4],
  ['struct vfio_user_dma_map', DmaMapLayout, 32],
  ['struct vfio_user_dma_unmap', DmaUnmapLayout, 24],
  ['struct vfio_user_bitmap', DmaBitmapLayout, 16],
  ['struct vfio_user_device_info (vfio_device_info without cap_offset/pad)', DeviceInfoLayout, 16],
  ['struct vfio_region_info', RegionInfoLayout, 32],
  ['struct vfio_info_cap_header', CapHeaderLayout, 8],
  ['struct vfio_region_info_cap_sparse_mmap minus header', SparseMmapLayout, 8],
  ['struct vfio_region_sparse_mmap_area', SparseMmapAreaLayout, 16],
  ['struct vfio_region_info_cap_type minus header', RegionTypeLayout, 8],
  ['struct vfio_user_region_io_fds_request', RegionIoFdsLayout, 16],
  ['sub-region io fd entry (spec)', SubRegionIoFdLayout, 40],
  ['struct vfio_irq_info', IrqInfoLayout, 16],
  ['struct vfio_irq_set', IrqSetLayout, 20],
  ['struct vfio_user_region_access', RegionAccessLayout, 16],
  ['struct vfio_user_dma_region_access', DmaAccessLayout, 16],
  ['VFIOUserWRMulti wr_cnt', WriteMultiCountLayout, 8],
  ['VFIOUserWROne', WriteMultiEntryLayout, 24],
  ['struct vfio_user_device_feature', DeviceFeatureLayout, 8],
  ['struct vfio_device_feature_migration', MigrationFeatureLayout, 8],
  ['struct vfio_device_feature_mig_state', MigDeviceStateLayout, 8],
  ['struct vfio_device_feature_dma_logging_control', DmaLoggingControlLayout, 16],
  ['struct vfio_device_feature_dma_logging_range', DmaLoggingRangeLayout, 16],
  ['struct vfio_device_feature_dma_logging_report', DmaLoggingReportLayout, 24],
  ['struct vfio_user_mig_data', MigDataLayout, 8],
];

t.test('layout sizes equal sizeof() of the C structs', (t) => {
  for (const [name, layout, size] of C_SIZES) t.equal(layout.size, size, name);
  t.end();
});

function offsets(fields: Record<string, FieldInfo>): Record<string, number> {
  return Object.fromEntries(Object.entries(fields).map(([name, f]) => [name, f.offset]));
}

t.test('field offsets equal offsetof() in the C structs', (t) => {
  t.strictSame(offsets(RegionInfoLayout.fields), { argsz: 0, flags: 4, index: 8, capOffset: 12, size: 16, offset: 24 });
  t.strictSame(offsets(IrqSetLayout.fields), { argsz: 0, flags: 4, index: 8, start: 12, count: 16 });
  t.strictSame(offsets(IrqInfoLayout.fields), { argsz: 0, flags: 4, index: 8, count: 12 });
  t.strictSame(offsets(DeviceInfoLayout.fields), { argsz: 0, flags: 4, numRegions: 8, numIrqs: 12 });
  t.strictSame(offsets(DmaMapLayout.fields), { argsz: 0, flags: 4, offset: 8, address: 16, size: 24 });
  t.strictSame(offsets(DmaUnmapLayout.fields), { argsz: 0, flags: 4, address: 8, size: 16 });
  t.strictSame(offsets(RegionAccessLayout.fields), { offset: 0, region: 8, count: 12 });
  t.strictSame(offsets(DmaAccessLayout.fields), { address: 0, count: 8 });
  t.strictSame(offsets(CapHeaderLayout.fields), { id: 0, version: 2, next: 4 });
  t.strictSame(offsets(SubRegionIoFdLayout.fields), { offset: 0, size: 8, fdIndex: 16, type: 20, flags: 24, padding: 28, data: 32 });
  t.strictSame(offsets(WriteMultiEntryLayout.fields), { offset: 0, region: 8, count: 12, data: 16 });
  t.end();
});
