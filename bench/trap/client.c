/*
 * A vfio-user client for `npm run bench:trap` that stands in for QEMU: it connects to a server,
 * negotiates VERSION, then times REGION_READ and REGION_WRITE round trips of one 4-byte register
 * with nothing else in the way (no QEMU, no qtest). It measures a server's own cost per trapped
 * access, and drives mdgpu while its REGION_READ/WRITE path is profiled.
 *
 *   client SOCKET_PATH REGION OFFSET COUNT ROUNDS [GAP_US]
 *
 * GAP_US (default 0) sleeps between accesses, untimed: a server then finds one request per wakeup,
 * as it does behind QEMU (whose vCPU waits for each reply), instead of the next request already
 * queued when it finishes the last (which a client on the same CPU causes).
 *
 * Prints, per round and operation, one line `read|write ns ns ns ...` (one figure per access).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CMD_VERSION 1
#define CMD_REGION_READ 9
#define CMD_REGION_WRITE 10

struct header {
	uint16_t msg_id;
	uint16_t command;
	uint32_t size;
	uint32_t flags;
	uint32_t error;
};

struct region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
};

static uint16_t next_id;
static uint8_t buf[65536];

static int read_full(int sock, uint8_t *p, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = recv(sock, p + have, len - have, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

/* Send a command, wait for its reply; the reply's payload is left in buf. Returns payload bytes. */
static long round_trip(int sock, uint16_t command, const void *payload, uint32_t len)
{
	uint8_t msg[16 + 256];
	struct header h = { .msg_id = next_id++, .command = command, .size = 16 + len };

	memcpy(msg, &h, sizeof h);
	memcpy(msg + 16, payload, len);
	if (send(sock, msg, 16 + len, MSG_NOSIGNAL) != (ssize_t)(16 + len))
		return -1;
	if (read_full(sock, buf, 16) < 0)
		return -1;
	memcpy(&h, buf, sizeof h);
	if (h.size < 16 || h.size > sizeof buf || read_full(sock, buf, h.size - 16) < 0)
		return -1;
	if (h.flags & 0x20) {
		fprintf(stderr, "client: command %u failed: errno %u\n", command, h.error);
		return -1;
	}
	return h.size - 16;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (argc < 6 || argc > 7 || strlen(argv[1]) >= sizeof addr.sun_path) {
		fprintf(stderr, "usage: %s SOCKET_PATH REGION OFFSET COUNT ROUNDS [GAP_US]\n",
			argv[0]);
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	uint32_t region = (uint32_t)strtoul(argv[2], NULL, 0);
	uint64_t offset = strtoull(argv[3], NULL, 0);
	long count = strtol(argv[4], NULL, 0);
	long rounds = strtol(argv[5], NULL, 0);
	long gap_us = argc > 6 ? strtol(argv[6], NULL, 0) : 0;
	struct timespec gap = { .tv_sec = gap_us / 1000000, .tv_nsec = (gap_us % 1000000) * 1000 };
	uint64_t *ns = calloc((size_t)count, sizeof *ns);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (ns == NULL || sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
		perror("client: connect");
		return 1;
	}
	/* QEMU's VERSION: 0.0 with its capabilities; the server's reply must fit this size. */
	static const char caps[] =
		"{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,"
		"\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":4096,"
		"\"max_bitmap_size\":268435456}}}";
	uint8_t version[4 + sizeof caps] = { 0 };

	memcpy(version + 4, caps, sizeof caps);
	if (round_trip(sock, CMD_VERSION, version, sizeof version) < 0)
		return 1;

	for (long r = 0; r < rounds; r++) {
		for (int op = 0; op < 2; op++) {
			struct {
				struct region_access a;
				uint32_t data;
			} msg = { { offset, region, 4 }, 0 };
			uint16_t command = op == 0 ? CMD_REGION_READ : CMD_REGION_WRITE;
			uint32_t len = op == 0 ? sizeof msg.a : sizeof msg.a + sizeof msg.data;

			for (long i = 0; i < count; i++) {
				msg.data = (uint32_t)i;
				if (gap_us > 0)
					nanosleep(&gap, NULL);
				uint64_t t0 = now_ns();

				if (round_trip(sock, command, &msg, len) < 0)
					return 1;
				ns[i] = now_ns() - t0;
			}
			fputs(op == 0 ? "read" : "write", stdout);
			for (long i = 0; i < count; i++)
				printf(" %llu", (unsigned long long)ns[i]);
			putchar('\n');
		}
	}
	fflush(stdout);
	close(sock);
	free(ns);
	return 0;
}
