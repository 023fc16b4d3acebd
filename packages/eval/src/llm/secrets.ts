/**
 * Masking secrets in the `llm` judge's text before it reaches a file, a log line or an error: the API key
 * (as sent, and in the JSON-escaped and URL-encoded forms an endpoint may echo it in), the value of any
 * Authorization-like header written out (`Authorization: …`, `"x-api-key": "…"`, `apiKey=…`), and any
 * `Bearer`/`Basic` credential. Each becomes `***`, keeping nothing of the secret. A key split by
 * whitespace or otherwise altered is not recognised.
 */

/** What a secret is replaced with. */
export const MASK = '***';

/** The forms of `key` an endpoint may echo: as sent, JSON-escaped, URL-encoded (longest first, no duplicates). */
export function secretForms(key: string | undefined): string[] {
  if (key === undefined || key === '') return [];
  const forms = new Set([key, JSON.stringify(key).slice(1, -1), encodeURIComponent(key)]);
  return [...forms].sort((x, y) => y.length - x.length);
}

/** `Authorization: Bearer x`, `"x-api-key": "x"`, `api_key=x`, …: the name, the separator, an optional scheme, the value. */
const HEADER =
  /\b((?:proxy-)?authorization|x-(?:goog-)?api-key|api[-_]?key|x-auth-token)(["']?\s*[:=]\s*["']?)(?:(bearer|basic|token)\s+)?([^\s"',;]+)/gi;

/** `Bearer x` / `Basic x` anywhere; x is masked when it looks like a credential (see below). */
const SCHEME = /\b(bearer|basic)(\s+)([A-Za-z0-9\-_~+/]+(?:\.[A-Za-z0-9\-_~+/]+)*=*)/gi;

/**
 * A token of 8+ characters with a digit, an upper-case letter after the first, or one of `-_.~+/=`:
 * `sk-…`, base64, JWTs; not prose such as "Basic arithmetic".
 */
function looksLikeCredential(token: string): boolean {
  return token.length >= 8 && (/\d/.test(token) || /[A-Z]/.test(token.slice(1)) || /[-_.~+/=]/.test(token));
}

/** `text` with every form of each secret and every Authorization-like value replaced by `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s !== '') out = out.split(s).join(MASK);
  out = out.replace(
    HEADER,
    (_whole, name: string, sep: string, scheme: string | undefined) =>
      `${name}${sep}${scheme === undefined ? '' : `${scheme} `}${MASK}`,
  );
  return out.replace(SCHEME, (whole, scheme: string, space: string, token: string) =>
    looksLikeCredential(token) ? `${scheme}${space}${MASK}` : whole,
  );
}
