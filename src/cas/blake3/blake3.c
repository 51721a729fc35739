/*
 * BLAKE3 hash mode: the compression function, chunks, the tree, and the choice of lane kernel.
 * See blake3.h. The lane kernels live in blake3_lanes.h, compiled here once per variant.
 */
#include "blake3.h"
#include "blake3_impl.h"

#include <stdlib.h>
#include <string.h>

/* the lane kernels use GCC's vector extensions (__builtin_shuffle; clang spells it differently, so
   another compiler builds the portable path only) and little-endian loads */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__) && !defined(__clang__)
#define B3_HAVE_VECTORS 1
#else
#define B3_HAVE_VECTORS 0
#endif
#if B3_HAVE_VECTORS && defined(__x86_64__)
#define B3_HAVE_X86 1
#else
#define B3_HAVE_X86 0
#endif

/* ---- scalar path ---- */

static inline uint32_t load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_le32(uint8_t *p, uint32_t w) {
  p[0] = (uint8_t)w;
  p[1] = (uint8_t)(w >> 8);
  p[2] = (uint8_t)(w >> 16);
  p[3] = (uint8_t)(w >> 24);
}

static inline uint32_t rotr32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* cv = the first 8 words of compress(cv, block, counter, block_len, flags) */
static void compress(uint32_t cv[8], const uint8_t block[B3_BLOCK_LEN], uint64_t counter, uint32_t block_len, uint32_t flags) {
  uint32_t m[16];
  for (int i = 0; i < 16; i++) m[i] = load_le32(block + 4 * i);
  uint32_t v[16] = {
    cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
    B3_IV0, B3_IV1, B3_IV2, B3_IV3, (uint32_t)counter, (uint32_t)(counter >> 32), block_len, flags,
  };
#define G(a, b, c, d, x, y)         \
  do {                              \
    v[a] = v[a] + v[b] + (x);       \
    v[d] = rotr32(v[d] ^ v[a], 16); \
    v[c] = v[c] + v[d];             \
    v[b] = rotr32(v[b] ^ v[c], 12); \
    v[a] = v[a] + v[b] + (y);       \
    v[d] = rotr32(v[d] ^ v[a], 8);  \
    v[c] = v[c] + v[d];             \
    v[b] = rotr32(v[b] ^ v[c], 7);  \
  } while (0)
  B3_SEVEN_ROUNDS(m);
#undef G
  for (int i = 0; i < 8; i++) cv[i] = v[i] ^ v[i + 8];
}

static void set_iv(uint32_t cv[8]) {
  static const uint32_t iv[8] = {B3_IV0, B3_IV1, B3_IV2, B3_IV3, B3_IV4, B3_IV5, B3_IV6, B3_IV7};
  memcpy(cv, iv, sizeof iv);
}

static void store_cv(uint8_t out[32], const uint32_t cv[8]) {
  for (int i = 0; i < 8; i++) store_le32(out + 4 * i, cv[i]);
}

/* The chaining value of one chunk (0..1024 bytes; an empty chunk is one empty block). */
static void chunk_cv(const uint8_t *in, size_t len, uint64_t counter, uint32_t root, uint8_t out[32]) {
  uint32_t cv[8];
  set_iv(cv);
  size_t blocks = len == 0 ? 1 : (len + B3_BLOCK_LEN - 1) / B3_BLOCK_LEN;
  for (size_t b = 0; b < blocks; b++) {
    uint32_t flags = (b == 0 ? B3_CHUNK_START : 0) | (b + 1 == blocks ? B3_CHUNK_END | root : 0);
    size_t n = len - b * B3_BLOCK_LEN < B3_BLOCK_LEN ? len - b * B3_BLOCK_LEN : B3_BLOCK_LEN;
    if (n == B3_BLOCK_LEN) {
      compress(cv, in + b * B3_BLOCK_LEN, counter, B3_BLOCK_LEN, flags);
    } else {
      uint8_t block[B3_BLOCK_LEN] = {0};
      if (n) memcpy(block, in + b * B3_BLOCK_LEN, n);
      compress(cv, block, counter, (uint32_t)n, flags);
    }
  }
  store_cv(out, cv);
}

/* The one-lane kernel: the same contract as the lane kernels of blake3_lanes.h, for one input. */
static void hash_one(const uint8_t *in, size_t blocks, uint64_t counter, uint32_t flags, uint32_t fstart, uint32_t fend, uint8_t out[32]) {
  uint32_t cv[8];
  set_iv(cv);
  for (size_t b = 0; b < blocks; b++)
    compress(cv, in + b * B3_BLOCK_LEN, counter, B3_BLOCK_LEN, flags | (b == 0 ? fstart : 0) | (b + 1 == blocks ? fend : 0));
  store_cv(out, cv);
}

/* ---- lane kernels ---- */

typedef void (*lane_kernel)(const uint8_t *, size_t, size_t, uint64_t, int, uint32_t, uint32_t, uint32_t, int, uint8_t *);

#if B3_HAVE_VECTORS
#define B3L_LANES 4
#define B3L_NAME hash_lanes_vec128
#define B3L_TARGET
#define B3L_BYTEROT 0
#include "blake3_lanes.h"
#endif

#if B3_HAVE_X86
#define B3L_LANES 4
#define B3L_NAME hash_lanes_sse41
#define B3L_TARGET __attribute__((target("sse4.1")))
#define B3L_BYTEROT 1
#include "blake3_lanes.h"

#define B3L_LANES 8
#define B3L_NAME hash_lanes_avx2
#define B3L_TARGET __attribute__((target("avx2")))
#define B3L_BYTEROT 1
#include "blake3_lanes.h"

#define B3L_LANES 16
#define B3L_NAME hash_lanes_avx512
#define B3L_TARGET __attribute__((target("avx512f")))
#define B3L_BYTEROT 0
#include "blake3_lanes.h"
#endif

static const struct {
  const char *name;
  int lanes;
  lane_kernel kernel;
} VARIANTS[B3_VARIANTS] = {
  [B3_PORTABLE] = {"portable", 1, 0},
#if B3_HAVE_VECTORS
  [B3_VEC128] = {"vec128", 4, hash_lanes_vec128},
#else
  [B3_VEC128] = {"vec128", 4, 0},
#endif
#if B3_HAVE_X86
  [B3_SSE41] = {"sse41", 4, hash_lanes_sse41},
  [B3_AVX2] = {"avx2", 8, hash_lanes_avx2},
  [B3_AVX512] = {"avx512", 16, hash_lanes_avx512},
#else
  [B3_SSE41] = {"sse41", 4, 0},
  [B3_AVX2] = {"avx2", 8, 0},
  [B3_AVX512] = {"avx512", 16, 0},
#endif
};

const char *b3_variant_name(int variant) { return variant >= 0 && variant < B3_VARIANTS ? VARIANTS[variant].name : 0; }

int b3_variant_lanes(int variant) { return variant >= 0 && variant < B3_VARIANTS ? VARIANTS[variant].lanes : 0; }

/* Bit v set: this build and CPU run variant v. Computed once; threads that race compute the same value. */
static int supported_mask(void) {
  static int cached = 0;
  int m = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (m) return m;
  m = 1 << B3_PORTABLE;
  for (int v = B3_PORTABLE + 1; v < B3_VARIANTS; v++) {
    if (!VARIANTS[v].kernel) continue;
    int ok = 1;
#if B3_HAVE_X86
    /* libgcc's CPU model also checks that the OS saves the AVX / AVX-512 registers (XGETBV) */
    __builtin_cpu_init();
    if (v == B3_SSE41) ok = __builtin_cpu_supports("sse4.1");
    if (v == B3_AVX2) ok = __builtin_cpu_supports("avx2");
    if (v == B3_AVX512) ok = __builtin_cpu_supports("avx512f");
#endif
    if (ok) m |= 1 << v;
  }
  __atomic_store_n(&cached, m, __ATOMIC_RELAXED);
  return m;
}

int b3_variant_supported(int variant) {
  return variant >= 0 && variant < B3_VARIANTS && (supported_mask() >> variant & 1);
}

int b3_variant_best(void) {
  for (int v = B3_VARIANTS - 1; v > 0; v--)
    if (b3_variant_supported(v)) return v;
  return B3_PORTABLE;
}

int b3_variant_parse(const char *name) {
  for (int v = 0; v < B3_VARIANTS; v++)
    if (strcmp(name, VARIANTS[v].name) == 0) return v;
  return -1;
}

/*
 * n inputs of `blocks` full blocks each, `stride` bytes apart (see blake3_lanes.h), hashed with the
 * variant's kernel while a full set of lanes remains, then with narrower supported ones.
 */
static void hash_many(int variant, const uint8_t *in, size_t stride, size_t n, size_t blocks, uint64_t counter, int inc,
                      uint32_t flags, uint32_t fstart, uint32_t fend, uint8_t *out) {
  for (int v = variant; v > B3_PORTABLE; v--) {
    if (v != variant && !b3_variant_supported(v)) continue;
    size_t lanes = (size_t)VARIANTS[v].lanes;
    while (n >= lanes) {
      VARIANTS[v].kernel(in, stride, blocks, counter, inc, flags, fstart, fend, blocks > 1 && n >= 2 * lanes, out);
      in += lanes * stride;
      out += 32 * lanes;
      counter += inc ? lanes : 0;
      n -= lanes;
    }
  }
  for (; n; n--, in += stride, out += 32, counter += inc ? 1 : 0) hash_one(in, blocks, counter, flags, fstart, fend, out);
}

/*
 * Merges n chaining values (32 bytes each, side by side in cvs, overwritten) pairwise, level by
 * level, an odd last one moving up unchanged, down to one, written to out; the last merge gets
 * `root`. This is BLAKE3's tree: every left subtree is a complete power-of-two subtree.
 */
static void merge(int variant, uint8_t *cvs, size_t n, uint32_t root, uint8_t out[32]) {
  while (n > 2) {
    size_t pairs = n / 2;
    hash_many(variant, cvs, 64, pairs, 1, 0, 0, B3_PARENT, 0, 0, cvs);
    if (n & 1) memmove(cvs + 32 * pairs, cvs + 32 * (n - 1), 32);
    n = pairs + (n & 1);
  }
  if (n == 2) hash_one(cvs, 1, 0, B3_PARENT | root, 0, 0, out);
  else memmove(out, cvs, 32);
}

/* Chunks per group: a group's chaining values fit a 16 KiB stack buffer. A power of two. */
#define GROUP_CHUNKS 512

/* The chaining value of chunks [first, first + count) of the input (only the input's last chunk may be partial). */
static void group_cv(int variant, const uint8_t *in, size_t len, uint64_t first, size_t count, uint32_t root, uint8_t out[32]) {
  uint8_t cvs[32 * GROUP_CHUNKS];
  const uint8_t *p = in + first * B3_CHUNK_LEN;
  size_t bytes = len - first * B3_CHUNK_LEN < (size_t)count * B3_CHUNK_LEN ? len - first * B3_CHUNK_LEN : count * B3_CHUNK_LEN;
  size_t full = bytes / B3_CHUNK_LEN;
  hash_many(variant, p, B3_CHUNK_LEN, full, B3_CHUNK_LEN / B3_BLOCK_LEN, first, 1, 0, B3_CHUNK_START, B3_CHUNK_END, cvs);
  if (full < count) chunk_cv(p + full * B3_CHUNK_LEN, bytes - full * B3_CHUNK_LEN, first + full, 0, cvs + 32 * full);
  merge(variant, cvs, count, root, out);
}

void b3_hash(const uint8_t *in, size_t len, int variant, uint8_t out[B3_OUT_LEN]) {
  if (!b3_variant_supported(variant)) variant = B3_PORTABLE;
  if (len <= B3_CHUNK_LEN) {
    chunk_cv(in, len, 0, B3_ROOT, out);
    return;
  }
  uint64_t chunks = (len + B3_CHUNK_LEN - 1) / B3_CHUNK_LEN;
  if (chunks <= GROUP_CHUNKS) {
    group_cv(variant, in, len, 0, (size_t)chunks, B3_ROOT, out);
    return;
  }
  /* every group but the last is a complete subtree of GROUP_CHUNKS chunks; their chaining values
     merge like chunks' (the last group's subtree is never larger than a full group's) */
  size_t groups = (size_t)((chunks + GROUP_CHUNKS - 1) / GROUP_CHUNKS);
  uint8_t stack_tops[32 * 64];
  uint8_t *tops = groups <= 64 ? stack_tops : malloc(32 * groups);
  if (!tops) abort();
  for (size_t g = 0; g < groups; g++) {
    uint64_t first = (uint64_t)g * GROUP_CHUNKS;
    size_t count = chunks - first < GROUP_CHUNKS ? (size_t)(chunks - first) : GROUP_CHUNKS;
    group_cv(variant, in, len, first, count, 0, tops + 32 * g);
  }
  merge(variant, tops, groups, B3_ROOT, out);
  if (tops != stack_tops) free(tops);
}
