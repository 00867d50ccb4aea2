/**
 * Output formats the ClickHouse-compatible endpoint offers: output-only
 * formats the embedded engine renders itself (so what a client parses is
 * ClickHouse's own output), chosen by a trailing FORMAT clause or the
 * `default_format` parameter. Nothing here reads or writes files: the
 * format only shapes the answer.
 */
const FORMATS: Record<string, string> = {
  JSON: 'application/json; charset=UTF-8',
  JSONStrings: 'application/json; charset=UTF-8',
  JSONCompact: 'application/json; charset=UTF-8',
  JSONCompactStrings: 'application/json; charset=UTF-8',
  JSONEachRow: 'application/x-ndjson; charset=UTF-8',
  JSONStringsEachRow: 'application/x-ndjson; charset=UTF-8',
  JSONCompactEachRow: 'application/x-ndjson; charset=UTF-8',
  JSONCompactStringsEachRow: 'application/x-ndjson; charset=UTF-8',
  JSONCompactEachRowWithNames: 'application/x-ndjson; charset=UTF-8',
  JSONCompactEachRowWithNamesAndTypes: 'application/x-ndjson; charset=UTF-8',
  JSONObjectEachRow: 'application/json; charset=UTF-8',
  TabSeparated: 'text/tab-separated-values; charset=UTF-8',
  TSV: 'text/tab-separated-values; charset=UTF-8',
  TabSeparatedRaw: 'text/tab-separated-values; charset=UTF-8',
  TSVRaw: 'text/tab-separated-values; charset=UTF-8',
  TabSeparatedWithNames: 'text/tab-separated-values; charset=UTF-8',
  TSVWithNames: 'text/tab-separated-values; charset=UTF-8',
  TabSeparatedWithNamesAndTypes: 'text/tab-separated-values; charset=UTF-8',
  TSVWithNamesAndTypes: 'text/tab-separated-values; charset=UTF-8',
  CSV: 'text/csv; charset=UTF-8; header=absent',
  CSVWithNames: 'text/csv; charset=UTF-8; header=present',
  CSVWithNamesAndTypes: 'text/csv; charset=UTF-8; header=present',
  Values: 'text/plain; charset=UTF-8',
  Vertical: 'text/plain; charset=UTF-8',
  Pretty: 'text/plain; charset=UTF-8',
  PrettyCompact: 'text/plain; charset=UTF-8',
  PrettyCompactMonoBlock: 'text/plain; charset=UTF-8',
  PrettySpace: 'text/plain; charset=UTF-8',
  RowBinary: 'application/octet-stream',
  RowBinaryWithNames: 'application/octet-stream',
  RowBinaryWithNamesAndTypes: 'application/octet-stream',
  Native: 'application/octet-stream',
  Parquet: 'application/octet-stream',
  Arrow: 'application/octet-stream',
  ArrowStream: 'application/octet-stream',
};

/** Lower-case name to the engine's spelling: ClickHouse format names are matched case-insensitively here. */
export const OUTPUT_FORMATS: ReadonlyMap<string, string> = new Map(Object.keys(FORMATS).map((name) => [name.toLowerCase(), name]));

/** ClickHouse's default output format over HTTP. */
export const DEFAULT_FORMAT = 'TabSeparated';

export function contentTypeOf(format: string): string {
  return FORMATS[format] ?? 'application/octet-stream';
}
