/**
 * Named tracers and guest-error logging.
 *
 * Tracers are switched on by `MDGPU_TRACE=protocol,regs,dma` (or `all`), as grpc-js does with
 * GRPC_TRACE. Guest errors (a misbehaving guest or client) are always logged, but rate-limited
 * per key so a hostile guest cannot flood the host's log.
 */

export type LogSink = (line: string) => void;

let sink: LogSink = (line) => process.stderr.write(`${line}\n`);
let enabled = parseTraceList(process.env.MDGPU_TRACE ?? '');
let logLevel: 'quiet' | 'info' | 'debug' = process.env.MDGPU_LOG === 'debug' ? 'debug' : 'info';

function parseTraceList(spec: string): Set<string> {
  return new Set(
    spec
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  );
}

/** Redirect all log output (tests capture it; the CLI may prefix it). */
export function setLogSink(next: LogSink): LogSink {
  const prev = sink;
  sink = next;
  return prev;
}

/** Replace the set of enabled tracers, e.g. from a `--trace` CLI option. */
export function setTrace(spec: string): void {
  enabled = parseTraceList(spec);
}

/** `debug` also prints what QEMU asked for; `quiet` keeps only warnings and guest errors. */
export function setLogLevel(level: 'quiet' | 'info' | 'debug'): void {
  logLevel = level;
}

export function traceEnabled(name: string): boolean {
  return enabled.has(name) || enabled.has('all') || (logLevel === 'debug' && name === 'protocol');
}

/** A tracer for one subsystem; the message is built lazily so disabled tracing costs a Set lookup. */
export function tracer(name: string): (message: () => string) => void {
  return (message) => {
    if (traceEnabled(name)) sink(`[${name}] ${message()}`);
  };
}

export function info(message: string): void {
  if (logLevel !== 'quiet') sink(message);
}

export function warn(message: string): void {
  sink(`warning: ${message}`);
}

/** How many lines one key may log per window; the rest are counted and reported as suppressed. */
export interface LogRate {
  burst: number;
  windowMs: number;
}

/** Guest and client errors: 10 lines per second per key. */
export const GUEST_ERROR_RATE: Readonly<LogRate> = Object.freeze({ burst: 10, windowMs: 1000 });

/**
 * Client connection events per vGPU (connected, disconnected, stream closed, refused): 10 a
 * minute. A VM's QEMU connects once and disconnects once; a client that reconnects in a loop
 * with malformed streams once wrote 67,773 lines in three minutes.
 */
export const CONNECTION_LOG_RATE: Readonly<LogRate> = Object.freeze({ burst: 10, windowMs: 60_000 });

const buckets = new Map<string, { windowStart: number; count: number; dropped: number }>();

/** Emit `prefix + message` unless `key` used up its `rate`; report what was dropped when the window rolls over. */
function limited(key: string, rate: LogRate, prefix: string, message: string): void {
  const now = Date.now();
  let bucket = buckets.get(key);
  if (bucket === undefined || now - bucket.windowStart >= rate.windowMs) {
    if (bucket !== undefined && bucket.dropped > 0) {
      sink(`${prefix}${key}: ${bucket.dropped} similar messages suppressed`);
    }
    bucket = { windowStart: now, count: 0, dropped: 0 };
    buckets.set(key, bucket);
  }
  if (bucket.count < rate.burst) {
    bucket.count++;
    sink(`${prefix}${message}`);
  } else {
    bucket.dropped++;
  }
}

/**
 * Log something a guest or client did wrong. At most `rate.burst` lines per key per window
 * (default {@link GUEST_ERROR_RATE}); the number dropped is reported when the window rolls over
 * (QEMU's LOG_GUEST_ERROR, mbochs' dev_info_ratelimited).
 */
export function guestError(key: string, message: string, rate: LogRate = GUEST_ERROR_RATE): void {
  limited(key, rate, 'guest error: ', message);
}

/** A warning a client can cause over and over (keyed per vGPU), rate-limited like {@link guestError}. */
export function clientWarning(key: string, message: string, rate: LogRate = CONNECTION_LOG_RATE): void {
  limited(key, rate, 'warning: ', message);
}

/** An info line a client can cause over and over (keyed per vGPU); shares its key's budget with warnings. */
export function clientInfo(key: string, message: string, rate: LogRate = CONNECTION_LOG_RATE): void {
  if (logLevel !== 'quiet') limited(key, rate, '', message);
}
