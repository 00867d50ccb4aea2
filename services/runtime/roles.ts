/**
 * What one Parley process runs (docs/architecture.md, "Roles"). Every process
 * is the same program; PARLEY_ROLES or `parley start --roles` picks the parts.
 *
 * - gateway: HTTP and WebSocket edge, live fan-out, resumes, and command
 *   handling (the write side: appends conditional on the subject's last
 *   sequence, so any number of gateways write safely side by side).
 * - projector: the Postgres read model.
 * - membership: turns membership changes into events on each member's subject.
 * - analytics: the log and delivery timing into ClickHouse.
 * - notifier: notifications for offline members (webhooks, Web Push).
 *
 * The last four own a durable consumer and a checkpoint each, so one instance
 * per deployment is active at a time (a lease in NATS KV,
 * services/leases/single-active.ts); more instances wait as standbys.
 */
export const ROLES = ['gateway', 'projector', 'membership', 'analytics', 'notifier'] as const;
export type Role = (typeof ROLES)[number];

/** Roles that run as one active instance per namespace, the others waiting. */
export const SINGLE_ACTIVE_ROLES: readonly Role[] = ['projector', 'membership', 'analytics', 'notifier'];

/**
 * Names accepted besides the roles themselves. `writer`: command handling
 * lives in every gateway (one NATS hop less per send than a separate writer
 * tier; docs/architecture.md "Roles"), so it names the gateway role.
 * `workers`: every role but the gateway; `all`: everything (`npm start`).
 */
const ALIASES: Record<string, readonly Role[]> = {
  all: ROLES,
  workers: SINGLE_ACTIVE_ROLES,
  writer: ['gateway'],
  'read-model': ['projector'],
};

/** `gateway,projector` to its roles in canonical order; throws a readable message for an unknown name or an empty list. */
export function parseRoles(text: string): Role[] {
  const names = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (names.length === 0) throw new Error(`no roles given (known: ${describeRoleNames()})`);
  const chosen = new Set<Role>();
  for (const name of names) {
    const roles = (ROLES as readonly string[]).includes(name) ? [name as Role] : ALIASES[name];
    if (!roles) throw new Error(`unknown role "${name}" (known: ${describeRoleNames()})`);
    for (const r of roles) chosen.add(r);
  }
  return ROLES.filter((r) => chosen.has(r));
}

export function describeRoleNames(): string {
  return [...ROLES, ...Object.keys(ALIASES)].join(', ');
}
