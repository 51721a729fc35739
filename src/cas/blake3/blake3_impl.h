/* Constants and the round structure shared by the scalar path and the lane kernels. */
#ifndef GZ_BLAKE3_IMPL_H
#define GZ_BLAKE3_IMPL_H

#include <stdint.h>

/* Domain flags of the compression function. */
#define B3_CHUNK_START 1u
#define B3_CHUNK_END 2u
#define B3_PARENT 4u
#define B3_ROOT 8u

/* The initial chaining value: the first 32 bits of the fractional parts of the square roots of the
 * first eight primes (the same words as SHA-256's IV). */
#define B3_IV0 0x6A09E667u
#define B3_IV1 0xBB67AE85u
#define B3_IV2 0x3C6EF372u
#define B3_IV3 0xA54FF53Au
#define B3_IV4 0x510E527Fu
#define B3_IV5 0x9B05688Cu
#define B3_IV6 0x1F83D9ABu
#define B3_IV7 0x5BE0CD19u

/*
 * One round: G on the four columns, then on the four diagonals, of the 4x4 state v[0..15], each G
 * mixing in two message words. G(a, b, c, d, x, y) must be defined by the includer.
 */
#define B3_ROUND(m, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
  G(0, 4, 8, 12, m[s0], m[s1]);                                                           \
  G(1, 5, 9, 13, m[s2], m[s3]);                                                           \
  G(2, 6, 10, 14, m[s4], m[s5]);                                                          \
  G(3, 7, 11, 15, m[s6], m[s7]);                                                          \
  G(0, 5, 10, 15, m[s8], m[s9]);                                                          \
  G(1, 6, 11, 12, m[s10], m[s11]);                                                        \
  G(2, 7, 8, 13, m[s12], m[s13]);                                                         \
  G(3, 4, 9, 14, m[s14], m[s15])

/*
 * The seven rounds. Between rounds the message words are permuted by
 * (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8); instead of moving words, round r reads
 * them through that permutation applied r times.
 */
#define B3_SEVEN_ROUNDS(m)                                                  \
  B3_ROUND(m, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);        \
  B3_ROUND(m, 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8);        \
  B3_ROUND(m, 3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1);        \
  B3_ROUND(m, 10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6);        \
  B3_ROUND(m, 12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4);        \
  B3_ROUND(m, 9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7);        \
  B3_ROUND(m, 11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13)

#endif
