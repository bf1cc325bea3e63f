// SPDX-License-Identifier: MIT
/*
 * test-ring: the ring service of libmdgpu-host (ABI 2.2) on a real Vulkan device.
 *
 *   build/test-ring KERNEL_DIR [DEVICE]      (make -C host-driver test)
 *
 * Plays the submitter: writes records into a memfd ring as mdgpu's TypeScript does, rings the
 * submit eventfd, and reads completion records after the completion eventfd. Checks that
 * batches run and complete in order (also past the area's end, and past the service's
 * in-flight limit), that ids are resolved through bindings and released in order, that
 * submit2's refusals come back with their errno and message, and that malformed records —
 * wrong sizes, unknown types, framing that points outside what was published, random bytes —
 * fail cleanly (FAILED, or one BROKEN) without taking the process down. Ends with
 * "N passed, N failed"; exits 1 on any failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mdgpu_host.h"

static const char *kernel_dir;

/* ---- a ring, from the submitter's side ---- */

struct sub {
	uint32_t dev;
	uint32_t handle;
	int fd, sev, cev;
	uint8_t *map;
	size_t map_size;
	struct mdgpu_host_ring_header *hdr;
	uint8_t *sq, *cq;
	uint32_t sq_size, cq_size;
	uint32_t sq_tail, cq_head;
};

static int sub_open(struct sub *s, uint32_t dev, uint32_t sq_size, uint32_t cq_size,
		    uint64_t slice_ns)
{
	struct mdgpu_host_ring_desc d = { 0 };

	memset(s, 0, sizeof(*s));
	s->dev = dev;
	s->sq_size = sq_size;
	s->cq_size = cq_size;
	s->map_size = MDGPU_HOST_RING_HEADER_SIZE + sq_size + cq_size;
	s->fd = memfd_create("test-ring", MFD_CLOEXEC);
	s->sev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->cev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->fd < 0 || s->sev < 0 || s->cev < 0 || ftruncate(s->fd, (off_t)s->map_size)) {
		perror("test-ring: memfd/eventfd");
		exit(2);
	}
	s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->map == MAP_FAILED) {
		perror("test-ring: mmap");
		exit(2);
	}
	s->hdr = (struct mdgpu_host_ring_header *)s->map;
	s->sq = s->map + MDGPU_HOST_RING_HEADER_SIZE;
	s->cq = s->sq + sq_size;
	s->hdr->magic = MDGPU_HOST_RING_MAGIC;
	s->hdr->version = MDGPU_HOST_RING_VERSION;
	s->hdr->submit_size = sq_size;
	s->hdr->complete_size = cq_size;
	d.fd = s->fd;
	d.submit_event = s->sev;
	d.complete_event = s->cev;
	d.wait_slice_ns = slice_ns;
	return mdgpu_host_ring_create(dev, &d, &s->handle);
}

static void sub_close(struct sub *s)
{
	if (s->handle)
		CHECK_RET(mdgpu_host_ring_destroy(s->handle), 0);
	munmap(s->map, s->map_size);
	close(s->fd);
	close(s->sev);
	close(s->cev);
}

/* Room for @bytes at the tail (after a PAD if needed); NULL when the area is too full. */
static uint8_t *sq_reserve(struct sub *s, uint32_t bytes)
{
	uint32_t head = __atomic_load_n(&s->hdr->submit_head, __ATOMIC_ACQUIRE);
	uint32_t used = s->sq_tail - head, off = s->sq_tail & (s->sq_size - 1);
	uint32_t rest = s->sq_size - off;

	if (bytes > rest) {
		struct mdgpu_host_ring_record pad = { MDGPU_HOST_RING_PAD, rest };

		if (used + rest > s->sq_size)
			return NULL;
		memcpy(s->sq + off, &pad, sizeof(pad));
		s->sq_tail += rest;
		used += rest;
		off = 0;
	}
	return used + bytes <= s->sq_size ? s->sq + off : NULL;
}

static void sq_publish(struct sub *s, uint32_t bytes, bool ring)
{
	uint64_t one = 1;

	s->sq_tail += bytes;
	__atomic_store_n(&s->hdr->submit_tail, s->sq_tail, __ATOMIC_RELEASE);
	if (ring && write(s->sev, &one, sizeof(one)) != sizeof(one))
		perror("test-ring: doorbell");
}

/* A SUBMIT of @n commands, @dn descriptors, @ds data bytes; false if it does not fit now. */
static bool submit(struct sub *s, uint32_t tag, const struct mdgpu_host_cmd2 *cmds, uint32_t n,
		   const struct mdgpu_host_descriptor *descs, uint32_t dn, const void *data,
		   uint32_t ds)
{
	uint32_t bytes = 32 + n * 64 + dn * 40 + ((ds + 7) & ~7u);
	struct mdgpu_host_ring_submit h = { MDGPU_HOST_RING_SUBMIT, bytes, tag, n, dn, ds, 0, 0 };
	uint8_t *at = sq_reserve(s, bytes);

	if (!at)
		return false;
	memset(at, 0, bytes);
	memcpy(at, &h, sizeof(h));
	memcpy(at + 32, cmds, n * 64);
	if (dn)
		memcpy(at + 32 + n * 64, descs, dn * 40);
	if (ds)
		memcpy(at + 32 + n * 64 + dn * 40, data, ds);
	sq_publish(s, bytes, true);
	return true;
}

/* Raw bytes as one record at the tail (whatever they say). */
static void submit_raw(struct sub *s, const void *bytes, uint32_t size)
{
	uint8_t *at = sq_reserve(s, size);

	if (!at) {
		printf("FAIL: no room for a raw record of %u bytes\n", size);
		failed++;
		return;
	}
	memcpy(at, bytes, size);
	sq_publish(s, size, true);
}

struct completion {
	uint32_t type;
	uint32_t tag;
	int32_t error;
	uint32_t stage;
	uint64_t submission;
	struct mdgpu_host_status status;
	char message[MDGPU_HOST_RING_MAX_MESSAGE];
};

/* The next completion record (waiting up to @ms for the doorbell); false on timeout. */
static bool next(struct sub *s, struct completion *c, int ms)
{
	for (;;) {
		uint32_t tail = __atomic_load_n(&s->hdr->complete_tail, __ATOMIC_ACQUIRE);
		uint32_t off = s->cq_head & (s->cq_size - 1);
		struct mdgpu_host_ring_record rec;

		if (tail != s->cq_head) {
			memcpy(&rec, s->cq + off, sizeof(rec));
			memset(c, 0, sizeof(*c));
			c->type = rec.type;
			if (rec.type == MDGPU_HOST_RING_STARTED) {
				struct mdgpu_host_ring_started st;

				memcpy(&st, s->cq + off, sizeof(st));
				c->tag = st.tag;
				c->submission = st.submission;
			} else if (rec.type == MDGPU_HOST_RING_DONE) {
				struct mdgpu_host_ring_done d;

				memcpy(&d, s->cq + off, sizeof(d));
				c->tag = d.tag;
				c->status = d.status;
			} else if (rec.type == MDGPU_HOST_RING_FAILED ||
				   rec.type == MDGPU_HOST_RING_BROKEN) {
				struct mdgpu_host_ring_failed f;

				memcpy(&f, s->cq + off, sizeof(f));
				c->tag = f.tag;
				c->error = f.error;
				c->stage = f.stage;
				snprintf(c->message, sizeof(c->message), "%s",
					 (const char *)s->cq + off + sizeof(f));
			}
			s->cq_head += rec.size;
			__atomic_store_n(&s->hdr->complete_head, s->cq_head, __ATOMIC_RELEASE);
			if (rec.type == MDGPU_HOST_RING_PAD)
				continue;
			return true;
		}
		{
			struct pollfd p = { .fd = s->cev, .events = POLLIN };
			uint64_t v;

			if (poll(&p, 1, ms) <= 0)
				return false;
			if (read(s->cev, &v, sizeof(v)) < 0 && errno != EAGAIN)
				perror("test-ring: read");
		}
	}
}

/*
 * The record that ends batch @tag (DONE or FAILED) in @c. Outcomes of other batches read on
 * the way are kept for later calls: a batch refused when it is taken ends before the batches
 * still running ahead of it.
 */
static struct completion seen[64];

static bool outcome(struct sub *s, uint32_t tag, struct completion *c)
{
	if (tag < 64 && seen[tag].type) {
		*c = seen[tag];
		seen[tag].type = 0;
		return true;
	}
	while (next(s, c, 20000)) {
		if (c->type != MDGPU_HOST_RING_DONE && c->type != MDGPU_HOST_RING_FAILED)
			continue;
		if (c->tag == tag)
			return true;
		if (c->tag < 64)
			seen[c->tag] = *c;
	}
	return false;
}

static struct mdgpu_host_cmd2 fill(uint32_t mem, uint64_t offset, uint64_t size, uint32_t value)
{
	return (struct mdgpu_host_cmd2){ .op = MDGPU_HOST_OP_FILL,
					 .u.fill = { mem, value, offset, size } };
}

/* ---- tests ---- */

static void test_create_errors(uint32_t dev)
{
	struct mdgpu_host_ring_desc d = { 0 };
	struct sub s;
	uint32_t ring;

	CHECK_RET(mdgpu_host_ring_create(dev, NULL, &ring), -EINVAL);
	d.fd = -1;
	CHECK_RET(mdgpu_host_ring_create(dev, &d, &ring), -EINVAL);
	CHECK_RET(sub_open(&s, dev, 4096, 4096, 0), 0);
	d = (struct mdgpu_host_ring_desc){ .fd = s.fd,
					   .submit_event = s.sev,
					   .complete_event = s.cev };
	CHECK_RET(mdgpu_host_ring_create(0xdead, &d, &ring), -ENOENT);
	d.flags = 1;
	CHECK_RET(mdgpu_host_ring_create(dev, &d, &ring), -EINVAL);
	d.flags = 0;
	s.hdr->magic = 0;
	CHECK_RET(mdgpu_host_ring_create(dev, &d, &ring), -EINVAL);
	s.hdr->magic = MDGPU_HOST_RING_MAGIC;
	s.hdr->submit_size = 3000;
	CHECK_RET(mdgpu_host_ring_create(dev, &d, &ring), -EINVAL);
	CHECK(strstr(mdgpu_host_last_error(), "powers of two") != NULL, "%s",
	      mdgpu_host_last_error());
	s.hdr->submit_size = 1u << 20; /* more than the file holds */
	CHECK_RET(mdgpu_host_ring_create(dev, &d, &ring), -EINVAL);
	CHECK(strstr(mdgpu_host_last_error(), "smaller") != NULL, "%s", mdgpu_host_last_error());
	s.hdr->submit_size = 4096;
	s.hdr->submit_tail = 8;
	CHECK_RET(mdgpu_host_ring_create(dev, &d, &ring), -EINVAL);
	s.hdr->submit_tail = 0;
	CHECK_RET(mdgpu_host_ring_bind(s.handle, 3, 1, 1), -EINVAL);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 0, 1), -EINVAL);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 7, 0), -ENOENT);
	CHECK_RET(mdgpu_host_ring_bind(0, MDGPU_HOST_RING_MEMORY, 7, 1), -ENOENT);
	sub_close(&s);
	CHECK_RET(mdgpu_host_ring_destroy(s.handle), -ENOENT);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 7, 1), -ENOENT);
}

/* FILLs through the ring, many more than fit in the area or the service's in-flight limit. */
static void test_batches_in_order(uint32_t dev)
{
	const uint32_t n = 600;
	struct completion c;
	uint32_t mem, sent = 0, seen_started = 0, done = 0, last_done = 0;
	uint64_t last_sub = 0;
	bool in_order = true, all_done = true;
	uint32_t *base;
	struct sub s;
	int fd = memfd_create("test-ring-mem", MFD_CLOEXEC);

	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "memfd");
	base = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_RET(mdgpu_host_memory_import(dev, base, 1 << 20, 0, &mem), 0);
	CHECK_RET(sub_open(&s, dev, 4096, 4096, 0), 0);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 42, mem), 0);
	while (done < n) {
		/* As many as fit, then read what came back: the small areas wrap many times. */
		while (sent < n) {
			struct mdgpu_host_cmd2 cmd = fill(42, sent * 64, 64, sent + 1);

			if (!submit(&s, sent + 1, &cmd, 1, NULL, 0, NULL, 0))
				break;
			sent++;
		}
		if (!next(&s, &c, 20000)) {
			CHECK(false, "no completion after %u of %u batches", done, n);
			break;
		}
		if (c.type == MDGPU_HOST_RING_STARTED) {
			seen_started++;
			in_order &= c.submission > last_sub;
			last_sub = c.submission;
		} else {
			all_done &= c.type == MDGPU_HOST_RING_DONE && c.status.result == 0;
			in_order &= c.tag == last_done + 1;
			last_done = c.tag;
			done++;
		}
	}
	CHECK(all_done, "every batch DONE");
	CHECK(in_order, "STARTED and DONE in submission order");
	CHECK(seen_started == n, "%u STARTED records for %u batches", seen_started, n);
	{
		uint32_t bad = 0;

		for (uint32_t i = 0; i < n; i++)
			bad += base[i * 16] != i + 1 || base[i * 16 + 15] != i + 1;
		CHECK(bad == 0, "%u of %u FILLs wrong", bad, n);
	}
	/* The ring owns the handle: destroying the ring destroyed the memory. */
	sub_close(&s);
	{
		struct mdgpu_host_memory_info mi;

		CHECK_RET(mdgpu_host_memory_info(dev, mem, &mi), -ENOENT);
	}
	munmap(base, 1 << 20);
	close(fd);
}

static struct spirv_file {
	uint32_t *words;
	uint32_t count;
} load(const char *name)
{
	struct spirv_file f = { 0 };
	char path[1024];
	FILE *fp;
	long size;

	snprintf(path, sizeof(path), "%s/%s.spv", kernel_dir, name);
	fp = fopen(path, "rb");
	if (!fp) {
		fprintf(stderr, "test-ring: cannot open %s\n", path);
		exit(2);
	}
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	f.words = malloc((size_t)size);
	if (!f.words || fread(f.words, 1, (size_t)size, fp) != (size_t)size)
		exit(2);
	fclose(fp);
	f.count = (uint32_t)(size / 4);
	return f;
}

/* A dispatch and an UPDATE, kernel and memory by id; ids released in order; refusals. */
static void test_dispatch_release_refusals(uint32_t dev)
{
	struct spirv_file memcpy_k = load("memcpy");
	struct mdgpu_host_kernel_desc kd = { .words = memcpy_k.words,
					     .word_count = memcpy_k.count,
					     .push_size = 4,
					     .legacy_bindings = 2 };
	struct mdgpu_host_descriptor descs[2] = {
		{ .mem = 5, .binding = 0, .offset = 0, .range = 1024 },
		{ .mem = 5, .binding = 1, .offset = 4096, .range = 1024 },
	};
	uint32_t kernel, mem, push = 256, word = 0x12345678, *base;
	struct mdgpu_host_cmd2 cmds[3] = { 0 };
	struct completion c;
	struct sub s;
	int fd = memfd_create("test-ring-mem", MFD_CLOEXEC);

	CHECK(fd >= 0 && ftruncate(fd, 1 << 16) == 0, "memfd");
	base = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (uint32_t i = 0; i < 256; i++)
		base[i] = i * 3;
	CHECK_RET(mdgpu_host_memory_import_fd(dev, fd, 0, 1 << 16, 0, &mem), 0);
	CHECK_RET(mdgpu_host_kernel_create2(dev, &kd, &kernel, NULL, 0), 0);
	CHECK_RET(sub_open(&s, dev, 1 << 16, 1 << 16, 0), 0);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 5, mem), 0);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_KERNEL, 9, kernel), 0);

	/* UPDATE one word, BARRIER, copy 256 words with the kernel. */
	cmds[0] = (struct mdgpu_host_cmd2){
		.op = MDGPU_HOST_OP_UPDATE,
		.u.update = { .mem = 5, .size = 4, .offset = 0, .data_offset = 4 }
	};
	cmds[1].op = MDGPU_HOST_OP_BARRIER;
	cmds[2] = (struct mdgpu_host_cmd2){ .op = MDGPU_HOST_OP_DISPATCH2,
					    .u.dispatch2 = { .kernel = 9,
							     .descriptor_count = 2,
							     .push_offset = 0,
							     .push_size = 4,
							     .groups = { 4, 1, 1 } } };
	{
		uint32_t data[2] = { push, word };

		CHECK(submit(&s, 1, cmds, 3, descs, 2, data, 8), "room");
	}
	CHECK(outcome(&s, 1, &c) && c.type == MDGPU_HOST_RING_DONE, "dispatch done (%u %s)", c.type,
	      c.message);
	CHECK(base[1024] == word && base[1024 + 255] == 255 * 3, "copied: %x %u", base[1024],
	      base[1024 + 255]);
	CHECK(c.status.submission > 0 && c.status.complete_ns >= c.status.submit_ns,
	      "status of the submission");

	/* Refused by submit2: nothing runs; the errno and message come back. */
	cmds[0] = fill(5, 2, 4, 0);
	CHECK(submit(&s, 2, cmds, 1, NULL, 0, NULL, 0), "room");
	CHECK(outcome(&s, 2, &c) && c.type == MDGPU_HOST_RING_FAILED && c.error == -EINVAL &&
		      c.stage == MDGPU_HOST_RING_STAGE_SUBMIT &&
		      strstr(c.message, "command 0: FILL"),
	      "misaligned FILL: %d %u %s", c.error, c.stage, c.message);
	/* An id nobody bound. */
	cmds[0] = fill(6, 0, 4, 0);
	CHECK(submit(&s, 3, cmds, 1, NULL, 0, NULL, 0), "room");
	CHECK(outcome(&s, 3, &c) && c.error == -ENOENT && c.stage == MDGPU_HOST_RING_STAGE_RECORD &&
		      strstr(c.message, "no memory 6"),
	      "unbound memory: %d %s", c.error, c.message);
	descs[1].mem = 77;
	cmds[0] = cmds[2];
	CHECK(submit(&s, 4, cmds, 1, descs, 2, &push, 4), "room");
	CHECK(outcome(&s, 4, &c) && c.error == -ENOENT && strstr(c.message, "no memory 77"),
	      "unbound descriptor memory: %d %s", c.error, c.message);
	descs[1].mem = 5;
	cmds[0].u.dispatch2.kernel = 10;
	CHECK(submit(&s, 5, cmds, 1, descs, 2, &push, 4), "room");
	CHECK(outcome(&s, 5, &c) && c.error == -ENOENT && strstr(c.message, "no kernel 10"),
	      "unbound kernel: %d %s", c.error, c.message);
	cmds[0].u.dispatch2.kernel = 9;

	/* A batch, then RELEASE of its kernel: the batch runs, the next one is refused. */
	base[0] = 0xabcd;
	CHECK(submit(&s, 6, cmds, 1, descs, 2, &push, 4), "room");
	{
		struct mdgpu_host_ring_release rel = { MDGPU_HOST_RING_RELEASE, 16,
						       MDGPU_HOST_RING_KERNEL, 9 };

		submit_raw(&s, &rel, sizeof(rel));
	}
	CHECK(submit(&s, 7, cmds, 1, descs, 2, &push, 4), "room");
	CHECK(outcome(&s, 6, &c) && c.type == MDGPU_HOST_RING_DONE, "before the release: done");
	CHECK(base[1024] == 0xabcd, "and ran");
	CHECK(outcome(&s, 7, &c) && c.error == -ENOENT, "after the release: no kernel (%s)",
	      c.message);
	{
		struct mdgpu_host_kernel_info ki;

		CHECK_RET(mdgpu_host_kernel_info(dev, kernel, &ki, NULL, 0), -ENOENT);
	}
	/* Bind with 0 releases at once; binding an id again destroys the handle it had. */
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 5, 0), 0);
	{
		struct mdgpu_host_memory_info mi;
		uint32_t m2, m3;

		CHECK_RET(mdgpu_host_memory_info(dev, mem, &mi), -ENOENT);
		CHECK_RET(mdgpu_host_memory_import_fd(dev, fd, 0, 4096, 0, &m2), 0);
		CHECK_RET(mdgpu_host_memory_import_fd(dev, fd, 0, 4096, 0, &m3), 0);
		CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 5, m2), 0);
		CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 5, m3), 0);
		CHECK_RET(mdgpu_host_memory_info(dev, m2, &mi), -ENOENT);
		CHECK_RET(mdgpu_host_memory_info(dev, m3, &mi), 0);
	}
	sub_close(&s);
	munmap(base, 1 << 16);
	close(fd);
	free(memcpy_k.words);
}

/* Records that lie: each fails alone, or breaks the ring once; the process lives on. */
static void test_malformed(uint32_t dev)
{
	uint8_t raw[512] = { 0 };
	struct mdgpu_host_ring_submit *h = (struct mdgpu_host_ring_submit *)raw;
	struct completion c;
	struct sub s;
	uint32_t mem, *base;
	int fd = memfd_create("test-ring-mem", MFD_CLOEXEC);

	CHECK(fd >= 0 && ftruncate(fd, 4096) == 0, "memfd");
	base = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_RET(mdgpu_host_memory_import(dev, base, 4096, 0, &mem), 0);
	CHECK_RET(sub_open(&s, dev, 4096, 4096, 0), 0);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 1, mem), 0);

	/* Counts that do not add up to the size. */
	*h = (struct mdgpu_host_ring_submit){ MDGPU_HOST_RING_SUBMIT, 96, 11, 5, 0, 0, 0, 0 };
	submit_raw(&s, raw, 96);
	CHECK(outcome(&s, 11, &c) && c.error == -EINVAL &&
		      c.stage == MDGPU_HOST_RING_STAGE_RECORD &&
		      strstr(c.message, "malformed SUBMIT"),
	      "counts: %d %s", c.error, c.message);
	/* Counts that overflow 32 bits. */
	*h = (struct mdgpu_host_ring_submit){
		MDGPU_HOST_RING_SUBMIT, 96, 12, 0x4000001, 0, 0, 0, 0
	};
	submit_raw(&s, raw, 96);
	CHECK(outcome(&s, 12, &c) && c.error == -EINVAL, "overflowing counts: %s", c.message);
	/* Flags set, a SUBMIT shorter than its header. */
	*h = (struct mdgpu_host_ring_submit){ MDGPU_HOST_RING_SUBMIT, 96, 13, 1, 0, 0, 1, 0 };
	submit_raw(&s, raw, 96);
	CHECK(outcome(&s, 13, &c) && c.error == -EINVAL, "flags: %s", c.message);
	*h = (struct mdgpu_host_ring_submit){ MDGPU_HOST_RING_SUBMIT, 16, 14, 0, 0, 0, 0, 0 };
	submit_raw(&s, raw, 16);
	CHECK(outcome(&s, 14, &c) && c.error == -EINVAL, "short SUBMIT: %s", c.message);
	/* Zero commands: submit2's own refusal. */
	*h = (struct mdgpu_host_ring_submit){ MDGPU_HOST_RING_SUBMIT, 32, 15, 0, 0, 0, 0, 0 };
	submit_raw(&s, raw, 32);
	CHECK(outcome(&s, 15, &c) && c.error == -EINVAL && strstr(c.message, "no commands"),
	      "no commands: %s", c.message);
	/* An unknown type and a bad RELEASE: skipped, said so with tag 0. */
	((struct mdgpu_host_ring_record *)raw)[0] = (struct mdgpu_host_ring_record){ 99, 24 };
	submit_raw(&s, raw, 24);
	CHECK(next(&s, &c, 20000) && c.type == MDGPU_HOST_RING_FAILED && c.tag == 0 &&
		      strstr(c.message, "unknown type 99"),
	      "unknown type: %s", c.message);
	((struct mdgpu_host_ring_release *)raw)[0] =
		(struct mdgpu_host_ring_release){ MDGPU_HOST_RING_RELEASE, 16, 7, 1 };
	submit_raw(&s, raw, 16);
	CHECK(next(&s, &c, 20000) && c.type == MDGPU_HOST_RING_FAILED && c.tag == 0 &&
		      strstr(c.message, "RELEASE"),
	      "bad RELEASE: %s", c.message);
	/* Still serving. */
	{
		struct mdgpu_host_cmd2 cmd = fill(1, 0, 16, 7);

		CHECK(submit(&s, 16, &cmd, 1, NULL, 0, NULL, 0), "room");
		CHECK(outcome(&s, 16, &c) && c.type == MDGPU_HOST_RING_DONE && base[3] == 7,
		      "a good batch after the bad ones");
	}
	/* A size past what was published: the framing is gone, the ring is broken. */
	((struct mdgpu_host_ring_record *)raw)[0] =
		(struct mdgpu_host_ring_record){ MDGPU_HOST_RING_SUBMIT, 2048 };
	submit_raw(&s, raw, 64);
	CHECK(next(&s, &c, 20000) && c.type == MDGPU_HOST_RING_BROKEN && c.error == -EPROTO,
	      "broken: %u %s", c.type, c.message);
	{
		struct mdgpu_host_cmd2 cmd = fill(1, 0, 16, 8);

		CHECK(submit(&s, 17, &cmd, 1, NULL, 0, NULL, 0), "room");
		CHECK(!next(&s, &c, 200), "nothing is taken after BROKEN");
		CHECK(base[3] == 7, "the batch after it did not run");
	}
	sub_close(&s);

	/* Positions more than an area apart. */
	CHECK_RET(sub_open(&s, dev, 4096, 4096, 0), 0);
	s.sq_tail = 8192;
	sq_publish(&s, 0, true);
	CHECK(next(&s, &c, 20000) && c.type == MDGPU_HOST_RING_BROKEN, "impossible positions: %s",
	      c.message);
	sub_close(&s);

	/* A PAD that does not reach the end of the area. */
	CHECK_RET(sub_open(&s, dev, 4096, 4096, 0), 0);
	((struct mdgpu_host_ring_record *)raw)[0] =
		(struct mdgpu_host_ring_record){ MDGPU_HOST_RING_PAD, 16 };
	submit_raw(&s, raw, 16);
	CHECK(next(&s, &c, 20000) && c.type == MDGPU_HOST_RING_BROKEN, "short PAD: %s", c.message);
	sub_close(&s);

	/* Random bytes, records and positions: only FAILED and BROKEN come back. */
	{
		uint32_t seed = 12345, bad = 0;

		for (int round = 0; round < 100; round++) {
			uint32_t len = 8 + 8 * (seed % 60);
			struct completion c2;

			CHECK_RET(sub_open(&s, dev, 4096, 4096, 0), 0);
			for (uint32_t i = 0; i < len; i++) {
				seed = seed * 1103515245u + 12345u;
				raw[i] = (uint8_t)(seed >> 16);
			}
			if (round % 2) { /* a plausible header around random contents */
				struct mdgpu_host_ring_submit *rh =
					(struct mdgpu_host_ring_submit *)raw;

				rh->type = MDGPU_HOST_RING_SUBMIT;
				rh->size = len;
				if (round % 4 == 1) { /* counts that add up */
					rh->cmd_count = (len - 32) / 64;
					rh->descriptor_count = (len - 32 - rh->cmd_count * 64) / 40;
					rh->data_size = len - 32 - rh->cmd_count * 64 -
							rh->descriptor_count * 40;
					rh->flags = rh->reserved = 0;
				}
			}
			submit_raw(&s, raw, len);
			while (next(&s, &c2, 50))
				bad += c2.type != MDGPU_HOST_RING_FAILED &&
				       c2.type != MDGPU_HOST_RING_BROKEN &&
				       c2.type != MDGPU_HOST_RING_STARTED &&
				       c2.type != MDGPU_HOST_RING_DONE;
			sub_close(&s);
		}
		CHECK(bad == 0, "%u unexpected completion records from random records", bad);
	}
	munmap(base, 4096);
	close(fd);
}

/* ring_take: the batch is submitted on the caller's thread; the service waits for it. */
static void test_take_on_caller(uint32_t dev)
{
	struct completion c;
	uint32_t mem, *base;
	struct sub s;
	int fd = memfd_create("test-ring-mem", MFD_CLOEXEC);

	CHECK(fd >= 0 && ftruncate(fd, 4096) == 0, "memfd");
	base = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_RET(mdgpu_host_memory_import(dev, base, 4096, 0, &mem), 0);
	CHECK_RET(sub_open(&s, dev, 4096, 4096, 0), 0);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 3, mem), 0);
	for (uint32_t i = 1; i <= 100; i++) {
		struct mdgpu_host_cmd2 cmd = fill(3, 0, 64, i);
		uint8_t *at = sq_reserve(&s, 96);
		struct mdgpu_host_ring_submit h = { MDGPU_HOST_RING_SUBMIT, 96, i, 1, 0, 0, 0, 0 };
		uint32_t tail;

		memcpy(at, &h, sizeof(h));
		memcpy(at + 32, &cmd, 64);
		sq_publish(&s, 96, false); /* no doorbell: this thread takes it */
		CHECK_RET(mdgpu_host_ring_take(s.handle), 0);
		tail = __atomic_load_n(&s.hdr->submit_head, __ATOMIC_ACQUIRE);
		CHECK(tail == s.sq_tail, "taken when ring_take returned (%u of %u)", tail,
		      s.sq_tail);
		CHECK(next(&s, &c, 0) && c.type == MDGPU_HOST_RING_STARTED && c.tag == i,
		      "STARTED is there when ring_take returns (%u %u)", c.type, c.tag);
		CHECK(outcome(&s, i, &c) && c.type == MDGPU_HOST_RING_DONE, "and DONE comes (%u)",
		      i);
	}
	CHECK(base[15] == 100, "ran: %u", base[15]);
	CHECK_RET(mdgpu_host_ring_take(0), -ENOENT);
	sub_close(&s);
	munmap(base, 4096);
	close(fd);
}

/* A completion area too small for the replies: the service waits for the reader. */
static void test_completion_backpressure(uint32_t dev)
{
	struct completion c;
	uint32_t mem, done = 0, *base;
	struct sub s;
	int fd = memfd_create("test-ring-mem", MFD_CLOEXEC);

	CHECK(fd >= 0 && ftruncate(fd, 4096) == 0, "memfd");
	base = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK_RET(mdgpu_host_memory_import(dev, base, 4096, 0, &mem), 0);
	CHECK_RET(sub_open(&s, dev, 1 << 16, 4096, 0), 0);
	CHECK_RET(mdgpu_host_ring_bind(s.handle, MDGPU_HOST_RING_MEMORY, 1, mem), 0);
	/* 200 batches answer with 200 * 96 bytes: more than 4 times the area. */
	for (uint32_t i = 0; i < 200; i++) {
		struct mdgpu_host_cmd2 cmd = fill(1, (i % 64) * 64, 64, i);

		CHECK(submit(&s, i + 1, &cmd, 1, NULL, 0, NULL, 0), "room for batch %u", i);
	}
	usleep(200000); /* let the service fill the completion area and wait */
	while (done < 200 && next(&s, &c, 20000))
		done += c.type == MDGPU_HOST_RING_DONE;
	CHECK(done == 200, "all 200 done after the reader caught up (%u)", done);
	sub_close(&s);
	munmap(base, 4096);
	close(fd);
}

int main(int argc, char **argv)
{
	const char *selector = argc > 2 ? argv[2] : NULL;
	uint32_t dev;

	if (argc < 2) {
		fprintf(stderr, "usage: test-ring KERNEL_DIR [DEVICE]\n");
		return 2;
	}
	kernel_dir = argv[1];
	if (mdgpu_host_device_open(selector, 0, &dev)) {
		printf("FAIL: no device: %s\n0 passed, 1 failed\n", mdgpu_host_last_error());
		return 1;
	}
	test_create_errors(dev);
	test_batches_in_order(dev);
	test_dispatch_release_refusals(dev);
	test_malformed(dev);
	test_take_on_caller(dev);
	test_completion_backpressure(dev);
	CHECK_RET(mdgpu_host_device_destroy(dev), 0);
	return check_summary();
}
