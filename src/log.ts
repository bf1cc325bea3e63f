/**
 * Logging: one line per event, with a level and, for events of one vGPU, its name, to stderr
 * (journald, when it reads stderr, adds the time).
 *
 * - `text` (default): `warning: vm1: guest error: queue 2 submission at 64 refused (BAD_LENGTH): …`.
 *   When stderr is systemd-journald's stream, each line starts with its syslog priority (`<4>`),
 *   which journald turns into the entry's PRIORITY, so `journalctl -p warning` finds it.
 * - `json` (`--log-format json`, for log shippers): `{"time":"…","level":"warning","vgpu":"vm1",
 *   "msg":"guest error: …"}`; trace lines add `"tracer"`, summaries of dropped lines `"suppressed"`.
 *
 * A message about a vGPU starts with the vGPU's name (`vm1: …`), as every call site in mdgpu
 * writes them; once the daemon has named its vGPUs ({@link setLogVgpus}) that prefix becomes the
 * `vgpu` field.
 *
 * Tracers are switched on by `MDGPU_TRACE=protocol,regs,dma` (or `all`), as grpc-js does with
 * GRPC_TRACE. Guest errors (a misbehaving guest or client) are always logged, but rate-limited
 * per key so a hostile guest cannot flood the host's log.
 */

export type LogSink = (line: string) => void;
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** One event, before it is formatted. */
export interface LogRecord {
  level: LogLevel;
  msg: string;
  vgpu?: string;
  /** The tracer of a trace line (`MDGPU_TRACE`). */
  tracer?: string;
  /** How many similar lines a rate limit dropped (a summary line). */
  suppressed?: number;
}

/** syslog priorities (sd-daemon(3): `<3>` SD_ERR … `<7>` SD_DEBUG). */
const PRIORITY: Record<LogLevel, number> = { error: 3, warning: 4, info: 6, debug: 7 };

let sink: LogSink = (line) => process.stderr.write(`${line}\n`);
let enabled = parseTraceList(process.env.MDGPU_TRACE ?? '');
let logLevel: 'quiet' | 'info' | 'debug' = process.env.MDGPU_LOG === 'debug' ? 'debug' : 'info';
let format: LogFormat = 'text';
let journal = false;
let vgpuNames = new Set<string>();

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

/** `text` or `json` lines; `journal`: prefix each with its syslog priority for journald. */
export function setLogFormat(next: LogFormat, opts: { journal?: boolean } = {}): void {
  format = next;
  journal = opts.journal ?? false;
}

/** The vGPU names whose `name: ` message prefix becomes the `vgpu` field. */
export function setLogVgpus(names: Iterable<string>): void {
  vgpuNames = new Set(names);
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

/** Split a leading `vgpu: ` off `message` when it names a known vGPU. */
function record(level: LogLevel, message: string, extra: Partial<LogRecord> = {}): LogRecord {
  const colon = message.indexOf(': ');
  if (colon > 0 && vgpuNames.has(message.slice(0, colon))) {
    return { level, vgpu: message.slice(0, colon), msg: message.slice(colon + 2), ...extra };
  }
  return { level, msg: message, ...extra };
}

/** The line for one record in the current format. */
export function formatRecord(r: LogRecord, as: LogFormat = format, forJournal = journal): string {
  const priority = forJournal ? `<${PRIORITY[r.level]}>` : '';
  if (as === 'json') {
    return (
      priority +
      JSON.stringify({
        time: new Date().toISOString(),
        level: r.level,
        ...(r.vgpu !== undefined ? { vgpu: r.vgpu } : {}),
        ...(r.tracer !== undefined ? { tracer: r.tracer } : {}),
        msg: r.msg,
        ...(r.suppressed !== undefined ? { suppressed: r.suppressed } : {}),
      })
    );
  }
  // One event, one line: a message with newlines (a stack) keeps them visible but escaped.
  const msg = r.msg.includes('\n') ? r.msg.replace(/\n/g, '\\n') : r.msg;
  return `${priority}${r.level}: ${r.vgpu !== undefined ? `${r.vgpu}: ` : ''}${r.tracer !== undefined ? `[${r.tracer}] ` : ''}${msg}`;
}

function emit(r: LogRecord): void {
  sink(formatRecord(r));
}

/** A tracer for one subsystem; the message is built lazily so disabled tracing costs a Set lookup. */
export function tracer(name: string): (message: () => string) => void {
  return (message) => {
    if (traceEnabled(name)) emit(record('debug', message(), { tracer: name }));
  };
}

export function info(message: string): void {
  if (logLevel !== 'quiet') emit(record('info', message));
}

export function warn(message: string): void {
  emit(record('warning', message));
}

/** Something that stops mdgpu (a bad configuration, a failed start). */
export function error(message: string): void {
  emit(record('error', message));
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

const buckets = new Map<string, { windowStart: number; count: number; dropped: number; level: LogLevel; prefix: string; vgpu: string | undefined }>();

/** Emit `prefix + message` unless `key` used up its `rate`; report what was dropped when the window rolls over. */
function limited(key: string, rate: LogRate, level: LogLevel, prefix: string, message: string): void {
  const now = Date.now();
  let bucket = buckets.get(key);
  const r = record(level, message);
  if (bucket === undefined || now - bucket.windowStart >= rate.windowMs) {
    if (bucket !== undefined && bucket.dropped > 0) {
      emit({
        level: bucket.level,
        ...(bucket.vgpu !== undefined ? { vgpu: bucket.vgpu } : {}),
        msg: `${bucket.prefix}${key}: ${bucket.dropped} similar messages suppressed`,
        suppressed: bucket.dropped,
      });
    }
    bucket = { windowStart: now, count: 0, dropped: 0, level, prefix, vgpu: r.vgpu };
    buckets.set(key, bucket);
  }
  if (bucket.count < rate.burst) {
    bucket.count++;
    emit({ ...r, msg: `${prefix}${r.msg}` });
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
  limited(key, rate, 'warning', 'guest error: ', message);
}

/** A warning a client can cause over and over (keyed per vGPU), rate-limited like {@link guestError}. */
export function clientWarning(key: string, message: string, rate: LogRate = CONNECTION_LOG_RATE): void {
  limited(key, rate, 'warning', '', message);
}

/** An info line a client can cause over and over (keyed per vGPU); shares its key's budget with warnings. */
export function clientInfo(key: string, message: string, rate: LogRate = CONNECTION_LOG_RATE): void {
  if (logLevel !== 'quiet') limited(key, rate, 'info', '', message);
}

/** Lines a child process may write to its stderr per second (the compute worker, the kernel builder). */
export const CHILD_LOG_RATE: Readonly<LogRate> = Object.freeze({ burst: 20, windowMs: 1000 });

/**
 * Log what a child process writes to `stream` (its stderr, piped), one line per event in the
 * daemon's format, prefixed and rate-limited under `key`: a line that says "error" is a warning,
 * the rest info. So `--log-format json` stays one JSON object per line with the host driver's
 * lines (`mdgpu-host: …`) in it.
 */
export function relayLines(stream: NodeJS.ReadableStream, key: string, prefix: string, rate: LogRate = CHILD_LOG_RATE): void {
  let buffered = '';
  const line = (text: string) => {
    if (text.trim() === '') return;
    if (/\berror\b/i.test(text)) limited(key, rate, 'warning', '', `${prefix}${text}`);
    else if (logLevel !== 'quiet') limited(key, rate, 'info', '', `${prefix}${text}`);
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      line(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
    // A line without an end is cut rather than kept growing.
    if (buffered.length > 4096) {
      line(buffered);
      buffered = '';
    }
  });
  stream.on('end', () => line(buffered));
}
