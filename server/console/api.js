// The API client of the console: the token is kept for this browser tab only (sessionStorage).

const KEY = 'otaab.token';

/** An error answer of the API: its HTTP status, code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  set token(t) {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  },
  /** { id, role } once logged in. */
  who: null,
};

/** Calls the API; resolves with the JSON answer, rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError(res.status, 'BAD_ANSWER', text.slice(0, 200));
  }
  if (!res.ok) throw new ApiError(res.status, json.error ?? `HTTP_${res.status}`, json.message ?? text);
  return json;
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** What the logged-in role may do (the API refuses the rest anyway). */
export const can = {
  rollouts: () => session.who?.role === 'ops',
  rollback: () => session.who?.role === 'ops' || session.who?.role === 'technician',
};

/**
 * Opens the server-sent event stream (GET /v1/events). Read with fetch, not EventSource, so
 * that the token goes in the Authorization header rather than in a URL that logs keep.
 * Calls onOpen() on `ready` (or a first change), onChange(topics) on each change, and
 * onDown(reason) once when the stream ends or fails. Returns the function that closes it.
 */
export function openEvents({ onOpen, onChange, onDown }, lastId = null) {
  const ctl = new AbortController();
  let down = false;
  const fail = (reason) => {
    if (down) return;
    down = true;
    onDown(reason);
  };
  (async () => {
    const headers = { authorization: `Bearer ${session.token}`, accept: 'text/event-stream' };
    if (lastId) headers['last-event-id'] = lastId;
    const res = await fetch('/v1/events', { headers, signal: ctl.signal, cache: 'no-store' });
    if (!res.ok || !res.body) throw new ApiError(res.status, `HTTP_${res.status}`, 'the event stream was refused');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let at;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data += line.slice(5).trim();
          else if (line.startsWith('id:')) lastId = line.slice(3).trim();
        }
        if (event === 'ready') onOpen(lastId);
        else if (event === 'change') {
          onOpen(lastId);
          onChange(JSON.parse(data).topics ?? [], lastId);
        }
      }
    }
    fail('the stream ended');
  })().catch((err) => fail(err.message ?? String(err)));
  return () => {
    down = true;
    ctl.abort();
  };
}
