import {
  type DuckDBDataChunk,
  type DuckDBDecimalType,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBVector,
  JSDuckDBValueConverter,
} from '@duckdb/node-api';
import {
  AsyncByteQueue,
  Binary,
  Bool,
  type Data,
  DataType,
  DateDay,
  Decimal,
  Field,
  Float32,
  Float64,
  Int8,
  Int16,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  type Table,
  TimeMicrosecond,
  TimeNanosecond,
  Timestamp,
  TimeUnit,
  tableFromIPC,
  Uint8,
  Uint16,
  Uint32,
  Uint64,
  Utf8,
} from 'apache-arrow';
import { InputError } from '../core/index.js';
import { toJsonValue } from './queries.js';

/**
 * DuckDB results to Apache Arrow and Arrow tables to events: the one place that knows both formats. Columns map to the
 * Arrow type that keeps their values (integers, doubles, booleans, strings, dates, timestamps, decimals, blobs); nested
 * and exotic types (LIST, STRUCT, MAP, UNION, INTERVAL, UUID, TIME WITH TIME ZONE, BIT) become their JSON or text form in a
 * string column, which pandas and polars read as strings.
 */

/** The rows of a fetched chunk to use: all of them but in the last chunk of a truncated result. */
export interface ChunkSlice {
  chunk: DuckDBDataChunk;
  rows: number;
}

/** Rows per Arrow record batch: large enough that readers make few allocations, small enough to stream. */
const BATCH_ROWS = 65_536;

/**
 * Encodes a fetched result as an Arrow IPC stream, one record batch per 64k rows, produced lazily: each piece is made
 * when the response asks for more. The schema comes first even when there are no rows.
 */
export function* encodeArrowStream(
  columns: readonly string[],
  types: readonly DuckDBType[],
  slices: readonly ChunkSlice[],
): Generator<Uint8Array> {
  const encoders = types.map((type) => columnEncoder(type));
  const schema = new Schema(columns.map((name, index) => new Field(name, encoders[index]?.type ?? new Utf8(), true)));
  const sink = new CollectedBytes();
  const writer = new RecordBatchStreamWriter();
  writer.reset(sink, schema);
  yield* sink.take();
  let pending: ChunkSlice[] = [];
  let pendingRows = 0;
  const flush = () => {
    const length = pendingRows;
    const children = encoders.map((encoder, index) => encoder.encode(pending, index, length));
    writer.write(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, children })));
    pending = [];
    pendingRows = 0;
  };
  for (const slice of slices) {
    if (slice.rows === 0) continue;
    pending.push(slice);
    pendingRows += slice.rows;
    if (pendingRows >= BATCH_ROWS) {
      flush();
      yield* sink.take();
    }
  }
  if (pendingRows > 0) flush();
  writer.finish();
  yield* sink.take();
}

/** A writer's output, taken piece by piece right after each write (the writer writes synchronously). */
class CollectedBytes extends AsyncByteQueue {
  private pieces: Uint8Array[] = [];

  override write(value: Uint8Array): void {
    if (value.byteLength > 0) this.pieces.push(value);
  }

  take(): Uint8Array[] {
    const taken = this.pieces;
    this.pieces = [];
    return taken;
  }
}

interface ColumnEncoder {
  readonly type: DataType;
  /** Encodes column `column` of the slices (`length` rows in all) as one Arrow array. */
  encode(slices: readonly ChunkSlice[], column: number, length: number): Data;
}

function columnEncoder(type: DuckDBType): ColumnEncoder {
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return booleanEncoder();
    case DuckDBTypeId.TINYINT:
      return fixedEncoder(new Int8(), Int8Array);
    case DuckDBTypeId.SMALLINT:
      return fixedEncoder(new Int16(), Int16Array);
    case DuckDBTypeId.INTEGER:
      return fixedEncoder(new Int32(), Int32Array);
    case DuckDBTypeId.UTINYINT:
      return fixedEncoder(new Uint8(), Uint8Array);
    case DuckDBTypeId.USMALLINT:
      return fixedEncoder(new Uint16(), Uint16Array);
    case DuckDBTypeId.UINTEGER:
      return fixedEncoder(new Uint32(), Uint32Array);
    case DuckDBTypeId.FLOAT:
      return fixedEncoder(new Float32(), Float32Array);
    case DuckDBTypeId.DOUBLE:
      return fixedEncoder(new Float64(), Float64Array);
    case DuckDBTypeId.BIGINT:
      return fixedEncoder(new Int64(), BigInt64Array);
    case DuckDBTypeId.UBIGINT:
      return fixedEncoder(new Uint64(), BigUint64Array);
    case DuckDBTypeId.DATE:
      return fixedEncoder(new DateDay(), Int32Array, (value) => (value as { days: number }).days);
    case DuckDBTypeId.TIMESTAMP:
      return fixedEncoder(new Timestamp(TimeUnit.MICROSECOND), BigInt64Array, micros);
    case DuckDBTypeId.TIMESTAMP_TZ:
      return fixedEncoder(new Timestamp(TimeUnit.MICROSECOND, 'UTC'), BigInt64Array, micros);
    case DuckDBTypeId.TIMESTAMP_S:
      return fixedEncoder(
        new Timestamp(TimeUnit.SECOND),
        BigInt64Array,
        (value) => (value as { seconds: bigint }).seconds,
      );
    case DuckDBTypeId.TIMESTAMP_MS:
      return fixedEncoder(
        new Timestamp(TimeUnit.MILLISECOND),
        BigInt64Array,
        (value) => (value as { millis: bigint }).millis,
      );
    case DuckDBTypeId.TIMESTAMP_NS:
      return fixedEncoder(
        new Timestamp(TimeUnit.NANOSECOND),
        BigInt64Array,
        (value) => (value as { nanos: bigint }).nanos,
      );
    case DuckDBTypeId.TIME:
      return fixedEncoder(new TimeMicrosecond(), BigInt64Array, micros);
    case DuckDBTypeId.TIME_NS:
      return fixedEncoder(new TimeNanosecond(), BigInt64Array, (value) => (value as { nanos: bigint }).nanos);
    case DuckDBTypeId.HUGEINT:
      return decimalEncoder(38, 0, (value) => value as bigint);
    case DuckDBTypeId.DECIMAL: {
      const decimal = type as DuckDBDecimalType;
      return decimalEncoder(decimal.width, decimal.scale, (value) => (value as { value: bigint }).value);
    }
    case DuckDBTypeId.VARCHAR:
    case DuckDBTypeId.ENUM:
      return bytesEncoder(new Utf8(), (value) => Buffer.from(value as string));
    case DuckDBTypeId.BLOB:
      return bytesEncoder(new Binary(), (value) => (value as { bytes: Uint8Array }).bytes);
    default:
      return textEncoder();
  }
}

function micros(value: unknown): bigint {
  return (value as { micros: bigint }).micros;
}

/** A validity bitmap for `length` rows (all valid), and a setter that marks one row null. */
function validityBitmap(length: number) {
  const bitmap = new Uint8Array(Math.ceil(length / 8)).fill(0xff);
  let nullCount = 0;
  return {
    bitmap,
    markNull(row: number) {
      bitmap[row >> 3] = (bitmap[row >> 3] as number) & ~(1 << (row & 7));
      nullCount++;
    },
    get nullCount() {
      return nullCount;
    },
  };
}

type Validity = ReturnType<typeof validityBitmap>;

/*
 * @duckdb/node-api keeps a chunk's values in typed arrays over DuckDB's own memory (a vector's `items`, `dataView` and
 * `validity.data`). Where a vector has them in the shape expected, whole columns are copied at once rather than read
 * value by value through `getItem`, which is several times slower; every fast path checks that shape first and
 * otherwise falls back to `getItem`, so a change inside the library costs speed, never correctness.
 */
interface VectorInternals {
  items?: unknown;
  dataView?: unknown;
  itemOffset?: unknown;
  validity?: { data?: unknown; offset?: unknown };
}

const ALL_VALID = 0xffffffffffffffffn;

/**
 * Marks the null rows of a vector's first `rows` rows (at `start` in the batch) from its validity words, which have
 * Arrow's bit order. Returns false when the vector does not expose them; the caller then checks each value.
 */
function copyNulls(vector: DuckDBVector, rows: number, start: number, validity: Validity): boolean {
  const internal = (vector as unknown as VectorInternals).validity;
  if (internal?.offset !== 0) return false;
  if (internal.data === null) return true;
  if (!(internal.data instanceof BigUint64Array)) return false;
  const words = internal.data;
  for (let word = 0; word * 64 < rows; word++) {
    const bits = words[word] as bigint;
    if (bits === ALL_VALID) continue;
    for (let bit = 0; bit < 64 && word * 64 + bit < rows; bit++) {
      if (((bits >> BigInt(bit)) & 1n) === 0n) validity.markNull(start + word * 64 + bit);
    }
  }
  return true;
}

/** Visits every value of the column in the slices, with its row number in the batch. */
function forEachValue(
  slices: readonly ChunkSlice[],
  column: number,
  visit: (value: unknown, row: number) => void,
): void {
  let row = 0;
  for (const slice of slices) {
    const vector: DuckDBVector = slice.chunk.getColumnVector(column);
    for (let index = 0; index < slice.rows; index++) visit(vector.getItem(index), row++);
  }
}

type FixedArray =
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/**
 * Fixed-width values (numbers, dates as days, times and timestamps as integers of their unit). `read` turns a value of
 * `getItem` into the stored number, for the slow path.
 */
function fixedEncoder<T extends FixedArray>(
  type: DataType,
  ArrayType: { new (length: number): T },
  read: (value: unknown) => T[number] = (value) => value as T[number],
): ColumnEncoder {
  return {
    type,
    encode(slices, column, length) {
      const values = new ArrayType(length);
      const validity = validityBitmap(length);
      let start = 0;
      for (const slice of slices) {
        const vector = slice.chunk.getColumnVector(column);
        const items = (vector as unknown as VectorInternals).items;
        if (
          items instanceof ArrayType &&
          items.length >= slice.rows &&
          copyNulls(vector, slice.rows, start, validity)
        ) {
          values.set(items.subarray(0, slice.rows) as never, start);
        } else {
          for (let index = 0; index < slice.rows; index++) {
            const value = vector.getItem(index);
            if (value === null) validity.markNull(start + index);
            else values[start + index] = read(value);
          }
        }
        start += slice.rows;
      }
      return makeData({
        type,
        length,
        nullCount: validity.nullCount,
        nullBitmap: validity.bitmap,
        data: values,
      } as never);
    },
  };
}

function booleanEncoder(): ColumnEncoder {
  const type = new Bool();
  return {
    type,
    encode(slices, column, length) {
      const bits = new Uint8Array(Math.ceil(length / 8));
      const validity = validityBitmap(length);
      forEachValue(slices, column, (value, row) => {
        if (value === null) validity.markNull(row);
        else if (value) bits[row >> 3] = (bits[row >> 3] as number) | (1 << (row & 7));
      });
      return makeData({ type, length, nullCount: validity.nullCount, nullBitmap: validity.bitmap, data: bits });
    },
  };
}

/** 128-bit decimals (and HUGEINT as DECIMAL(38, 0)): two little-endian 64-bit words per value. */
function decimalEncoder(precision: number, scale: number, read: (value: unknown) => bigint): ColumnEncoder {
  const type = new Decimal(scale, precision, 128);
  return {
    type,
    encode(slices, column, length) {
      const words = new BigUint64Array(length * 2);
      const validity = validityBitmap(length);
      forEachValue(slices, column, (value, row) => {
        if (value === null) {
          validity.markNull(row);
          return;
        }
        const unscaled = read(value);
        words[row * 2] = BigInt.asUintN(64, unscaled);
        words[row * 2 + 1] = BigInt.asUintN(64, unscaled >> 64n);
      });
      const data = new Uint32Array(words.buffer);
      return makeData({ type, length, nullCount: validity.nullCount, nullBitmap: validity.bitmap, data });
    },
  };
}

/** A growing byte buffer for the values of variable-length columns. */
function byteBuffer(initial: number) {
  let data = Buffer.allocUnsafe(Math.max(1024, initial));
  let used = 0;
  const ensure = (extra: number) => {
    if (used + extra <= data.length) return;
    const grown = Buffer.allocUnsafe(Math.max(data.length * 2, used + extra));
    data.copy(grown, 0, 0, used);
    data = grown;
  };
  return {
    get used() {
      return used;
    },
    writeText(text: string) {
      ensure(text.length * 3);
      used += data.write(text, used);
    },
    writeBytes(bytes: Uint8Array) {
      ensure(bytes.byteLength);
      data.set(bytes, used);
      used += bytes.byteLength;
    },
    bytes() {
      return data.subarray(0, used);
    },
  };
}

/** DuckDB strings are 16 bytes each: a 32-bit length, then up to 12 bytes inline, or a pointer to longer ones. */
const STRING_BYTES = 16;
const INLINE_STRING_BYTES = 12;

/** The text of `length` bytes at `offset` when they are all ASCII; `undefined` otherwise. */
function asciiText(bytes: Uint8Array, offset: number, length: number): string | undefined {
  let text = '';
  for (let index = 0; index < length; index++) {
    const byte = bytes[offset + index] as number;
    if (byte > 0x7f) return undefined;
    text += String.fromCharCode(byte);
  }
  return text;
}

/** Variable-length values (strings as UTF-8, blobs as bytes) into one data buffer with 32-bit offsets. */
function bytesEncoder(type: Utf8 | Binary, read: (value: unknown) => Uint8Array): ColumnEncoder {
  return {
    type,
    encode(slices, column, length) {
      const offsets = new Int32Array(length + 1);
      const validity = validityBitmap(length);
      const buffer = byteBuffer(length * 16);
      let row = 0;
      for (const slice of slices) {
        const vector = slice.chunk.getColumnVector(column);
        const internal = vector as unknown as VectorInternals;
        const view = internal.dataView;
        if (
          DataType.isUtf8(type) &&
          view instanceof DataView &&
          internal.itemOffset === 0 &&
          view.byteLength >= slice.rows * STRING_BYTES &&
          copyNulls(vector, slice.rows, row, validity)
        ) {
          // Short ASCII strings are read from the vector's bytes, longer ones through `getItem`; the chunk's strings
          // are then encoded to UTF-8 at once, which is far faster than one by one.
          const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
          const bitmap = validity.bitmap;
          const texts: string[] = [];
          const firstRow = row;
          for (let index = 0; index < slice.rows; index++, row++) {
            let text = '';
            if (((bitmap[row >> 3] as number) & (1 << (row & 7))) !== 0) {
              const at = index * STRING_BYTES;
              const size = view.getUint32(at, true);
              text =
                (size <= INLINE_STRING_BYTES ? asciiText(bytes, at + 4, size) : undefined) ??
                (vector.getItem(index) as string);
            }
            texts.push(text);
          }
          const joined = texts.join('');
          const encoded = Buffer.from(joined, 'utf8');
          const ascii = encoded.length === joined.length;
          let end = buffer.used;
          texts.forEach((text, index) => {
            end += ascii ? text.length : Buffer.byteLength(text, 'utf8');
            offsets[firstRow + index + 1] = end;
          });
          buffer.writeBytes(encoded);
          continue;
        }
        for (let index = 0; index < slice.rows; index++, row++) {
          const value = vector.getItem(index);
          if (value === null) validity.markNull(row);
          else if (typeof value === 'string') buffer.writeText(value);
          else buffer.writeBytes(read(value));
          offsets[row + 1] = buffer.used;
        }
      }
      return makeData({
        type,
        length,
        nullCount: validity.nullCount,
        nullBitmap: validity.bitmap,
        valueOffsets: offsets,
        data: buffer.bytes(),
      } as never);
    },
  };
}

/**
 * Any other type as text: its JSON form as `POST /v1/sql` answers it in JSON (nested types, INTERVAL as
 * `{months, days, micros}`) or its text (UUID, TIME WITH TIME ZONE, BIT).
 */
function textEncoder(): ColumnEncoder {
  const strings = bytesEncoder(new Utf8(), () => new Uint8Array());
  return {
    type: strings.type,
    encode(slices, column, length) {
      const texts: ChunkSlice[] = [];
      const values: (string | null)[] = [];
      for (const slice of slices) {
        const converted = slice.chunk.convertColumnValues(column, JSDuckDBValueConverter);
        for (let index = 0; index < slice.rows; index++) {
          const value = toJsonValue(converted[index]);
          values.push(
            value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value),
          );
        }
      }
      texts.push({ chunk: textChunk(values), rows: values.length });
      return strings.encode(texts, 0, length);
    },
  };
}

/** A stand-in chunk over converted values, so that the byte encoder can read them. */
function textChunk(values: readonly (string | null)[]): DuckDBDataChunk {
  const vector = { getItem: (index: number) => values[index] ?? null };
  return { getColumnVector: () => vector } as unknown as DuckDBDataChunk;
}

/** One row of an uploaded Arrow table as an event object (validated by the caller), or why it cannot be one. */
export type ArrowEventRow = { event: Record<string, unknown>; raw: string } | { reason: string; raw: string };

/** The columns an uploaded Arrow table must have; `time` and `source` may be left out. */
export const ARROW_EVENT_COLUMNS = ['id', 'type', 'runId', 'data'] as const;

/**
 * Reads an Arrow IPC stream (or file) of events, one row per event: `id`, `type`, `runId` (strings), `data` (the
 * payload as a JSON string), and optionally `time` (an ISO 8601 string or an Arrow timestamp or date; timestamps
 * without a time zone are taken as UTC) and `source` (a JSON string `{format, file?, position?}`). Other columns are
 * ignored. A row whose values cannot form an event comes back with its reason; the table as a whole is refused only
 * when it is not Arrow or lacks a required column.
 */
export function readArrowEvents(bytes: Uint8Array): ArrowEventRow[] {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    throw new InputError(`The body is not an Arrow IPC stream: ${(error as Error).message}`);
  }
  if (table.schema.fields.length === 0 && bytes.byteLength > 0) {
    throw new InputError('The body is not an Arrow IPC stream: no schema was found.');
  }
  const names = table.schema.fields.map((field) => field.name);
  const missing = ARROW_EVENT_COLUMNS.filter((name) => !names.includes(name));
  if (missing.length > 0) {
    throw new InputError(
      `The Arrow table lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; it has ${names.join(', ') || 'no columns'}. Send one row per event with string columns id, type, runId, data (the payload as JSON text) and optionally time and source.`,
    );
  }
  for (const name of ['data', 'source'] as const) {
    const field = table.schema.fields.find((candidate) => candidate.name === name);
    if (field && !isText(field.type)) {
      throw new InputError(
        `Column ${name} is ${field.type}, not a string: send it as JSON text (polars: pl.col("${name}").struct.json_encode(); pandas: df["${name}"].map(json.dumps)).`,
      );
    }
  }
  const column = (name: string) => {
    const vector = table.getChild(name);
    return vector === null
      ? undefined
      : { type: vector.type as DataType, get: (row: number) => vector.get(row) as unknown };
  };
  const id = column('id');
  const type = column('type');
  const runId = column('runId');
  const data = column('data');
  const time = column('time');
  const source = column('source');
  const rows: ArrowEventRow[] = [];
  for (let row = 0; row < table.numRows; row++) {
    const text = {
      id: textOf(id?.get(row)),
      type: textOf(type?.get(row)),
      runId: textOf(runId?.get(row)),
      time: time === undefined ? undefined : timeOf(time.type, time.get(row)),
      data: textOf(data?.get(row)),
      source: textOf(source?.get(row)),
    };
    const raw = JSON.stringify(text);
    const event: Record<string, unknown> = { id: text.id, type: text.type, runId: text.runId };
    if (text.time !== undefined) event.time = text.time;
    const payload = parseJsonColumn('data', text.data);
    if ('reason' in payload) {
      rows.push({ reason: payload.reason, raw });
      continue;
    }
    event.data = payload.value;
    if (text.source !== undefined) {
      const parsed = parseJsonColumn('source', text.source);
      if ('reason' in parsed) {
        rows.push({ reason: parsed.reason, raw });
        continue;
      }
      event.source = parsed.value;
    }
    rows.push({ event, raw });
  }
  return rows;
}

/** Strings in any of Arrow's layouts, also dictionary-encoded (pandas categories, polars `Categorical`). */
function isText(type: DataType): boolean {
  if (DataType.isDictionary(type)) return isText(type.dictionary);
  return DataType.isUtf8(type) || DataType.isLargeUtf8(type) || DataType.isUtf8View(type);
}

function textOf(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? value : String(value);
}

/** An ISO 8601 time from a string, timestamp or date value; `undefined` for null. */
function timeOf(type: DataType, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (DataType.isTimestamp(type) || DataType.isDate(type)) {
    const milliseconds = typeof value === 'bigint' ? Number(value) : (value as number);
    const date = new Date(milliseconds);
    return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
  }
  return textOf(value);
}

function parseJsonColumn(name: string, text: string | undefined): { value: unknown } | { reason: string } {
  if (text === undefined)
    return name === 'data' ? { reason: 'column data is null: every event needs its payload' } : { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { reason: `column ${name} is not JSON: ${(error as Error).message}` };
  }
}
