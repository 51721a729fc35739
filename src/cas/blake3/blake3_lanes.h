/*
 * A lane kernel, included once per variant by blake3.c with these macros defined:
 *   B3L_LANES   4, 8 or 16: inputs compressed at once, one per 32-bit lane of a vector
 *   B3L_NAME    the function's name
 *   B3L_TARGET  its function attributes (a target("...") clone, or nothing for the baseline)
 *   B3L_BYTEROT 1 to rotate by 16 and 8 with a byte shuffle (one pshufb) instead of two shifts
 *
 * B3L_NAME(base, stride, blocks, counter, inc, flags, fstart, fend, out) hashes B3L_LANES inputs,
 * input l being `blocks` full 64-byte blocks at base + l * stride, from the chaining value IV, with
 * counter (counter + l * inc), and writes chaining value l (32 bytes, little-endian words) to
 * out + 32 * l. The first block also gets `fstart`, the last `fend`, every block `flags`. Chunks:
 * stride 1024, 16 blocks, inc 1, CHUNK_START/CHUNK_END. Parents: stride 64, 1 block, inc 0, PARENT.
 * Every input block is read before any output is written, so parents may be written over the
 * chaining values they are computed from. With `prefetch` set, the next B3L_LANES inputs (which
 * must exist) are asked into the cache block by block while these are hashed: 16 short strided
 * streams are more than the hardware prefetcher follows well, and streaming from memory would
 * otherwise cost a third more.
 *
 * The message words arrive block by block; a transpose turns "16 words of lane l" rows into
 * "word j of every lane" vectors with log2(lanes) rounds of interleaving shuffles.
 */
#include <string.h>
#include "blake3_impl.h"

#define B3L_CAT_(a, b) a##b
#define B3L_CAT(a, b) B3L_CAT_(a, b)
#define B3L_V B3L_CAT(b3_u32x, B3L_LANES)
#define B3L_B B3L_CAT(b3_u8x, B3L_LANES)

typedef uint32_t B3L_V __attribute__((vector_size(4 * B3L_LANES), aligned(4)));
typedef uint8_t B3L_B __attribute__((vector_size(4 * B3L_LANES), aligned(4)));

#if B3L_LANES == 4
#define B3L_LO ((B3L_V){0, 4, 1, 5})
#define B3L_HI ((B3L_V){2, 6, 3, 7})
#elif B3L_LANES == 8
#define B3L_LO ((B3L_V){0, 8, 1, 9, 2, 10, 3, 11})
#define B3L_HI ((B3L_V){4, 12, 5, 13, 6, 14, 7, 15})
#elif B3L_LANES == 16
#define B3L_LO ((B3L_V){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23})
#define B3L_HI ((B3L_V){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
#else
#error "B3L_LANES must be 4, 8 or 16"
#endif

/* byte shuffles rotating every 32-bit word right by 16 and by 8 (little-endian words) */
#define B3L_R16W(w) 4 * w + 2, 4 * w + 3, 4 * w + 0, 4 * w + 1
#define B3L_R8W(w) 4 * w + 1, 4 * w + 2, 4 * w + 3, 4 * w + 0
#if B3L_LANES == 4
#define B3L_R16 ((B3L_B){B3L_R16W(0), B3L_R16W(1), B3L_R16W(2), B3L_R16W(3)})
#define B3L_R8 ((B3L_B){B3L_R8W(0), B3L_R8W(1), B3L_R8W(2), B3L_R8W(3)})
#elif B3L_LANES == 8
#define B3L_R16 ((B3L_B){B3L_R16W(0), B3L_R16W(1), B3L_R16W(2), B3L_R16W(3), B3L_R16W(4), B3L_R16W(5), B3L_R16W(6), B3L_R16W(7)})
#define B3L_R8 ((B3L_B){B3L_R8W(0), B3L_R8W(1), B3L_R8W(2), B3L_R8W(3), B3L_R8W(4), B3L_R8W(5), B3L_R8W(6), B3L_R8W(7)})
#endif

#define B3L_ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#if B3L_BYTEROT && B3L_LANES != 16
#define B3L_ROTR16(x) ((B3L_V)__builtin_shuffle((B3L_B)(x), B3L_R16))
#define B3L_ROTR8(x) ((B3L_V)__builtin_shuffle((B3L_B)(x), B3L_R8))
#else
#define B3L_ROTR16(x) B3L_ROTR(x, 16)
#define B3L_ROTR8(x) B3L_ROTR(x, 8)
#endif

B3L_TARGET static void B3L_NAME(const uint8_t *base, size_t stride, size_t blocks, uint64_t counter, int inc,
                                uint32_t flags, uint32_t fstart, uint32_t fend, int prefetch, uint8_t *out) {
  B3L_V h[8] = {
    (B3L_V){} + B3_IV0, (B3L_V){} + B3_IV1, (B3L_V){} + B3_IV2, (B3L_V){} + B3_IV3,
    (B3L_V){} + B3_IV4, (B3L_V){} + B3_IV5, (B3L_V){} + B3_IV6, (B3L_V){} + B3_IV7,
  };
  B3L_V clo, chi;
  for (int l = 0; l < B3L_LANES; l++) {
    uint64_t c = counter + (inc ? (uint64_t)l : 0);
    clo[l] = (uint32_t)c;
    chi[l] = (uint32_t)(c >> 32);
  }
  for (size_t b = 0; b < blocks; b++) {
    B3L_V m[16];
    /* rows: words [g * lanes, (g + 1) * lanes) of each lane's block; transposed into m[g * lanes + j] */
    for (int g = 0; g < 16 / B3L_LANES; g++) {
      B3L_V r[B3L_LANES], t[B3L_LANES];
      for (int l = 0; l < B3L_LANES; l++) memcpy(&r[l], base + (size_t)l * stride + 64 * b + 4 * B3L_LANES * g, sizeof(B3L_V));
      for (int s = B3L_LANES; s > 1; s /= 2) {
        for (int i = 0; i < B3L_LANES / 2; i++) {
          t[2 * i] = __builtin_shuffle(r[i], r[i + B3L_LANES / 2], B3L_LO);
          t[2 * i + 1] = __builtin_shuffle(r[i], r[i + B3L_LANES / 2], B3L_HI);
        }
        memcpy(r, t, sizeof r);
      }
      for (int j = 0; j < B3L_LANES; j++) m[g * B3L_LANES + j] = r[j];
    }
    if (prefetch)
      for (int l = 0; l < B3L_LANES; l++) __builtin_prefetch(base + (size_t)(B3L_LANES + l) * stride + 64 * b);
    uint32_t f = flags | (b == 0 ? fstart : 0) | (b + 1 == blocks ? fend : 0);
    B3L_V v[16] = {
      h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
      (B3L_V){} + B3_IV0, (B3L_V){} + B3_IV1, (B3L_V){} + B3_IV2, (B3L_V){} + B3_IV3,
      clo, chi, (B3L_V){} + B3_BLOCK_LEN, (B3L_V){} + f,
    };
#define G(a, b, c, d, x, y)          \
  do {                               \
    v[a] = v[a] + v[b] + (x);        \
    v[d] = B3L_ROTR16(v[d] ^ v[a]);  \
    v[c] = v[c] + v[d];              \
    v[b] = B3L_ROTR(v[b] ^ v[c], 12); \
    v[a] = v[a] + v[b] + (y);        \
    v[d] = B3L_ROTR8(v[d] ^ v[a]);   \
    v[c] = v[c] + v[d];              \
    v[b] = B3L_ROTR(v[b] ^ v[c], 7); \
  } while (0)
    B3_SEVEN_ROUNDS(m);
#undef G
    for (int i = 0; i < 8; i++) h[i] = v[i] ^ v[i + 8];
  }
  for (int l = 0; l < B3L_LANES; l++)
    for (int i = 0; i < 8; i++) {
      uint32_t w = h[i][l];
      memcpy(out + 32 * l + 4 * i, &w, 4);
    }
}

#undef B3L_V
#undef B3L_B
#undef B3L_LO
#undef B3L_HI
#undef B3L_R16W
#undef B3L_R8W
#undef B3L_R16
#undef B3L_R8
#undef B3L_ROTR
#undef B3L_ROTR16
#undef B3L_ROTR8
#undef B3L_LANES
#undef B3L_NAME
#undef B3L_TARGET
#undef B3L_BYTEROT
