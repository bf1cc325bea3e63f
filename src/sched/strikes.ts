/**
 * Strikes against a vGPU whose work costs everyone else: device resets (a batch past its time
 * limit, a crash of the device while its batch ran) and kernel builds that failed by time or
 * memory. A vGPU that collects `strikes` within `windowMs` is cooled off for `coolOffMs`: its new
 * work is refused (THROTTLED) until then, so one VM can cost the others at most a bounded pause
 * per window — every reset pauses every VM for the time a new device process takes to start.
 */

export interface StrikePolicy {
  /** Strikes within the window that start a cool-off; 0 never throttles. */
  strikes: number;
  windowMs: number;
  coolOffMs: number;
}

export const DEFAULT_RESET_POLICY: StrikePolicy = { strikes: 3, windowMs: 60_000, coolOffMs: 60_000 };
export const DEFAULT_BUILD_POLICY: StrikePolicy = { strikes: 3, windowMs: 60_000, coolOffMs: 60_000 };

interface Record {
  recent: number[];
  total: number;
  coolOffs: number;
  until: number;
}

export class StrikeCounter {
  private readonly records = new Map<string, Record>();

  constructor(
    readonly policy: StrikePolicy,
    private readonly now: () => number = Date.now,
  ) {}

  private record(name: string): Record {
    let r = this.records.get(name);
    if (r === undefined) {
      r = { recent: [], total: 0, coolOffs: 0, until: 0 };
      this.records.set(name, r);
    }
    return r;
  }

  /** Count a strike; true when it starts a cool-off. */
  strike(name: string): boolean {
    const r = this.record(name);
    const now = this.now();
    r.total++;
    if (this.policy.strikes <= 0) return false;
    r.recent = r.recent.filter((t) => now - t < this.policy.windowMs);
    r.recent.push(now);
    if (r.recent.length < this.policy.strikes || now < r.until) return false;
    r.recent = [];
    r.coolOffs++;
    r.until = now + this.policy.coolOffMs;
    return true;
  }

  /** When the cool-off of `name` ends (ms since the epoch), or null when it may work. */
  coolingOffUntil(name: string): number | null {
    const r = this.records.get(name);
    return r !== undefined && this.now() < r.until ? r.until : null;
  }

  stats(name: string): { strikes: number; coolOffs: number; coolingOffUntil: number | null } {
    const r = this.records.get(name);
    return { strikes: r?.total ?? 0, coolOffs: r?.coolOffs ?? 0, coolingOffUntil: this.coolingOffUntil(name) };
  }

  forget(name: string): void {
    this.records.delete(name);
  }
}
