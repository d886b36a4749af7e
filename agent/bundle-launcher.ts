/**
 * The entry of the bundled agent (`dist/bundle/ota-agent.mjs`, scripts/bundle.ts): runs
 * `ota-agent.cjs` next to it through its V8 code cache (agent/code-cache.ts).
 */
import { fileURLToPath } from 'node:url';
import { runAgent } from './code-cache.js';

runAgent(fileURLToPath(new URL('./ota-agent.cjs', import.meta.url)));
