/**
 * Preemptible batches: a vGPU's validated batch run as a sequence of device submissions
 * ("parts") of about one time slice of device time each, so that the fair scheduler can run
 * other vGPUs' work between two of them (src/sched/scheduler.ts, `PartedRun`). A device runs a
 * submission to its end, so this is the only place a long batch can be interrupted.
 *
 * A part ends between two commands, or inside a long command:
 * - a DISPATCH is split into ranges of its workgroups (boxes, in x-fastest order: parts of a
 *   row, whole rows, whole slabs). Each range runs with `base` moved to its first workgroup,
 *   so WorkgroupId and GlobalInvocationId are those of the whole dispatch, and with the whole
 *   dispatch's count as `numWorkgroups`, which the host driver makes the kernel's
 *   NumWorkgroups (host-driver/src/spirv-rewrite.c). Workgroups of one dispatch are unordered
 *   in Vulkan, so running them in ranges one after another computes what the whole dispatch
 *   does. Only kernels the host driver says are `splittable` are split; others run whole.
 * - a COPY or FILL is split into byte ranges.
 * Every part completes before the next starts (a device submission ends with all its work done
 * and visible), so the commands keep their order and a BARRIER at a split is already implied.
 * BARRIERs and TIMESTAMPs right after a part's last command go with that part: a TIMESTAMP is
 * then the time the commands before it completed, as in a batch run whole, never the time a
 * later part started after other vGPUs' work. (A TIMESTAMP pair around a split command does
 * include the other vGPUs' time between its parts, as on a time-sliced GPU.)
 *
 * How much goes into a part comes from measured device time: per kernel, nanoseconds per
 * workgroup from the parts of earlier dispatches that ran it (a kernel never seen first runs a
 * small probe of PROBE_WORKGROUPS, which ends its part), and nanoseconds per byte of
 * transfers. Estimates follow a rise quickly and a fall slowly, so a part overruns its budget
 * rarely and by little when a kernel's workgroups cost the same. A batch whose whole predicted
 * time fits in the budget runs as one submission, exactly as it would unsplit.
 */
import type { BackendKernel, Command } from '../backend/backend.js';
import type { BatchControl, PartedRun, PartResult } from '../sched/scheduler.js';

/** Workgroups of the first part of a kernel nobody has measured yet. */
export const PROBE_WORKGROUPS = 4;
/** A part may take up to this much more than its budget to finish a command (no tiny tails). */
export const BUDGET_SLACK = 1.25;
/** Device time assumed per byte of COPY, FILL and UPDATE before any was measured (1 GB/s). */
export const INITIAL_NS_PER_BYTE = 1;
/** Byte ranges of a split COPY or FILL: multiples of this, and at least this large. */
export const TRANSFER_CHUNK = 64 * 1024;
/** Transfer-only parts smaller than this teach nothing about bytes (fixed costs dominate). */
const MIN_LEARN_BYTES = 1 << 20;

/** Device time per unit of work, learned from parts that ran (one per executor: one vGPU). */
export class DeviceTimeModel {
  private readonly perGroup = new WeakMap<BackendKernel, number>();
  /** ns per byte of COPY, FILL and UPDATE. */
  nsPerByte = INITIAL_NS_PER_BYTE;

  /**
   * @param parallelism workgroups the device runs at once (lavapipe: one per thread, a thread
   * per CPU). Ranges of a split dispatch are cut in multiples of it: a range of 9 workgroups
   * on 2 threads takes as long as 10, one thread idle for the last of them.
   */
  constructor(readonly parallelism = 1) {}

  /** ns per workgroup of `kernel`, or undefined before it was measured. */
  nsPerWorkgroup(kernel: BackendKernel): number | undefined {
    return this.perGroup.get(kernel);
  }

  learnKernel(kernel: BackendKernel, nsPerWorkgroup: number): void {
    if (!(nsPerWorkgroup > 0) || !Number.isFinite(nsPerWorkgroup)) return;
    this.perGroup.set(kernel, follow(this.perGroup.get(kernel), nsPerWorkgroup));
  }

  learnBytes(nsPerByte: number): void {
    if (!(nsPerByte > 0) || !Number.isFinite(nsPerByte)) return;
    this.nsPerByte = follow(this.nsPerByte, nsPerByte);
  }
}

/** An estimate after a new sample: up quickly (parts must not overrun), down slowly. */
function follow(old: number | undefined, sample: number): number {
  if (old === undefined) return sample;
  return sample > old ? 0.3 * old + 0.7 * sample : 0.7 * old + 0.3 * sample;
}

/** Run `commands` on the device as one submission; resolves with its device time, ns. */
export type SubmitPart = (commands: readonly Command[], started: () => void) => Promise<number>;

type Dispatch = Extract<Command, { kind: 'dispatch' }>;
type Transfer = Extract<Command, { kind: 'copy' | 'fill' }>;

/** What one planned part holds, for learning from its measured time. */
interface Plan {
  commands: Command[];
  /** Workgroups per kernel in the part, with each kernel's estimate when it was planned. */
  kernels: Map<BackendKernel, { groups: number; nsPerWorkgroup: number | undefined }>;
  bytes: number;
}

const product = (g: readonly [number, number, number]) => g[0] * g[1] * g[2];

/** A validated batch as a {@link PartedRun}: the scheduler runs it part by part. */
export class BatchParts implements PartedRun {
  /** The next command to run; how much of it (workgroups, bytes) has run already. */
  private index = 0;
  private progress = 0;
  /** Device submissions so far. */
  partsRun = 0;
  /** The part queued on the device behind the running one, when the scheduler allowed it. */
  private ahead: { plan: Plan; done: Promise<number> } | null = null;

  constructor(
    private readonly commands: readonly Command[],
    private readonly model: DeviceTimeModel,
    private readonly submit: SubmitPart,
  ) {}

  get finished(): boolean {
    return this.index >= this.commands.length;
  }

  async next(control: BatchControl, budgetNs: number): Promise<PartResult> {
    let plan: Plan;
    let done: Promise<number>;
    if (this.ahead !== null) {
      // Queued behind the part before, which has ended: it runs on the device from now on.
      ({ plan, done } = this.ahead);
      this.ahead = null;
      control.started();
    } else {
      plan = this.plan(budgetNs);
      if (plan.commands.length === 0) return { deviceNs: 0, done: true };
      this.partsRun++;
      done = this.submit(plan.commands, control.started);
    }
    if (control.queueNext === true && !this.finished) {
      // The next part goes to the device now, behind this one: no round trip between them.
      const next = this.plan(budgetNs);
      if (next.commands.length > 0) {
        this.partsRun++;
        const queued = this.submit(next.commands, () => {});
        queued.catch(() => {}); // awaited when its turn comes, or below
        this.ahead = { plan: next, done: queued };
      }
    }
    let deviceNs: number;
    try {
      deviceNs = await done;
    } catch (err) {
      // The batch fails: the part queued behind must have left the device before anyone is told.
      if (this.ahead !== null) await this.ahead.done.catch(() => {});
      this.ahead = null;
      throw err;
    }
    this.learn(plan, deviceNs);
    return { deviceNs, done: this.finished && this.ahead === null, queuedNext: this.ahead !== null };
  }

  /** The next part: commands from where the last part ended, about `budgetNs` of them. */
  plan(budgetNs: number): Plan {
    const plan: Plan = { commands: [], kernels: new Map(), bytes: 0 };
    const cmds = this.commands;
    let predicted = 0;
    let work = false; // the part has a command that takes time
    let stop = false;
    while (this.index < cmds.length && !stop) {
      const c = cmds[this.index]!;
      switch (c.kind) {
        case 'barrier':
        case 'timestamp':
          plan.commands.push(c);
          this.index++;
          break;
        case 'update': {
          const cost = c.data.byteLength * this.model.nsPerByte;
          if (work && predicted + cost > budgetNs) {
            stop = true;
            break;
          }
          plan.commands.push(c);
          plan.bytes += c.data.byteLength;
          predicted += cost;
          work = true;
          this.index++;
          break;
        }
        case 'copy':
        case 'fill': {
          const size = c.kind === 'copy' ? c.src.size : c.dst.size;
          const left = budgetNs - predicted;
          const perByte = this.model.nsPerByte;
          let bytes = size - this.progress;
          if (bytes * perByte > left * BUDGET_SLACK) {
            const fits = Math.floor(left / perByte / TRANSFER_CHUNK) * TRANSFER_CHUNK;
            if (fits < TRANSFER_CHUNK && work) {
              stop = true;
              break;
            }
            bytes = Math.min(bytes, Math.max(TRANSFER_CHUNK, fits));
            stop = true;
          }
          plan.commands.push(transferRange(c, this.progress, bytes));
          plan.bytes += bytes;
          predicted += bytes * perByte;
          work = true;
          this.advance(bytes, size);
          break;
        }
        case 'dispatch': {
          const total = product(c.groups);
          const est = this.model.nsPerWorkgroup(c.kernel);
          const remaining = total - this.progress;
          let take: number;
          if (!c.kernel.splittable) {
            // All or nothing: in a part of its own when it does not fit with what is there.
            const cost = est === undefined ? Number.POSITIVE_INFINITY : est * remaining;
            if (work && predicted + cost > budgetNs) {
              stop = true;
              break;
            }
            take = remaining;
            stop = predicted + cost >= budgetNs;
          } else if (est === undefined) {
            // Nobody measured it: a small probe, and the part ends to learn from it.
            take = Math.min(remaining, PROBE_WORKGROUPS);
            stop = true;
          } else {
            const left = budgetNs - predicted;
            if (remaining * est <= left * BUDGET_SLACK) {
              take = remaining;
            } else {
              take = Math.floor(left / est);
              if (take < 1 && work) {
                stop = true;
                break;
              }
              // Whole rounds of the device's parallel workgroups (see DeviceTimeModel).
              const w = this.model.parallelism;
              take = take >= w ? take - (take % w) : Math.min(w, remaining);
              stop = true;
            }
          }
          take = this.takeWorkgroups(c, take, plan.commands);
          const k = plan.kernels.get(c.kernel);
          if (k === undefined) plan.kernels.set(c.kernel, { groups: take, nsPerWorkgroup: est });
          else k.groups += take;
          predicted += (est ?? 0) * take;
          work = true;
          this.advance(take, total);
          break;
        }
      }
    }
    // Barriers and timestamps after the last command go with it (see the top of this file).
    while (this.index < cmds.length && (cmds[this.index]!.kind === 'barrier' || cmds[this.index]!.kind === 'timestamp')) {
      plan.commands.push(cmds[this.index]!);
      this.index++;
    }
    return plan;
  }

  private advance(n: number, total: number): void {
    this.progress += n;
    if (this.progress >= total) {
      this.index++;
      this.progress = 0;
    }
  }

  /**
   * Append boxes of up to `count` workgroups of `c` from its progress on (x fastest, then y,
   * z: parts of a row, whole rows, whole slabs); returns how many. A box that stops inside a row
   * is a multiple of the device's parallelism and ends the part (each box is a dispatch of its
   * own, with its own last round).
   */
  private takeWorkgroups(c: Dispatch, count: number, out: Command[]): number {
    const total = product(c.groups);
    if (this.progress === 0 && count >= total) {
      out.push(c);
      return total;
    }
    const [gx, gy] = c.groups;
    const w = this.model.parallelism;
    let done = this.progress;
    let left = count;
    while (left > 0 && done < total) {
      const x = done % gx;
      const y = Math.floor(done / gx) % gy;
      const z = Math.floor(done / (gx * gy));
      let box: [number, number, number];
      if (x > 0 || left < gx) {
        let k = Math.min(left, gx - x);
        if (k < gx - x) {
          k -= k % w;
          if (k === 0 && done > this.progress) break; // less than a round left: the next part's
          if (k === 0) k = Math.min(left, gx - x);
        }
        box = [k, 1, 1];
      } else if (y > 0 || left < gx * gy) box = [gx, Math.min(Math.floor(left / gx), gy - y), 1];
      else box = [gx, gy, Math.min(Math.floor(left / (gx * gy)), c.groups[2] - z)];
      out.push({ ...c, base: [c.base[0] + x, c.base[1] + y, c.base[2] + z], groups: box, numWorkgroups: c.groups });
      done += product(box);
      left -= product(box);
      if (x + box[0] < gx) break;
    }
    return done - this.progress;
  }

  /** Teach the model what the part's measured device time says. */
  private learn(plan: Plan, deviceNs: number): void {
    const byteNs = plan.bytes * this.model.nsPerByte;
    if (plan.kernels.size === 0) {
      if (plan.bytes >= MIN_LEARN_BYTES) this.model.learnBytes(deviceNs / plan.bytes);
      return;
    }
    // What the kernels took: the part but its transfers (at least half of it, if the byte
    // estimate is off).
    const kernelNs = Math.max(deviceNs - byteNs, deviceNs / 2);
    let known = 0;
    let unknownGroups = 0;
    for (const k of plan.kernels.values()) {
      if (k.nsPerWorkgroup === undefined) unknownGroups += k.groups;
      else known += k.nsPerWorkgroup * k.groups;
    }
    if (plan.kernels.size === 1) {
      const [kernel, k] = [...plan.kernels][0]!;
      this.model.learnKernel(kernel, kernelNs / k.groups);
    } else if (unknownGroups === 0) {
      // Several measured kernels: each keeps its share of the time, scaled to what it took.
      for (const [kernel, k] of plan.kernels) this.model.learnKernel(kernel, (k.nsPerWorkgroup! * kernelNs) / known);
    } else {
      // New kernels take what the measured ones did not.
      const rest = Math.max(kernelNs - known, kernelNs / 10);
      for (const [kernel, k] of plan.kernels) if (k.nsPerWorkgroup === undefined) this.model.learnKernel(kernel, rest / unknownGroups);
    }
  }
}

/** Bytes `from` .. `from + size` of a COPY or FILL. */
function transferRange(c: Transfer, from: number, size: number): Command {
  const whole = c.kind === 'copy' ? c.src.size : c.dst.size;
  if (from === 0 && size === whole) return c;
  const dst = { offset: c.dst.offset + from, size };
  if (c.kind === 'fill') return { ...c, dst };
  return { ...c, src: { offset: c.src.offset + from, size }, dst };
}
