/*
 * The floor for `npm run bench:trap`: a minimal vfio-user device server in C, just enough of the
 * protocol for QEMU's vfio-user-pci to attach it and for trapped reads and writes of one BAR to
 * be answered. It is what a plain C server costs on the same client, so the bench can say how far
 * mdgpu's path is from it. Used only by the bench; never by tests or the product.
 *
 * Written from the vfio-user spec (QEMU docs/interop/vfio-user.rst) and what QEMU 11.1.3's client
 * sends and accepts (/work/shared/VFIO-USER.md). One blocking, single-threaded loop: one recvmsg
 * for the 16-byte header (collecting any fds), one recv for the body, one send per reply.
 *
 * Device: conventional PCI (256-byte config space, no capabilities, no interrupt pin), BAR2 a
 * 4 KiB trapped 32-bit memory BAR whose bytes read back what was written, nothing mmapped.
 * Without an mmapped region QEMU posts BAR writes (NO_REPLY) unless the device has
 * `x-no-posted-writes=on`; the bench sets it so writes are round trips as they are for mdgpu.
 *
 *   responder SOCKET_PATH [-v]   listen, print "listening" on stdout, serve one client until EOF
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum {
	CMD_VERSION = 1,
	CMD_DMA_MAP = 2,
	CMD_DMA_UNMAP = 3,
	CMD_DEVICE_GET_INFO = 4,
	CMD_DEVICE_GET_REGION_INFO = 5,
	CMD_DEVICE_GET_IRQ_INFO = 7,
	CMD_DEVICE_SET_IRQS = 8,
	CMD_REGION_READ = 9,
	CMD_REGION_WRITE = 10,
	CMD_DEVICE_RESET = 13,
};

#define FLAG_TYPE_MASK 0xfu
#define FLAG_TYPE_COMMAND 0x0u
#define FLAG_TYPE_REPLY 0x1u
#define FLAG_NO_REPLY 0x10u
#define FLAG_ERROR 0x20u

#define MAX_MSG_FDS 16
#define MAX_DATA_XFER 4096u /* >= the config read QEMU does at realize */
#define MAX_MESSAGE (16u + 16u + MAX_DATA_XFER)

/* vfio region and irq indices (linux vfio.h). */
#define NUM_REGIONS 9
#define NUM_IRQS 5
#define REGION_BAR2 2
#define REGION_CONFIG 7
#define IRQ_ERR 3

#define BAR2_SIZE 4096u
#define CONFIG_SIZE 256u

struct header {
	uint16_t msg_id;
	uint16_t command;
	uint32_t size;
	uint32_t flags;
	uint32_t error;
};

/* struct vfio_user_region_access: offset, region, count, then data. */
struct region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
};

static uint8_t config[CONFIG_SIZE];
static uint8_t bar2[BAR2_SIZE];
static int verbose;

static uint8_t in[MAX_MESSAGE];
static uint8_t out[MAX_MESSAGE];

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof v);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof v);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof v);
}

static void config_init(void)
{
	memset(config, 0, sizeof config);
	put16(config + 0x00, 0x1234); /* vendor: QEMU's test id space */
	put16(config + 0x02, 0x7f5e); /* device */
	config[0x08] = 0x01; /* revision */
	config[0x0b] = 0x00; /* class 0x00ff00: unclassified, as edu */
	config[0x0a] = 0xff;
	put32(config + 0x18, 0); /* BAR2: 32-bit memory, not prefetchable */
}

/* Close every fd a message brought: this device keeps none. */
static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Read exactly `len` bytes (blocking); 0 on success, -1 on EOF or error. */
static int read_full(int sock, uint8_t *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = recv(sock, buf + have, len - have, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

/* The header with recvmsg, so fds sent with the message are collected (they come with byte 0). */
static int read_header(int sock, struct header *h, int *fds, int *nfds)
{
	union {
		char buf[CMSG_SPACE(MAX_MSG_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = in, .iov_len = 16 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof control.buf;
	*nfds = 0;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (int i = 0; i < k && *nfds < MAX_MSG_FDS; i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (n < 16 && read_full(sock, in + n, 16 - (size_t)n) < 0)
		return -1;
	memcpy(h, in, sizeof *h);
	return 0;
}

static int send_all(int sock, const uint8_t *buf, size_t len)
{
	size_t sent = 0;

	while (sent < len) {
		ssize_t n = send(sock, buf + sent, len - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		sent += (size_t)n;
	}
	return 0;
}

/* A reply of `payload` bytes already placed at out + 16; errno > 0 makes it an error reply. */
static int reply(int sock, const struct header *req, uint32_t payload, uint32_t err)
{
	struct header r = {
		.msg_id = req->msg_id,
		.command = req->command,
		.size = 16 + (err ? 0 : payload),
		.flags = FLAG_TYPE_REPLY | (err ? FLAG_ERROR : 0),
		.error = err,
	};

	if (req->flags & FLAG_NO_REPLY)
		return 0;
	memcpy(out, &r, sizeof r);
	return send_all(sock, out, r.size);
}

static uint32_t region_size(uint32_t index)
{
	if (index == REGION_BAR2)
		return BAR2_SIZE;
	if (index == REGION_CONFIG)
		return CONFIG_SIZE;
	return 0;
}

/* Config writes: keep COMMAND (QEMU emulates BARs and the rest); ignore everything else. */
static void config_write(uint64_t off, const uint8_t *data, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		if (off + i == 0x04 || off + i == 0x05)
			config[off + i] = data[i];
}

/* Handle one command whose body is in `in + 16`; returns -1 when the connection must end. */
static int handle(int sock, const struct header *h, const int *fds, int nfds)
{
	const uint8_t *body = in + 16;
	uint8_t *rbody = out + 16;
	uint32_t len = h->size - 16;

	switch (h->command) {
	case CMD_VERSION: {
		static const char caps[] =
			"{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":4096,"
			"\"pgsizes\":4096}}";

		close_fds(fds, nfds);
		if (len < 4)
			return reply(sock, h, 0, EINVAL);
		if (4 + sizeof caps > len) /* QEMU reads the reply into a request-sized buffer */
			return reply(sock, h, 0, EINVAL);
		put16(rbody, 0);
		put16(rbody + 2, 0);
		memcpy(rbody + 4, caps, sizeof caps);
		return reply(sock, h, 4 + sizeof caps, 0);
	}
	case CMD_DMA_MAP:
	case CMD_DMA_UNMAP:
	case CMD_DEVICE_SET_IRQS:
		/* Guest RAM, BIOS and eventfds: this device does no DMA and raises no interrupts. */
		close_fds(fds, nfds);
		return reply(sock, h, 0, 0);
	case CMD_DEVICE_RESET:
		close_fds(fds, nfds);
		memset(bar2, 0, sizeof bar2);
		return reply(sock, h, 0, 0);
	case CMD_DEVICE_GET_INFO:
		close_fds(fds, nfds);
		put32(rbody, 16); /* argsz */
		put32(rbody + 4, (1u << 1) | 1u); /* VFIO_DEVICE_FLAGS_PCI | RESET */
		put32(rbody + 8, NUM_REGIONS);
		put32(rbody + 12, NUM_IRQS);
		return reply(sock, h, 16, 0);
	case CMD_DEVICE_GET_REGION_INFO: {
		uint32_t index;

		close_fds(fds, nfds);
		if (len < 32)
			return reply(sock, h, 0, EINVAL);
		memcpy(&index, body + 8, 4);
		if (index >= NUM_REGIONS)
			return reply(sock, h, 0, EINVAL);
		uint32_t size = region_size(index);

		memset(rbody, 0, 32);
		put32(rbody, 32); /* argsz: no caps */
		put32(rbody + 4, size ? (1u << 0) | (1u << 1) : 0); /* READ | WRITE */
		put32(rbody + 8, index);
		put64(rbody + 16, size);
		return reply(sock, h, 32, 0);
	}
	case CMD_DEVICE_GET_IRQ_INFO: {
		uint32_t index;

		close_fds(fds, nfds);
		if (len < 16)
			return reply(sock, h, 0, EINVAL);
		memcpy(&index, body + 8, 4);
		/* No ERR eventfd (signalling it stops the VM): QEMU skips an error reply silently. */
		if (index >= NUM_IRQS || index == IRQ_ERR)
			return reply(sock, h, 0, EINVAL);
		put32(rbody, 16);
		put32(rbody + 4, 1u); /* EVENTFD */
		put32(rbody + 8, index);
		put32(rbody + 12, 0); /* no vectors of any kind */
		return reply(sock, h, 16, 0);
	}
	case CMD_REGION_READ:
	case CMD_REGION_WRITE: {
		struct region_access a;
		int write = h->command == CMD_REGION_WRITE;

		close_fds(fds, nfds);
		if (len < sizeof a)
			return reply(sock, h, 0, EINVAL);
		memcpy(&a, body, sizeof a);
		uint32_t size = region_size(a.region);

		if (a.count > MAX_DATA_XFER || a.offset > size || a.count > size - a.offset ||
		    (write && len != sizeof a + a.count) || (!write && len != sizeof a))
			return reply(sock, h, 0, EINVAL);
		uint8_t *mem = a.region == REGION_BAR2 ? bar2 : config;

		memcpy(rbody, &a, sizeof a);
		if (write) {
			if (a.region == REGION_CONFIG)
				config_write(a.offset, body + sizeof a, a.count);
			else
				memcpy(mem + a.offset, body + sizeof a, a.count);
			return reply(sock, h, sizeof a, 0);
		}
		memcpy(rbody + sizeof a, mem + a.offset, a.count);
		return reply(sock, h, sizeof a + a.count, 0);
	}
	default:
		close_fds(fds, nfds);
		return reply(sock, h, 0, ENOSYS);
	}
}

static int serve(int sock)
{
	unsigned long messages = 0;

	for (;;) {
		struct header h;
		int fds[MAX_MSG_FDS];
		int nfds;

		if (read_header(sock, &h, fds, &nfds) < 0)
			break;
		if ((h.flags & FLAG_TYPE_MASK) != FLAG_TYPE_COMMAND || h.size < 16 ||
		    h.size > MAX_MESSAGE) {
			fprintf(stderr, "responder: bad header (command %u, size %u, flags 0x%x)\n",
				h.command, h.size, h.flags);
			close_fds(fds, nfds);
			return 1;
		}
		if (h.size > 16 && read_full(sock, in + 16, h.size - 16) < 0) {
			close_fds(fds, nfds);
			break;
		}
		if (verbose)
			fprintf(stderr, "responder: <- command %u id %u size %u fds %d%s\n",
				h.command, h.msg_id, h.size, nfds,
				h.flags & FLAG_NO_REPLY ? " (no reply)" : "");
		if (handle(sock, &h, fds, nfds) < 0)
			break;
		messages++;
	}
	if (verbose)
		fprintf(stderr, "responder: client gone after %lu messages\n", messages);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (argc < 2 || strlen(argv[1]) >= sizeof addr.sun_path) {
		fprintf(stderr, "usage: %s SOCKET_PATH [-v]\n", argv[0]);
		return 2;
	}
	verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
	strcpy(addr.sun_path, argv[1]);
	config_init();

	int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lsock < 0 || bind(lsock, (struct sockaddr *)&addr, sizeof addr) < 0 ||
	    listen(lsock, 1) < 0) {
		perror("responder: listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);

	int sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);

	if (sock < 0) {
		perror("responder: accept");
		return 1;
	}
	close(lsock);
	int rc = serve(sock);

	close(sock);
	unlink(argv[1]);
	return rc;
}
