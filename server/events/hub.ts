/**
 * Server-sent events for the console: each instance polls the change cursor (./cursor.ts) while
 * at least one stream is open, and tells every stream which topics moved. A write answered by
 * this instance asks for an early look (`nudge`), so its own changes show at once; changes made
 * through other instances show within one poll interval. The database stays the one source.
 */
import { changed, cursorId, type Cursor, type Topic } from './cursor.js';

/** One open stream: writes SSE text, ends the response. */
export interface EventClient {
  write(text: string): void;
  end(): void;
}

/** Timings of the hub. */
export interface HubOptions {
  /** Milliseconds between two reads of the cursor while streams are open. */
  pollMs: number;
  /** Milliseconds between two comment lines that keep idle proxies from closing a stream. */
  heartbeatMs: number;
  /** Earliest look after a nudge, in milliseconds (several writes in a burst make one read). */
  nudgeMs: number;
}

/** Defaults of HubOptions. */
export const HUB_DEFAULTS: HubOptions = { pollMs: 1000, heartbeatMs: 15_000, nudgeMs: 50 };

/** The event that names the topics that changed; its id is the cursor after the change. */
export function changeEvent(topics: readonly Topic[], cursor: Cursor): string {
  return `id: ${cursorId(cursor)}\nevent: change\ndata: ${JSON.stringify({ topics })}\n\n`;
}

/** The streams of one server instance and the poll that feeds them. */
export class EventHub {
  private readonly clients = new Set<EventClient>();
  private last: Cursor | null = null;
  private poll: NodeJS.Timeout | null = null;
  private beat: NodeJS.Timeout | null = null;
  private soon: NodeJS.Timeout | null = null;
  private reading = false;
  private closed = false;
  /** Cursor reads made (tests and the docs' cost figures read it). */
  reads = 0;

  constructor(
    private readonly read: () => Cursor | Promise<Cursor>,
    private readonly opts: HubOptions = HUB_DEFAULTS,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Streams open now. */
  get size(): number {
    return this.clients.size;
  }

  /**
   * Adds a stream: it gets `ready` with the current cursor, or at once the topics that changed
   * since `since` (the Last-Event-ID of a reconnecting browser). Returns the function that removes it.
   */
  async subscribe(client: EventClient, since: Cursor | null): Promise<() => void> {
    if (this.closed) {
      client.end();
      return () => undefined;
    }
    const now = await this.current();
    const moved = since ? changed(since, now) : [];
    client.write(`retry: 3000\n`);
    client.write(moved.length > 0 ? changeEvent(moved, now) : `id: ${cursorId(now)}\nevent: ready\ndata: {}\n\n`);
    this.clients.add(client);
    this.start();
    return () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stop();
    };
  }

  /** Something was written through this instance: look before the next poll. */
  nudge(): void {
    if (this.clients.size === 0 || this.soon || this.closed) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      void this.tick();
    }, this.opts.nudgeMs);
  }

  /** Ends every stream and stops polling (the server is closing). */
  close(): void {
    this.closed = true;
    this.stop();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private async current(): Promise<Cursor> {
    this.reads++;
    const c = await this.read();
    this.last ??= c;
    return c;
  }

  private async tick(): Promise<void> {
    if (this.reading || this.clients.size === 0) return;
    this.reading = true;
    try {
      const before = this.last;
      const now = await this.current();
      this.last = now;
      const moved = changed(before, now);
      if (before !== null && moved.length > 0) {
        const text = changeEvent(moved, now);
        for (const c of this.clients) c.write(text);
      }
    } catch (err) {
      // A busy or unreachable database: the streams stay open and the next poll tries again.
      this.onError(err);
    } finally {
      this.reading = false;
    }
  }

  private start(): void {
    if (this.poll) return;
    this.poll = setInterval(() => void this.tick(), this.opts.pollMs);
    this.beat = setInterval(() => {
      for (const c of this.clients) c.write(': keep-alive\n\n');
    }, this.opts.heartbeatMs);
    this.poll.unref();
    this.beat.unref();
  }

  private stop(): void {
    for (const t of [this.poll, this.beat, this.soon]) if (t) clearInterval(t);
    this.poll = this.beat = this.soon = null;
    // Streams closed: the next first stream starts from a fresh read.
    this.last = null;
  }
}
