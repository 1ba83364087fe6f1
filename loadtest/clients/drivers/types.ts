// The small interface a client process drives, whatever the server under test.

export interface Handlers {
  /** The server acknowledged the send with this correlation id. */
  ack(userId: string, corrId: string): void;
  /** The server refused the send (corrId when known). */
  error(userId: string, corrId: string | undefined, code: string): void;
  /** A message.new reached this user's socket. content is null when the driver skipped decoding. */
  message(userId: string, content: string | null): void;
  /** Asked by drivers that can skip decoding: does this user's socket wait for anything? */
  interested(userId: string): boolean;
  closed(userId: string, code: number): void;
}

export interface DriverConn {
  send(corrId: string, dialogId: string, content: string, clientMsgId: string): void;
  close(): Promise<void>;
}

export interface Driver {
  readonly name: string;
  /** Resolves once the server has greeted the socket (its dialogs are live). */
  connect(userId: string, h: Handlers, timeoutMs: number): Promise<DriverConn>;
}
