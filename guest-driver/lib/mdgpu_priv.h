/* SPDX-License-Identifier: MIT */
/*
 * libmdgpu internals shared by libmdgpu.c (device, buffers, window) and mdgpu_queue.c
 * (queues, submissions, fences, kernels). Not installed.
 */
#ifndef MDGPU_PRIV_H
#define MDGPU_PRIV_H

#include <stdint.h>

#include "mdgpu.h"

/** MDGPU_FENCE_SPIN_DEFAULT_NS: how long mdgpu_fence_wait() spins before it sleeps. */
#define MDGPU_FENCE_SPIN_DEFAULT_NS 20000u

struct mdgpu {
	int fd;
	uint64_t fence_spin_ns;
};

/* ioctl() retried on EINTR; 0 or a negative errno. */
int mdgpu_priv_ioctl(struct mdgpu *dev, unsigned long cmd, void *arg);

/* CLOCK_MONOTONIC in ns. */
uint64_t mdgpu_priv_now_ns(void);

#endif /* MDGPU_PRIV_H */
