import { z } from 'zod';
import * as analytics from '../../contracts/analytics.js';
import * as commands from '../../contracts/commands.js';
import * as frames from '../../contracts/frames.js';
import * as http from '../../contracts/http.js';
import * as notifications from '../../contracts/notifications.js';

/**
 * Every HTTP route the gateway serves, with the contract schemas of its query,
 * body and answers: the source of openapi.json. test/contracts-published.e2e.test.ts
 * compares this list with the routes a running gateway registers, so a route
 * added to the gateway without a line here fails the tests.
 */
export interface RouteSpec {
  method: 'get' | 'post';
  /** OpenAPI form: `{id}` for the router's `:id`. */
  path: string;
  operationId: string;
  summary: string;
  auth: 'bearer' | 'none' | 'admin';
  params?: Record<string, object>;
  query?: z.ZodType;
  /** A schema (JSON), `binary` (raw bytes of any type), or a media type (text). */
  body?: z.ZodType | 'binary';
  responses: Record<number, z.ZodType | 'binary' | string>;
  responseNotes?: Record<number, string>;
}

const seq = { type: 'integer', minimum: 1 };
const conversationId = { $ref: '#/$defs/ConversationId' };
const AfterQuery = z.strictObject({ after: z.coerce.number().int().nonnegative().optional() });
const reports = z.union([
  analytics.MessagesReport,
  analytics.ActiveUsersReport,
  analytics.LatencyReport,
  analytics.TopConversationsReport,
  analytics.RetentionReport,
  analytics.ConversationKindsReport,
  analytics.BusiestHoursReport,
]);

export const HTTP_ROUTES: RouteSpec[] = [
  {
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    summary: 'Health of the gateway and every dependency (200 when all are ok, 503 when any is down or degraded).',
    auth: 'none',
    responses: { 200: http.HealthResponse, 503: http.HealthResponse },
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    summary:
      'Readiness for a load balancer: 200 when the dependencies of the roles active in this process are up (a gateway: NATS and Postgres, not ClickHouse), 503 otherwise; the body of /healthz.',
    auth: 'none',
    responses: { 200: http.HealthResponse, 503: http.HealthResponse },
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics of every service in this process.',
    auth: 'none',
    responses: { 200: 'text/plain' },
  },
  {
    method: 'post',
    path: '/v1/dev/token',
    operationId: 'devToken',
    summary: 'A token for any user id (development only: dev tokens on).',
    auth: 'none',
    body: http.DevTokenRequest,
    responses: { 200: http.TokenResponse },
  },
  {
    method: 'post',
    path: '/v1/conversations',
    operationId: 'createConversation',
    summary: 'Open a 1:1 (returned if it exists), or create a group or channel.',
    auth: 'bearer',
    body: http.CreateConversationRequest,
    responses: { 201: http.CreateConversationResponse, 200: http.CreateConversationResponse },
    responseNotes: { 200: 'The 1:1 already existed (`created: false`).' },
  },
  {
    method: 'post',
    path: '/v1/commands',
    operationId: 'command',
    summary: 'Any command of the WebSocket protocol, without `id`.',
    auth: 'bearer',
    body: commands.Command,
    responses: { 200: z.union([frames.CommandResult, z.strictObject({})]) },
    responseNotes: { 200: "The command's result (`{}` for commands without one)." },
  },
  {
    method: 'get',
    path: '/v1/conversations',
    operationId: 'listConversations',
    summary: "The user's conversations: pinned first, then most recently active.",
    auth: 'bearer',
    query: http.ConversationListQuery,
    responses: { 200: http.ConversationListResponse },
  },
  {
    method: 'get',
    path: '/v1/conversations/{id}/messages',
    operationId: 'history',
    summary: "A conversation's messages, newest first, paginated (members only).",
    auth: 'bearer',
    params: { id: conversationId },
    query: http.HistoryQuery,
    responses: { 200: http.HistoryResponse },
  },
  {
    method: 'get',
    path: '/v1/conversations/{id}/messages/{seq}/versions',
    operationId: 'messageVersions',
    summary: 'Every version of an edited message, oldest first.',
    auth: 'bearer',
    params: { id: conversationId, seq },
    responses: { 200: http.VersionsResponse },
  },
  {
    method: 'get',
    path: '/v1/conversations/{id}/messages/{seq}/receipts',
    operationId: 'receipts',
    summary: '"Seen by" and "delivered to" for a message (not in channels).',
    auth: 'bearer',
    params: { id: conversationId, seq },
    responses: { 200: http.ReceiptsResponse },
  },
  {
    method: 'get',
    path: '/v1/unread',
    operationId: 'unread',
    summary: 'Unread and mention totals across conversations.',
    auth: 'bearer',
    query: AfterQuery,
    responses: { 200: http.UnreadResponse },
  },
  {
    method: 'get',
    path: '/v1/search',
    operationId: 'search',
    summary: 'Messages the user may read, best match first within recency.',
    auth: 'bearer',
    query: http.SearchQuery,
    responses: { 200: http.SearchResponse },
  },
  {
    method: 'get',
    path: '/v1/presence',
    operationId: 'presence',
    summary: 'Online status of users who share a conversation with the caller.',
    auth: 'bearer',
    query: http.PresenceQuery,
    responses: { 200: http.PresenceResponse },
  },
  {
    method: 'post',
    path: '/v1/attachments',
    operationId: 'upload',
    summary: 'Upload an attachment: raw bytes as the body, its type as Content-Type.',
    auth: 'bearer',
    query: http.UploadQuery,
    body: 'binary',
    responses: { 201: http.UploadResponse, 200: http.UploadResponse },
    responseNotes: { 200: 'The same bytes were uploaded before (`deduplicated: true`).' },
  },
  {
    method: 'get',
    path: '/v1/attachments/{id}',
    operationId: 'download',
    summary: 'Download an attachment (its uploader, and members of conversations referencing it).',
    auth: 'bearer',
    params: { id: { $ref: '#/$defs/AttachmentId' } },
    responses: { 200: 'binary' },
  },
  {
    method: 'post',
    path: '/v1/notifications/channels',
    operationId: 'registerNotificationChannel',
    summary: 'Register a webhook or Web Push subscription for notifications.',
    auth: 'bearer',
    body: notifications.RegisterChannelRequest,
    responses: { 201: notifications.RegisterChannelResponse, 200: notifications.RegisterChannelResponse },
  },
  {
    method: 'get',
    path: '/v1/notifications/channels',
    operationId: 'listNotificationChannels',
    summary: "The user's notification channels.",
    auth: 'bearer',
    responses: { 200: notifications.ChannelListResponse },
  },
  {
    method: 'post',
    path: '/v1/notifications/channels/{id}/remove',
    operationId: 'removeNotificationChannel',
    summary: 'Remove a notification channel.',
    auth: 'bearer',
    params: { id: { type: 'string' } },
    responses: { 200: notifications.RemoveChannelResponse },
  },
  {
    method: 'get',
    path: '/v1/notifications/vapid-public-key',
    operationId: 'vapidPublicKey',
    summary: "The server's VAPID public key, for Web Push subscriptions.",
    auth: 'bearer',
    responses: { 200: notifications.VapidPublicKeyResponse },
  },
  {
    method: 'get',
    path: '/v1/notifications',
    operationId: 'listNotifications',
    summary: "The user's notifications and their delivery state.",
    auth: 'bearer',
    query: notifications.NotificationListQuery,
    responses: { 200: notifications.NotificationListResponse },
  },
  {
    method: 'get',
    path: '/v1/analytics/reports/{name}',
    operationId: 'analyticsReport',
    summary: 'An analytics report; its query parameters depend on the report (docs/analytics.md).',
    auth: 'admin',
    params: { name: { type: 'string', enum: analytics.ReportName.options } },
    responses: { 200: reports },
  },
  {
    method: 'post',
    path: '/v1/analytics/sql',
    operationId: 'analyticsSql',
    summary: 'One read-only SQL statement on the analytics tables.',
    auth: 'admin',
    body: analytics.SqlRequest,
    responses: { 200: analytics.SqlResponse },
  },
  { method: 'get', path: '/v1/openapi.json', operationId: 'openapi', summary: 'This document.', auth: 'none', responses: { 200: 'application/json' } },
  { method: 'get', path: '/', operationId: 'webClient', summary: 'The web client (docs/web.md).', auth: 'none', responses: { 200: 'text/html' } },
  {
    method: 'get',
    path: '/index.html',
    operationId: 'webClientIndex',
    summary: 'The web client, by its file name.',
    auth: 'none',
    responses: { 200: 'text/html' },
  },
  {
    method: 'get',
    path: '/app.js',
    operationId: 'webClientScript',
    summary: "The web client's script (`?v=<hash>`: cached for good).",
    auth: 'none',
    responses: { 200: 'text/javascript' },
  },
  {
    method: 'get',
    path: '/app.css',
    operationId: 'webClientStyles',
    summary: "The web client's styles (`?v=<hash>`: cached for good).",
    auth: 'none',
    responses: { 200: 'text/css' },
  },
];

/** The router's form of a route (`get /v1/conversations/:id/messages`), for comparing with a running gateway. */
export function routerKey(route: Pick<RouteSpec, 'method' | 'path'>): string {
  return `${route.method} ${route.path.replace(/\{(\w+)\}/g, ':$1')}`;
}
