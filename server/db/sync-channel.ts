/**
 * A synchronous request/answer channel to a worker thread: the caller posts a request and blocks
 * in `Atomics.wait` until the worker's answer can be taken with `receiveMessageOnPort`. The
 * PostgreSQL handle (pg-sync.ts) runs its client this way.
 *
 * The worker counts its answers in shared memory (`answered(...)` below: post, then add one,
 * then notify) and the caller counts the answers it has taken. A count above the caller's means
 * an answer is on its way even when the port has none yet, and that does happen: on Node 20
 * here, about 2 round trips in 300,000 find the port empty right after the worker's notify.
 * A flag cleared before each wait loses that answer: the caller either gave up at once (the
 * answer then came in the next request's place) or waited on the flag again for a notify that
 * had already been spent, until its deadline. With the count the caller looks at the port
 * again until the answer is there.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

/**
 * The worker's side, as CommonJS source to put in the worker's own: `answered(message)` sends
 * one answer. The worker reads its port from `workerData.port`.
 */
export const WORKER_ANSWER = `
const __answerTo = require('node:worker_threads').workerData;
const __answers = new Int32Array(__answerTo.answers);
function answered(message) {
  __answerTo.port.postMessage(message);
  Atomics.add(__answers, 0, 1);
  Atomics.notify(__answers, 0);
}
`;

/** What a request and its answer carry besides their own fields: the request's number. */
export interface Numbered {
  seq?: number;
}

/** The caller's side: one worker, one request at a time. */
export class SyncChannel<A extends Numbered> {
  private worker!: Worker;
  private port!: MessagePort;
  private answers!: Int32Array;
  /** Answers taken from this worker's port. */
  private taken = 0;
  /** The number of the last request sent; an answer with another is one given up on. */
  private seq = 0;

  /**
   * `source` is the worker's CommonJS source; it must include WORKER_ANSWER and answer every
   * request exactly once with `answered({ ...answer, seq: request.seq })`.
   */
  constructor(
    private readonly source: string,
    private readonly data: Record<string, unknown>,
  ) {
    this.start();
  }

  /** Starts the worker (again after a request was given up on). */
  private start(): void {
    const shared = new SharedArrayBuffer(4);
    this.answers = new Int32Array(shared);
    this.taken = 0;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(this.source, { eval: true, workerData: { ...this.data, answers: shared, port: port2 }, transferList: [port2] });
    // The worker lives as long as its owner; it must not keep a finished process alive.
    this.worker.unref();
    this.port.unref();
  }

  /**
   * Sends `request` and returns its answer, or undefined when none came within `timeoutMs`.
   * Then the worker is replaced: the request may still be running there, and its answer must
   * not be taken for a later one's.
   */
  call(request: object, timeoutMs: number): A | undefined {
    const seq = ++this.seq;
    this.port.postMessage({ ...request, seq });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = receiveMessageOnPort(this.port);
      if (got) {
        this.taken++;
        const answer = got.message as A;
        if (answer.seq === seq) return answer;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      // Every answer posted so far was taken: sleep until the worker counts one more. One
      // counted but not yet on the port is a moment away: look again.
      if (Atomics.load(this.answers, 0) === this.taken) Atomics.wait(this.answers, 0, this.taken, left);
    }
    void this.worker.terminate();
    this.start();
    return undefined;
  }

  /** Stops the worker. */
  terminate(): void {
    void this.worker.terminate();
  }
}
