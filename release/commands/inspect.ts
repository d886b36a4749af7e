/** `ota-release inspect`: what a bundle claims (manifest, payload sizes, signer key id), unverified. */
import { openBundleFile } from '../../shared/bundle-file.js';
import { defineCommand, formatBytes, printJson } from '../../shared/cli.js';
import { inspectBundle } from '../../shared/inspect.js';

/** The inspect command. */
export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'Show a bundle\'s manifest, payloads and signer key id (without verifying)',
  usage: 'ota-release inspect BUNDLE [--json]',
  help: `Reads the bundle's headers and manifest. Nothing is verified: use 'ota-release verify'
to check the signature and every payload.

Options:
  --json    print the manifest, entries and signer key id as JSON`,
  options: { json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ values, positionals }) {
    const path = positionals[0]!;
    const claims = await inspectBundle(await openBundleFile(path), path);
    if (values.json) {
      printJson(claims);
      return;
    }
    const m = claims.manifest;
    const lines = [
      `product     ${m.product}`,
      `version     ${m.version}`,
      `compatible  ${m.compatible.join(', ')}`,
      `created     ${m.created}`,
      `signed by   key ${claims.signatureKeyId ?? '(no signature)'}${claims.signatureCreated ? ` at ${claims.signatureCreated}` : ''} (not verified)`,
    ];
    if (m.notes) lines.push(`notes       ${m.notes}`);
    lines.push('payloads:');
    for (const mod of m.modules) {
      const extra = [
        mod.compression === 'gzip' ? 'gzip' : '',
        mod.unpackedSize !== undefined ? `unpacks to ${formatBytes(mod.unpackedSize)}` : '',
        mod.target ? `into ${mod.target}` : '',
        mod.version ? `v${mod.version}` : '',
      ].filter(Boolean);
      lines.push(`  ${mod.name.padEnd(16)} ${mod.type.padEnd(8)} ${formatBytes(mod.size).padStart(10)}  sha256 ${mod.sha256}${extra.length ? `  (${extra.join(', ')})` : ''}`);
    }
    lines.push('entries:', ...claims.entries.map((e) => `  ${e.name.padEnd(30)} ${String(e.size).padStart(12)} bytes at offset ${e.offset}`));
    process.stdout.write(`${lines.join('\n')}\n`);
  },
});
