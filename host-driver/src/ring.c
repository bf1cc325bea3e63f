// SPDX-License-Identifier: MIT
/*
 * The ring service (ABI 2.2, see the ring section of mdgpu_host.h): a thread that takes batches
 * from a submission ring in shared memory, runs each through mdgpu_host_submit2(), waits for
 * it itself and reports how it went in a completion ring.
 *
 * Why a thread of the library and not the caller's: the caller is mdgpu's TypeScript, in the
 * daemon or in its compute worker process. On the way through JavaScript a batch cost a
 * structured-clone IPC message each way, a decode into objects, an encode back into these very
 * records, and a hop to a libuv pool thread to wait for the fence. Here the records the
 * daemon encoded are the records submit2 reads, and the thread that submitted a batch is the
 * one that waits for it: one wakeup to take it, one doorbell to report it.
 *
 * Trust: the records come from another process's memory, which can change while we read it, so
 * every record is copied out before it is looked at, and every size is checked against what
 * was published (see take()); the commands are then checked by submit2 as for any caller.
 *
 * Threads: whoever takes records (the service thread, or a submitter in this process through
 * mdgpu_host_ring_take) holds the ring's take lock, which guards the submission reader, the
 * batches in flight and the completion writer; the service lets go of it only to sleep or to
 * wait for a fence. Bindings (id -> handle) are changed under the ring's lock by
 * mdgpu_host_ring_bind and by RELEASE records. The ring table has a global lock that the service
 * never takes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(struct mdgpu_host_ring_header) == 320, "ring header is 320 bytes");
_Static_assert(offsetof(struct mdgpu_host_ring_header, submit_tail) == 64, "submit_tail at 64");
_Static_assert(offsetof(struct mdgpu_host_ring_header, submit_head) == 128, "submit_head at 128");
_Static_assert(offsetof(struct mdgpu_host_ring_header, complete_tail) == 192,
	       "complete_tail at 192");
_Static_assert(offsetof(struct mdgpu_host_ring_header, complete_head) == 256,
	       "complete_head at 256");
_Static_assert(sizeof(struct mdgpu_host_ring_submit) == 32, "SUBMIT header is 32 bytes");
_Static_assert(sizeof(struct mdgpu_host_ring_release) == 16, "RELEASE is 16 bytes");
_Static_assert(sizeof(struct mdgpu_host_ring_started) == 24, "STARTED is 24 bytes");
_Static_assert(sizeof(struct mdgpu_host_ring_done) == 72, "DONE is 72 bytes");
_Static_assert(sizeof(struct mdgpu_host_ring_failed) == 24, "FAILED is 24 bytes and a message");

#define DEFAULT_WAIT_SLICE_NS 2000000u
#define DEFAULT_STARTED_DELAY_NS 1000000u
#define MAX_RINGS 64u
#define SUBMIT_HEAD ((uint32_t)sizeof(struct mdgpu_host_ring_submit))
#define FAILED_HEAD ((uint32_t)sizeof(struct mdgpu_host_ring_failed))

/* ---- ids -> handles: open addressing, linear probing, 0 is "no key" ---- */

struct idmap {
	uint32_t *keys;
	uint32_t *vals;
	uint32_t cap; /* a power of two, or 0 */
	uint32_t count;
};

static uint32_t id_hash(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	return x ^ (x >> 16);
}

static uint32_t idmap_slot(const struct idmap *m, uint32_t key)
{
	uint32_t i = id_hash(key) & (m->cap - 1);

	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static uint32_t idmap_get(const struct idmap *m, uint32_t key)
{
	uint32_t i;

	if (!m->cap)
		return 0;
	i = idmap_slot(m, key);
	return m->keys[i] == key ? m->vals[i] : 0;
}

static int idmap_grow(struct idmap *m)
{
	struct idmap n = { .cap = m->cap ? m->cap * 2 : 64 };

	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->cap; i++) {
		if (m->keys[i]) {
			uint32_t j = idmap_slot(&n, m->keys[i]);

			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
			n.count++;
		}
	}
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

/* Set @key to @val; *@old gets the value it replaces (0: none). */
static int idmap_put(struct idmap *m, uint32_t key, uint32_t val, uint32_t *old)
{
	uint32_t i;

	if ((m->count + 1) * 2 > m->cap && idmap_grow(m))
		return -ENOMEM;
	i = idmap_slot(m, key);
	*old = m->keys[i] == key ? m->vals[i] : 0;
	if (!m->keys[i])
		m->count++;
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

/* Remove @key; returns its value (0: it was not there). Backward-shift deletion. */
static uint32_t idmap_remove(struct idmap *m, uint32_t key)
{
	uint32_t mask = m->cap - 1, i, j, val;

	if (!m->cap)
		return 0;
	i = idmap_slot(m, key);
	if (m->keys[i] != key)
		return 0;
	val = m->vals[i];
	m->keys[i] = 0;
	m->count--;
	for (j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		uint32_t home = id_hash(m->keys[j]) & mask;

		/* Move the entry at j into the hole at i unless its home lies in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->keys[j] = 0;
			i = j;
		}
	}
	return val;
}

/* ---- rings ---- */

struct inflight {
	uint32_t tag;
	uint64_t submission;
};

struct ring {
	uint32_t device;
	int fd;
	int submit_event;
	int complete_event;
	uint8_t *map;
	size_t map_size;
	struct mdgpu_host_ring_header *hdr;
	uint8_t *sq;
	uint32_t sq_size;
	uint8_t *cq;
	uint32_t cq_size;
	uint64_t wait_slice_ns;
	uint64_t started_delay_ns;
	pthread_t thread;
	int stop; /* __atomic: the ring is being destroyed */

	pthread_mutex_t take_lock; /* guards everything below but ids */

	pthread_mutex_t lock; /* guards ids */
	struct idmap ids[2]; /* [kind - 1] */

	uint32_t sq_head;
	uint32_t cq_tail;
	bool broken;
	bool owed; /* completions published since the last doorbell */
	bool owed_final; /* ... and one of them is not a STARTED */
	uint64_t owed_since; /* when the first of them was published */
	uint8_t *scratch; /* where a record is copied to before it is read */
	size_t scratch_cap;
	struct inflight inflight[MDGPU_HOST_RING_MAX_INFLIGHT];
	uint32_t in_first;
	uint32_t in_count;
};

static pthread_mutex_t rings_lock = PTHREAD_MUTEX_INITIALIZER;
/* The ring the calling thread serves, if it is a service thread. */
static _Thread_local struct ring *serving;
static struct ring *rings[MAX_RINGS];
static uint32_t ring_gen[MAX_RINGS];

/* A handle is (generation << 8) | (slot + 1): never 0, and a stale one misses. */
static struct ring *ring_get(uint32_t handle)
{
	uint32_t slot = (handle & 0xffu) - 1;

	if (slot >= MAX_RINGS || !rings[slot] || (ring_gen[slot] & 0xffffffu) != handle >> 8)
		return NULL;
	return rings[slot];
}

static void destroy_handle(uint32_t device, uint32_t kind, uint32_t handle)
{
	if (kind == MDGPU_HOST_RING_MEMORY)
		mdgpu_host_memory_destroy(device, handle);
	else
		mdgpu_host_kernel_destroy(device, handle);
}

/* ---- the completion area (service thread) ---- */

static void doorbell(struct ring *r)
{
	uint64_t one = 1;

	if (write(r->complete_event, &one, sizeof(one)) < 0 && errno != EAGAIN)
		mdgpu_log(MDGPU_LOG_ERROR, "ring: completion doorbell: %s", strerror(errno));
	r->owed = false;
	r->owed_final = false;
}

static void publish_completions(struct ring *r)
{
	__atomic_store_n(&r->hdr->complete_tail, r->cq_tail, __ATOMIC_RELEASE);
}

/*
 * Room for a completion record of @bytes (8k, at most MDGPU_HOST_RING_MIN_AREA): its address,
 * after a PAD where it would not fit before the end (take lock held). While the area is full
 * the service wakes the reader and waits for it, without the take lock; NULL if the ring is
 * stopping meanwhile, or when the caller is the reader itself (mdgpu_host_ring_take: waiting
 * would wait for itself): the record is dropped. A submitter that bounds its batches in
 * flight, as mdgpu does, never fills the area.
 */
static uint8_t *cq_reserve(struct ring *r, uint32_t bytes)
{
	bool complained = false;

	for (;;) {
		uint32_t head = __atomic_load_n(&r->hdr->complete_head, __ATOMIC_ACQUIRE);
		uint32_t used = r->cq_tail - head;
		uint32_t off = r->cq_tail & (r->cq_size - 1), rest = r->cq_size - off;

		if (used <= r->cq_size) {
			if (bytes > rest && used + rest <= r->cq_size) {
				struct mdgpu_host_ring_record pad = { MDGPU_HOST_RING_PAD, rest };

				memcpy(r->cq + off, &pad, sizeof(pad));
				r->cq_tail += rest;
				publish_completions(r);
				continue;
			}
			if (bytes <= rest && used + bytes <= r->cq_size)
				return r->cq + off;
		} else if (!complained) {
			mdgpu_log(
				MDGPU_LOG_ERROR,
				"ring: the completion reader's position %u is %u bytes behind (area"
				" of %u): waiting for it",
				head, used, r->cq_size);
			complained = true;
		}
		/* Full: make sure the reader knows there is something to read, then wait. */
		doorbell(r);
		if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) || serving != r) {
			mdgpu_log(MDGPU_LOG_ERROR,
				  "ring: the completion area is full; a record of %u bytes is lost",
				  bytes);
			return NULL;
		}
		pthread_mutex_unlock(&r->take_lock);
		nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
		pthread_mutex_lock(&r->take_lock);
	}
}

static void cq_commit(struct ring *r, uint32_t bytes, bool final)
{
	r->cq_tail += bytes;
	publish_completions(r);
	if (!r->owed)
		r->owed_since = mdgpu_now_ns();
	r->owed = true;
	r->owed_final |= final;
}

static void post_started(struct ring *r, uint32_t tag, uint64_t submission)
{
	struct mdgpu_host_ring_started rec = { MDGPU_HOST_RING_STARTED, sizeof(rec), tag, 0,
					       submission };
	uint8_t *at = cq_reserve(r, sizeof(rec));

	if (at) {
		memcpy(at, &rec, sizeof(rec));
		cq_commit(r, sizeof(rec), false);
	}
}

static void post_done(struct ring *r, uint32_t tag, const struct mdgpu_host_status *status)
{
	struct mdgpu_host_ring_done rec = { MDGPU_HOST_RING_DONE, sizeof(rec), tag, 0, *status };
	uint8_t *at = cq_reserve(r, sizeof(rec));

	if (at) {
		memcpy(at, &rec, sizeof(rec));
		cq_commit(r, sizeof(rec), true);
	}
}

/* FAILED (or BROKEN) with @message, cut to MDGPU_HOST_RING_MAX_MESSAGE bytes with its NUL. */
static void post_failed(struct ring *r, uint32_t type, uint32_t tag, int error, uint32_t stage,
			const char *message)
{
	size_t len = strnlen(message, MDGPU_HOST_RING_MAX_MESSAGE - 1);
	uint32_t bytes = (FAILED_HEAD + (uint32_t)len + 1 + 7) & ~7u;
	struct mdgpu_host_ring_failed rec = { type, bytes, tag, error, stage, 0 };
	uint8_t *at = cq_reserve(r, bytes);

	if (!at)
		return;
	memcpy(at, &rec, sizeof(rec));
	memcpy(at + FAILED_HEAD, message, len);
	memset(at + FAILED_HEAD + len, 0, bytes - FAILED_HEAD - len);
	cq_commit(r, bytes, true);
}

static void post_failedf(struct ring *r, uint32_t tag, int error, uint32_t stage, const char *fmt,
			 ...) __attribute__((format(printf, 5, 6)));

static void post_failedf(struct ring *r, uint32_t tag, int error, uint32_t stage, const char *fmt,
			 ...)
{
	char msg[MDGPU_HOST_RING_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	post_failed(r, MDGPU_HOST_RING_FAILED, tag, error, stage, msg);
}

/* The submission area cannot be read any more: say so once and take nothing more. */
static void broken(struct ring *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void broken(struct ring *r, const char *fmt, ...)
{
	char msg[MDGPU_HOST_RING_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mdgpu_log(MDGPU_LOG_ERROR, "ring: %s; taking no more batches", msg);
	r->broken = true;
	post_failed(r, MDGPU_HOST_RING_BROKEN, 0, -EPROTO, 0, msg);
}

/* ---- taking batches (service thread) ---- */

/* Memory and kernel ids of a copied batch to handles, in place. 0, or the command's index + 1. */
static int resolve_ids(struct ring *r, struct mdgpu_host_cmd2 *cmds, uint32_t n,
		       struct mdgpu_host_descriptor *descs, uint32_t dn, char *why, size_t why_size)
{
	struct idmap *mems = &r->ids[MDGPU_HOST_RING_MEMORY - 1];
	struct idmap *kernels = &r->ids[MDGPU_HOST_RING_KERNEL - 1];
	uint32_t *ids[2];
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < n && !ret; i++) {
		struct mdgpu_host_cmd2 *c = &cmds[i];
		uint32_t count = 1;

		switch (c->op) {
		case MDGPU_HOST_OP_COPY:
			ids[0] = &c->u.copy.src_mem;
			ids[1] = &c->u.copy.dst_mem;
			count = 2;
			break;
		case MDGPU_HOST_OP_FILL:
			ids[0] = &c->u.fill.mem;
			break;
		case MDGPU_HOST_OP_UPDATE:
			ids[0] = &c->u.update.mem;
			break;
		case MDGPU_HOST_OP_TIMESTAMP:
			ids[0] = &c->u.timestamp.mem;
			break;
		case MDGPU_HOST_OP_DISPATCH2: {
			uint32_t h = idmap_get(kernels, c->u.dispatch2.kernel);

			if (!h) {
				snprintf(why, why_size,
					 "submit2: command %u: no kernel %u bound to the ring", i,
					 c->u.dispatch2.kernel);
				ret = -ENOENT;
			}
			c->u.dispatch2.kernel = h;
			continue;
		}
		default:
			continue; /* BARRIER, or an op submit2 will refuse */
		}
		for (uint32_t k = 0; k < count; k++) {
			uint32_t h = idmap_get(mems, *ids[k]);

			if (!h) {
				snprintf(why, why_size,
					 "submit2: command %u: no memory %u bound to the ring", i,
					 *ids[k]);
				ret = -ENOENT;
				break;
			}
			*ids[k] = h;
		}
	}
	for (uint32_t d = 0; d < dn && !ret; d++) {
		uint32_t h = idmap_get(mems, descs[d].mem);

		if (!h) {
			snprintf(why, why_size,
				 "submit2: descriptor %u: no memory %u bound to the ring", d,
				 descs[d].mem);
			ret = -ENOENT;
		}
		descs[d].mem = h;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static void take_submit(struct ring *r, uint8_t *rec, uint32_t size)
{
	struct mdgpu_host_ring_submit s = { 0 };
	struct mdgpu_host_cmd2 *cmds;
	struct mdgpu_host_descriptor *descs;
	char why[256];
	uint64_t want, submission;
	int ret;

	memcpy(&s, rec, size < sizeof(s) ? size : sizeof(s));
	want = (uint64_t)SUBMIT_HEAD + (uint64_t)s.cmd_count * sizeof(*cmds) +
	       (uint64_t)s.descriptor_count * sizeof(*descs) +
	       (((uint64_t)s.data_size + 7) & ~7ull);
	if (size < SUBMIT_HEAD || want != size || s.flags || s.reserved) {
		post_failedf(r, s.tag, -EINVAL, MDGPU_HOST_RING_STAGE_RECORD,
			     "ring: malformed SUBMIT record: %u bytes for %u commands, %u"
			     " descriptors and %u data bytes (%" PRIu64 " bytes), flags 0x%x",
			     size, s.cmd_count, s.descriptor_count, s.data_size, want, s.flags);
		return;
	}
	cmds = (struct mdgpu_host_cmd2 *)(rec + SUBMIT_HEAD);
	descs = (struct mdgpu_host_descriptor *)(cmds + s.cmd_count);
	ret = resolve_ids(r, cmds, s.cmd_count, descs, s.descriptor_count, why, sizeof(why));
	if (ret) {
		post_failed(r, MDGPU_HOST_RING_FAILED, s.tag, ret, MDGPU_HOST_RING_STAGE_RECORD,
			    why);
		return;
	}
	ret = mdgpu_host_submit2(r->device, s.cmd_count ? cmds : NULL, s.cmd_count,
				 s.descriptor_count ? descs : NULL, s.descriptor_count,
				 s.data_size ? (const void *)(descs + s.descriptor_count) : NULL,
				 s.data_size, &submission);
	if (ret) {
		post_failed(r, MDGPU_HOST_RING_FAILED, s.tag, ret, MDGPU_HOST_RING_STAGE_SUBMIT,
			    mdgpu_host_last_error());
		return;
	}
	r->inflight[(r->in_first + r->in_count++) % MDGPU_HOST_RING_MAX_INFLIGHT] =
		(struct inflight){ s.tag, submission };
	post_started(r, s.tag, submission);
}

static void take_release(struct ring *r, const uint8_t *rec, uint32_t size)
{
	struct mdgpu_host_ring_release rel;
	uint32_t handle;

	memcpy(&rel, rec, sizeof(rel) < size ? sizeof(rel) : size);
	if (size != sizeof(rel) ||
	    (rel.kind != MDGPU_HOST_RING_MEMORY && rel.kind != MDGPU_HOST_RING_KERNEL)) {
		post_failedf(r, 0, -EINVAL, MDGPU_HOST_RING_STAGE_RECORD,
			     "ring: malformed RELEASE record: %u bytes, kind %u", size,
			     size >= 12 ? rel.kind : 0);
		return;
	}
	pthread_mutex_lock(&r->lock);
	handle = idmap_remove(&r->ids[rel.kind - 1], rel.id);
	pthread_mutex_unlock(&r->lock);
	if (handle)
		destroy_handle(r->device, rel.kind, handle);
}

/*
 * Take published records, copying each out of the shared area before it is read: while fewer
 * than MDGPU_HOST_RING_MAX_INFLIGHT batches are on the device (the library's own limit on
 * uncollected submissions is higher).
 */
static void take(struct ring *r)
{
	while (!r->broken && r->in_count < MDGPU_HOST_RING_MAX_INFLIGHT) {
		uint32_t tail = __atomic_load_n(&r->hdr->submit_tail, __ATOMIC_ACQUIRE);
		uint32_t avail = tail - r->sq_head, off = r->sq_head & (r->sq_size - 1);
		uint32_t rest = r->sq_size - off;
		struct mdgpu_host_ring_record rec;

		if (avail == 0)
			return;
		if (avail > r->sq_size || avail < sizeof(rec)) {
			broken(r, "submission positions %u (head) and %u (tail) are impossible",
			       r->sq_head, tail);
			return;
		}
		memcpy(&rec, r->sq + off, sizeof(rec));
		if (rec.type == MDGPU_HOST_RING_PAD) {
			if (rec.size != rest || rest > avail) {
				broken(r, "PAD of %u bytes at %u, %u to the end of the area",
				       rec.size, off, rest);
				return;
			}
			r->sq_head += rest;
			__atomic_store_n(&r->hdr->submit_head, r->sq_head, __ATOMIC_RELEASE);
			continue;
		}
		if (rec.size < sizeof(rec) || rec.size % 8 || rec.size > avail || rec.size > rest) {
			broken(r,
			       "a record of type %u and %u bytes at %u (%u published, %u to the end)",
			       rec.type, rec.size, off, avail, rest);
			return;
		}
		if (rec.size > r->scratch_cap) {
			size_t cap = r->scratch_cap ? r->scratch_cap : 4096;
			uint8_t *p;

			while (cap < rec.size)
				cap *= 2;
			p = malloc(cap);
			if (!p) {
				/* Leave it in the ring: the next pass tries again. */
				mdgpu_log(MDGPU_LOG_ERROR,
					  "ring: no memory for a record of %u bytes", rec.size);
				return;
			}
			free(r->scratch);
			r->scratch = p;
			r->scratch_cap = cap;
		}
		memcpy(r->scratch, r->sq + off, rec.size);
		r->sq_head += rec.size;
		__atomic_store_n(&r->hdr->submit_head, r->sq_head, __ATOMIC_RELEASE);
		/* The copy's own type: the shared one may have changed since. */
		memcpy(&rec, r->scratch, sizeof(rec));
		switch (rec.type) {
		case MDGPU_HOST_RING_SUBMIT:
			take_submit(r, r->scratch, rec.size);
			break;
		case MDGPU_HOST_RING_RELEASE:
			take_release(r, r->scratch, rec.size);
			break;
		default:
			post_failedf(r, 0, -EINVAL, MDGPU_HOST_RING_STAGE_RECORD,
				     "ring: a record of unknown type %u (%u bytes) was skipped",
				     rec.type, rec.size);
		}
	}
}

/* ---- the service ---- */

/*
 * Wait for the oldest batch up to @timeout_ns (service thread, take lock held; released while
 * it waits, when @timeout_ns is not 0); true if it was collected, either way it went. Only the
 * service removes batches in flight, so the oldest is still the oldest after the wait.
 */
static bool collect_oldest(struct ring *r, uint64_t timeout_ns)
{
	struct inflight f = r->inflight[r->in_first];
	struct mdgpu_host_status st;
	int ret;

	if (timeout_ns)
		pthread_mutex_unlock(&r->take_lock);
	ret = mdgpu_host_wait(r->device, f.submission, timeout_ns, &st);
	if (timeout_ns)
		pthread_mutex_lock(&r->take_lock);
	if (ret == -ETIMEDOUT)
		return false;
	r->in_first = (r->in_first + 1) % MDGPU_HOST_RING_MAX_INFLIGHT;
	r->in_count--;
	if (ret)
		post_failed(r, MDGPU_HOST_RING_FAILED, f.tag, ret, MDGPU_HOST_RING_STAGE_WAIT,
			    mdgpu_host_last_error());
	else if (st.result)
		post_failedf(r, f.tag, st.result, MDGPU_HOST_RING_STAGE_DEVICE,
			     "submission %" PRIu64 " failed on the device", f.submission);
	else
		post_done(r, f.tag, &st);
	return true;
}

/* Sleep until the submitter rings (or the ring is destroyed, which rings too). */
static void wait_for_records(struct ring *r)
{
	struct pollfd p = { .fd = r->submit_event, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, -1) > 0 && (p.revents & POLLIN) &&
	    read(r->submit_event, &v, sizeof(v)) < 0 && errno != EAGAIN)
		mdgpu_log(MDGPU_LOG_ERROR, "ring: submission doorbell: %s", strerror(errno));
}

static void *service(void *arg)
{
	struct ring *r = arg;

	serving = r;
	pthread_mutex_lock(&r->take_lock);
	for (;;) {
		bool stopping = __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);

		if (!stopping)
			take(r);
		if (r->in_count) {
			uint64_t timeout = r->wait_slice_ns;

			/*
			 * A final result goes out at once; STARTED records alone wait up to
			 * started_delay_ns for their DONE, so a short batch costs the reader one
			 * wakeup, not two.
			 */
			if (r->owed && r->owed_final) {
				doorbell(r);
			} else if (r->owed) {
				uint64_t due = r->owed_since + r->started_delay_ns,
					 now = mdgpu_now_ns();

				if (now >= due)
					doorbell(r);
				else if (due - now < timeout)
					timeout = due - now;
			}
			if (collect_oldest(r, timeout ? timeout : 1)) {
				/* Everything else that is done goes out with it. */
				while (r->in_count && collect_oldest(r, 0))
					;
			}
			continue;
		}
		if (r->owed)
			doorbell(r);
		if (stopping)
			break;
		pthread_mutex_unlock(&r->take_lock);
		wait_for_records(r);
		pthread_mutex_lock(&r->take_lock);
	}
	pthread_mutex_unlock(&r->take_lock);
	return NULL;
}

/* ---- public API ---- */

static bool area_size_ok(uint32_t size)
{
	return size >= MDGPU_HOST_RING_MIN_AREA && size <= MDGPU_HOST_RING_MAX_AREA &&
	       !(size & (size - 1));
}

static void ring_free(struct ring *r)
{
	if (r->map)
		munmap(r->map, r->map_size);
	if (r->fd >= 0)
		close(r->fd);
	if (r->submit_event >= 0)
		close(r->submit_event);
	if (r->complete_event >= 0)
		close(r->complete_event);
	for (int k = 0; k < 2; k++) {
		free(r->ids[k].keys);
		free(r->ids[k].vals);
	}
	free(r->scratch);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->take_lock);
	free(r);
}

MDGPU_HOST_API int32_t mdgpu_host_ring_create(uint32_t device,
					      const struct mdgpu_host_ring_desc *desc,
					      uint32_t *out_ring)
{
	struct mdgpu_host_device_info info;
	struct mdgpu_host_ring_header hdr;
	struct ring *r;
	uint32_t slot;
	int ret;

	mdgpu_error_clear();
	if (!desc || !out_ring)
		return mdgpu_error(-EINVAL, "ring_create: desc or out_ring is NULL");
	*out_ring = 0;
	if (desc->flags)
		return mdgpu_error(-EINVAL, "ring_create: flags 0x%x must be 0", desc->flags);
	for (int i = 0; i < 8; i++)
		if (desc->reserved[i])
			return mdgpu_error(-EINVAL, "ring_create: reserved fields must be 0");
	if (desc->fd < 0 || desc->submit_event < 0 || desc->complete_event < 0)
		return mdgpu_error(-EINVAL, "ring_create: negative file descriptor");
	if (mdgpu_host_device_info(device, &info))
		return mdgpu_error(-ENOENT, "ring_create: no device 0x%x", device);
	if (pread(desc->fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return mdgpu_error(-EINVAL, "ring_create: cannot read the ring header: %s",
				   strerror(errno));
	if (hdr.magic != MDGPU_HOST_RING_MAGIC || hdr.version != MDGPU_HOST_RING_VERSION)
		return mdgpu_error(
			-EINVAL, "ring_create: header magic 0x%x version %u, want 0x%x %u",
			hdr.magic, hdr.version, MDGPU_HOST_RING_MAGIC, MDGPU_HOST_RING_VERSION);
	if (!area_size_ok(hdr.submit_size) || !area_size_ok(hdr.complete_size))
		return mdgpu_error(-EINVAL,
				   "ring_create: areas of %u and %u bytes (powers of two, %u..%u)",
				   hdr.submit_size, hdr.complete_size, MDGPU_HOST_RING_MIN_AREA,
				   MDGPU_HOST_RING_MAX_AREA);
	if (hdr.submit_tail || hdr.submit_head || hdr.complete_tail || hdr.complete_head)
		return mdgpu_error(-EINVAL, "ring_create: the ring is not fresh (positions not 0)");

	r = calloc(1, sizeof(*r));
	if (!r)
		return mdgpu_error(-ENOMEM, "ring_create: out of memory");
	r->fd = r->submit_event = r->complete_event = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->take_lock, NULL);
	r->device = device;
	r->sq_size = hdr.submit_size;
	r->cq_size = hdr.complete_size;
	r->wait_slice_ns = desc->wait_slice_ns ? desc->wait_slice_ns : DEFAULT_WAIT_SLICE_NS;
	r->started_delay_ns =
		desc->started_delay_ns ? desc->started_delay_ns : DEFAULT_STARTED_DELAY_NS;
	r->map_size = (size_t)MDGPU_HOST_RING_HEADER_SIZE + r->sq_size + r->cq_size;
	r->fd = fcntl(desc->fd, F_DUPFD_CLOEXEC, 0);
	r->submit_event = fcntl(desc->submit_event, F_DUPFD_CLOEXEC, 0);
	r->complete_event = fcntl(desc->complete_event, F_DUPFD_CLOEXEC, 0);
	if (r->fd < 0 || r->submit_event < 0 || r->complete_event < 0) {
		ret = mdgpu_error(-errno, "ring_create: dup: %s", strerror(errno));
		goto fail;
	}
	{
		struct stat st;

		if (fstat(r->fd, &st) || (uint64_t)st.st_size < r->map_size) {
			ret = mdgpu_error(-EINVAL,
					  "ring_create: the file is smaller than the %zu bytes"
					  " of its header and areas",
					  r->map_size);
			goto fail;
		}
	}
	r->map = mmap(NULL, r->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		ret = mdgpu_error(-errno, "ring_create: mmap: %s", strerror(errno));
		goto fail;
	}
	r->hdr = (struct mdgpu_host_ring_header *)r->map;
	r->sq = r->map + MDGPU_HOST_RING_HEADER_SIZE;
	r->cq = r->sq + r->sq_size;

	pthread_mutex_lock(&rings_lock);
	for (slot = 0; slot < MAX_RINGS && rings[slot]; slot++)
		;
	if (slot == MAX_RINGS) {
		pthread_mutex_unlock(&rings_lock);
		ret = mdgpu_error(-EAGAIN, "ring_create: %u rings exist already", MAX_RINGS);
		goto fail;
	}
	ret = -pthread_create(&r->thread, NULL, service, r);
	if (ret) {
		pthread_mutex_unlock(&rings_lock);
		ret = mdgpu_error(ret, "ring_create: cannot start the service thread: %s",
				  strerror(-ret));
		goto fail;
	}
	ring_gen[slot] = (ring_gen[slot] + 1) & 0xffffffu;
	if (!ring_gen[slot])
		ring_gen[slot] = 1;
	rings[slot] = r;
	*out_ring = (ring_gen[slot] << 8) | (slot + 1);
	pthread_mutex_unlock(&rings_lock);
	return 0;

fail:
	ring_free(r);
	return ret;
}

MDGPU_HOST_API int32_t mdgpu_host_ring_bind(uint32_t ring, uint32_t kind, uint32_t id,
					    uint32_t handle)
{
	uint32_t old = 0, device;
	struct ring *r;
	int ret = 0;

	mdgpu_error_clear();
	if (kind != MDGPU_HOST_RING_MEMORY && kind != MDGPU_HOST_RING_KERNEL)
		return mdgpu_error(-EINVAL,
				   "ring_bind: kind %u is neither memory (1) nor kernel (2)", kind);
	if (!id)
		return mdgpu_error(-EINVAL, "ring_bind: id 0");
	pthread_mutex_lock(&rings_lock);
	r = ring_get(ring);
	if (!r) {
		pthread_mutex_unlock(&rings_lock);
		return mdgpu_error(-ENOENT, "ring_bind: no ring 0x%x", ring);
	}
	device = r->device;
	pthread_mutex_lock(&r->lock);
	if (handle)
		ret = idmap_put(&r->ids[kind - 1], id, handle, &old);
	else
		old = idmap_remove(&r->ids[kind - 1], id);
	pthread_mutex_unlock(&r->lock);
	pthread_mutex_unlock(&rings_lock);
	if (ret)
		return mdgpu_error(ret, "ring_bind: out of memory");
	if (old && old != handle)
		destroy_handle(device, kind, old);
	if (!handle && !old)
		return mdgpu_error(-ENOENT, "ring_bind: no %s %u bound to ring 0x%x",
				   kind == MDGPU_HOST_RING_MEMORY ? "memory" : "kernel", id, ring);
	return 0;
}

MDGPU_HOST_API int32_t mdgpu_host_ring_take(uint32_t ring)
{
	uint64_t one = 1;
	uint32_t before;
	struct ring *r;
	bool news;

	mdgpu_error_clear();
	pthread_mutex_lock(&rings_lock);
	r = ring_get(ring);
	if (!r) {
		pthread_mutex_unlock(&rings_lock);
		return mdgpu_error(-ENOENT, "ring_take: no ring 0x%x", ring);
	}
	pthread_mutex_lock(&r->take_lock);
	before = r->in_count;
	take(r);
	news = r->in_count != before || r->owed;
	pthread_mutex_unlock(&r->take_lock);
	/* The service waits for what was just submitted (its wakeup overlaps the batch's work). */
	if (news && write(r->submit_event, &one, sizeof(one)) < 0 && errno != EAGAIN)
		mdgpu_log(MDGPU_LOG_ERROR, "ring_take: doorbell: %s", strerror(errno));
	pthread_mutex_unlock(&rings_lock);
	return 0;
}

MDGPU_HOST_API int32_t mdgpu_host_ring_destroy(uint32_t ring)
{
	uint64_t one = 1;
	struct ring *r;

	mdgpu_error_clear();
	pthread_mutex_lock(&rings_lock);
	r = ring_get(ring);
	if (r)
		rings[(ring & 0xffu) - 1] = NULL;
	pthread_mutex_unlock(&rings_lock);
	if (!r)
		return mdgpu_error(-ENOENT, "ring_destroy: no ring 0x%x", ring);
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	if (write(r->submit_event, &one, sizeof(one)) < 0 && errno != EAGAIN)
		mdgpu_log(MDGPU_LOG_ERROR, "ring_destroy: doorbell: %s", strerror(errno));
	pthread_join(r->thread, NULL);
	for (uint32_t k = 0; k < 2; k++)
		for (uint32_t i = 0; i < r->ids[k].cap; i++)
			if (r->ids[k].keys[i])
				destroy_handle(r->device, k + 1, r->ids[k].vals[i]);
	ring_free(r);
	return 0;
}
