// Who may see what. Pure decisions over facts the read side has already loaded.

export interface AccessFacts {
  exists: boolean;
  member: boolean;
  /** The caller sent a scope and it reaches the dialog. */
  scopeMatch: boolean;
}

/** Get dialog, list participants: a participant, or reachable by scope. */
export const canView = (f: AccessFacts): boolean => f.exists && (f.member || f.scopeMatch);
/** The potential-participant flag shown to clients. */
export const canJoin = (f: AccessFacts): boolean => f.exists && !f.member && f.scopeMatch;

/**
 * What a caller sees of another participant's row: settings are the owner's business (B17),
 * and read pointers and contact details are for fellow participants only.
 */
export interface ParticipantVisibility {
  contact: boolean;
  readPointer: boolean;
  settings: boolean;
}
export function participantVisibility(callerIsMember: boolean, isCallerRow: boolean): ParticipantVisibility {
  return { contact: callerIsMember, readPointer: callerIsMember, settings: isCallerRow };
}

/** Page size rules for message lists: negative is an error, large values are clamped. */
export const MAX_MESSAGE_PAGE = 200;
export const MAX_DIALOG_PAGE = 100;
export const MAX_OBJECT_LIST = 500;
