/* SPDX-License-Identifier: MIT */
/*
 * mdgpu virtual GPGPU: the queue format of contract 1.1 (docs/device.md, "Queues"): the
 * control block at the start of a queue buffer, the command opcodes and sizes, and the
 * submission error codes the device writes into the control block.
 *
 * These are the device's, not the kernel driver's: userspace writes commands straight into
 * the ring in the aperture and the driver never sees them. The device side declares the same
 * layouts in src/vgpu/commands.ts and src/vgpu/queues.ts; libmdgpu encodes commands byte by
 * byte in little-endian order (mdgpu_queue.c), so nothing here depends on the host's struct
 * layout except struct mdgpu_queue_control, whose offsets are asserted below.
 */
#ifndef MDGPU_CMD_H
#define MDGPU_CMD_H

#include <stddef.h>
#include <stdint.h>

/* Command opcodes (header: opcode u16, flags u16, length u32). */
#define MDGPU_CMD_NOP			0x00
#define MDGPU_CMD_SUBMIT		0x01
#define MDGPU_CMD_COPY			0x02
#define MDGPU_CMD_FILL			0x03
#define MDGPU_CMD_DISPATCH		0x04
#define MDGPU_CMD_FENCE			0x05
#define MDGPU_CMD_WAIT			0x06
#define MDGPU_CMD_TIMESTAMP		0x07
#define MDGPU_CMD_BARRIER		0x08

/* SUBMIT and FENCE flag: raise the FENCE interrupt source when the fence value is written. */
#define MDGPU_CMD_FLAG_IRQ		0x1

/* Command sizes in bytes, header included. DISPATCH is followed by its bindings and push. */
#define MDGPU_CMD_HEADER_SIZE		8
#define MDGPU_CMD_SUBMIT_SIZE		32
#define MDGPU_CMD_COPY_SIZE		40
#define MDGPU_CMD_FILL_SIZE		32
#define MDGPU_CMD_DISPATCH_SIZE		32
#define MDGPU_CMD_BINDING_SIZE		24
#define MDGPU_CMD_FENCE_SIZE		32
#define MDGPU_CMD_WAIT_SIZE		40
#define MDGPU_CMD_TIMESTAMP_SIZE	24
#define MDGPU_CMD_BARRIER_SIZE		8

/* Device limits of contract 1.1 (QUERY MAX_SUBMISSION reports the first). */
#define MDGPU_SUBMIT_MAX_BYTES		(1u << 20)
#define MDGPU_SUBMIT_MAX_COMMANDS	4096

/* Submission error codes (control block error_code, docs/device.md "Submission errors"). */
#define MDGPU_SUBMIT_OK			0
#define MDGPU_SUBMIT_BAD_OPCODE		1
#define MDGPU_SUBMIT_BAD_LENGTH		2
#define MDGPU_SUBMIT_TRUNCATED		3
#define MDGPU_SUBMIT_BAD_BUFFER		4
#define MDGPU_SUBMIT_OUT_OF_BOUNDS	5
#define MDGPU_SUBMIT_BAD_ALIGNMENT	6
#define MDGPU_SUBMIT_BAD_KERNEL		7
#define MDGPU_SUBMIT_BAD_WORKGROUPS	8
#define MDGPU_SUBMIT_BAD_BINDINGS	9
#define MDGPU_SUBMIT_BAD_PUSH_CONSTANTS	10
#define MDGPU_SUBMIT_BAD_FLAGS		11
#define MDGPU_SUBMIT_TOO_LARGE		12
#define MDGPU_SUBMIT_WAIT_TIMEOUT	13
#define MDGPU_SUBMIT_EXEC_FAILED	14
#define MDGPU_SUBMIT_BAD_RING		15
#define MDGPU_SUBMIT_CONTEXT_LOST	16
#define MDGPU_SUBMIT_OVERLAP		17

/**
 * struct mdgpu_queue_control - the control block, the first 4 KiB of a queue buffer
 * @tail: guest: bytes published into the ring so far (monotonic, a multiple of 8)
 * @head: device: bytes consumed so far; ring space before it may be reused
 * @doorbell_needed: device: 1 while it sleeps: ring QUEUE_DOORBELL after publishing
 * @state: device: 0, or MDGPU_SUBMIT_BAD_RING while the ring pointers are out of range
 * @completed: device: submissions finished, successfully or not
 * @errors: device: submissions that failed
 * @error_fence: device: the error fence value of the last failure (bit 63 set)
 * @error_code: device: its MDGPU_SUBMIT_* code
 * @error_at: device: byte offset of the offending command in its submission
 * @error_head: device: ring position of the failed submission
 *
 * The device writes its fields while the guest reads them: access them through the volatile
 * pointer mdgpu_queue_control() returns (64-bit fields are naturally aligned, so a load is
 * one access).
 */
struct mdgpu_queue_control {
	uint64_t tail;
	uint64_t head;
	uint32_t doorbell_needed;
	uint32_t state;
	uint64_t completed;
	uint64_t errors;
	uint64_t error_fence;
	uint32_t error_code;
	uint32_t error_at;
	uint64_t error_head;
};

_Static_assert(offsetof(struct mdgpu_queue_control, head) == 0x08, "control block layout");
_Static_assert(offsetof(struct mdgpu_queue_control, doorbell_needed) == 0x10,
	       "control block layout");
_Static_assert(offsetof(struct mdgpu_queue_control, completed) == 0x18, "control block layout");
_Static_assert(offsetof(struct mdgpu_queue_control, error_fence) == 0x28,
	       "control block layout");
_Static_assert(offsetof(struct mdgpu_queue_control, error_code) == 0x30, "control block layout");
_Static_assert(offsetof(struct mdgpu_queue_control, error_head) == 0x38, "control block layout");
_Static_assert(sizeof(struct mdgpu_queue_control) == 0x40, "control block layout");

#endif /* MDGPU_CMD_H */
