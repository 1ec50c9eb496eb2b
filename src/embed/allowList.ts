// Who may drive the embed: the origins listed in embed-config.json at the site root, read at
// runtime so that a deployer edits the file without rebuilding. Nothing else is allowed: no
// default, no implied same origin; "*" (any origin) only when the file says so.

/** Relative to the app's base URL. */
export const EMBED_CONFIG_PATH = 'embed-config.json';

export interface AllowList {
  /** Exact origins, e.g. "https://example.org"; or "*" alone for every origin. */
  readonly origins: readonly string[];
  readonly any: boolean;
}

/** Validates the file's JSON. Throws an Error naming what is wrong; the embed then answers no one. */
export function parseAllowList(json: unknown): AllowList {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${EMBED_CONFIG_PATH} must be a JSON object like {"allowedOrigins": ["https://example.org"]}.`);
  }
  const unknownKeys = Object.keys(json).filter((key) => key !== 'allowedOrigins');
  if (unknownKeys.length > 0) throw new Error(`${EMBED_CONFIG_PATH} has unknown keys: ${unknownKeys.join(', ')}.`);
  const list = (json as { allowedOrigins?: unknown }).allowedOrigins;
  if (!Array.isArray(list)) throw new Error(`${EMBED_CONFIG_PATH}: "allowedOrigins" must be an array of origins.`);
  const origins: string[] = [];
  for (const [index, entry] of list.entries()) {
    if (entry === '*') {
      origins.push(entry);
      continue;
    }
    if (typeof entry !== 'string' || !isSerialisedOrigin(entry)) {
      throw new Error(
        `${EMBED_CONFIG_PATH}: allowedOrigins[${index}] is ${JSON.stringify(entry)}, not an origin: write scheme, host and port only, e.g. "https://example.org" or "http://localhost:5174".`,
      );
    }
    origins.push(entry);
  }
  return { origins, any: origins.includes('*') };
}

/** "null" (a sandboxed or file: page) is never allowed: a reply to it could only go to "*". */
export function isAllowed(list: AllowList, origin: string): boolean {
  if (origin === 'null' || !isSerialisedOrigin(origin)) return false;
  return list.any || list.origins.includes(origin);
}

function isSerialisedOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === text;
  } catch {
    return false;
  }
}

/** Reads the deployer's file; `base` is the app's base URL (absolute). */
export async function fetchAllowList(base: string): Promise<AllowList> {
  const url = new URL(EMBED_CONFIG_PATH, base);
  let response: Response;
  try {
    response = await fetch(url, { cache: 'no-store', credentials: 'omit' });
  } catch (cause) {
    throw new Error(`Could not read ${url.pathname}: ${cause instanceof Error ? cause.message : String(cause)}.`, { cause });
  }
  if (!response.ok) throw new Error(`Could not read ${url.pathname}: HTTP ${response.status}.`);
  let json: unknown;
  try {
    json = await response.json();
  } catch (cause) {
    throw new Error(`${EMBED_CONFIG_PATH} is not valid JSON.`, { cause });
  }
  return parseAllowList(json);
}
