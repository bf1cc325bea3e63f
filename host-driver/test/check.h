// SPDX-License-Identifier: MIT
/*
 * The checks the host driver's C tests count (test_host.c, test_ring.c): each CHECK passes or
 * prints where and why it failed, with the library's last error; a test ends with
 * check_summary(), which prints "N passed, N failed" (what test/helpers/c-test.ts parses) and
 * gives the exit status. One translation unit per test program, so the counters are static.
 */
#ifndef MDGPU_TEST_CHECK_H
#define MDGPU_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "mdgpu_host.h"

static int passed, failed;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (cond) {                                                     \
			passed++;                                               \
		} else {                                                        \
			failed++;                                               \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			printf(__VA_ARGS__);                                    \
			printf(" (last error: %s)\n", mdgpu_host_last_error()); \
		}                                                               \
	} while (0)

#define CHECK_RET(expr, want)                                                      \
	do {                                                                       \
		int32_t r_ = (expr);                                               \
		CHECK(r_ == (want), "%s returned %d, want %d", #expr, r_, (want)); \
	} while (0)

/* Print the summary line; the exit status of a test program. */
static inline int check_summary(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif /* MDGPU_TEST_CHECK_H */
