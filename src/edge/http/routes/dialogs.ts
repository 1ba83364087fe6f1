// Chat API: dialogs as one user sees them, membership and per-user settings.
import type { Setting } from '../../../actors/handlers/participant-settings.js';
import { hydrateDialogs, newestAccessibleByObject, objectDialogIds, pageDialogIds, type ListFilter } from '../../../db/queries/dialogs.js';
import { dialogAccess, participantsOf } from '../../../db/queries/messages.js';
import { MAX_DIALOG_PAGE, MAX_OBJECT_LIST, canView } from '../../../domain/access.js';
import { AppError, badRequest, dialogNotFound, forbidden, invalidInput } from '../../../domain/errors.js';
import { data, ok, route, type Caller, type RouteDef } from '../route.js';
import { IdParams, JoinBody, ListDialogsQuery, NotificationsBody, ObjectListQuery, ObjectParams, ReadBody, boolParam } from '../schemas.js';
import type { RouteServices } from '../services.js';
import { chatDialogView, listItemView, participantListView } from '../views.js';

const filterOf = (c: Caller, search: string | undefined, archived: 'true' | 'false' | undefined): ListFilter => ({
  userId: c.userId,
  scope: c.scope,
  // An empty search is treated as absent (the original filtered on it).
  search: search === undefined || search === '' ? null : search,
  archived: boolParam(archived),
});

function branchesOf(type: string | undefined, allowAbsent: boolean): { participating: boolean; available: boolean } {
  if (type === undefined && allowAbsent) return { participating: true, available: true };
  if (type === undefined || type === 'participating') return { participating: true, available: false };
  if (type === 'available') return { participating: false, available: true };
  throw badRequest('Invalid type parameter');
}

const SETTINGS: [string, Setting, string][] = [
  ['archive', 'archive', 'archived'],
  ['unarchive', 'unarchive', 'unarchived'],
  ['pin', 'pin', 'pinned'],
  ['unpin', 'unpin', 'unpinned'],
];

export function dialogRoutes(s: RouteServices): RouteDef[] {
  return [
    route({
      method: 'GET', path: '/api/v1/dialogs', auth: 'user', scope: 'read', summary: 'List dialogs (participating or available)',
      query: ListDialogsQuery,
      handler: async ({ caller, query }) => {
        const { participating } = branchesOf(query.type, false);
        if (!participating && !caller.scope) throw badRequest('X-Scope-Config header required for available dialogs');
        if ((query.limit ?? 0) < 0) throw invalidInput('limit must not be negative');
        const limit = Math.min(query.limit ?? 50, MAX_DIALOG_PAGE);
        const offset = Math.max(query.offset ?? 0, 0);
        const em = s.orm.em.fork();
        const f = filterOf(caller, query.search, participating ? query.archived : undefined);
        const ids = await pageDialogIds(em, participating ? 'participating' : 'available', f, limit, offset);
        const rows = await hydrateDialogs(em, ids, caller.userId, caller.scope);
        return data(rows.map((r) => listItemView(r, { canJoin: !participating, perUser: true })));
      },
    }),
    route({
      method: 'GET', path: '/api/v1/dialogs/:id', auth: 'user', scope: 'read', summary: 'Get a dialog', params: IdParams,
      handler: async ({ caller, params }) => {
        const [r] = await hydrateDialogs(s.orm.em.fork(), [params.id.toLowerCase()], caller.userId, caller.scope);
        if (!r) throw dialogNotFound();
        if (!canView({ exists: true, member: r.me !== null, scopeMatch: r.scope_match })) {
          throw new AppError(403, 'SCOPE_MISMATCH', 'No access to this dialog');
        }
        return data(chatDialogView(r));
      },
    }),
    route({
      method: 'GET', path: '/api/v1/dialogs/by-object/:object_type/:object_id', auth: 'user', scope: 'read',
      summary: 'Newest accessible dialog of a business object', params: ObjectParams,
      handler: async ({ caller, params }) => {
        const em = s.orm.em.fork();
        const id = await newestAccessibleByObject(em, params.object_type, params.object_id, filterOf(caller, undefined, undefined));
        if (!id) return data(null);
        const [r] = await hydrateDialogs(em, [id], caller.userId, caller.scope);
        return data(r ? listItemView(r, { canJoin: r.me === null, perUser: false }) : null);
      },
    }),
    route({
      method: 'GET', path: '/api/v1/dialogs/by-object/:object_type/:object_id/list', auth: 'user', scope: 'read',
      summary: 'All accessible dialogs of a business object', params: ObjectParams, query: ObjectListQuery,
      handler: async ({ caller, params, query }) => {
        const branches = branchesOf(query.type, true);
        const em = s.orm.em.fork();
        const f = filterOf(caller, query.search, query.archived);
        const ids = await objectDialogIds(em, params.object_type, params.object_id, branches, f, MAX_OBJECT_LIST);
        const rows = await hydrateDialogs(em, ids, caller.userId, caller.scope);
        return data(rows.map((r) => listItemView(r, { canJoin: r.me === null, perUser: true })));
      },
    }),
    route({
      method: 'POST', path: '/api/v1/dialogs/:id/join', auth: 'user', scope: 'read', summary: 'Join a dialog through scope matching',
      params: IdParams, body: JoinBody,
      handler: async ({ caller, params, body }) => {
        if (!caller.scope) throw badRequest('X-Scope-Config header required');
        const id = params.id.toLowerCase();
        const r = await s.gateway.execute('join', id, { ...body, dialog_id: id, user_id: caller.userId, scope: caller.scope });
        return ok({ dialog_id: r.dialog_id, status: 'joined' });
      },
    }),
    route({
      method: 'POST', path: '/api/v1/dialogs/:id/leave', auth: 'user', summary: 'Leave a dialog', params: IdParams,
      handler: async ({ caller, params }) => {
        const id = params.id.toLowerCase();
        await s.gateway.execute('leave', id, { dialog_id: id, user_id: caller.userId });
        return ok({ status: 'left' });
      },
    }),
    ...SETTINGS.map(([path, setting, status]) =>
      route({
        method: 'POST', path: `/api/v1/dialogs/:id/${path}`, auth: 'user', summary: `${path[0].toUpperCase()}${path.slice(1)} the dialog for the caller`,
        params: IdParams,
        handler: async ({ caller, params }) => {
          const id = params.id.toLowerCase();
          await s.gateway.execute('changeSetting', id, { dialog_id: id, user_id: caller.userId, setting });
          return ok({ status });
        },
      }),
    ),
    route({
      method: 'POST', path: '/api/v1/dialogs/:id/notifications', auth: 'user', summary: 'Turn notifications on or off',
      params: IdParams, body: NotificationsBody,
      handler: async ({ caller, params, body }) => {
        const setting = body.enabled ? 'notifications_on' : 'notifications_off';
        const id = params.id.toLowerCase();
          await s.gateway.execute('changeSetting', id, { dialog_id: id, user_id: caller.userId, setting });
        return ok({ status: body.enabled ? 'enabled' : 'disabled' });
      },
    }),
    route({
      method: 'POST', path: '/api/v1/dialogs/:id/read', auth: 'user', summary: 'Mark messages as read', params: IdParams, body: ReadBody,
      handler: async ({ caller, params, body }) => {
        const id = params.id.toLowerCase();
        await s.gateway.execute('markRead', id, { dialog_id: id, user_id: caller.userId, message_id: body.last_read_message_id.toLowerCase() });
        return ok({ success: true });
      },
    }),
    route({
      method: 'GET', path: '/api/v1/dialogs/:id/participants', auth: 'user', scope: 'read', summary: 'List participants', params: IdParams,
      handler: async ({ caller, params }) => {
        const em = s.orm.em.fork();
        const id = params.id.toLowerCase();
        const facts = await dialogAccess(em, id, caller.userId, caller.scope);
        if (!canView(facts)) throw forbidden('Not a participant');
        const rows = await participantsOf(em, id);
        const online = await s.online(rows.map((r) => r.user_id));
        return data(participantListView(rows, caller.userId, facts.member, online));
      },
    }),
  ];
}
