/**
 * The embedded stack cannot start for a reason the operator must fix (a
 * fallback root others can write, a data dir in use by another
 * run). Its message is one line that says what to do; callers log it as
 * such, without a stack trace.
 */
export class StartRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartRefused';
  }
}
