// Management API: the host platform's backend, admin token.
import { Type } from '@sinclair/typebox';
import { findDialogByScopes, getDialogFull } from '../../../db/queries/admin.js';
import { AppError } from '../../../domain/errors.js';
import { newId } from '../../../domain/ids.js';
import { checkIdentifier, MAX_OBJECT_TYPE } from '../../../domain/limits.js';
import { data, noContent, route, type RouteDef } from '../route.js';
import { CreateDialogBody, FindDialogBody, IdParams, ParticipantInput, RemoveParticipantParams, ReplaceScopesBody, toScope } from '../schemas.js';
import type { RouteServices } from '../services.js';
import { dialogView, participantView, scopeView } from '../views.js';

const BASE = '/api/v1/management/dialogs';

export function managementRoutes(s: RouteServices): RouteDef[] {
  return [
    route({
      method: 'POST', path: BASE, auth: 'admin', summary: 'Create a dialog', body: CreateDialogBody,
      handler: async ({ body }) => {
        const id = newId();
        const { dialog } = await s.gateway.execute('createDialog', id, {
          ...body, id, participants: body.participants, access_scopes: (body.access_scopes ?? []).map(toScope),
        });
        return data(dialogView(dialog));
      },
    }),
    route({
      method: 'POST', path: `${BASE}/search`, auth: 'admin', summary: 'Find a dialog by object and exact scope set', body: FindDialogBody,
      handler: async ({ body }) => {
        checkIdentifier('object_id', body.object_id);
        checkIdentifier('object_type', body.object_type, MAX_OBJECT_TYPE);
        const d = await findDialogByScopes(s.orm.em.fork(), body.object_type, body.object_id, (body.access_scopes ?? []).map(toScope));
        return data(d ? dialogView(d) : null);
      },
    }),
    route({
      method: 'GET', path: `${BASE}/:id`, auth: 'admin', summary: 'Get a dialog with participants and scopes', params: IdParams,
      handler: async ({ params }) => {
        const full = await getDialogFull(s.orm.em.fork(), params.id.toLowerCase());
        if (!full) throw new AppError(404, 'NOT_FOUND', 'Dialog not found');
        const c = Number(full.dialog.user_msg_count);
        return data({
          ...dialogView(full.dialog),
          participants: full.participants.map((p) => participantView(p, Number(p.unread_count) + c - Number(p.read_mark))),
          access_scopes: full.scopes.map(scopeView),
        });
      },
    }),
    route({
      method: 'DELETE', path: `${BASE}/:id`, auth: 'admin', summary: 'Delete a dialog (idempotent)', params: IdParams, successStatus: 204,
      handler: async ({ params }) => {
        const id = params.id.toLowerCase();
        await s.gateway.execute('deleteDialog', id, { dialog_id: id });
        return noContent();
      },
    }),
    route({
      method: 'POST', path: `${BASE}/:id/participants`, auth: 'admin', summary: 'Add a participant', params: IdParams, body: ParticipantInput,
      successStatus: 201,
      handler: async ({ params, body }) => {
        const id = params.id.toLowerCase();
        await s.gateway.execute('addParticipant', id, { ...body, dialog_id: id });
        return { status: 201 };
      },
    }),
    route({
      method: 'DELETE', path: `${BASE}/:id/participants/:user_id`, auth: 'admin', summary: 'Remove a participant',
      params: RemoveParticipantParams, successStatus: 204,
      handler: async ({ params }) => {
        const id = params.id.toLowerCase();
        await s.gateway.execute('removeParticipant', id, { dialog_id: id, user_id: params.user_id });
        return noContent();
      },
    }),
    route({
      method: 'PUT', path: `${BASE}/:id/access-scopes`, auth: 'admin', summary: 'Replace access scopes', params: IdParams,
      body: ReplaceScopesBody, response: Type.Object({ data: Type.Array(Type.Unknown()) }),
      handler: async ({ params, body }) => {
        const id = params.id.toLowerCase();
        const { scopes } = await s.gateway.execute('replaceScopes', id, { dialog_id: id, access_scopes: body.access_scopes.map(toScope) });
        return data(scopes.map(scopeView));
      },
    }),
  ];
}
