// Read side of the Management API.
import type { Em } from '../orm.js';
import { AccessScopeSchema, DialogSchema, ParticipantSchema, type AccessScope, type Dialog, type Participant } from '../entities.js';
import { scopeSetsEqual, type ScopeLevels } from '../../domain/scope.js';
import { query } from './sql.js';

export async function getDialogFull(em: Em, id: string): Promise<{ dialog: Dialog; participants: Participant[]; scopes: AccessScope[] } | null> {
  const dialog = await em.findOne(DialogSchema, { id });
  if (!dialog) return null;
  const participants = await em.find(ParticipantSchema, { dialog_id: id }, { orderBy: { joined_at: 'asc', user_id: 'asc' } });
  const scopes = await em.find(AccessScopeSchema, { dialog_id: id }, { orderBy: { created_at: 'asc', id: 'asc' } });
  return { dialog, participants, scopes };
}

/** Newest dialog of the object whose scope set equals the requested one; one statement. */
export async function findDialogByScopes(em: Em, objectType: string, objectId: string, wanted: ScopeLevels[]): Promise<Dialog | null> {
  const rows = await query(em, `
    SELECT d.id, coalesce(json_agg(json_build_object('scope_level0', s.scope_level0, 'scope_level1', s.scope_level1,
      'scope_level2', s.scope_level2)) FILTER (WHERE s.id IS NOT NULL), '[]') AS scopes
    FROM dialogs d LEFT JOIN dialog_access_scopes s ON s.dialog_id = d.id
    WHERE d.object_type = ? AND d.object_id = ?
    GROUP BY d.id ORDER BY max(d.created_at) DESC, d.id DESC`, [objectType, objectId]);
  const hit = rows.find((r) => scopeSetsEqual(r.scopes as ScopeLevels[], wanted));
  if (!hit) return null;
  return em.findOne(DialogSchema, { id: hit.id });
}
