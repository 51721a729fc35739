/*
 * BLAKE3 (hash mode, 32-byte output) for git-zoo's chunk CIDs, written from the BLAKE3 paper:
 * 1 KiB chunks of 64-byte blocks, a 7-round compression function, and a binary tree of chaining
 * values whose left subtree always holds the largest power-of-two number of chunks.
 *
 * Speed comes from compressing the same block of many chunks (or many parents) at once, one chunk
 * per SIMD lane: 16 lanes with AVX-512, 8 with AVX2, 4 with SSE4.1 or the baseline 128-bit vectors
 * (SSE2 on x86-64, NEON/ASIMD on arm64), and 1 in the portable scalar path. The widest variant the
 * CPU supports is chosen at run time; every variant gives the same digests.
 */
#ifndef GZ_BLAKE3_H
#define GZ_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define B3_OUT_LEN 32
#define B3_BLOCK_LEN 64
#define B3_CHUNK_LEN 1024

/* Implementations, narrowest first. */
enum { B3_PORTABLE, B3_VEC128, B3_SSE41, B3_AVX2, B3_AVX512, B3_VARIANTS };

/* "portable", "vec128", "sse41", "avx2", "avx512". */
const char *b3_variant_name(int variant);
/* Chunks compressed at once. */
int b3_variant_lanes(int variant);
/* Whether this build and this CPU can run the variant. */
int b3_variant_supported(int variant);
/* The widest supported variant. */
int b3_variant_best(void);
/* The variant called `name`, or -1. */
int b3_variant_parse(const char *name);

/* The BLAKE3 digest of in[0..len) with a supported variant. */
void b3_hash(const uint8_t *in, size_t len, int variant, uint8_t out[B3_OUT_LEN]);

#endif
