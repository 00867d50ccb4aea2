/**
 * Response headers for an attachment download. Uploads are hostile content
 * served from the API's own origin: an SVG or HTML file opened in a browser
 * would run its scripts with the origin's cookies and storage. So every
 * download is `nosniff` (the browser must not guess a more active type) and
 * sandboxed by CSP (no scripts, no same-origin access even if rendered), and
 * only media a browser renders without running anything (raster images,
 * audio, video) may be shown inline; everything else, SVG, HTML, XML,
 * JavaScript, PDF and text included, is a download.
 */

/** Types a browser displays inline without executing content. Exact matches only: no `image/*` (SVG is an image). */
export const INLINE_SAFE_TYPES: ReadonlySet<string> = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/bmp',
  'audio/mpeg',
  'audio/ogg',
  'audio/wav',
  'audio/webm',
  'audio/aac',
  'audio/mp4',
  'audio/flac',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
]);

/** Nothing runs, nothing loads; inline media may only load itself (the browser's media document). */
const CSP_ATTACHMENT = "sandbox; default-src 'none'";
const CSP_INLINE = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'";

export function attachmentHeaders(contentType: string, fileName: string): Record<string, string> {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  const inline = INLINE_SAFE_TYPES.has(type);
  return {
    'content-type': contentType,
    'content-disposition': `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeFileName(fileName)}`,
    'content-security-policy': inline ? CSP_INLINE : CSP_ATTACHMENT,
    'x-content-type-options': 'nosniff',
    'cache-control': 'private, max-age=31536000, immutable',
  };
}

/** RFC 5987 encoding; a name that cannot be encoded (lone surrogates) becomes a neutral one rather than an error. */
function encodeFileName(name: string): string {
  try {
    return encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  } catch {
    return 'attachment';
  }
}
