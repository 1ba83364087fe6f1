// Messages between bench.ts and its client processes (Node IPC channel).

export interface DialogSpec {
  id: string;
  members: string[];
}

export type ClientRequest =
  | { cmd: 'connect'; users: string[]; concurrency: number; timeoutMs: number }
  | { cmd: 'run'; spec: RunSpec }
  | { cmd: 'disconnect' }
  | { cmd: 'exit' };

export interface RunSpec {
  name: string;
  /** Dialogs this process sends into; every member is connected by this process. */
  dialogs: DialogSpec[];
  /** closed: at most `window` sends in flight; open: `rate` sends/s on a fixed schedule. */
  mode: 'closed' | 'open';
  window?: number;
  rate?: number;
  warmupMs: number;
  durationMs: number;
  /** A send not completed (ack + delivery) after this long counts as a timeout. */
  timeoutMs: number;
  /** Padding so frames have a realistic size. */
  contentBytes: number;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  errors: Record<string, number>;
  ms: number;
  cpuUs: number;
}

export interface RunResult {
  name: string;
  windowMs: number;
  /** Sends issued inside the window. */
  sent: number;
  /** Acks received inside the window. */
  acked: number;
  /** message.new frames received by any socket of this process inside the window. */
  deliveries: number;
  /** send → ack, ms, for sends issued inside the window. */
  ackLat: number[];
  /** send → message.new at the designated receiving participant, ms. */
  delLat: number[];
  errors: Record<string, number>;
  timeouts: number;
  /** Open loop only: scheduled sends skipped because too many were outstanding. */
  skipped: number;
  /** Sockets closed by the server during the run, by close code. */
  closes: Record<string, number>;
  cpuUs: { user: number; system: number };
}

export type ClientReply =
  | { ok: true; cmd: 'connect'; result: ConnectResult }
  | { ok: true; cmd: 'run'; result: RunResult }
  | { ok: true; cmd: 'disconnect' | 'exit' }
  | { ok: false; cmd: string; error: string };
