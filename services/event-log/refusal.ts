/**
 * The platform cannot start against this NATS deployment for a reason the
 * operator must fix (a node id another process holds, more replicas than
 * servers). The message is one line saying what to change; entry points log
 * it as such, without a stack trace.
 */
export class NatsSetupRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NatsSetupRefused';
  }
}
