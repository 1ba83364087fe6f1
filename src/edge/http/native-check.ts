import uWS from 'uWebSockets.js';

/**
 * uWebSockets.js silently falls back to a pure-JS implementation when its native binary cannot
 * load. That fallback lacks most of the API and all of the performance, so refuse to run on it.
 */
export function assertNativeUws(): void {
  const u = uWS as unknown as Record<string, unknown>;
  if (typeof u.SSLApp !== 'function' || typeof u.getParts !== 'function') {
    throw new Error('uWebSockets.js loaded its JavaScript fallback instead of the native binary (glibc ≥ 2.27, x64/arm64 Linux required)');
  }
}
