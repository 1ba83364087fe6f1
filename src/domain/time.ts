// RFC 3339 UTC with the original's fraction rule: none for whole seconds, else groups of three digits.
// Our clock and storage carry milliseconds, so the fraction is either absent or three digits.
// Raw SQL rows carry timestamps as PostgreSQL text ("2026-12-04 20:11:41.8+00"), entities as Date.
export function formatTime(d: Date | string): string {
  const iso = (typeof d === 'string' ? new Date(d) : d).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}
export const formatTimeOrNull = (d: Date | string | null | undefined): string | null => (d ? formatTime(d) : null);
export const toDate = (d: Date | string): Date => (typeof d === 'string' ? new Date(d) : d);
