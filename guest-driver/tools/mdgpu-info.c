// SPDX-License-Identifier: MIT
/*
 * mdgpu-info: what the guest driver reports about the device: identity, contract version,
 * aperture, quota and usage. Human lines, then one machine line:
 *
 *   MDGPU-INFO version=1.0 vendor=0x4d44 device=0x4750 aperture=<bytes> alloc_base=<bytes>
 *              quota=<bytes> used=<bytes>
 *
 * Usage: mdgpu-info [-d /dev/mdgpuN]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mdgpu.h"

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d device]\n", argv0);
}

static const char *mib(uint64_t bytes, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu64 " bytes (%.1f MiB)", bytes, bytes / 1048576.0);
	return buf;
}

int main(int argc, char **argv)
{
	const char *path = MDGPU_DEFAULT_PATH;
	struct mdgpu_info info;
	struct mdgpu *dev;
	char b[64];
	int opt, ret;

	while ((opt = getopt(argc, argv, "d:h")) != -1) {
		switch (opt) {
		case 'd':
			path = optarg;
			break;
		default:
			usage(argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}

	ret = mdgpu_open(path, &dev);
	if (ret) {
		fprintf(stderr, "mdgpu-info: cannot open %s: %s (%s)\n", path, mdgpu_strerror(ret),
			mdgpu_errname(ret));
		return 1;
	}
	ret = mdgpu_get_info(dev, &info);
	if (ret) {
		fprintf(stderr, "mdgpu-info: GET_INFO failed: %s (%s)\n", mdgpu_strerror(ret),
			mdgpu_errname(ret));
		mdgpu_close(dev);
		return 1;
	}

	printf("device        %s (mdgpu%u)\n", path, info.index);
	printf("PCI id        %04x:%04x\n", info.vendor_id, info.device_id);
	printf("contract      %u.%u\n", info.version >> 16, info.version & 0xffff);
	printf("aperture      %s\n", mib(info.aperture_size, b, sizeof(b)));
	printf("alloc base    0x%" PRIx64 "\n", (uint64_t)info.alloc_base);
	printf("granule       %" PRIu64 " bytes\n", (uint64_t)info.min_align);
	printf("quota         %s\n", mib(info.quota, b, sizeof(b)));
	printf("used          %s\n", mib(info.used, b, sizeof(b)));
	printf("largest free  %s\n", mib(info.largest_free, b, sizeof(b)));
	printf("contexts      %u of %u\n", info.contexts, info.max_contexts);
	printf("buffers       %u of %u\n", info.buffers, info.max_buffers);
	printf("interrupts    %" PRIu64 " (MSI-X)\n", (uint64_t)info.irq_count);
	printf("MDGPU-INFO version=%u.%u vendor=0x%04x device=0x%04x aperture=%" PRIu64
	       " alloc_base=%" PRIu64 " quota=%" PRIu64 " used=%" PRIu64 "\n",
	       info.version >> 16, info.version & 0xffff, info.vendor_id, info.device_id,
	       (uint64_t)info.aperture_size, (uint64_t)info.alloc_base, (uint64_t)info.quota,
	       (uint64_t)info.used);
	mdgpu_close(dev);
	return 0;
}
