/** Small file helpers shared by the agent (local bundle sources) and the ops client (uploads). */
import { stat } from 'node:fs/promises';

/** The size of the regular file at `path`; throws when it cannot be read or is not a regular file. */
export async function regularFileSize(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isFile()) throw new Error('not a regular file');
  return st.size;
}
