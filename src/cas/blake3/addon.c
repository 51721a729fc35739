/*
 * The Node-API face of blake3.c, loaded by src/cas/blake3.ts from dist/native/blake3.node
 * (scripts/build-native.mjs). Context-aware (NAPI_MODULE_INIT, no per-process state besides the
 * CPU's features), so every worker thread can load it.
 *
 *   hash(bytes[, variant]) -> Uint8Array(32)
 *   hashRanges(src, offs, lens, out[, outOff[, variant]]) -> undefined
 *       the digest of src's bytes [offs[i], offs[i] + lens[i]) into out at outOff + 32 * i;
 *       the digests' bytes in out must not overlap any of the ranges (a digest written would
 *       change bytes still to be hashed): a RangeError
 *   variants() -> names of the variants this CPU runs, widest first
 *   variant -> the name of the widest one (the default)
 *
 * bytes, src and out: any typed array, DataView or ArrayBuffer, read and written in place; a view
 * may be over a SharedArrayBuffer or a WebAssembly.Memory's buffer, but a bare SharedArrayBuffer is
 * refused (Node-API 8 cannot read one): pass a Uint8Array over it. Offsets count bytes from the
 * view's start.
 * offs and lens: arrays or typed arrays of non-negative integers. Every argument is checked before
 * a byte is read: a range outside src or an out too small throws a RangeError and writes nothing.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blake3.h"

#define CHECK(call)                                      \
  do {                                                   \
    if ((call) != napi_ok) return throw_pending(env);    \
  } while (0)

/* A failed napi call already threw, or left an error to report as one. */
static napi_value throw_pending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = 0;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, "ERR_BLAKE3_NAPI", info && info->error_message ? info->error_message : "blake3: a Node-API call failed");
  }
  return 0;
}

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return 0;
}

static napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return 0;
}

/* The bytes per element of a typed array type; 0 for a type this build does not know. */
static size_t element_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: return 8;
    default: return 0;
  }
}

/* The bytes of a typed array, DataView or ArrayBuffer; 0 (with a TypeError thrown) otherwise. */
static int bytes_of(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len) {
  static uint8_t empty[1];
  bool is = false;
  void *p = 0;
  char msg[160];
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n = 0, off = 0;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok) return throw_pending(env), 0;
    /* a newer typed array (its bytes unknown here) must not hash as 0 bytes */
    size_t size = element_size(t);
    if (!size) {
      snprintf(msg, sizeof msg, "blake3: %s is a typed array of an element type this addon does not know (%d); pass a Uint8Array over its bytes", what, (int)t);
      type_error(env, msg);
      return 0;
    }
    *len = n * size;
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    size_t off = 0;
    napi_value ab;
    if (napi_get_dataview_info(env, v, len, &p, &ab, &off) != napi_ok) return throw_pending(env), 0;
  } else if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, &p, len) != napi_ok) return throw_pending(env), 0;
  } else {
    snprintf(msg, sizeof msg, "blake3: %s must be a typed array, a DataView or an ArrayBuffer (a SharedArrayBuffer through a view: new Uint8Array(sab))", what);
    type_error(env, msg);
    return 0;
  }
  /* a detached buffer has no data and no bytes */
  *data = p ? (uint8_t *)p : empty;
  if (!p) *len = 0;
  return 1;
}

/* A non-negative safe integer from a JS number (what[at], or what when at < 0); 0 with a RangeError thrown otherwise. */
static int index_of(napi_env env, double d, const char *what, long long at, uint64_t *out) {
  if (!(d >= 0 && d <= 9007199254740991.0 && floor(d) == d)) {
    char msg[200];
    if (at < 0) snprintf(msg, sizeof msg, "blake3: %s must be a non-negative integer, not %g", what, d);
    else snprintf(msg, sizeof msg, "blake3: %s[%lld] must be a non-negative integer, not %g", what, at, d);
    range_error(env, msg);
    return 0;
  }
  *out = (uint64_t)d;
  return 1;
}

/* offs or lens: an array or typed array of non-negative integers, into a malloc'ed list. */
static int list_of(napi_env env, napi_value v, const char *what, uint64_t **out, size_t *count) {
  char msg[160];
  bool is = false;
  *out = 0;
  *count = 0;
  if (napi_is_array(env, v, &is) == napi_ok && is) {
    uint32_t n = 0;
    if (napi_get_array_length(env, v, &n) != napi_ok) return throw_pending(env), 0;
    uint64_t *list = malloc(sizeof(uint64_t) * (n ? n : 1));
    if (!list) return napi_throw_error(env, "ERR_BLAKE3_NOMEM", "blake3: out of memory"), 0;
    for (uint32_t i = 0; i < n; i++) {
      napi_value e;
      double d;
      if (napi_get_element(env, v, i, &e) != napi_ok) return free(list), throw_pending(env), 0;
      if (napi_get_value_double(env, e, &d) != napi_ok) {
        free(list);
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (!pending) {
          snprintf(msg, sizeof msg, "blake3: %s[%u] must be a number", what, i);
          type_error(env, msg);
        }
        return 0;
      }
      if (!index_of(env, d, what, i, &list[i])) return free(list), 0;
    }
    *out = list;
    *count = n;
    return 1;
  }
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n = 0, off = 0;
    void *p = 0;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok) return throw_pending(env), 0;
    if (!p) n = 0;
    uint64_t *list = malloc(sizeof(uint64_t) * (n ? n : 1));
    if (!list) return napi_throw_error(env, "ERR_BLAKE3_NOMEM", "blake3: out of memory"), 0;
    for (size_t i = 0; i < n; i++) {
      double d;
      switch (t) {
        case napi_int8_array: d = ((int8_t *)p)[i]; break;
        case napi_uint8_array: case napi_uint8_clamped_array: d = ((uint8_t *)p)[i]; break;
        case napi_int16_array: { int16_t x; memcpy(&x, (uint8_t *)p + 2 * i, 2); d = x; break; }
        case napi_uint16_array: { uint16_t x; memcpy(&x, (uint8_t *)p + 2 * i, 2); d = x; break; }
        case napi_int32_array: { int32_t x; memcpy(&x, (uint8_t *)p + 4 * i, 4); d = x; break; }
        case napi_uint32_array: { uint32_t x; memcpy(&x, (uint8_t *)p + 4 * i, 4); d = x; break; }
        case napi_float32_array: { float x; memcpy(&x, (uint8_t *)p + 4 * i, 4); d = x; break; }
        case napi_float64_array: memcpy(&d, (uint8_t *)p + 8 * i, 8); break;
        case napi_bigint64_array: { int64_t x; memcpy(&x, (uint8_t *)p + 8 * i, 8); d = x < 0 ? -1 : (x > 9007199254740991 ? INFINITY : (double)x); break; }
        case napi_biguint64_array: { uint64_t x; memcpy(&x, (uint8_t *)p + 8 * i, 8); d = x > 9007199254740991u ? INFINITY : (double)x; break; }
        default: free(list); snprintf(msg, sizeof msg, "blake3: %s has an unsupported element type", what); type_error(env, msg); return 0;
      }
      if (!index_of(env, d, what, (long long)i, &list[i])) return free(list), 0;
    }
    *out = list;
    *count = n;
    return 1;
  }
  snprintf(msg, sizeof msg, "blake3: %s must be an array or a typed array of byte offsets/lengths", what);
  type_error(env, msg);
  return 0;
}

/* The variant named by an optional string argument (undefined: the widest supported one). */
static int variant_of(napi_env env, napi_value v, int *variant) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return throw_pending(env), 0;
  if (t == napi_undefined) {
    *variant = b3_variant_best();
    return 1;
  }
  char name[32], msg[160];
  size_t n = 0, copied = 0;
  /* the length first: a longer name would be cut to fit, and a NUL inside it would end it early */
  if (t != napi_string || napi_get_value_string_utf8(env, v, 0, 0, &n) != napi_ok) {
    type_error(env, "blake3: variant must be a string (one of variants())");
    return 0;
  }
  if (n >= sizeof name) {
    snprintf(msg, sizeof msg, "blake3: variant names are shorter than %zu bytes, not %zu (see variants())", sizeof name, n);
    range_error(env, msg);
    return 0;
  }
  if (napi_get_value_string_utf8(env, v, name, sizeof name, &copied) != napi_ok) return throw_pending(env), 0;
  if (copied != n || strlen(name) != n) {
    snprintf(msg, sizeof msg, "blake3: variant \"%s\" is followed by a NUL character and more; pass one of variants()", name);
    range_error(env, msg);
    return 0;
  }
  int id = b3_variant_parse(name);
  if (id < 0 || !b3_variant_supported(id)) {
    snprintf(msg, sizeof msg, "blake3: variant \"%s\" is not one this CPU and build run (see variants())", name);
    range_error(env, msg);
    return 0;
  }
  *variant = id;
  return 1;
}

static napi_value js_hash(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, 0, 0));
  if (argc < 1) return type_error(env, "blake3: hash(bytes[, variant]) needs bytes");
  int variant;
  if (!variant_of(env, argv[1], &variant)) return 0;
  void *digest;
  napi_value ab, result;
  CHECK(napi_create_arraybuffer(env, B3_OUT_LEN, &digest, &ab));
  CHECK(napi_create_typedarray(env, napi_uint8_array, B3_OUT_LEN, ab, 0, &result));
  /* after the last call that can run JS, so the bytes cannot move or be detached while read */
  uint8_t *data;
  size_t len;
  if (!bytes_of(env, argv[0], "bytes", &data, &len)) return 0;
  b3_hash(data, len, variant, digest);
  return result;
}

static napi_value js_hash_ranges(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  char msg[200];
  CHECK(napi_get_cb_info(env, info, &argc, argv, 0, 0));
  if (argc < 4) return type_error(env, "blake3: hashRanges(src, offs, lens, out[, outOff[, variant]]) needs four arguments");
  int variant;
  if (!variant_of(env, argv[5], &variant)) return 0;
  uint64_t out_off = 0;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[4], &t));
  if (t != napi_undefined) {
    double d;
    if (t != napi_number) return type_error(env, "blake3: outOff must be a number");
    CHECK(napi_get_value_double(env, argv[4], &d));
    if (!index_of(env, d, "outOff", -1, &out_off)) return 0;
  }
  /* reading list elements can run JS (getters), so the lists come before the buffers' addresses */
  uint64_t *offs = 0, *lens = 0;
  size_t n = 0, nl = 0;
  if (!list_of(env, argv[1], "offs", &offs, &n)) return 0;
  if (!list_of(env, argv[2], "lens", &lens, &nl)) return free(offs), (napi_value)0;
  napi_value result = 0;
  uint8_t *src, *out;
  size_t src_len, out_len;
  if (n != nl) {
    snprintf(msg, sizeof msg, "blake3: offs and lens must have the same length (%zu and %zu)", n, nl);
    range_error(env, msg);
  } else if (bytes_of(env, argv[0], "src", &src, &src_len) && bytes_of(env, argv[3], "out", &out, &out_len)) {
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++)
      if (offs[i] > src_len || lens[i] > src_len - offs[i]) {
        snprintf(msg, sizeof msg, "blake3: range %zu [%llu, %llu + %llu) is outside src (%zu bytes)", i,
                 (unsigned long long)offs[i], (unsigned long long)offs[i], (unsigned long long)lens[i], src_len);
        range_error(env, msg);
        ok = 0;
      }
    if (ok && (out_off > out_len || (out_len - out_off) / B3_OUT_LEN < n)) {
      snprintf(msg, sizeof msg, "blake3: out (%zu bytes) cannot hold %zu digests from byte %llu", out_len, n, (unsigned long long)out_off);
      range_error(env, msg);
      ok = 0;
    }
    /* the digests' bytes [d0, d1) against each non-empty range [r0, r1): a digest written into a
       range not hashed yet would change what is hashed */
    uintptr_t d0 = (uintptr_t)out + (uintptr_t)out_off, d1 = d0 + (uintptr_t)B3_OUT_LEN * n;
    for (size_t i = 0; ok && i < n; i++) {
      uintptr_t r0 = (uintptr_t)src + (uintptr_t)offs[i], r1 = r0 + (uintptr_t)lens[i];
      if (r0 < r1 && r0 < d1 && d0 < r1) {
        snprintf(msg, sizeof msg, "blake3: out's digests [%llu, %llu) overlap range %zu of src; write them where no range is read",
                 (unsigned long long)out_off, (unsigned long long)(out_off + (uint64_t)B3_OUT_LEN * n), i);
        range_error(env, msg);
        ok = 0;
      }
    }
    if (ok) {
      for (size_t i = 0; i < n; i++) b3_hash(src + offs[i], (size_t)lens[i], variant, out + out_off + B3_OUT_LEN * i);
      napi_get_undefined(env, &result);
    }
  }
  free(offs);
  free(lens);
  return result;
}

static napi_value js_variants(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value list, name;
  uint32_t k = 0;
  CHECK(napi_create_array(env, &list));
  for (int v = B3_VARIANTS - 1; v >= 0; v--)
    if (b3_variant_supported(v)) {
      CHECK(napi_create_string_utf8(env, b3_variant_name(v), NAPI_AUTO_LENGTH, &name));
      CHECK(napi_set_element(env, list, k++, name));
    }
  return list;
}

NAPI_MODULE_INIT() {
  napi_value fn, name;
  if (napi_create_function(env, "hash", NAPI_AUTO_LENGTH, js_hash, 0, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "hash", fn) != napi_ok ||
      napi_create_function(env, "hashRanges", NAPI_AUTO_LENGTH, js_hash_ranges, 0, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "hashRanges", fn) != napi_ok ||
      napi_create_function(env, "variants", NAPI_AUTO_LENGTH, js_variants, 0, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "variants", fn) != napi_ok ||
      napi_create_string_utf8(env, b3_variant_name(b3_variant_best()), NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_set_named_property(env, exports, "variant", name) != napi_ok)
    return throw_pending(env);
  return exports;
}
