// The gateway of a process that is edge and worker at once (role `all`): a command whose partition
// this process serves goes straight into the local mailbox; any other goes over NATS.
import { newId } from '../domain/ids.js';
import { unwrapReply, type CommandGateway, type ExecuteOptions } from './gateway.js';
import type { NatsGateway } from './nats-gateway.js';
import type { PartitionOwner } from './partition-owner.js';
import type { CommandName, CommandOf, ResultOf } from './registry.js';

export class LocalFirstGateway implements CommandGateway {
  constructor(private readonly owner: PartitionOwner, private readonly remote: NatsGateway) {}

  async execute<N extends CommandName>(name: N, dialogId: string, cmd: CommandOf<N>, o: ExecuteOptions = {}): Promise<ResultOf<N>> {
    const env = { name, dialogId, requestId: o.requestId ?? newId(), cmd };
    return unwrapReply<ResultOf<N>>(await (this.owner.submit(env) ?? this.remote.request(env)));
  }
}
