/** `ota-release verify`: is the bundle authentic and whole? Checked exactly as a device checks it. */
import { UsageError, defineCommand, formatBytes, list, printJson } from '../../shared/cli.js';
import { loadKeyring } from '../../shared/signing.js';
import { verifyBundleFile } from '../../shared/verify.js';

/** The verify command. */
export const verifyCommand = defineCommand({
  name: 'verify',
  summary: 'Verify a bundle\'s signature, payload hashes and payload contents',
  usage: 'ota-release verify BUNDLE --keyring PUB [--keyring PUB2] [--json]',
  help: `Exit 0 when the bundle is authentic and whole. Otherwise exit 1 with one line on stderr:
the error code and the reason (see docs/ERRORS.md for every code).

Checks: the tar structure (order, names, end marker, nothing appended), the manifest schema,
the OpenPGP signature against the given public keys (Ed25519 or RSA >= 3072, not expired or
revoked), each payload's size and sha256, gzip payloads against their unpackedSize, and every
entry of module and archive trees (no escapes, no device nodes in modules, size bound).

Options:
  --keyring FILE    trusted release public key (armored or binary; repeat for several)
  --json            print the verified manifest, signer and payload report as JSON`,
  options: { keyring: { type: 'string', multiple: true }, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ values, positionals }) {
    const keyrings = list(values.keyring);
    if (keyrings.length === 0) throw new UsageError('option --keyring is required (a trusted release public key)');
    const path = positionals[0]!;
    const report = await verifyBundleFile(path, await loadKeyring(keyrings));
    const { manifest, signer } = report.bundle;
    if (values.json) {
      printJson({ ok: true, manifest, signer, payloads: report.payloads });
      return;
    }
    process.stdout.write(
      `OK ${path}: ${manifest.product} ${manifest.version} signed by ${signer.fingerprint} (${signer.algorithm}${signer.userIds[0] ? `, ${signer.userIds[0]}` : ''})\n` +
        report.payloads.map((p) => `  ${p.name}: ${p.type}, ${formatBytes(p.size)}, unpacks to ${formatBytes(p.unpackedBytes)}${p.entries !== undefined ? `, ${p.entries} entries` : ''}: verified\n`).join(''),
    );
  },
});
