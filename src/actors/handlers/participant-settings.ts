// Per-user dialog settings. They change only the caller's own row and tell nobody.
import { ParticipantSchema, type Participant } from '../../db/entities.js';
import { notParticipant } from '../../domain/errors.js';
import { output, type CommandHandler } from '../command.js';

export type Setting = 'archive' | 'unarchive' | 'pin' | 'unpin' | 'notifications_on' | 'notifications_off';

const CHANGES: Record<Setting, Partial<Participant>> = {
  archive: { is_archived: true },
  unarchive: { is_archived: false },
  pin: { is_pinned: true },
  unpin: { is_pinned: false },
  notifications_on: { notifications_enabled: true },
  notifications_off: { notifications_enabled: false },
};

export interface SettingCmd {
  dialog_id: string;
  user_id: string;
  setting: Setting;
}

/** One UPDATE; no row means not a participant (also for an unknown dialog, as in the original). */
export const changeSetting: CommandHandler<SettingCmd, void> = async (em, cmd) => {
  const n = await em.nativeUpdate(ParticipantSchema, { dialog_id: cmd.dialog_id, user_id: cmd.user_id }, CHANGES[cmd.setting]);
  if (n === 0) throw notParticipant();
  return output(undefined);
};
