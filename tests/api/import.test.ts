import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../api/index.js';
import { EventLog, stagingRoot } from '../../core/index.js';
import { ingestPaths } from '../../ingest/ingest.js';

const fixtures = resolve(import.meta.dirname, '../fixtures');

let folder: string;
let log: EventLog;

beforeEach(async () => {
  folder = mkdtempSync(join(tmpdir(), 'selfharness-api-import-'));
  log = await EventLog.open(join(folder, 'log.duckdb'));
});

afterEach(() => {
  log.close();
  rmSync(folder, { recursive: true, force: true });
});

interface Member {
  name: string;
  data?: Uint8Array;
  kind?: 'file' | 'directory' | 'symlink';
  target?: string;
}

/** The files under `directory`, named `prefix/<path inside>`, in a stable order. */
function membersOf(directory: string, prefix: string): Member[] {
  const members: Member[] = [];
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name);
      if (statSync(path).isDirectory()) {
        members.push({ name: `${prefix}/${relative(directory, path)}/`, kind: 'directory' });
        walk(path);
      } else members.push({ name: `${prefix}/${relative(directory, path)}`, data: readFileSync(path) });
    }
  };
  walk(directory);
  return members;
}

/** A ustar archive, written here independently of the server's reader. */
function tar(members: readonly Member[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const data = Buffer.from(member.data ?? new Uint8Array());
    const header = Buffer.alloc(512);
    if (Buffer.byteLength(member.name) > 100) throw new Error(`name too long for this test writer: ${member.name}`);
    header.write(member.name, 0, 'utf8');
    header.write('0000644\0', 100, 'latin1');
    header.write('0000000\0', 108, 'latin1');
    header.write('0000000\0', 116, 'latin1');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    header.write('00000000000\0', 136, 'latin1');
    const kind = member.kind ?? 'file';
    header.write(kind === 'directory' ? '5' : kind === 'symlink' ? '2' : '0', 156, 'latin1');
    if (member.target) header.write(member.target, 157, 'utf8');
    header.write('ustar\0', 257, 'latin1');
    header.write('00', 263, 'latin1');
    header.write('        ', 148, 'latin1');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A zip archive with deflated members, written here independently of the server's reader. */
function zip(members: readonly Member[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const member of members) {
    const name = Buffer.from(member.name);
    const data = Buffer.from(member.data ?? new Uint8Array());
    const packed = deflateRawSync(data);
    const checksum = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(checksum, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(checksum, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((member.name.endsWith('/') ? 0o040755 : 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, packed);
    centrals.push(central, name);
    offset += local.length + name.length + packed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

async function upload(app: ReturnType<typeof createApp>, body: Uint8Array, query: string, headers = {}) {
  return app.request(`/v1/import${query}`, { method: 'POST', body, headers });
}

interface Receipt {
  upload: string;
  formats: { format: string; units: number; runs: number; events: number; appended: number; rejects: number }[];
  totals: { runs: number; events: number; appended: number; rejects: number };
  rejects: { file: string; position: string; reason: string }[];
}

/** The same fixture imported from disk with `ingestPaths` into a log of its own: what the upload must match. */
async function importedFromDisk(path: string) {
  const reference = await EventLog.open(join(folder, `reference-${Date.now()}.duckdb`));
  try {
    const summary = await ingestPaths(reference, [path]);
    const ids = await reference.query<{ id: string; run_id: string }>(
      'SELECT id, run_id FROM events ORDER BY run_id, id',
    );
    return { summary, ids };
  } finally {
    reference.close();
  }
}

function uploadsLeft(): string[] {
  const uploads = join(stagingRoot(), 'uploads');
  return existsSync(uploads) ? readdirSync(uploads) : [];
}

describe('POST /v1/import', () => {
  it.each([
    ['a Harbor job as .tar.gz', 'harbor/jobs/tb2-sample', 'tb2-sample', 'tb2-sample.tar.gz', 'harbor'],
    ['a Terminal-Bench 1 run as .zip', 'tb1/mini-run', 'mini-run', 'mini-run.zip', 'tb1'],
    ['a SWE-agent set as .tar', 'swe-agent/demo-model', 'demo-model', 'demo-model.tar', 'swe-agent'],
  ])(
    'imports %s like `selfharness ingest` of the folder, and a second upload adds nothing',
    async (_name, fixture, top, file, format) => {
      const app = createApp({ log });
      const members = membersOf(join(fixtures, fixture), top);
      const body = file.endsWith('.zip') ? zip(members) : file.endsWith('.tar') ? tar(members) : gzipSync(tar(members));
      const headers = file.endsWith('.zip') ? { 'Content-Disposition': `attachment; filename="${file}"` } : {};
      const response = await upload(app, body, file.endsWith('.zip') ? '' : `?name=${file}`, headers);
      expect(response.status).toBe(200);
      const receipt = (await response.json()) as Receipt;
      const expected = await importedFromDisk(join(fixtures, fixture));
      expect(receipt.upload).toBe(file);
      expect(receipt.formats.map((summary) => summary.format)).toContain(format);
      expect(receipt.totals.runs).toBeGreaterThan(0);
      expect(receipt.totals).toMatchObject({
        runs: expected.summary.totals.runs,
        events: expected.summary.totals.events,
        appended: expected.summary.totals.appended,
        rejects: expected.summary.totals.rejects,
      });
      const ids = await log.query<{ id: string; run_id: string }>('SELECT id, run_id FROM events ORDER BY run_id, id');
      expect(ids).toEqual(expected.ids);
      for (const reject of receipt.rejects) expect(reject.file.startsWith(top)).toBe(true);
      expect(uploadsLeft()).toEqual([]);

      const again = (await (await upload(app, body, `?name=${file}`)).json()) as Receipt;
      expect(again.totals.appended).toBe(0);
      expect(again.totals.events).toBe(receipt.totals.events);
      expect(Number((await log.query<{ n: bigint }>('SELECT count(*) AS n FROM events'))[0]?.n)).toBe(ids.length);
      expect(uploadsLeft()).toEqual([]);
    },
  );

  it('imports a single trace file named by ?name=, with --model and --dataset as parameters', async () => {
    const app = createApp({ log });
    const body = readFileSync(join(fixtures, 'swe-agent/loose/acme__widget-7.traj'));
    const response = await upload(app, body, '?name=acme__widget-7.traj&model=model-x&dataset=uploaded');
    expect(response.status).toBe(200);
    const receipt = (await response.json()) as Receipt;
    expect(receipt.formats.map((summary) => [summary.format, summary.runs])).toEqual([['swe-agent', 1]]);
    const runs = await log.query<{ model: string; dataset: string }>('SELECT model, dataset FROM runs');
    expect(runs).toEqual([expect.objectContaining({ dataset: 'uploaded' })]);
    const unnamed = await upload(app, body, '');
    expect(unnamed.status).toBe(400);
    expect(((await unnamed.json()) as { detail: string }).detail).toMatch(/no name .*\?name=FILE/);
    const unknown = await upload(app, body, '?name=acme__widget-7.traj&format=nope');
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { detail: string }).detail).toMatch(/Unknown format "nope"/);
  });

  it.each([
    [
      'a ../ entry',
      'evil.tar',
      tar([
        { name: 'job/ok.txt', data: Buffer.from('ok') },
        { name: '../escape.txt', data: Buffer.from('x') },
      ]),
      '../escape.txt',
      /climbs out/,
    ],
    [
      'an absolute name',
      'evil.zip',
      zip([{ name: '/tmp/selfharness-escape.txt', data: Buffer.from('x') }]),
      '/tmp/selfharness-escape.txt',
      /absolute path/,
    ],
    [
      'a symbolic link out of the upload',
      'evil.tar.gz',
      gzipSync(
        tar([
          { name: 'job/link', kind: 'symlink', target: '../../../etc' },
          { name: 'job/link/passwd', data: Buffer.from('x') },
        ]),
      ),
      'job/link',
      /link to \.\.\/\.\.\/\.\.\/etc, outside/,
    ],
  ])('refuses %s with a 400 naming the entry, and writes nothing', async (_name, file, body, entry, reason) => {
    const app = createApp({ log });
    const response = await upload(app, body, `?name=${file}`);
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { title: string; detail: string };
    expect(problem.title).toBe('Archive entry refused');
    expect(problem.detail).toContain(`Entry ${entry} of upload ${file} was refused`);
    expect(problem.detail).toMatch(reason);
    expect(existsSync(join(stagingRoot(), 'uploads', 'escape.txt'))).toBe(false);
    expect(existsSync('/tmp/selfharness-escape.txt')).toBe(false);
    expect(uploadsLeft()).toEqual([]);
    expect(Number((await log.query<{ n: bigint }>('SELECT count(*) AS n FROM events'))[0]?.n)).toBe(0);
  });

  it('refuses a corrupt archive with what is wrong, and an archive past the limits with 413', async () => {
    const app = createApp({ log, importLimits: { maxTotalBytes: 5_000 } });
    const whole = gzipSync(tar(membersOf(join(fixtures, 'harbor/jobs/tb2-sample'), 'tb2-sample')));
    const cut = await upload(app, whole.subarray(0, Math.floor(whole.length / 2)), '?name=tb2-sample.tgz');
    expect(cut.status).toBe(400);
    const cutProblem = (await cut.json()) as { title: string; detail: string };
    expect(cutProblem.title).toBe('Corrupt archive');
    expect(cutProblem.detail).toMatch(/Cannot read upload tb2-sample\.tgz: gzip: unexpected end of file/);
    const garbage = await upload(app, Buffer.from('this is not a zip archive at all'), '?name=run.zip');
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { detail: string }).detail).toMatch(/no zip directory was found/);
    const members = membersOf(join(fixtures, 'tb1/mini-run'), 'mini-run');
    const damaged = tar(members);
    damaged[600] = (damaged[600] as number) ^ 0xff;
    damaged[0] = (damaged[0] as number) ^ 0x01;
    const checksum = await upload(app, damaged, '?name=mini-run.tar');
    expect(((await checksum.json()) as { detail: string }).detail).toMatch(/tar header at byte 0 is damaged/);
    const large = await upload(
      app,
      zip(membersOf(join(fixtures, 'harbor/jobs/tb2-sample'), 'tb2-sample')),
      '?name=tb2-sample.zip',
    );
    expect(large.status).toBe(413);
    expect(((await large.json()) as { detail: string }).detail).toMatch(/unpacks to more than 5000 bytes/);
    expect(uploadsLeft()).toEqual([]);
    expect(Number((await log.query<{ n: bigint }>('SELECT count(*) AS n FROM events'))[0]?.n)).toBe(0);
  });
});
