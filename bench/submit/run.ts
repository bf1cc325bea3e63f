/**
 * Submission cost: latency (publish → fence visible in the guest) and throughput of tiny
 * submissions, with a doorbell on every submission vs mdgpu's notification protocol, and
 * mdgpu's count of trapped accesses (VM exits) per submission in each mode.
 *
 *   npm run bench:submit [-- --latency 300 --throughput 3000]
 */
import { fields, runGuestBench, table, trappedInPhase } from '../guest-bench.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

async function main(): Promise<void> {
  const latencyN = Number(arg('latency', '300'));
  const throughputN = Number(arg('throughput', '3000'));
  const r = await runGuestBench({ command: `mdgpu-submit-bench -n ${latencyN} -m ${throughputN}`, apertureSize: 64 << 20 });
  const results = r.lines.filter((l) => l.startsWith('MDGPU-SUBMIT ')).map(fields);
  if (results.length === 0) {
    console.error(r.lines.slice(-30).join('\n'));
    throw new Error('mdgpu-submit-bench printed no results');
  }
  const phaseMark: Record<string, number> = { 'latency-doorbell': 0x200, 'latency-notify': 0x202, 'throughput-doorbell': 0x204, 'throughput-notify': 0x206 };
  const rows = results.map((f) => {
    const n = Number(f.n);
    const traps = trappedInPhase(r.marks, phaseMark[`${f.test}-${f.mode}`]!);
    const perSubmission = traps === undefined ? '?' : (traps / n).toFixed(3);
    const time =
      f.test === 'latency'
        ? `${(Number(f.ns) / 1000).toFixed(1)} µs median, p99 ${(Number(f.p99_ns) / 1000).toFixed(1)} µs`
        : `${(n / (Number(f.ns) / 1e9)).toFixed(0)} submissions/s (${(Number(f.per_ns) / 1000).toFixed(1)} µs each)`;
    return [f.test!, f.mode!, String(n), time, f.doorbells ?? '', traps === undefined ? '?' : String(traps), perSubmission];
  });
  console.log(`\nsubmission benchmark — guest under ${r.guest.accel.toUpperCase()}, QEMU ${r.qemuVersion}, Vulkan: lavapipe`);
  console.log('each submission is a SUBMIT with a completion fence and nothing else\n');
  console.log(table(['test', 'mode', 'n', 'result', 'doorbells', 'trapped accesses', 'per submission'], rows));
  console.log('\ndoorbell: the guest writes QUEUE_DOORBELL (a trapped MMIO write) after every submission;');
  console.log("notify: it writes it only when the queue's control block says the device sleeps.");
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
