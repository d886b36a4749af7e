/** The agent's own version, reported at check-in as the attribute `agentVersion` (a test keeps it equal to package.json's). */
export const AGENT_VERSION = '0.1.0';
