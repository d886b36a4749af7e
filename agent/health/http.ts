/**
 * An HTTP health check: passes when the URL answers with the expected status. A service is
 * often not listening yet, or answers 503 while it starts, right after boot: the check asks
 * again every second until the overall deadline, and fails with the last thing it saw.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { got } from 'got';
import { errorMessage } from '../../shared/errors.js';
import type { HttpCheck } from '../config/types.js';
import { excerpt } from './excerpt.js';
import type { CheckContext, CheckResult } from './types.js';

/** Seconds between two attempts. */
const RETRY_MS = 1000;

/** Polls the URL until it answers as expected or the deadline passes. */
export async function runHttpCheck(check: HttpCheck, ctx: CheckContext): Promise<Omit<CheckResult, 'seconds'>> {
  let last = 'no attempt: the health deadline had passed';
  let answered = false;
  while (ctx.remaining() > 0) {
    const timeout = Math.max(1, Math.min(check.timeoutSeconds * 1000, ctx.remaining()));
    try {
      const r = await got(check.http, { throwHttpErrors: false, retry: { limit: 0 }, timeout: { request: timeout }, followRedirect: false });
      answered = true;
      if (r.statusCode === check.status) return { name: check.name, kind: 'http', verdict: 'pass', excerpt: `HTTP ${r.statusCode}` };
      last = `HTTP ${r.statusCode} (expected ${check.status}): ${excerpt(r.body)}`;
    } catch (err) {
      last = `no answer: ${errorMessage(err)}`;
    }
    if (ctx.remaining() <= RETRY_MS) break;
    await sleep(RETRY_MS);
  }
  // A wrong answer is the service failing; never getting one is a failure too, but say which.
  return { name: check.name, kind: 'http', verdict: 'fail', excerpt: answered ? last : `${last} (never answered before the deadline)` };
}
