#!/usr/bin/env node
/** Builds (or finds cached) the device image: `node dist/scripts/device/build-image.js`. */
import { agentDeb, buildImage } from './image.js';

const t0 = Date.now();
const img = await buildImage(await agentDeb(), (m) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`));
process.stdout.write(`${JSON.stringify(img, null, 2)}\n`);
