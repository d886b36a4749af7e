/**
 * `npm run demo -- --keep`: after the story, the server and the devices stay up so a person can
 * look at them in the web console; Ctrl-C (or SIGTERM) ends it and cleans up.
 */

/** Prints where to look and with which tokens, then waits for SIGINT or SIGTERM. */
export async function keepRunning(url: string, tokens: { ops: string; technician: string }): Promise<void> {
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  out('');
  out('The server and the devices keep running (--keep). Open the web console:');
  out(`  console     ${url}/console/`);
  out(`  ops token   ${tokens.ops}`);
  out(`  technician  ${tokens.technician}   (may look and ask for rollbacks, not steer rollouts)`);
  out(`  API         ${url}/v1/openapi.json   (curl -H "Authorization: Bearer <token>" ${url}/v1/fleet/devices)`);
  out('Press Ctrl-C to stop everything and remove the demo directory.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  out('stopping');
}
