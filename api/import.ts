import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import { stagingRoot } from '../core/index.js';
import type { IngestOptions, IngestSummary } from '../ingest/ingest.js';
import { HttpProblem } from './problem.js';

/**
 * `POST /v1/import`: a Harbor job or trial directory, a Terminal-Bench 1 run directory or a SWE-agent set, uploaded as a
 * `.tar`, `.tar.gz`/`.tgz` or `.zip` archive, or a single trace file. The archive is read in memory (tar and zip readers
 * of our own over Node's zlib), every entry is checked before anything is written (no absolute names, no `..`, no
 * symbolic link that points out, sizes within the limits), then it is written under the staging folder, imported
 * with the importers of `selfharness ingest`, and removed again whatever happened.
 */

/** How large an upload may grow once unpacked. */
export interface ImportLimits {
  /** Files and directories in one archive. */
  maxEntries: number;
  /** Bytes of one unpacked file. */
  maxEntryBytes: number;
  /** Bytes of all unpacked files together. */
  maxTotalBytes: number;
}

export const DEFAULT_IMPORT_LIMITS: ImportLimits = {
  maxEntries: 50_000,
  maxEntryBytes: 512 * 1024 * 1024,
  maxTotalBytes: 2 * 1024 * 1024 * 1024,
};

/** One member of an archive, as read; `data` for files, `target` for links. */
export interface ArchiveEntry {
  name: string;
  kind: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  data?: Uint8Array;
  target?: string;
}

export type UploadKind = 'tar' | 'tar.gz' | 'zip' | 'file';

/** Extensions of single trace files the importers read; anything else must be an archive. */
const SINGLE_FILE = /\.(traj|json|ndjson|jsonl)$/i;

/** The kind of an upload, from its name where it has a known extension, else from its first bytes. */
export function detectUploadKind(name: string | undefined, bytes: Uint8Array): UploadKind {
  if (name !== undefined) {
    if (/\.(tar\.gz|tgz)$/i.test(name)) return 'tar.gz';
    if (/\.tar$/i.test(name)) return 'tar';
    if (/\.zip$/i.test(name)) return 'zip';
    if (SINGLE_FILE.test(name)) return 'file';
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'tar.gz';
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return 'zip';
  if (Buffer.from(bytes.subarray(257, 262)).toString('latin1') === 'ustar') return 'tar';
  throw new HttpProblem(
    400,
    'Bad Request',
    `${name === undefined ? 'The upload has no name' : `Upload ${name} has no known extension`} and is no tar, tar.gz or zip archive. Send an archive (.tar, .tar.gz, .tgz, .zip) or a trace file named with ?name=FILE (.traj, .json, .ndjson, .jsonl) or Content-Disposition: attachment; filename="FILE".`,
  );
}

/** The file name of a `Content-Disposition` header (`filename*=UTF-8''…` or `filename="…"`), if it has one. */
export function fileNameFromDisposition(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const extended = header.match(/filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/);
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      return undefined;
    }
  }
  const plain = header.match(/filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/);
  const value = plain?.[1]?.replace(/\\(.)/g, '$1') ?? plain?.[2];
  return value || undefined;
}

/**
 * Reads an archive's entries, enforcing the limits as it goes (a gzip or deflate stream that unpacks past them is
 * stopped, not read to the end). A damaged archive is refused with what is wrong and where.
 */
export function readArchive(
  kind: 'tar' | 'tar.gz' | 'zip',
  bytes: Uint8Array,
  label: string,
  limits: ImportLimits,
): ArchiveEntry[] {
  if (kind === 'zip') return readZip(bytes, label, limits);
  let tar = bytes;
  if (kind === 'tar.gz') {
    try {
      // The tar format adds a 512-byte header per entry and pads each to 512 bytes.
      tar = gunzipSync(bytes, { maxOutputLength: limits.maxTotalBytes + (limits.maxEntries + 2) * 1024 });
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(label, limits);
      throw corrupt(label, `gzip: ${(error as Error).message}`);
    }
  }
  return readTar(tar, label, limits);
}

function corrupt(label: string, reason: string): HttpProblem {
  return new HttpProblem(
    400,
    'Corrupt archive',
    `Cannot read upload ${label}: ${reason}. Check that the file was sent whole and is the kind its name says (.tar, .tar.gz, .tgz, .zip).`,
  );
}

function tooLarge(label: string, limits: ImportLimits): HttpProblem {
  return new HttpProblem(
    413,
    'Content Too Large',
    `Upload ${label} unpacks to more than ${limits.maxTotalBytes} bytes, the limit for one import. Split it into smaller archives (e.g. one per job).`,
  );
}

/** Counts entries and bytes against the limits. */
function limitTracker(label: string, limits: ImportLimits) {
  let entries = 0;
  let total = 0;
  return (name: string, bytes: number) => {
    if (++entries > limits.maxEntries) {
      throw new HttpProblem(
        413,
        'Content Too Large',
        `Upload ${label} has more than ${limits.maxEntries} entries, the limit for one import. Split it into smaller archives.`,
      );
    }
    if (bytes > limits.maxEntryBytes) {
      throw new HttpProblem(
        413,
        'Content Too Large',
        `Entry ${name} of upload ${label} is ${bytes} bytes, more than the limit of ${limits.maxEntryBytes} per file.`,
      );
    }
    total += bytes;
    if (total > limits.maxTotalBytes) throw tooLarge(label, limits);
  };
}

const BLOCK = 512;

function readTar(bytes: Uint8Array, label: string, limits: ImportLimits): ArchiveEntry[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = limitTracker(label, limits);
  const entries: ArchiveEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  while (offset + BLOCK <= buffer.length) {
    const header = buffer.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) return entries;
    if (!hasValidChecksum(header))
      throw corrupt(label, `the tar header at byte ${offset} is damaged (checksum mismatch)`);
    const flag = String.fromCharCode(header[156] as number);
    const size = pax.size !== undefined ? Number(pax.size) : tarNumber(header.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0)
      throw corrupt(label, `the tar header at byte ${offset} has a bad size`);
    const start = offset + BLOCK;
    const end = start + size;
    if (end > buffer.length) throw corrupt(label, `the archive is cut short inside the entry at byte ${offset}`);
    const data = buffer.subarray(start, end);
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x') {
      pax = parsePax(data);
      continue;
    }
    if (flag === 'g') continue;
    if (flag === 'L') {
      longName = cString(data);
      continue;
    }
    if (flag === 'K') {
      longLink = cString(data);
      continue;
    }
    const isUstar = header.subarray(257, 262).toString('latin1') === 'ustar';
    const prefix = isUstar ? cString(header.subarray(345, 500)) : '';
    const shortName = cString(header.subarray(0, 100));
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
    const target = pax.linkpath ?? longLink ?? cString(header.subarray(157, 257));
    pax = {};
    longName = undefined;
    longLink = undefined;
    const kind: ArchiveEntry['kind'] =
      flag === '0' || flag === '\0' || flag === '7'
        ? 'file'
        : flag === '5'
          ? 'directory'
          : flag === '2'
            ? 'symlink'
            : flag === '1'
              ? 'hardlink'
              : 'other';
    count(name, kind === 'file' ? size : 0);
    entries.push(
      kind === 'file'
        ? { name, kind, data }
        : kind === 'symlink' || kind === 'hardlink'
          ? { name, kind, target }
          : { name, kind },
    );
  }
  if (offset < buffer.length || entries.length === 0)
    throw corrupt(label, 'the archive is cut short (no end-of-archive blocks)');
  return entries;
}

function hasValidChecksum(header: Buffer): boolean {
  const stored = tarNumber(header.subarray(148, 156));
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 0x20 : (header[index] as number);
  return sum === stored;
}

/** A tar number field: octal text, or big-endian base-256 when its first bit is set (large sizes). */
function tarNumber(field: Buffer): number {
  if (((field[0] as number) & 0x80) !== 0) {
    let value = (field[0] as number) & 0x7f;
    for (let index = 1; index < field.length; index++) value = value * 256 + (field[index] as number);
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/g, '')
    .trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** POSIX extended header records: `LENGTH key=value\n`. */
function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number.parseInt(data.subarray(offset, space).toString('latin1'), 10);
    if (!Number.isInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return records;
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_HEADER = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;

function readZip(bytes: Uint8Array, label: string, limits: ImportLimits): ArchiveEntry[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let offset = buffer.length - 22; offset >= Math.max(0, buffer.length - 22 - 0xffff); offset--) {
    if (buffer.readUInt32LE(offset) === END_OF_CENTRAL_DIRECTORY) {
      end = offset;
      break;
    }
  }
  if (end === -1) throw corrupt(label, 'no zip directory was found at its end (not a zip, or cut short)');
  const entryCount = buffer.readUInt16LE(end + 10);
  const directoryOffset = buffer.readUInt32LE(end + 16);
  if (entryCount === 0xffff || directoryOffset === 0xffffffff) {
    throw new HttpProblem(
      400,
      'Bad Request',
      `Upload ${label} is a ZIP64 archive, which is not read here; send a .tar.gz instead.`,
    );
  }
  const count = limitTracker(label, limits);
  const entries: ArchiveEntry[] = [];
  let offset = directoryOffset;
  for (let index = 0; index < entryCount; index++) {
    if (offset + 46 > buffer.length || buffer.readUInt32LE(offset) !== CENTRAL_HEADER) {
      throw corrupt(label, `zip directory entry ${index + 1} of ${entryCount} is damaged`);
    }
    const madeBy = buffer.readUInt16LE(offset + 4) >> 8;
    const flags = buffer.readUInt16LE(offset + 8);
    const method = buffer.readUInt16LE(offset + 10);
    const checksum = buffer.readUInt32LE(offset + 16);
    const compressedSize = buffer.readUInt32LE(offset + 20);
    const size = buffer.readUInt32LE(offset + 24);
    const nameLength = buffer.readUInt16LE(offset + 28);
    const extraLength = buffer.readUInt16LE(offset + 30);
    const commentLength = buffer.readUInt16LE(offset + 32);
    const mode = buffer.readUInt32LE(offset + 38) >>> 16;
    const localOffset = buffer.readUInt32LE(offset + 42);
    const name = buffer.subarray(offset + 46, offset + 46 + nameLength).toString('utf8');
    offset += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) {
      count(name, 0);
      entries.push({ name, kind: 'directory' });
      continue;
    }
    if ((flags & 1) !== 0) {
      throw new HttpProblem(
        400,
        'Bad Request',
        `Entry ${name} of upload ${label} is encrypted; send the archive without a password.`,
      );
    }
    count(name, size);
    if (localOffset + 30 > buffer.length || buffer.readUInt32LE(localOffset) !== LOCAL_HEADER) {
      throw corrupt(label, `the zip entry ${name} is damaged (no local header)`);
    }
    const dataStart = localOffset + 30 + buffer.readUInt16LE(localOffset + 26) + buffer.readUInt16LE(localOffset + 28);
    if (dataStart + compressedSize > buffer.length) throw corrupt(label, `the zip entry ${name} is cut short`);
    const stored = buffer.subarray(dataStart, dataStart + compressedSize);
    let data: Uint8Array;
    if (method === 0) data = stored;
    else if (method === 8) {
      try {
        data = inflateRawSync(stored, { maxOutputLength: Math.max(1, size) });
      } catch (error) {
        throw corrupt(label, `the zip entry ${name} does not inflate (${(error as Error).message})`);
      }
    } else {
      throw new HttpProblem(
        400,
        'Bad Request',
        `Entry ${name} of upload ${label} uses zip compression method ${method}; only stored and deflate are read. Re-create the zip with deflate, or send a .tar.gz.`,
      );
    }
    if (data.byteLength !== size || crc32(data) !== checksum) {
      throw corrupt(label, `the zip entry ${name} is damaged (its size or checksum does not match)`);
    }
    const isSymlink = madeBy === 3 && (mode & 0o170000) === 0o120000;
    entries.push(
      isSymlink ? { name, kind: 'symlink', target: Buffer.from(data).toString('utf8') } : { name, kind: 'file', data },
    );
  }
  return entries;
}

/**
 * The entry's path relative to the upload folder, or the reason it is refused: absolute names, drive letters, `..`
 * segments and NUL bytes could write outside it. An empty path (the archive's `./`) comes back as `''`.
 */
export function safeEntryPath(name: string): { path: string } | { reason: string } {
  if (name.includes('\0')) return { reason: 'its name holds a NUL byte' };
  const normal = name.replaceAll('\\', '/');
  if (normal.startsWith('/') || /^[A-Za-z]:/.test(normal)) return { reason: 'it is an absolute path' };
  const segments = normal.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..')) return { reason: 'it climbs out of the upload with ..' };
  return { path: segments.join('/') };
}

/** What the caller's `ingest` gets and what `POST /v1/import` answers. */
export interface ImportReceipt {
  upload: string;
  kind: UploadKind;
  formats: IngestSummary['formats'];
  totals: IngestSummary['totals'];
  /** The first rejected records, with their file inside the upload, position and reason (all are in `ingest_rejects`). */
  rejects: { file: string | undefined; position: string | undefined; reason: string }[];
  /** Files no importer recognised. */
  skipped: IngestSummary['skipped'];
  /** Entries not written: links that stay inside the upload, devices, FIFOs. */
  ignored: { entry: string; reason: string }[];
}

export interface ImportRequest {
  /** The upload's file name (from `?name=` or Content-Disposition); needed for a single trace file. */
  name?: string;
  options: Pick<IngestOptions, 'format' | 'model' | 'dataset'>;
  limits: ImportLimits;
}

const SHOWN_REJECTS = 100;

/**
 * Unpacks an upload under `stagingRoot()/uploads/<random>/<name>`, imports that folder with `ingest` (the caller runs
 * `ingestPaths` in its turn on the log) and removes it again, also when something failed. Nothing is written when an
 * entry is refused.
 */
export async function importUpload(
  body: Uint8Array,
  request: ImportRequest,
  ingest: (path: string, options: IngestOptions) => Promise<IngestSummary>,
): Promise<ImportReceipt> {
  const label = request.name ?? 'upload';
  if (
    request.name !== undefined &&
    (request.name.includes('/') || request.name.includes('\\') || /^\.+$/.test(request.name))
  ) {
    throw new HttpProblem(
      400,
      'Bad Request',
      `The upload's name ${request.name} must be a plain file name, without folders.`,
    );
  }
  if (body.byteLength === 0)
    throw new HttpProblem(400, 'Bad Request', 'The upload is empty: send the archive or trace file as the body.');
  const kind = detectUploadKind(request.name, body);
  const stem = label.replace(/\.(tar\.gz|tgz|tar|zip)$/i, '') || 'upload';
  const entries: ArchiveEntry[] =
    kind === 'file' ? [{ name: label, kind: 'file', data: body }] : readArchive(kind, body, label, request.limits);
  const writes: { path: string; entry: ArchiveEntry }[] = [];
  const ignored: ImportReceipt['ignored'] = [];
  for (const entry of entries) {
    const checked = safeEntryPath(entry.name);
    if ('reason' in checked) throw refusedEntry(entry.name, label, checked.reason);
    if (entry.kind === 'symlink' || entry.kind === 'hardlink') {
      const target = entry.target ?? '';
      const base = entry.kind === 'symlink' ? posix.dirname(checked.path) : '';
      const resolved = target.startsWith('/') ? undefined : safeEntryPath(posix.join(base, target));
      if (resolved === undefined || 'reason' in resolved) {
        throw refusedEntry(entry.name, label, `it is a link to ${target}, outside the upload`);
      }
      ignored.push({
        entry: entry.name,
        reason: `${entry.kind === 'symlink' ? 'symbolic' : 'hard'} link, not followed`,
      });
      continue;
    }
    if (entry.kind === 'other') {
      ignored.push({ entry: entry.name, reason: 'not a file or directory' });
      continue;
    }
    if (checked.path !== '') writes.push({ path: checked.path, entry });
  }
  const folder = join(stagingRoot(), 'uploads', randomUUID());
  const root = join(folder, kind === 'file' ? '' : stem);
  try {
    mkdirSync(root, { recursive: true });
    for (const { path, entry } of writes) {
      const target = join(root, path);
      if (entry.kind === 'directory') mkdirSync(target, { recursive: true });
      else {
        mkdirSync(dirname(target), { recursive: true });
        // `wx`: a name given twice in the archive is refused rather than written through.
        try {
          writeFileSync(target, entry.data ?? new Uint8Array(), { flag: 'wx' });
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTDIR') {
            throw refusedEntry(entry.name, label, 'the archive holds this name twice, or as a file and a folder');
          }
          throw error;
        }
      }
    }
    const summary = await ingest(kind === 'file' ? join(folder, label) : root, request.options);
    const shown = (file: string | undefined) => (file?.startsWith(folder) ? file.slice(folder.length + 1) : file);
    return {
      upload: label,
      kind,
      formats: summary.formats,
      totals: summary.totals,
      rejects: summary.rejects.slice(0, SHOWN_REJECTS).map((reject) => ({
        file: shown(reject.file),
        position: reject.position,
        reason: reject.reason,
      })),
      skipped: summary.skipped.map((skip) => ({ path: shown(skip.path) ?? skip.path, reason: skip.reason })),
      ignored,
    };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

function refusedEntry(entry: string, label: string, reason: string): HttpProblem {
  return new HttpProblem(
    400,
    'Archive entry refused',
    `Entry ${entry} of upload ${label} was refused: ${reason}. Nothing was imported; re-create the archive with paths relative to its top folder.`,
  );
}
