import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Embedder } from '../../analytics/embedding/index.js';

/**
 * Writes a tiny BERT-like sentence-embedding model in the layout transformers.js loads from disk (`config.json`,
 * `tokenizer.json`, `tokenizer_config.json`, `onnx/model.onnx`), so the transformers embedder's loading path runs for
 * real without downloading weights. The graph is one `Gather` of the token ids from a small embedding table: each
 * word of the vocabulary has a fixed vector, and the pipeline's mean pooling turns a text into the average of its
 * words' vectors. Texts that share words therefore land close together, which is all a clustering test needs.
 *
 * The ONNX protobuf is encoded by hand below (no generator is installed here): only the fields the graph uses.
 */
export const TINY_MODEL_DIMENSIONS = 16;

const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'] as const;

/** Words the tiny model knows; others become `[UNK]`. Chosen from what failure texts say. */
const WORDS = [
  'repeated',
  'failed',
  'command',
  'tool',
  'call',
  'loop',
  'missing',
  'required',
  'artifact',
  'file',
  'lost',
  'environment',
  'state',
  'dependency',
  'not',
  'found',
  'module',
  'exploration',
  'without',
  'implementation',
  'budget',
  'exhaustion',
  'cost',
  'limit',
  'malformed',
  'parse',
  'error',
  'premature',
  'completion',
  'make',
  'test',
  'build',
  'python',
  'pip',
  'install',
  'edit',
  'exit',
  'output',
  'txt',
  'cd',
  'export',
  'ls',
  'cat',
  'submit',
];

export interface TinyModelOptions {
  /** Changes every vector (a different "model"); default 1. */
  seed?: number;
}

/** Creates the model folder under `folder` and returns its path. */
export function writeTinyEmbeddingModel(folder: string, options: TinyModelOptions = {}): string {
  const vocabulary = [...SPECIAL_TOKENS, ...WORDS];
  mkdirSync(join(folder, 'onnx'), { recursive: true });
  writeFileSync(join(folder, 'config.json'), JSON.stringify(modelConfig(vocabulary.length), null, 2));
  writeFileSync(join(folder, 'tokenizer.json'), JSON.stringify(tokenizerJson(vocabulary), null, 2));
  writeFileSync(
    join(folder, 'tokenizer_config.json'),
    JSON.stringify(
      {
        tokenizer_class: 'BertTokenizer',
        do_lower_case: true,
        model_max_length: 128,
        cls_token: '[CLS]',
        sep_token: '[SEP]',
        pad_token: '[PAD]',
        unk_token: '[UNK]',
      },
      null,
      2,
    ),
  );
  writeFileSync(join(folder, 'onnx', 'model.onnx'), gatherModel(embeddingTable(vocabulary.length, options.seed ?? 1)));
  return folder;
}

function modelConfig(vocabularySize: number) {
  return {
    model_type: 'bert',
    architectures: ['BertModel'],
    hidden_size: TINY_MODEL_DIMENSIONS,
    num_hidden_layers: 0,
    num_attention_heads: 1,
    intermediate_size: TINY_MODEL_DIMENSIONS,
    max_position_embeddings: 128,
    vocab_size: vocabularySize,
    type_vocab_size: 1,
    pad_token_id: 0,
  };
}

function tokenizerJson(vocabulary: readonly string[]) {
  const ids = Object.fromEntries(vocabulary.map((token, index) => [token, index]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((token, index) => ({
      id: index,
      content: token,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [ids['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [ids['[SEP]']], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: ids,
    },
  };
}

/**
 * One vector per token from a seeded generator. The special tokens get small vectors so that they barely move the
 * mean; words get unit-scale ones.
 */
function embeddingTable(vocabularySize: number, seed: number): Float32Array {
  const table = new Float32Array(vocabularySize * TINY_MODEL_DIMENSIONS);
  let state = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000 - 0.5;
  };
  for (let token = 0; token < vocabularySize; token++) {
    const scale = token < SPECIAL_TOKENS.length ? 0.01 : 1;
    for (let dimension = 0; dimension < TINY_MODEL_DIMENSIONS; dimension++) {
      table[token * TINY_MODEL_DIMENSIONS + dimension] = next() * scale;
    }
  }
  return table;
}

// --- a minimal protobuf writer for the ONNX messages used here ---

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const ONNX_FLOAT = 1;
const ONNX_INT64 = 7;

function varint(value: number | bigint): number[] {
  let remaining = BigInt(value);
  const bytes: number[] = [];
  do {
    let byte = Number(remaining & 0x7fn);
    remaining >>= 7n;
    if (remaining !== 0n) byte |= 0x80;
    bytes.push(byte);
  } while (remaining !== 0n);
  return bytes;
}

function key(field: number, wire: number): number[] {
  return varint((field << 3) | wire);
}

function integerField(field: number, value: number): number[] {
  return [...key(field, WIRE_VARINT), ...varint(value)];
}

function bytesField(field: number, bytes: Uint8Array | readonly number[]): number[] {
  return [...key(field, WIRE_LENGTH_DELIMITED), ...varint(bytes.length), ...bytes];
}

function stringField(field: number, text: string): number[] {
  return bytesField(field, new TextEncoder().encode(text));
}

/** `ValueInfoProto` of a tensor whose dimensions are symbolic names or fixed sizes. */
function tensorValueInfo(name: string, elementType: number, dimensions: readonly (string | number)[]): number[] {
  const shape = dimensions.flatMap((dimension) =>
    bytesField(1, typeof dimension === 'string' ? stringField(2, dimension) : integerField(1, dimension)),
  );
  const tensorType = [...integerField(1, elementType), ...bytesField(2, shape)];
  const type = bytesField(1, tensorType);
  return [...stringField(1, name), ...bytesField(2, type)];
}

function gatherModel(table: Float32Array): Uint8Array {
  const vocabularySize = table.length / TINY_MODEL_DIMENSIONS;
  const initializer = [
    ...integerField(1, vocabularySize),
    ...integerField(1, TINY_MODEL_DIMENSIONS),
    ...integerField(2, ONNX_FLOAT),
    ...stringField(8, 'embeddings.word_embeddings.weight'),
    ...bytesField(9, new Uint8Array(table.buffer, table.byteOffset, table.byteLength)),
  ];
  const node = [
    ...stringField(1, 'embeddings.word_embeddings.weight'),
    ...stringField(1, 'input_ids'),
    ...stringField(2, 'last_hidden_state'),
    ...stringField(3, 'word_embeddings'),
    ...stringField(4, 'Gather'),
    ...bytesField(5, [...stringField(1, 'axis'), ...integerField(3, 0), ...integerField(20, 2)]),
  ];
  const graph = [
    ...bytesField(1, node),
    ...stringField(2, 'tiny-sentence-embedding'),
    ...bytesField(5, initializer),
    ...bytesField(11, tensorValueInfo('input_ids', ONNX_INT64, ['batch_size', 'sequence_length'])),
    ...bytesField(11, tensorValueInfo('attention_mask', ONNX_INT64, ['batch_size', 'sequence_length'])),
    ...bytesField(
      12,
      tensorValueInfo('last_hidden_state', ONNX_FLOAT, ['batch_size', 'sequence_length', TINY_MODEL_DIMENSIONS]),
    ),
  ];
  const model = [
    ...integerField(1, 8),
    ...stringField(2, 'selfharness-tests'),
    ...bytesField(7, graph),
    ...bytesField(8, [...stringField(1, ''), ...integerField(2, 13)]),
  ];
  return Uint8Array.from(model);
}

/**
 * Test double: wraps an embedder and records every text it was asked to embed, so a test can see that a second
 * mining run embeds nothing new.
 */
export class CountingEmbedder implements Embedder {
  readonly requests: string[][] = [];

  constructor(private readonly inner: Embedder) {}

  get name(): string {
    return this.inner.name;
  }

  get dimensions(): number | undefined {
    return this.inner.dimensions;
  }

  get embeddedTexts(): number {
    return this.requests.reduce((total, batch) => total + batch.length, 0);
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.requests.push([...texts]);
    return this.inner.embed(texts);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
