// SPDX-License-Identifier: MIT
/*
 * libmdgpu, contracts 1.1 and 1.3: the submission encoder (DISPATCH2, DISPATCH_INDIRECT and
 * UPDATE since 1.3), queues (a buffer whose ring userspace fills
 * and publishes with plain stores), fences and kernels.
 *
 * The submission path makes no system call unless the device asked for a doorbell: the
 * commands are copied into the ring through the buffer's direct mapping, tail is stored, and
 * doorbell_needed is read (docs/device.md, "Notification protocol"). Both sides store their own
 * flag, fence, then load the other's (Dekker's pattern), so whichever goes second sees the
 * other: either the device sees the new tail before it sleeps, or the guest sees
 * doorbell_needed = 1 and rings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mdgpu_hw.h"
#include "mdgpu_priv.h"

/*
 * ---- the encoder ----
 *
 * Fields go where the generated command structs of mdgpu_cmd.h put them (offsetof) and are as
 * wide as they are there (sizeof), stored byte by byte in little-endian order, so the bytes do
 * not depend on the CPU's byte order or on how it would lay out the struct.
 */

static inline void put_le(uint8_t *p, size_t size, uint64_t v)
{
	size_t i;

	for (i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le(const uint8_t *p, size_t size)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#define field_size(type, field) sizeof(((struct type *)0)->field)

/* Store @v into @field of the command (struct @type) at @p. */
#define put_field(p, type, field, v) \
	put_le((p) + offsetof(struct type, field), field_size(type, field), (v))

/* Load @field of the command (struct @type) at @p. */
#define get_field(p, type, field) \
	get_le((p) + offsetof(struct type, field), field_size(type, field))

void mdgpu_sub_init(struct mdgpu_submission *s)
{
	memset(s, 0, sizeof(*s));
}

void mdgpu_sub_fini(struct mdgpu_submission *s)
{
	free(s->data);
	memset(s, 0, sizeof(*s));
}

/* @len more bytes, zeroed, at the end of the submission; NULL with the sticky error set. */
static uint8_t *sub_reserve(struct mdgpu_submission *s, size_t len)
{
	uint8_t *p;
	size_t cap;

	if (s->error)
		return NULL;
	if (len > MDGPU_SUBMIT_MAX_BYTES || s->len > MDGPU_SUBMIT_MAX_BYTES - len) {
		s->error = -E2BIG;
		return NULL;
	}
	if (s->len + len > s->cap) {
		cap = s->cap ? s->cap : 256;
		while (cap < s->len + len)
			cap *= 2;
		p = realloc(s->data, cap);
		if (!p) {
			s->error = -ENOMEM;
			return NULL;
		}
		s->data = p;
		s->cap = cap;
	}
	p = s->data + s->len;
	memset(p, 0, len);
	s->len += len;
	return p;
}

/* A command of @length bytes with its header written; the caller fills the rest. */
static uint8_t *sub_cmd(struct mdgpu_submission *s, uint16_t opcode, uint16_t flags,
			uint32_t length)
{
	uint8_t *p = sub_reserve(s, length);

	if (!p)
		return NULL;
	put_field(p, mdgpu_cmd_header, opcode, opcode);
	put_field(p, mdgpu_cmd_header, flags, flags);
	put_field(p, mdgpu_cmd_header, length, length);
	s->commands++;
	return p;
}

int mdgpu_sub_begin(struct mdgpu_submission *s, uint32_t fence_handle, uint64_t fence_offset,
		    uint64_t fence_value, uint32_t flags)
{
	uint8_t *p;

	s->len = 0;
	s->commands = 0;
	s->error = 0;
	p = sub_reserve(s, MDGPU_CMD_SUBMIT_SIZE);
	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_submit, opcode, MDGPU_CMD_SUBMIT);
	put_field(p, mdgpu_cmd_submit, flags, (uint16_t)flags);
	/* mdgpu_sub_end() writes the total */
	put_field(p, mdgpu_cmd_submit, length, MDGPU_CMD_SUBMIT_SIZE);
	put_field(p, mdgpu_cmd_submit, fence_value, fence_value);
	put_field(p, mdgpu_cmd_submit, fence_buffer, fence_handle);
	put_field(p, mdgpu_cmd_submit, fence_offset, fence_offset);
	return 0;
}

int mdgpu_sub_set_fence(struct mdgpu_submission *s, uint32_t fence_handle, uint64_t fence_offset,
			uint64_t fence_value, uint32_t flags)
{
	if (s->error)
		return s->error;
	if (s->len < MDGPU_CMD_SUBMIT_SIZE ||
	    get_field(s->data, mdgpu_cmd_submit, opcode) != MDGPU_CMD_SUBMIT)
		return -EINVAL;
	put_field(s->data, mdgpu_cmd_submit, flags, (uint16_t)flags);
	put_field(s->data, mdgpu_cmd_submit, fence_value, fence_value);
	put_field(s->data, mdgpu_cmd_submit, fence_buffer, fence_handle);
	put_field(s->data, mdgpu_cmd_submit, fence_offset, fence_offset);
	return 0;
}

int mdgpu_sub_copy(struct mdgpu_submission *s, uint32_t src_handle, uint64_t src_offset,
		   uint32_t dst_handle, uint64_t dst_offset, uint64_t size)
{
	uint8_t *p = sub_cmd(s, MDGPU_CMD_COPY, 0, MDGPU_CMD_COPY_SIZE);

	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_copy, src_buffer, src_handle);
	put_field(p, mdgpu_cmd_copy, dst_buffer, dst_handle);
	put_field(p, mdgpu_cmd_copy, src_offset, src_offset);
	put_field(p, mdgpu_cmd_copy, dst_offset, dst_offset);
	put_field(p, mdgpu_cmd_copy, size, size);
	return 0;
}

int mdgpu_sub_fill(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, uint64_t size,
		   uint32_t value)
{
	uint8_t *p = sub_cmd(s, MDGPU_CMD_FILL, 0, MDGPU_CMD_FILL_SIZE);

	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_fill, buffer, handle);
	put_field(p, mdgpu_cmd_fill, value, value);
	put_field(p, mdgpu_cmd_fill, offset, offset);
	put_field(p, mdgpu_cmd_fill, size, size);
	return 0;
}

int mdgpu_sub_dispatch(struct mdgpu_submission *s, uint32_t kernel, uint32_t groups_x,
		       uint32_t groups_y, uint32_t groups_z, const struct mdgpu_binding *bindings,
		       uint32_t nbindings, const void *push, uint32_t push_size)
{
	uint32_t push_at, length, i;
	uint8_t *p;

	if (s->error)
		return s->error;
	if (nbindings > MDGPU_KERNEL_MAX_BINDINGS || push_size > MDGPU_KERNEL_MAX_PUSH_BYTES ||
	    (push_size && !push)) {
		s->error = -EINVAL;
		return s->error;
	}
	push_at = MDGPU_CMD_DISPATCH_SIZE + nbindings * MDGPU_CMD_BINDING_SIZE;
	length = push_at + (push_size + MDGPU_CMD_ALIGN - 1) / MDGPU_CMD_ALIGN * MDGPU_CMD_ALIGN;
	p = sub_cmd(s, MDGPU_CMD_DISPATCH, 0, length);
	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_dispatch, kernel, kernel);
	put_field(p, mdgpu_cmd_dispatch, bindings, nbindings);
	put_field(p, mdgpu_cmd_dispatch, groups_x, groups_x);
	put_field(p, mdgpu_cmd_dispatch, groups_y, groups_y);
	put_field(p, mdgpu_cmd_dispatch, groups_z, groups_z);
	put_field(p, mdgpu_cmd_dispatch, push_size, push_size);
	for (i = 0; i < nbindings; i++) {
		uint8_t *b = p + MDGPU_CMD_DISPATCH_SIZE + i * MDGPU_CMD_BINDING_SIZE;

		put_field(b, mdgpu_dispatch_binding, buffer, bindings[i].handle);
		put_field(b, mdgpu_dispatch_binding, reserved, bindings[i].pad);
		put_field(b, mdgpu_dispatch_binding, offset, bindings[i].offset);
		put_field(b, mdgpu_dispatch_binding, size, bindings[i].size);
	}
	if (push_size)
		memcpy(p + push_at, push, push_size);
	return 0;
}

int mdgpu_sub_fence(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, uint64_t value,
		    uint32_t flags)
{
	uint8_t *p = sub_cmd(s, MDGPU_CMD_FENCE, (uint16_t)flags, MDGPU_CMD_FENCE_SIZE);

	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_fence, buffer, handle);
	put_field(p, mdgpu_cmd_fence, offset, offset);
	put_field(p, mdgpu_cmd_fence, value, value);
	return 0;
}

int mdgpu_sub_wait(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, uint64_t value,
		   uint64_t timeout_ns)
{
	uint8_t *p = sub_cmd(s, MDGPU_CMD_WAIT, 0, MDGPU_CMD_WAIT_SIZE);

	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_wait, buffer, handle);
	put_field(p, mdgpu_cmd_wait, offset, offset);
	put_field(p, mdgpu_cmd_wait, value, value);
	put_field(p, mdgpu_cmd_wait, timeout_ns, timeout_ns);
	return 0;
}

int mdgpu_sub_timestamp(struct mdgpu_submission *s, uint32_t handle, uint64_t offset)
{
	uint8_t *p = sub_cmd(s, MDGPU_CMD_TIMESTAMP, 0, MDGPU_CMD_TIMESTAMP_SIZE);

	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_timestamp, buffer, handle);
	put_field(p, mdgpu_cmd_timestamp, offset, offset);
	return 0;
}

int mdgpu_sub_barrier(struct mdgpu_submission *s)
{
	return sub_cmd(s, MDGPU_CMD_BARRIER, 0, MDGPU_CMD_BARRIER_SIZE) ? 0 : s->error;
}

int mdgpu_sub_nop(struct mdgpu_submission *s, uint32_t length)
{
	if (!s->error && (length < MDGPU_CMD_HEADER_SIZE || length % MDGPU_CMD_ALIGN))
		s->error = -EINVAL;
	return sub_cmd(s, MDGPU_CMD_NOP, 0, length) ? 0 : s->error;
}

/* The descriptors and push constants after a DISPATCH2 or DISPATCH_INDIRECT header of @head. */
static void put_dispatch_tail(uint8_t *p, size_t head, const struct mdgpu_descriptor *descriptors,
			      uint32_t ndescriptors, const void *push, uint32_t push_size)
{
	uint32_t i;

	for (i = 0; i < ndescriptors; i++) {
		uint8_t *d = p + head + (size_t)i * MDGPU_CMD_DESCRIPTOR_SIZE;

		put_field(d, mdgpu_dispatch_descriptor, set, descriptors[i].set);
		put_field(d, mdgpu_dispatch_descriptor, binding, descriptors[i].binding);
		put_field(d, mdgpu_dispatch_descriptor, index, descriptors[i].index);
		put_field(d, mdgpu_dispatch_descriptor, type, descriptors[i].type);
		put_field(d, mdgpu_dispatch_descriptor, buffer, descriptors[i].handle);
		put_field(d, mdgpu_dispatch_descriptor, reserved, descriptors[i].pad);
		put_field(d, mdgpu_dispatch_descriptor, offset, descriptors[i].offset);
		put_field(d, mdgpu_dispatch_descriptor, range, descriptors[i].range);
	}
	if (push_size)
		memcpy(p + head + (size_t)ndescriptors * MDGPU_CMD_DESCRIPTOR_SIZE, push,
		       push_size);
}

/* Length of a DISPATCH2 or DISPATCH_INDIRECT of @head bytes; 0 (and -EINVAL) if none can be. */
static uint32_t dispatch_length(struct mdgpu_submission *s, size_t head, uint32_t ndescriptors,
				const void *push, uint32_t push_size)
{
	if (s->error)
		return 0;
	if (ndescriptors > MDGPU_DISPATCH_MAX_DESCRIPTORS ||
	    push_size > MDGPU_KERNEL_MAX_PUSH_BYTES || (push_size && !push)) {
		s->error = -EINVAL;
		return 0;
	}
	return (uint32_t)(head + (size_t)ndescriptors * MDGPU_CMD_DESCRIPTOR_SIZE +
			  (push_size + MDGPU_CMD_ALIGN - 1) / MDGPU_CMD_ALIGN * MDGPU_CMD_ALIGN);
}

int mdgpu_sub_dispatch2(struct mdgpu_submission *s, uint32_t kernel, const struct mdgpu_grid *grid,
			const struct mdgpu_descriptor *descriptors, uint32_t ndescriptors,
			const void *push, uint32_t push_size)
{
	uint32_t length =
		dispatch_length(s, MDGPU_CMD_DISPATCH2_SIZE, ndescriptors, push, push_size);
	uint8_t *p;

	if (!length)
		return s->error;
	p = sub_cmd(s, MDGPU_CMD_DISPATCH2, 0, length);
	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_dispatch2, kernel, kernel);
	put_field(p, mdgpu_cmd_dispatch2, descriptors, ndescriptors);
	put_field(p, mdgpu_cmd_dispatch2, base_x, grid->base_x);
	put_field(p, mdgpu_cmd_dispatch2, base_y, grid->base_y);
	put_field(p, mdgpu_cmd_dispatch2, base_z, grid->base_z);
	put_field(p, mdgpu_cmd_dispatch2, groups_x, grid->groups_x);
	put_field(p, mdgpu_cmd_dispatch2, groups_y, grid->groups_y);
	put_field(p, mdgpu_cmd_dispatch2, groups_z, grid->groups_z);
	put_field(p, mdgpu_cmd_dispatch2, push_size, push_size);
	put_dispatch_tail(p, MDGPU_CMD_DISPATCH2_SIZE, descriptors, ndescriptors, push, push_size);
	return 0;
}

int mdgpu_sub_dispatch_indirect(struct mdgpu_submission *s, uint32_t kernel, uint32_t args_handle,
				uint64_t args_offset, const struct mdgpu_descriptor *descriptors,
				uint32_t ndescriptors, const void *push, uint32_t push_size)
{
	uint32_t length =
		dispatch_length(s, MDGPU_CMD_DISPATCH_INDIRECT_SIZE, ndescriptors, push, push_size);
	uint8_t *p;

	if (!length)
		return s->error;
	p = sub_cmd(s, MDGPU_CMD_DISPATCH_INDIRECT, 0, length);
	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_dispatch_indirect, kernel, kernel);
	put_field(p, mdgpu_cmd_dispatch_indirect, descriptors, ndescriptors);
	put_field(p, mdgpu_cmd_dispatch_indirect, push_size, push_size);
	put_field(p, mdgpu_cmd_dispatch_indirect, args_buffer, args_handle);
	put_field(p, mdgpu_cmd_dispatch_indirect, args_offset, args_offset);
	put_dispatch_tail(p, MDGPU_CMD_DISPATCH_INDIRECT_SIZE, descriptors, ndescriptors, push,
			  push_size);
	return 0;
}

int mdgpu_sub_update(struct mdgpu_submission *s, uint32_t handle, uint64_t offset, const void *data,
		     uint32_t size)
{
	uint32_t length;
	uint8_t *p;

	if (s->error)
		return s->error;
	if (!size || size > MDGPU_UPDATE_MAX_BYTES || !data) {
		s->error = -EINVAL;
		return s->error;
	}
	length = MDGPU_CMD_UPDATE_SIZE +
		 (size + MDGPU_CMD_ALIGN - 1) / MDGPU_CMD_ALIGN * MDGPU_CMD_ALIGN;
	p = sub_cmd(s, MDGPU_CMD_UPDATE, 0, length);
	if (!p)
		return s->error;
	put_field(p, mdgpu_cmd_update, buffer, handle);
	put_field(p, mdgpu_cmd_update, size, size);
	put_field(p, mdgpu_cmd_update, offset, offset);
	memcpy(p + MDGPU_CMD_UPDATE_SIZE, data, size);
	return 0;
}

int mdgpu_sub_append(struct mdgpu_submission *s, const struct mdgpu_submission *from)
{
	size_t len;
	uint8_t *p;

	if (s->error)
		return s->error;
	if (from->error)
		return from->error;
	if (s->len < MDGPU_CMD_SUBMIT_SIZE || from->len < MDGPU_CMD_SUBMIT_SIZE)
		return -EINVAL;
	len = from->len - MDGPU_CMD_SUBMIT_SIZE;
	if (len > MDGPU_SUBMIT_MAX_BYTES - s->len ||
	    from->commands > MDGPU_SUBMIT_MAX_COMMANDS - s->commands)
		return -E2BIG;
	if (!len)
		return 0;
	p = sub_reserve(s, len);
	if (!p)
		return s->error;
	memcpy(p, from->data + MDGPU_CMD_SUBMIT_SIZE, len);
	s->commands += from->commands;
	return 0;
}

int mdgpu_sub_end(struct mdgpu_submission *s)
{
	if (s->error)
		return s->error;
	if (s->len < MDGPU_CMD_SUBMIT_SIZE ||
	    get_field(s->data, mdgpu_cmd_submit, opcode) != MDGPU_CMD_SUBMIT)
		return -EINVAL;
	if (s->commands > MDGPU_SUBMIT_MAX_COMMANDS)
		return -E2BIG;
	put_field(s->data, mdgpu_cmd_submit, length, s->len);
	return 0;
}

/* ---- queues ---- */

struct mdgpu_queue {
	struct mdgpu *dev;
	struct mdgpu_buffer bo;
	uint32_t id;
	unsigned int flags;
	uint64_t ring_size;
	struct mdgpu_queue_control *ctl;
	uint8_t *ring;
	uint64_t tail;
	struct mdgpu_queue_stats stats;
};

/* How long mdgpu_queue_write() waits for ring space, and how it waits. */
#define SPACE_TIMEOUT_NS 10000000000ull
#define SPACE_SPIN_NS 50000ull
#define SPACE_SLEEP_NS 50000l
/* A device that sleeps with our work unconsumed gets a doorbell after this long anyway. */
#define SPACE_REDOORBELL_NS 1000000ull

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

int mdgpu_queue_create(struct mdgpu *dev, uint64_t ring_bytes, uint32_t priority,
		       struct mdgpu_queue **out)
{
	struct mdgpu_queue_create args = { .priority = priority };
	struct mdgpu_queue *q;
	int ret;

	if (ring_bytes < MDGPU_QUEUE_RING_MIN || ring_bytes > MDGPU_QUEUE_RING_MAX ||
	    (ring_bytes & (ring_bytes - 1)) || priority > MDGPU_QUEUE_PRIORITY_MAX)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->dev = dev;
	q->ring_size = ring_bytes;

	ret = mdgpu_bo_create(dev, MDGPU_QUEUE_CONTROL_SIZE + ring_bytes, 0, 0, &q->bo);
	if (ret)
		goto err_free;
	ret = mdgpu_bo_map(dev, &q->bo);
	if (ret)
		goto err_destroy;
	args.handle = q->bo.handle;
	ret = mdgpu_priv_ioctl(dev, MDGPU_IOCTL_QUEUE_CREATE, &args);
	if (ret)
		goto err_unmap;
	q->id = args.queue;
	q->ctl = q->bo.map;
	q->ring = (uint8_t *)q->bo.map + MDGPU_QUEUE_CONTROL_SIZE;
	q->tail = __atomic_load_n(&q->ctl->tail, __ATOMIC_RELAXED);
	*out = q;
	return 0;

err_unmap:
	mdgpu_bo_unmap(&q->bo);
err_destroy:
	mdgpu_bo_destroy(dev, &q->bo);
err_free:
	free(q);
	return ret;
}

int mdgpu_queue_destroy(struct mdgpu_queue *q)
{
	struct mdgpu_queue_destroy args;
	int ret, r;

	if (!q)
		return 0;
	args = (struct mdgpu_queue_destroy){ .queue = q->id };
	ret = mdgpu_priv_ioctl(q->dev, MDGPU_IOCTL_QUEUE_DESTROY, &args);
	r = mdgpu_bo_unmap(&q->bo);
	if (!ret)
		ret = r;
	r = mdgpu_bo_destroy(q->dev, &q->bo);
	if (!ret)
		ret = r;
	free(q);
	return ret;
}

uint32_t mdgpu_queue_id(const struct mdgpu_queue *q)
{
	return q->id;
}

const struct mdgpu_buffer *mdgpu_queue_buffer(const struct mdgpu_queue *q)
{
	return &q->bo;
}

const volatile struct mdgpu_queue_control *mdgpu_queue_control(const struct mdgpu_queue *q)
{
	return q->ctl;
}

void mdgpu_queue_set_flags(struct mdgpu_queue *q, unsigned int flags)
{
	q->flags = flags;
}

void mdgpu_queue_get_stats(const struct mdgpu_queue *q, struct mdgpu_queue_stats *stats)
{
	*stats = q->stats;
}

static int mdgpu_queue_ring(struct mdgpu_queue *q)
{
	struct mdgpu_queue_doorbell args = { .queue = q->id };

	q->stats.doorbells++;
	return mdgpu_priv_ioctl(q->dev, MDGPU_IOCTL_QUEUE_DOORBELL, &args);
}

/* Wait until @len bytes at tail are free: the device has consumed up to tail + len - ring. */
static int mdgpu_queue_wait_space(struct mdgpu_queue *q, size_t len)
{
	const struct timespec pause = { 0, SPACE_SLEEP_NS };
	uint64_t head, start = 0, waited, last_ring = 0;
	int ret;

	for (;;) {
		head = __atomic_load_n(&q->ctl->head, __ATOMIC_ACQUIRE);
		/* head never passes tail: a value that does (hostile or torn) means no room. */
		if (head <= q->tail && q->tail - head <= q->ring_size - len)
			return 0;
		if (__atomic_load_n(&q->ctl->state, __ATOMIC_RELAXED) == MDGPU_SUBMIT_BAD_RING)
			return -EIO;
		if (!start) {
			q->stats.space_waits++;
			start = mdgpu_priv_now_ns();
			continue;
		}
		waited = mdgpu_priv_now_ns() - start;
		if (waited > SPACE_TIMEOUT_NS)
			return -ETIMEDOUT;
		/* Belt and braces: the protocol never leaves published work asleep. */
		if (waited - last_ring > SPACE_REDOORBELL_NS &&
		    __atomic_load_n(&q->ctl->doorbell_needed, __ATOMIC_ACQUIRE) == 1) {
			ret = mdgpu_queue_ring(q);
			if (ret)
				return ret;
			last_ring = waited;
		}
		if (waited < SPACE_SPIN_NS)
			cpu_relax();
		else
			nanosleep(&pause, NULL);
	}
}

int mdgpu_queue_write(struct mdgpu_queue *q, const void *bytes, size_t len)
{
	uint64_t pos, first;
	int ret;

	if (!len || len % MDGPU_CMD_ALIGN)
		return -EINVAL;
	if (len > q->ring_size)
		return -E2BIG;
	ret = mdgpu_queue_wait_space(q, len);
	if (ret)
		return ret;

	pos = q->tail & (q->ring_size - 1);
	first = q->ring_size - pos < len ? q->ring_size - pos : len;
	memcpy(q->ring + pos, bytes, first);
	if (first < len)
		memcpy(q->ring, (const uint8_t *)bytes + first, len - first);
	q->tail += len;
	q->stats.submissions++;
	q->stats.bytes += len;

	/*
	 * The ring is write-combined: on x86 such stores may become visible after later ones, and
	 * only a fence (mfence here) orders them. So: fence, publish tail, fence, look at the flag.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&q->ctl->tail, q->tail, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if ((q->flags & MDGPU_QUEUE_FORCE_DOORBELL) ||
	    __atomic_load_n(&q->ctl->doorbell_needed, __ATOMIC_ACQUIRE) == 1)
		return mdgpu_queue_ring(q);
	return 0;
}

int mdgpu_queue_submit(struct mdgpu_queue *q, struct mdgpu_submission *s)
{
	int ret = mdgpu_sub_end(s);

	if (ret)
		return ret;
	return mdgpu_queue_write(q, s->data, s->len);
}

/* ---- fences ---- */

uint64_t mdgpu_fence_read(const struct mdgpu_buffer *bo, uint64_t offset)
{
	return __atomic_load_n((uint64_t *)((uint8_t *)bo->map + offset), __ATOMIC_ACQUIRE);
}

void mdgpu_set_fence_spin(struct mdgpu *dev, uint64_t spin_ns)
{
	dev->fence_spin_ns = spin_ns;
}

int mdgpu_fence_wait_kernel(struct mdgpu *dev, uint32_t handle, uint64_t offset, uint64_t value,
			    uint64_t timeout_ns, uint64_t *seen)
{
	struct mdgpu_wait_fence args = {
		.handle = handle,
		.offset = offset,
		.value = value,
		.timeout_ns = timeout_ns,
	};
	int ret;

	/* Interrupted, the kernel lowers timeout_ns to the time left; the retry uses that. */
	ret = mdgpu_priv_ioctl(dev, MDGPU_IOCTL_WAIT_FENCE, &args);
	if (seen)
		*seen = args.seen;
	return ret;
}

int mdgpu_fence_wait(struct mdgpu *dev, const struct mdgpu_buffer *bo, uint64_t offset,
		     uint64_t value, uint64_t timeout_ns)
{
	uint64_t v, start, elapsed = 0;

	if (value & MDGPU_FENCE_ERROR)
		return -EINVAL;
	if (bo->map && !(offset % 8) && offset + 8 <= bo->size) {
		start = mdgpu_priv_now_ns();
		for (;;) {
			v = mdgpu_fence_read(bo, offset);
			/* As the driver: an earlier submission's error fence is not ours. */
			if ((v & ~MDGPU_FENCE_ERROR) >= value)
				return v & MDGPU_FENCE_ERROR ? -EIO : 0;
			elapsed = mdgpu_priv_now_ns() - start;
			if (elapsed >= dev->fence_spin_ns || elapsed >= timeout_ns)
				break;
			cpu_relax();
		}
		timeout_ns -= elapsed < timeout_ns ? elapsed : timeout_ns;
	}
	return mdgpu_fence_wait_kernel(dev, bo->handle, offset, value, timeout_ns, NULL);
}

/* ---- kernels ---- */

int mdgpu_kernel_create(struct mdgpu *dev, const void *spirv, size_t size, uint32_t bindings,
			uint32_t push_bytes, uint32_t *kernel)
{
	struct mdgpu_kernel_create args = {
		.size = size,
		.bindings = bindings,
		.push_bytes = push_bytes,
	};
	struct mdgpu_buffer bo;
	int ret, r;

	if (!size || size > MDGPU_KERNEL_MAX_SPIRV || size % 4)
		return -EINVAL;
	ret = mdgpu_bo_create(dev, size, 0, 0, &bo);
	if (ret)
		return ret;
	ret = mdgpu_bo_map(dev, &bo);
	if (ret)
		goto out_destroy;
	memcpy(bo.map, spirv, size);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ret = mdgpu_bo_unmap(&bo);
	if (ret)
		goto out_destroy;
	/* The device copies the module out during the ioctl: the buffer can go right after. */
	args.handle = bo.handle;
	ret = mdgpu_priv_ioctl(dev, MDGPU_IOCTL_KERNEL_CREATE, &args);
	if (!ret)
		*kernel = args.kernel;
out_destroy:
	r = mdgpu_bo_destroy(dev, &bo);
	if (!ret && r) {
		mdgpu_kernel_destroy(dev, args.kernel);
		ret = r;
	}
	return ret;
}

int mdgpu_kernel_load(struct mdgpu *dev, const char *path, uint32_t bindings, uint32_t push_bytes,
		      uint32_t *kernel)
{
	struct stat st;
	size_t done = 0;
	ssize_t n;
	void *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out_close;
	}
	if (st.st_size <= 0 || st.st_size > MDGPU_KERNEL_MAX_SPIRV) {
		ret = -EINVAL;
		goto out_close;
	}
	buf = malloc(st.st_size);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	while (done < (size_t)st.st_size) {
		n = read(fd, (uint8_t *)buf + done, st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out_free;
		}
		done += n;
	}
	ret = mdgpu_kernel_create(dev, buf, done, bindings, push_bytes, kernel);
out_free:
	free(buf);
out_close:
	close(fd);
	return ret;
}

/* Round @v up to a multiple of 8 (records in the staging buffer stay 8-aligned). */
static size_t align8(size_t v)
{
	return (v + 7) & ~(size_t)7;
}

/* Where the parts of a kernel record go in its buffer: the record, then the entry point,
 * the map, the data and the SPIR-V, each 8-aligned. */
struct record_layout {
	size_t entry_size, entry_at, map_at, data_at, spirv_at, total;
};

static int record_layout(const struct mdgpu_kernel_params *params, struct record_layout *l)
{
	l->entry_size = params->entry ? strlen(params->entry) : 0;
	if (!params->spirv || !params->spirv_size || params->spirv_size > MDGPU_KERNEL_MAX_SPIRV ||
	    params->spirv_size % 4 || l->entry_size > MDGPU_KERNEL_MAX_ENTRY_NAME ||
	    params->spec_count > MDGPU_KERNEL_MAX_SPEC_ENTRIES ||
	    params->spec_data_size > MDGPU_KERNEL_MAX_SPEC_DATA ||
	    (params->spec_count && !params->spec) || (params->spec_data_size && !params->spec_data))
		return -EINVAL;
	l->entry_at = align8(sizeof(struct mdgpu_kernel_desc));
	l->map_at = align8(l->entry_at + l->entry_size);
	l->data_at = align8(l->map_at +
			    (size_t)params->spec_count * sizeof(struct mdgpu_spec_map_entry));
	l->spirv_at = align8(l->data_at + params->spec_data_size);
	l->total = l->spirv_at + params->spirv_size;
	return 0;
}

int mdgpu_kernel_record_size(const struct mdgpu_kernel_params *params, size_t *size)
{
	struct record_layout l;
	int ret = record_layout(params, &l);

	if (!ret)
		*size = l.total;
	return ret;
}

int mdgpu_kernel_record_write(const struct mdgpu_kernel_params *params, void *buf, size_t size)
{
	struct record_layout l;
	uint8_t *p = buf;
	uint32_t i;
	int ret = record_layout(params, &l);

	if (ret)
		return ret;
	if (size < l.total)
		return -E2BIG;
	memset(p, 0, l.spirv_at);
	put_field(p, mdgpu_kernel_desc, flags, params->flags);
	put_field(p, mdgpu_kernel_desc, push_bytes, params->push_bytes);
	put_field(p, mdgpu_kernel_desc, spirv_size, params->spirv_size);
	put_field(p, mdgpu_kernel_desc, spirv_offset, l.spirv_at);
	put_field(p, mdgpu_kernel_desc, entry_size, l.entry_size);
	put_field(p, mdgpu_kernel_desc, entry_offset, l.entry_size ? l.entry_at : 0);
	put_field(p, mdgpu_kernel_desc, spec_map_count, params->spec_count);
	put_field(p, mdgpu_kernel_desc, spec_map_offset, params->spec_count ? l.map_at : 0);
	put_field(p, mdgpu_kernel_desc, spec_data_size, params->spec_data_size);
	put_field(p, mdgpu_kernel_desc, spec_data_offset, params->spec_data_size ? l.data_at : 0);
	if (l.entry_size)
		memcpy(p + l.entry_at, params->entry, l.entry_size);
	for (i = 0; i < params->spec_count; i++) {
		uint8_t *e = p + l.map_at + (size_t)i * sizeof(struct mdgpu_spec_map_entry);

		put_field(e, mdgpu_spec_map_entry, constant_id, params->spec[i].constant_id);
		put_field(e, mdgpu_spec_map_entry, offset, params->spec[i].offset);
		put_field(e, mdgpu_spec_map_entry, size, params->spec[i].size);
	}
	if (params->spec_data_size)
		memcpy(p + l.data_at, params->spec_data, params->spec_data_size);
	memcpy(p + l.spirv_at, params->spirv, params->spirv_size);
	return 0;
}

int mdgpu_kernel_create2(struct mdgpu *dev, const struct mdgpu_kernel_params *params,
			 uint32_t *kernel)
{
	struct mdgpu_kernel_create2 args = { .size = MDGPU_KERNEL_DESC_MIN_SIZE };
	struct mdgpu_buffer bo;
	size_t total;
	int ret, r;

	ret = mdgpu_kernel_record_size(params, &total);
	if (ret)
		return ret;
	ret = mdgpu_bo_create(dev, total, 0, 0, &bo);
	if (ret)
		return ret;
	ret = mdgpu_bo_map(dev, &bo);
	if (ret)
		goto out_destroy;
	ret = mdgpu_kernel_record_write(params, bo.map, bo.size);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	r = mdgpu_bo_unmap(&bo);
	if (!ret)
		ret = r;
	if (ret)
		goto out_destroy;
	/* The device copies everything out during the ioctl: the buffer can go right after. */
	args.handle = bo.handle;
	ret = mdgpu_priv_ioctl(dev, MDGPU_IOCTL_KERNEL_CREATE2, &args);
	if (!ret)
		*kernel = args.kernel;
out_destroy:
	r = mdgpu_bo_destroy(dev, &bo);
	if (!ret && r) {
		mdgpu_kernel_destroy(dev, args.kernel);
		ret = r;
	}
	return ret;
}

int mdgpu_kernel_destroy(struct mdgpu *dev, uint32_t kernel)
{
	struct mdgpu_kernel_destroy args = { .kernel = kernel };

	return mdgpu_priv_ioctl(dev, MDGPU_IOCTL_KERNEL_DESTROY, &args);
}

static const char *const mdgpu_submit_errors[] = MDGPU_SUBMIT_ERROR_NAMES;

const char *mdgpu_submit_error_name(uint32_t code)
{
	if (code < sizeof(mdgpu_submit_errors) / sizeof(mdgpu_submit_errors[0]))
		return mdgpu_submit_errors[code];
	return "?";
}
