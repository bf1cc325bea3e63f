/**
 * How work on the shared compute device can end other than by completing: the vocabulary the
 * device (src/backend), the scheduler (src/sched), the executor (src/exec) and the device model
 * (src/vgpu) share, so that "this context is lost" crosses the layers as a type, not as a
 * property someone remembered to set. Like log.ts, every layer may import this file; it imports
 * nothing.
 */

/**
 * The batch did not complete and its context must be marked lost: it ran past the time limit,
 * or the device was reset (or crashed) while it ran. Every later submission of that context
 * fails with CONTEXT_LOST.
 */
export class ContextLostError extends Error {
  override readonly name: string = 'ContextLostError';
  constructor(
    message: string,
    /** Why: the batch overran its time limit, or the device went away under it. */
    readonly reason: 'timeout' | 'device-reset',
  ) {
    super(message);
  }
}

/**
 * Refused without running: the vGPU is cooling off after its work caused too many device resets
 * (or kernel builds that failed by time or memory). Nothing is lost; retry later.
 */
export class ThrottledError extends Error {
  override readonly name = 'ThrottledError';
  constructor(
    message: string,
    /** Wall-clock ms (Date.now()) when the cool-off ends. */
    readonly until: number,
  ) {
    super(message);
  }
}

/** Work withdrawn before it ran: its queue or context was destroyed, or the vGPU was reset. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
}

/** A batch or build refused because its owner already has as many in flight as it may. */
export class TooManyInFlightError extends Error {
  override readonly name = 'TooManyInFlightError';
}
