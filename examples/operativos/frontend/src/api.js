/**
 * Fetches an API path and returns the parsed JSON body.
 * Throws an Error naming the path and HTTP status when the response is not 2xx.
 */
export async function fetchJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    throw new Error(`GET ${path} failed with HTTP ${response.status}`);
  }
  return response.json();
}
