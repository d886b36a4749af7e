// The synchronous channel to a worker thread that the PostgreSQL handle runs its client through.
import { describe, expect, it } from 'vitest';
import { SyncChannel, WORKER_ANSWER } from '../../server/db/sync-channel.js';

interface Echo {
  seq?: number;
  n: number;
}

const ECHO = `${WORKER_ANSWER}
require('node:worker_threads').workerData.port.on('message', (m) => answered({ seq: m.seq, n: m.n }));
`;

describe('SyncChannel', () => {
  it('gives each request its own answer, over many round trips', () => {
    const ch = new SyncChannel<Echo>(ECHO, {});
    try {
      let wrong = 0;
      for (let n = 0; n < 50_000; n++) if (ch.call({ n }, 10_000)?.n !== n) wrong++;
      expect(wrong).toBe(0);
    } finally {
      ch.terminate();
    }
  });

  it('takes an answer counted before it reaches the port, instead of waiting out the deadline', () => {
    // What the port does now and then by itself (about 1 in 100,000 here), made to happen each
    // time: the worker counts and notifies first and posts 50 ms later.
    const late = `
const { workerData } = require('node:worker_threads');
const answers = new Int32Array(workerData.answers);
workerData.port.on('message', (m) => {
  Atomics.add(answers, 0, 1);
  Atomics.notify(answers, 0);
  setTimeout(() => workerData.port.postMessage({ seq: m.seq, n: m.n }), 50);
});
`;
    const ch = new SyncChannel<Echo>(late, {});
    try {
      for (let n = 0; n < 5; n++) expect(ch.call({ n }, 5_000)).toEqual({ seq: n + 1, n });
    } finally {
      ch.terminate();
    }
  });

  it('gives up on an unanswered request and starts a new worker, whose answers are never mixed with the old', () => {
    // Answers every request but the one with n = 1, which it answers 300 ms later.
    const slow = `${WORKER_ANSWER}
require('node:worker_threads').workerData.port.on('message', (m) => {
  if (m.n === 1) setTimeout(() => answered({ seq: m.seq, n: m.n }), 300);
  else answered({ seq: m.seq, n: m.n });
});
`;
    const ch = new SyncChannel<Echo>(slow, {});
    try {
      expect(ch.call({ n: 0 }, 5_000)?.n).toBe(0);
      expect(ch.call({ n: 1 }, 100)).toBeUndefined();
      const after = Date.now() + 400;
      while (Date.now() < after) expect(ch.call({ n: 2 }, 5_000)?.n).toBe(2);
    } finally {
      ch.terminate();
    }
  });
});
