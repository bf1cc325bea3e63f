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

const GUEST_ERROR_BURST = 10;
const GUEST_ERROR_WINDOW_MS = 1000;
const guestErrorBuckets = new Map<string, { windowStart: number; count: number; dropped: number }>();

/**
 * Log something a guest or client did wrong. At most GUEST_ERROR_BURST lines per key per second;
 * the number dropped is reported when the window rolls over (QEMU's LOG_GUEST_ERROR, mbochs'
 * dev_info_ratelimited).
 */
export function guestError(key: string, message: string): void {
  const now = Date.now();
  let bucket = guestErrorBuckets.get(key);
  if (bucket === undefined || now - bucket.windowStart >= GUEST_ERROR_WINDOW_MS) {
    if (bucket !== undefined && bucket.dropped > 0) {
      sink(`guest error: ${key}: ${bucket.dropped} similar messages suppressed`);
    }
    bucket = { windowStart: now, count: 0, dropped: 0 };
    guestErrorBuckets.set(key, bucket);
  }
  if (bucket.count < GUEST_ERROR_BURST) {
    bucket.count++;
    sink(`guest error: ${message}`);
  } else {
    bucket.dropped++;
  }
}
