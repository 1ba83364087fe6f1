// System message documents: compact JSON with keys in alphabetical order at every level,
// so that what we store and broadcast is byte-identical to the original's.

function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${sortedJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export interface NamedCompany {
  name: string;
  company?: string | null;
}

export function chatCreatedDocument(participants: NamedCompany[]): string {
  return sortedJson({
    event: 'chat_created',
    participants: participants.map((p) => ({ name: p.name, company: p.company ?? undefined })),
  });
}

export function participantJoinedDocument(name: string, company: string): string {
  return sortedJson({ event: 'participant_joined', name, company });
}

export const LEFT_FALLBACK_NAME = 'Участник';
export function participantLeftDocument(name: string | null | undefined): string {
  return sortedJson({ event: 'participant_left', name: name ?? LEFT_FALLBACK_NAME });
}
