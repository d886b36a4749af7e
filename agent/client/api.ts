/**
 * JSON requests from the device to the server API (got), each failure turned into one agent
 * error whose kind says what to do: unreachable or 5xx/429 is transient (try again later), a
 * refused token or request is fatal until someone fixes it. The server's own error code and
 * message are kept in the text.
 */
import { OtaError, errorMessage } from '../../shared/errors.js';

/** Where a request goes and with which token. */
export interface ApiTarget {
  /** The server's base URL (no trailing slash). */
  readonly url: string;
  readonly token: string;
}

/** Per request: how long the server may take, and a way to stop waiting. */
export interface ApiOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** A more precise error for some answers (status, the server's code, the standard text). */
  readonly refine?: (status: number, code: string | undefined, text: string) => OtaError | undefined;
}

/** A 2xx answer. */
export interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
}

function serverError(body: string): { code: string; message: string } | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed.error === 'string' && typeof parsed.message === 'string') return { code: parsed.error, message: parsed.message };
  } catch {
    // not JSON: a proxy's page or another server
  }
  return undefined;
}

/** The agent error for a non-2xx answer to `what`. */
export function answerError(what: string, status: number, body: string, refine?: ApiOptions['refine']): OtaError {
  const e = serverError(body);
  const said = e ? `${e.code}: ${e.message}` : body.replace(/\s+/g, ' ').trim().slice(0, 120) || 'no error body';
  const text = `${what}: HTTP ${status} (${said})`;
  const refined = refine?.(status, e?.code, text);
  if (refined) return refined;
  if (status === 401 || status === 403) return new OtaError('SERVER_AUTH_FAILED', text);
  if (status >= 500 || status === 429 || status === 408) return new OtaError('SERVER_FAILED', text);
  if (!e) return new OtaError('SERVER_BAD_ANSWER', text);
  return new OtaError('SERVER_REFUSED', text);
}

/** POSTs `body` as JSON to `path` and returns the parsed 2xx answer. */
export async function postJson(target: ApiTarget, path: string, body: unknown, opts: ApiOptions): Promise<ApiAnswer> {
  const url = `${target.url}${path}`;
  const what = `POST ${url}`;
  // Loaded at the first request, not with every command that could make one.
  const { got, RequestError, TimeoutError } = await import('got');
  let res;
  try {
    res = await got.post(url, {
      json: body,
      headers: { authorization: `Bearer ${target.token}` },
      // One attempt: the callers decide when to try again (the next poll, the next flush).
      retry: { limit: 0 },
      throwHttpErrors: false,
      timeout: { request: opts.timeoutMs },
      responseType: 'text',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (cause) {
    if (opts.signal?.aborted) throw new OtaError('AGENT_STOPPED', `${what}: stopped`, { cause });
    const code = cause instanceof RequestError ? cause.code : '';
    const why = cause instanceof TimeoutError ? `no answer within ${opts.timeoutMs / 1000} s` : errorMessage(cause);
    throw new OtaError('SERVER_UNREACHABLE', `${what}: ${why}${code && !why.includes(code) ? ` (${code})` : ''}`, { cause });
  }
  if (res.statusCode < 200 || res.statusCode > 299) throw answerError(what, res.statusCode, res.body, opts.refine);
  try {
    return { status: res.statusCode, body: JSON.parse(res.body) as unknown };
  } catch (cause) {
    throw new OtaError('SERVER_BAD_ANSWER', `${what}: HTTP ${res.statusCode} with a body that is not JSON`, { cause });
  }
}
