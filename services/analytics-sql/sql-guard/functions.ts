/**
 * The functions analysts' SQL may call: an explicit allow-list of ordinary
 * scalar, aggregate and window functions, written out by hand (not derived
 * from the engine's catalog, so a new ClickHouse release adds nothing by
 * itself). Everything else is refused: functions that read files or reach
 * other systems (file, url, s3, ai*), look at the server (hostName,
 * getSetting, getServerSetting, currentUser, uptime, showCertificate), read
 * dictionaries or other tables by name (dictGet*, joinGet,
 * hasColumnInTable), call other functions named in a string (arrayReduce,
 * initializeAggregation), format with server-side schema files (formatRow),
 * or only waste time (sleep, sleepEachRow).
 *
 * Names are compared in lower case: ClickHouse resolves a name exactly, then
 * case-insensitively, and the catalog has no two functions whose lower-case
 * names collide (test/analytics-sql-guard.int.test.ts checks that against
 * the engine).
 */

const SCALAR = `
  plus minus multiply divide intDiv intDivOrZero intDivOrNull modulo moduloOrZero moduloOrNull mod positiveModulo pmod negate abs gcd lcm
  divideOrNull multiplyDecimal divideDecimal max2 min2 midpoint sqr isFinite isInfinite isNaN ifNotFinite
  equals notEquals less greater lessOrEquals greaterOrEquals isDistinctFrom isNotDistinctFrom
  in notIn nullIn notNullIn globalIn globalNotIn
  and or not xor if multiIf caseWithExpression caseWithoutExpression greatest least clamp
  exp exp2 exp10 log ln log2 log10 log1p sqrt cbrt pow power sign sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh
  pi e erf erfc lgamma tgamma hypot degrees radians sigmoid widthBucket factorial
  round roundBankers floor ceil ceiling trunc truncate roundDown roundToExp2 roundDuration roundAge
  isNull isNotNull isZeroOrNull coalesce ifNull nullIf assumeNotNull toNullable
  bitAnd bitOr bitXor bitNot bitShiftLeft bitShiftRight bitCount bitTest bitTestAll bitTestAny bitRotateLeft bitRotateRight
  length empty notEmpty lengthUTF8 char_length character_length octet_length lower upper lcase ucase lowerUTF8 upperUTF8 initcap initcapUTF8
  concat concatWithSeparator concat_ws substring substr mid substringUTF8 left right leftUTF8 rightUTF8 leftPad rightPad lpad rpad leftPadUTF8 rightPadUTF8
  trim trimBoth trimLeft trimRight ltrim rtrim reverse reverseUTF8 repeat space format printf
  startsWith endsWith startsWithUTF8 endsWithUTF8 startsWithCaseInsensitive endsWithCaseInsensitive
  position locate positionCaseInsensitive positionUTF8 positionCaseInsensitiveUTF8 instr
  like notLike ilike notILike match extract extractAll extractGroups extractAllGroupsHorizontal extractAllGroupsVertical regexpExtract
  countSubstrings countSubstringsCaseInsensitive countMatches countMatchesCaseInsensitive
  multiSearchAny multiSearchFirstIndex multiSearchFirstPosition multiSearchAllPositions multiMatchAny multiMatchAnyIndex
  hasToken hasTokenOrNull hasTokenCaseInsensitive
  replace replaceAll replaceOne replaceRegexpAll replaceRegexpOne regexpQuoteMeta translate translateUTF8
  splitByChar splitByString splitByRegexp splitByWhitespace splitByNonAlpha alphaTokens arrayStringConcat ngrams tokens
  isValidUTF8 toValidUTF8 isValidASCII normalizeUTF8NFC normalizeUTF8NFD normalizeUTF8NFKC normalizeUTF8NFKD
  editDistance levenshteinDistance editDistanceUTF8 damerauLevenshteinDistance jaroSimilarity jaroWinklerSimilarity
  stringJaccardIndex stringJaccardIndexUTF8 ngramDistance ngramSearch soundex firstLine
  hex unhex bin unbin base64Encode base64Decode tryBase64Decode base64URLEncode base64URLDecode tryBase64URLDecode
  cityHash64 sipHash64 sipHash128 xxHash32 xxHash64 xxh3 murmurHash2_32 murmurHash2_64 murmurHash3_32 murmurHash3_64 murmurHash3_128
  farmHash64 farmFingerprint64 metroHash64 intHash32 intHash64 halfMD5 MD5 SHA1 SHA224 SHA256 SHA512 CRC32 javaHash wyHash64
  generateUUIDv4 generateUUIDv7 toUUID toUUIDOrNull toUUIDOrZero UUIDStringToNum UUIDNumToString
  rand rand32 rand64 randCanonical randConstant randUniform randNormal randomString randomPrintableASCII
  toString toFixedString toStringCutToZero toBool toLowCardinality toTypeName toColumnTypeName
  toInt8 toInt16 toInt32 toInt64 toInt128 toInt256 toUInt8 toUInt16 toUInt32 toUInt64 toUInt128 toUInt256 toFloat32 toFloat64
  toInt8OrZero toInt16OrZero toInt32OrZero toInt64OrZero toUInt8OrZero toUInt16OrZero toUInt32OrZero toUInt64OrZero toFloat32OrZero toFloat64OrZero
  toInt8OrNull toInt16OrNull toInt32OrNull toInt64OrNull toUInt8OrNull toUInt16OrNull toUInt32OrNull toUInt64OrNull toFloat32OrNull toFloat64OrNull
  toInt32OrDefault toInt64OrDefault toUInt32OrDefault toUInt64OrDefault toFloat64OrDefault
  toDecimal32 toDecimal64 toDecimal128 toDecimal256 toDecimal32OrNull toDecimal64OrNull toDecimal128OrNull toDecimalString
  CAST _CAST accurateCast accurateCastOrNull accurateCastOrDefault reinterpretAsString
  toDate toDate32 toDateTime toDateTime32 toDateTime64 toDateOrNull toDateOrZero toDateTimeOrNull toDateTimeOrZero toDateTime64OrNull toDateTime64OrZero
  toDateOrDefault toDateTimeOrDefault toDateTime64OrDefault
  parseDateTime parseDateTimeOrNull parseDateTimeOrZero parseDateTime64 parseDateTime64OrNull
  parseDateTimeBestEffort parseDateTimeBestEffortOrNull parseDateTimeBestEffortOrZero parseDateTime64BestEffort parseDateTime64BestEffortOrNull
  parseDateTimeBestEffortUS parseDateTimeInJodaSyntax parseDateTimeInJodaSyntaxOrNull
  fromUnixTimestamp FROM_UNIXTIME fromUnixTimestamp64Milli fromUnixTimestamp64Micro fromUnixTimestamp64Second
  toUnixTimestamp toUnixTimestamp64Milli toUnixTimestamp64Micro toUnixTimestamp64Second
  now now64 today yesterday timezone timeZone toTimezone toTimeZone timezoneOf timeZoneOf timezoneOffset timeZoneOffset
  toYear toQuarter toMonth toISOYear toISOWeek toWeek toYearWeek toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond toMillisecond
  YEAR QUARTER MONTH DAY DAYOFMONTH DAYOFWEEK DAYOFYEAR HOUR MINUTE SECOND week yearweek
  toStartOfYear toStartOfISOYear toStartOfQuarter toStartOfMonth toStartOfWeek toMonday toStartOfDay toStartOfHour
  toStartOfFifteenMinutes toStartOfTenMinutes toStartOfFiveMinutes toStartOfFiveMinute toStartOfMinute toStartOfSecond toStartOfMillisecond
  toStartOfInterval time_bucket date_bin toLastDayOfMonth LAST_DAY toLastDayOfWeek toDaysInMonth
  toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss YYYYMMDDToDate YYYYMMDDhhmmssToDateTime
  toRelativeYearNum toRelativeQuarterNum toRelativeMonthNum toRelativeWeekNum toRelativeDayNum toRelativeHourNum toRelativeMinuteNum toRelativeSecondNum
  dateDiff date_diff DATE_DIFF timestampDiff timestamp_diff TIMESTAMP_DIFF age dateTrunc date_trunc DATE_TRUNC dateName monthName
  addYears addQuarters addMonths addWeeks addDays addHours addMinutes addSeconds addMilliseconds addInterval addTupleOfIntervals
  subtractYears subtractQuarters subtractMonths subtractWeeks subtractDays subtractHours subtractMinutes subtractSeconds subtractMilliseconds subtractInterval
  toIntervalYear toIntervalQuarter toIntervalMonth toIntervalWeek toIntervalDay toIntervalHour toIntervalMinute toIntervalSecond toIntervalMillisecond
  makeDate makeDate32 makeDateTime makeDateTime64 formatDateTime DATE_FORMAT formatDateTimeInJodaSyntax timeSlot timeSlots
  formatReadableSize formatReadableQuantity formatReadableTimeDelta formatReadableDecimalSize
  array arrayElement has hasAll hasAny hasSubstr indexOf countEqual range arrayConcat arraySlice arrayPushBack arrayPushFront arrayPopBack arrayPopFront
  arrayResize arrayDistinct arrayUniq arrayEnumerate arrayEnumerateUniq arrayEnumerateDense arrayIntersect arrayUnion arrayExcept arrayReverse arrayFlatten flatten arrayCompact arrayZip
  arrayMap arrayFilter arrayExists arrayAll arrayCount arraySum arrayAvg arrayMin arrayMax arrayProduct arrayFirst arrayLast arrayFirstIndex arrayLastIndex
  arrayFirstOrNull arrayLastOrNull arrayCumSum arrayCumSumNonNegative arrayDifference arraySort arrayReverseSort arrayPartialSort arraySplit arrayReverseSplit arrayFill arrayReverseFill
  arrayFold arrayJoin arrayWithConstant arrayRotateLeft arrayRotateRight arrayShiftLeft arrayShiftRight arrayStringConcat arrayTopK arrayBottomK
  emptyArrayString emptyArrayUInt64 emptyArrayInt64 emptyArrayFloat64 arrayRemove array_remove
  tuple tupleElement untuple tupleNames tuplePlus tupleMinus tupleMultiply tupleDivide flattenTuple dotProduct
  map mapKeys mapValues mapContains mapContainsKey mapFromArrays mapFilter mapApply mapAdd mapSubtract mapUpdate mapConcat mapSort
  JSONHas JSONLength JSONType JSONExtract JSONExtractString JSONExtractInt JSONExtractUInt JSONExtractFloat JSONExtractBool JSONExtractRaw
  JSONExtractKeys JSONExtractArrayRaw JSONExtractKeysAndValues JSON_VALUE JSON_QUERY JSON_EXISTS isValidJSON toJSONString
  simpleJSONHas simpleJSONExtractString simpleJSONExtractInt simpleJSONExtractUInt simpleJSONExtractFloat simpleJSONExtractBool simpleJSONExtractRaw
  lambda exists identity runningDifference runningDifferenceStartingWithFirstValue transform bar
`;

const AGGREGATE = `
  count sum avg min max any anyLast anyHeavy first_value last_value any_value argMin argMax min_by max_by
  uniq uniqExact uniqCombined uniqCombined64 uniqHLL12 uniqUpTo countDistinct
  groupArray groupArrayInsertAt groupArrayMovingSum groupArrayMovingAvg groupArraySample groupArraySorted groupArrayLast groupUniqArray
  groupArrayIntersect groupConcat group_concat array_agg groupBitAnd groupBitOr groupBitXor
  sumWithOverflow sumKahan sumCount avgWeighted topK topKWeighted
  quantile quantiles quantileExact quantilesExact quantileExactLow quantileExactHigh quantileExactWeighted quantilesExactWeighted
  quantileTiming quantilesTiming quantileTimingWeighted quantilesTimingWeighted quantileTDigest quantilesTDigest quantileTDigestWeighted
  quantileDeterministic quantilesDeterministic quantileBFloat16 quantilesBFloat16 quantileDD quantilesDD quantileGK quantilesGK
  quantileInterpolatedWeighted quantilesInterpolatedWeighted median medianExact medianTiming medianTDigest
  varPop varSamp stddevPop stddevSamp covarPop covarSamp corr VAR_POP VAR_SAMP STDDEV_POP STDDEV_SAMP STD STDDEV COVAR_POP COVAR_SAMP
  varPopStable varSampStable stddevPopStable stddevSampStable covarPopStable covarSampStable corrStable
  skewPop skewSamp kurtPop kurtSamp entropy simpleLinearRegression histogram
  retention windowFunnel sequenceMatch sequenceCount deltaSum deltaSumTimestamp boundingRatio exponentialMovingAverage
  intervalLengthSum maxIntersections maxIntersectionsPosition singleValueOrNull
  studentTTest welchTTest mannWhitneyUTest rankCorr
`;

/** Window functions (and aggregates used with OVER). */
const WINDOW = `
  row_number rank dense_rank denseRank percent_rank percentRank cume_dist ntile nth_value lagInFrame leadInFrame lag lead
`;

/** Aggregate combinator suffixes (ClickHouse names them -If, -Array, -State...). */
const COMBINATORS = [
  'if',
  'array',
  'distinct',
  'ornull',
  'ordefault',
  'merge',
  'state',
  'mergestate',
  'simplestate',
  'foreach',
  'map',
  'resample',
  'argmin',
  'argmax',
];

/** Table functions an analyst may read: only `numbers`, which generates integers and reaches nothing. */
export const ALLOWED_TABLE_FUNCTIONS: ReadonlySet<string> = new Set(['numbers']);

const words = (s: string) => s.split(/\s+/).filter(Boolean);
const scalar = new Set(words(SCALAR).map((w) => w.toLowerCase()));
const aggregate = new Set([...words(AGGREGATE), ...words(WINDOW)].map((w) => w.toLowerCase()));

/** Names the parser rewrites before they reach the function catalog. */
export const PARSER_FUNCTION_NAMES: ReadonlySet<string> = new Set(['lambda', 'untuple', 'exists', 'countDistinct']);

/** Every allowed name as written in this file, for documentation and tests. */
export const ALLOWED_FUNCTION_NAMES: readonly string[] = [...words(SCALAR), ...words(AGGREGATE), ...words(WINDOW)];

/** Functions whose second argument names a set: a table there would be read (`x IN system.settings`). */
export const IN_FUNCTIONS: ReadonlySet<string> = new Set(['in', 'notin', 'nullin', 'notnullin', 'globalin', 'globalnotin']);

/** An aggregate, possibly with combinators: `sumIf`, `uniqExactState`, `quantilesTimingMerge`, `countIfOrNull`. */
function isAggregate(name: string): boolean {
  if (aggregate.has(name)) return true;
  for (const suffix of COMBINATORS) {
    if (name.length > suffix.length && name.endsWith(suffix) && isAggregate(name.slice(0, -suffix.length))) return true;
  }
  return false;
}

/** Whether `name` (as the parser saw it) is an allowed scalar, aggregate or window function. */
export function isAllowedFunction(name: string): boolean {
  const lower = name.toLowerCase();
  return scalar.has(lower) || isAggregate(lower);
}
