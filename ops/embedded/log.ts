/**
 * The logger the embedded-dependency helpers need. Declared here rather than
 * imported from services/observability so ops/embedded stays free of service code;
 * the services' Logger satisfies it structurally.
 */
export interface EmbeddedLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}
