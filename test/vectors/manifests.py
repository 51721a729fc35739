#!/usr/bin/python3
"""Seal vectors for test/manifest.test.ts, computed independently of git-zoo's own code.

Writes test/vectors/manifests.json: for each manifest, the canonical dag-cbor bytes of its sealed
content (spec/format.md "The seal") and the seal CID. Everything here is written from the spec with
the Python standard library only (a small dag-cbor encoder, sha256 from hashlib, multibase base32 by
hand); nothing from src/ or any CBOR library is used, so the TypeScript code is checked against a
second implementation rather than against its own output.

Run from the repository root:  /usr/bin/python3 test/vectors/manifests.py
"""
import hashlib
import json
import struct
import sys
from pathlib import Path

RAW, DAG_CBOR, SHA2_256 = 0x55, 0x71, 0x12
B32 = 'abcdefghijklmnopqrstuvwxyz234567'


def base32_lower(data: bytes) -> str:
    """RFC 4648 base32, lower case, no padding (multibase 'b')."""
    bits = ''.join(f'{b:08b}' for b in data)
    bits += '0' * (-len(bits) % 5)
    return ''.join(B32[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))


def base32_lower_decode(text: str) -> bytes:
    bits = ''.join(f'{B32.index(c):05b}' for c in text)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))


class Cid:
    """A CIDv1 with a sha2-256 multihash; its string is multibase base32 ('b' + base32 lower)."""

    def __init__(self, raw: bytes):
        self.bytes = raw

    @staticmethod
    def of(codec: int, data: bytes) -> 'Cid':
        # version 1, codec, multihash (code 0x12, length 32, digest); all varints here are one byte
        return Cid(bytes([1, codec, SHA2_256, 32]) + hashlib.sha256(data).digest())

    @staticmethod
    def parse(text: str) -> 'Cid':
        assert text[0] == 'b', text
        return Cid(base32_lower_decode(text[1:]))

    def __str__(self) -> str:
        return 'b' + base32_lower(self.bytes)


def head(major: int, n: int) -> bytes:
    """A CBOR head in its shortest form (dag-cbor forbids longer ones)."""
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt, limit in ((24, '>B', 1 << 8), (25, '>H', 1 << 16), (26, '>I', 1 << 32), (27, '>Q', 1 << 64)):
        if n < limit:
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise ValueError(f'{n} does not fit a CBOR head')


def encode(v) -> bytes:
    if v is None:
        return b'\xf6'
    if v is True:
        return b'\xf5'
    if v is False:
        return b'\xf4'
    if isinstance(v, Cid):
        # tag 42, a byte string: the identity multibase prefix 0x00, then the CID's bytes
        return head(6, 42) + head(2, len(v.bytes) + 1) + b'\x00' + v.bytes
    if isinstance(v, float):
        assert v == v and v not in (float('inf'), float('-inf')), 'NaN and infinities cannot be sealed'
        if v.is_integer() and abs(v) < 2 ** 53:
            return encode(int(v))
        return b'\xfb' + struct.pack('>d', v)  # always float64
    if isinstance(v, int):
        if abs(v) >= 2 ** 53:
            return encode(float(v))
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, str):
        b = v.encode('utf-8')
        return head(3, len(b)) + b
    if isinstance(v, list):
        return head(4, len(v)) + b''.join(encode(x) for x in v)
    if isinstance(v, dict):
        # keys sorted by the length of their encoded form, then bytewise
        items = sorted(((encode(k), x) for k, x in v.items()), key=lambda kv: (len(kv[0]), kv[0]))
        return head(5, len(items)) + b''.join(k + encode(x) for k, x in items)
    raise TypeError(f'cannot seal {type(v).__name__}')


def seal_input(m: dict) -> dict:
    """The manifest without `seal`, with files[].root, checkpoints.node and parents[].seal as CID links."""
    out = {k: v for k, v in m.items() if k != 'seal'}
    out['files'] = [{**f, 'root': Cid.parse(f['root'])} for f in m['files']]
    out['parents'] = [{**p, 'seal': Cid.parse(p['seal'])} for p in m['parents']]
    if 'checkpoints' in m:
        out['checkpoints'] = {**m['checkpoints'], 'node': Cid.parse(m['checkpoints']['node'])}
    return out


def checkpoint_node(files: list, history: list) -> bytes:
    """A checkpoint node of one page (spec/format.md "Checkpoint nodes"): entries with root as a CID link."""
    return encode({'files': [{**f, 'root': Cid.parse(f['root'])} for f in files], 'history': history})


NODE_FILES = [{'path': f'checkpoint_{e:06d}/checkpoints', 'size': 13000 + e, 'sha256': f'{e + 10:x}' * 64,
               'root': str(Cid.of(RAW, bytes([e, 7]))), 'format': 'pytorch-zip', 'epoch': e} for e in range(3)] + [
              {'path': 'checkpoint_000002/optimizer', 'size': 20000, 'sha256': 'e' * 64,
               'root': str(Cid.of(RAW, b'opt')), 'format': 'pytorch-zip', 'epoch': 2, 'role': 'optimizer'}]
NODE_HISTORY = [{'epoch': 0, 'test_acc': 0.1}, {'epoch': 1, 'test_acc': 0.6, 'test_loss': 1.25}, {'epoch': 2, 'test_acc': 0.5, 'test_loss': 1.0}]
NODE_BYTES = checkpoint_node(NODE_FILES, NODE_HISTORY)


MINIMAL = {'zoo': 1, 'name': 'm', 'version': 1, 'params': {}, 'metrics': {}, 'files': [], 'parents': [],
           'env': {}, 'promoter': 'p', 'created': '2026-01-01T00:00:00Z'}

FULL = {
    'zoo': 1, 'name': 'vit-s/cifar100/ft-lr3e-4-s2', 'version': 2, 'message': 'best of the sweep', 'seed': 2,
    'dataset': 'cifar100@1', 'arch': 'vit-s', 'params': {'lr': 0.0003, 'epochs': 50, 'warmup': True, 'sched': 'cosine'},
    'metrics': {'test_acc': 0.8125, 'test_loss': 0.5},
    'history': [{'epoch': 0, 'test_acc': 0.1}, {'epoch': 1, 'test_acc': 0.8125}],
    'config': {'path': 'config.yaml', 'size': 12, 'sha256': 'a' * 64},
    'files': [{'path': 'model.safetensors', 'size': 1048576, 'sha256': 'b' * 64,
               'root': str(Cid.of(RAW, bytes([1, 2, 3]))), 'format': 'safetensors'}],
    'parents': [{'name': 'vit-s/pretrain', 'version': 1, 'seal': str(Cid.of(DAG_CBOR, bytes([9]))), 'relation': 'fine-tune'}],
    'code': {'repo': 'https://example.invalid/lab/train.git', 'commit': 'c' * 40, 'dirty': False},
    'env': {'node': 'v20', 'git_zoo': '0.1.0'}, 'promoter': 'A Researcher <a@example.invalid>',
    'created': '2026-11-22T00:00:00.000Z',
}

VECTORS = [
    ('minimal', MINIMAL),
    ('full', FULL),
    # 1.0 is an integer when sealed; 2^53 and 1e21 are float64; negative integers use major type 1
    ('floats', {**MINIMAL, 'name': 'floats', 'metrics': {'one': 1.0, 'half': 0.5, 'tiny': 1e-300, 'neg': -2.5}}),
    ('unknown keys are sealed', {**MINIMAL, 'name': 'unknown-keys', 'future_field': {'kept': True}}),
    ('number forms', {**MINIMAL, 'name': 'numbers', 'params': {
        'zero': 0, 'small': 23, 'one_byte': 24, 'byte_max': 255, 'two_bytes': 256, 'four_bytes': 65536,
        'eight_bytes': 2 ** 32, 'max_safe': 2 ** 53 - 1, 'two_53': float(2 ** 53), 'big': 1e21,
        'minus_one': -1, 'minus_25': -25, 'min_safe': -(2 ** 53 - 1), 'third': 1 / 3, 'minus_zero_int': -0.0}}),
    ('key order: length first, then bytes, in UTF-8', {**MINIMAL, 'name': 'keys', 'params': {
        'b': 1, 'a': 2, 'aa': 3, 'z': 4, 'B': 5, 'é': 6, 'ab': 7, '~': 8, 'é1': 9, 'zz': 10}}),
    ('long strings, lists and maps', {**MINIMAL, 'name': 'long', 'message': 'x' * 300 + ' ünïcödé ' + '✓' * 30,
        'history': [{'epoch': e, 'test_acc': e / 40} for e in range(30)],
        'params': {f'p{i:02d}': i for i in range(25)}}),
    ('several files and parents', {**MINIMAL, 'name': 'multi', 'version': 3,
        'files': [{'path': f'checkpoint_{e}/model.safetensors', 'size': 1000 + e, 'sha256': f'{e:x}' * 64,
                   'root': str(Cid.of(RAW if e % 2 else DAG_CBOR, bytes([e]))), 'format': 'safetensors', 'epoch': e}
                  for e in range(3)],
        'parents': [{'name': 'a/b', 'version': 1, 'seal': str(Cid.of(DAG_CBOR, b'a')), 'relation': 'soup'},
                    {'name': 'a/c', 'version': 2, 'seal': str(Cid.of(DAG_CBOR, b'c')), 'relation': 'soup'}]}),
    # format 2: the checkpoint entries and history in a checkpoint node the manifest links
    ('format 2: checkpoint node', {**MINIMAL, 'zoo': 2, 'name': 'mz/trial-0',
        'metrics': {'test_acc': 0.5, 'test_loss': 1.0},
        'best': {'test_acc': {'value': 0.6, 'epoch': 1}, 'test_loss': {'value': 1.0, 'epoch': 2}},
        'files': [{'path': 'result.json', 'size': 300, 'sha256': 'f' * 64, 'root': str(Cid.of(RAW, b'result')), 'format': 'unknown'}],
        'checkpoints': {'node': str(Cid.of(DAG_CBOR, NODE_BYTES)), 'count': 3, 'files': 4, 'bytes': 13000 * 3 + 3 + 20000, 'epochs': [0, 2]}}),
]


def main() -> None:
    out = []
    for name, manifest in VECTORS:
        cbor = encode(seal_input(manifest))
        vector = {'name': name, 'manifest': manifest, 'cbor_hex': cbor.hex(), 'seal': str(Cid.of(DAG_CBOR, cbor))}
        if 'checkpoints' in manifest:
            vector['node'] = {'files': NODE_FILES, 'history': NODE_HISTORY, 'cbor_hex': NODE_BYTES.hex(), 'cid': str(Cid.of(DAG_CBOR, NODE_BYTES))}
        out.append(vector)
    target = Path(__file__).with_name('manifests.json')
    target.write_text(json.dumps(out, indent=2, ensure_ascii=False) + '\n', encoding='utf-8')
    print(f'wrote {len(out)} vectors to {target}', file=sys.stderr)


if __name__ == '__main__':
    main()
