/** Results of health checks, as stored in the history and sent in reports. */

/** One check's outcome. */
export interface CheckResult {
  readonly name: string;
  readonly kind: 'systemd' | 'http' | 'command';
  /** `timeout`: the overall deadline passed before the check could finish. */
  readonly verdict: 'pass' | 'fail' | 'timeout';
  /** What the check saw, trimmed: the unit's state, the HTTP status, the command's output. */
  readonly excerpt: string;
  readonly seconds: number;
}

/** The outcome of all checks of one boot. */
export interface HealthReport {
  readonly passed: boolean;
  /** When failed: `health-check:<name>` or `timeout`. */
  readonly reason?: string;
  readonly results: readonly CheckResult[];
}

/** Limits one check runs under. */
export interface CheckContext {
  /** Milliseconds left until the overall deadline. */
  remaining(): number;
}
