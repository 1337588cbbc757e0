// attention_fused: softmax(softcap(scale · Q·Kᵀ) + mask) · V for one tile of query rows of one (batch, head),
// with an online softmax (running max and sum per row, output rescaled once at the end). The score
// matrix is never stored: each tile of TILE_K keys is scored, folded into the running statistics and
// multiplied by V while it is in registers. (FlashAttention: Dao et al. 2022, algorithm 1.)
//
// Why this shape (DESIGN.md, "The test device"): on CPU drivers texel-buffer fetches are vector loads
// and subgroupShuffle is a register permute, while shared memory and barriers are slow. So Q, K and V
// come in through RGBA texel views and values move between lanes by shuffles; no shared memory.
//
// Bindings (set 0)
//   0  Q       uniform samplerBuffer: RGBA32F / RGBA16F view (4 elements per texel) when FETCH_WIDTH = 4,
//              R32F / R16F view (one element per texel) when FETCH_WIDTH = 1; in the bf16 variants
//              (INPUT_BF16) a usamplerBuffer, RGBA16UI / R16UI views of bf16 bits (bfloat16.glsl)
//   1  K       same
//   2  V       same
//   3  output  storage buffer, vec4[] (f16vec4[] in the "_f16" variant, -DSTORAGE_F16=1; u16vec4[] of
//              bf16 bits in "_bf16", -DSTORAGE_BF16=1), also seen as float[] (float16_t[], uint16_t[])
//              for head dims that are not multiples of 4; in split mode the fp32 partial outputs
//              [split][batch·heads][Lq][4·ceil(dv/4)] (the "_bf16_input" variant: bf16 Q/K/V, fp32 output)
//   4  lse     storage buffer, float[]: log-sum-exp per row, [split][batch·heads][Lq] (written when
//              WRITE_LSE = 1 or in split mode; -inf for rows that see no key)
//   5  aux     storage buffer, uint[]: [0] query-lengths offset, [1] key-lengths offset, [2] ALiBi
//              slopes offset (float bits), [3] block-layout offset, [4] block-layout head stride
//              (0: shared), each offset 0 when absent; [5..8] bias element strides (batch, head, query,
//              key; 0 along broadcast dimensions), [9..12] the same for the boolean mask, [13] block
//              rows, [14] block columns, [15] query-starts offset, [16] key-starts offset (rows on the
//              tensors' sequence axes where each sequence begins: packed sequences, left-padded caches),
//              [17] log-sum-exp batch stride, [18] its head stride (rows are 1 apart), [19] ALiBi slopes'
//              batch stride (0: one slope per head, else heads), [20] bias-slopes offset (ggml max_bias:
//              float per head), [21] sinks offset (float per head, natural log), [22] chunk size; the
//              data follows. Lengths are per sequence (from its start), so with starts they are counts.
//   6  bias    uniform usamplerBuffer, R32UI view of an fp32 bias or R16UI view of an fp16 / bf16 bias
//              (BIAS_FORMAT says which; a dummy when absent)
//   7  allowed uniform usamplerBuffer, R8UI view of the boolean mask, nonzero = attend (a dummy when absent)
//
// Push constants: AttentionParams below (116 bytes). Q/K/V strides are in fetch units (texels of
// FETCH_WIDTH elements); output strides in elements.
//
// Specialization constants
//   0  HEAD_DIM       dk, the head dim of Q and K, 1..256
//   1  TILE_Q         tile rows per workgroup, 1..32 (prefill: 32 on CPU drivers for head dims ≤ 64, else
//                     16; decode: the next power of two ≥ group · Lq up to that)
//   2  SUBGROUP_SIZE  S: the workgroup is one subgroup of S lanes (host requests exactly S, with
//                     full subgroups; it must match the running subgroup size)
//   3  FEATURES       bit 0: per-sequence lengths, 1: bias, 2: ALiBi, 3: block layout, 4: block
//                     layout aligned to tiles (one lookup per tile instead of one per score; the
//                     host sets it only when no tile spans two heads or two blocks), 5: softcap
//                     (cap·tanh(s/cap) on the scaled score, before every additive term), 6: boolean mask,
//                     7: sinks (added to each valid row's denominator at the end; in split mode by split 0
//                     only, so the merge counts it once), 8: chunked local attention (keys in the query's
//                     chunk of diagonal positions), 9: sequence starts (packed sequences store only the
//                     rows inside a sequence)
//   4  WRITE_LSE      1: write the log-sum-exp of each row
//   5  SPLIT_MODE     1: write normalised partial outputs and their log-sum-exp for
//                     attention_merge_splits; this workgroup sees keys [y·keysPerSplit, (y+1)·keysPerSplit)
//   6  VALUE_DIM      dv, the head dim of V and of the output, 1..256
//   7  FETCH_WIDTH    4: every head dim is a multiple of 4, one RGBA texel per 4 elements and vec4 stores
//                     (the fast path); 1: one-element texels, 4 fetches per vec4 with the dims past
//                     dk / dv read as zeros, and scalar stores
//   8  BIAS_FORMAT    the bias's element type: 0 fp32, 1 fp16, 2 bf16 (independent of Q/K/V's)
//
// Rows: the tile's rows are (query head, query row) pairs of the `group` query heads that share one
// K/V head, row R ↦ head kvh·group + R / Lq, query R % Lq; so K and V are read once per group.
// Tile: TILE_K = 4·S keys per step. Scores: lane l owns keys k0+4l .. k0+4l+3 of all TILE_Q rows
// (acc[r], one vec4 per row); per 4 dims it fetches its 4 keys' texels (transposed in registers) and
// the Q texels of rows l, l+S, …, which reach every lane by subgroupShuffle. Softmax: the row max is
// one subgroupMax per row and tile; the row sum is kept per lane and reduced once at the end. PV:
// lane l owns output vec4s l, l+S, … of every row (CHUNKS of them); each lane's probabilities reach
// all lanes by shuffling acc[r] from lane q, and V rows are fetched per key.
// Key and query indices are clamped into the valid lengths before any fetch, so nothing past a
// sequence's length (KV-cache garbage included) is ever read.
//
// Dispatch: x = ceil(group · Lq / TILE_Q), y = split count (1 without split), z = batch · kvHeads. When the
// output is larger than one storage binding may be (maxStorageBufferRange), the host dispatches windows:
// ranges of tiles and of z (tileBase, zBase) whose stored rows (storeRowLo ..< storeRowHi, so that a tile
// straddling two heads can be stored by two windows) fit, each with the output bound from the window's
// first element (outputBase, subtracted from every output index).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_arithmetic : require

// @variant f16: -DSTORAGE_F16=1
// @variant bf16: -DSTORAGE_BF16=1
// @variant bf16_input: -DINPUT_BF16=1
#ifndef STORAGE_F16
#define STORAGE_F16 0
#endif
#ifndef STORAGE_BF16
#define STORAGE_BF16 0
#endif
#if STORAGE_F16 || STORAGE_BF16
#extension GL_EXT_shader_16bit_storage : require
#endif
#include "bfloat16.glsl"

layout(constant_id = 0) const uint HEAD_DIM = 64;
layout(constant_id = 1) const uint TILE_Q = 16;
layout(constant_id = 2) const uint SUBGROUP_SIZE = 8;
layout(constant_id = 3) const uint FEATURES = 0;
layout(constant_id = 4) const uint WRITE_LSE = 0;
layout(constant_id = 5) const uint SPLIT_MODE = 0;
layout(constant_id = 6) const uint VALUE_DIM = 64;
layout(constant_id = 7) const uint FETCH_WIDTH = 4;
layout(constant_id = 8) const uint BIAS_FORMAT = 0;
layout(local_size_x_id = 2) in;

const uint DIM4 = (HEAD_DIM + 3u) / 4u;
const uint VDIM4 = (VALUE_DIM + 3u) / 4u;
const uint CHUNKS = (VDIM4 + SUBGROUP_SIZE - 1u) / SUBGROUP_SIZE;
const uint Q_FETCHES = (TILE_Q + SUBGROUP_SIZE - 1u) / SUBGROUP_SIZE;
const uint HAS_LENGTHS = 1u, HAS_BIAS = 2u, HAS_ALIBI = 4u, HAS_BLOCKS = 8u, BLOCKS_ALIGNED = 16u;
const uint HAS_SOFTCAP = 32u, HAS_ALLOWED = 64u, HAS_SINKS = 128u, HAS_CHUNK = 256u, HAS_STARTS = 512u;
const float LN2 = 0.69314718056;
const float LOG2E = 1.44269504089;
#define NEG_INF uintBitsToFloat(0xff800000u)

layout(push_constant) uniform AttentionParams {
    uint qLen, kLen, heads, group;                 // group = heads / kvHeads
    uint qStrideB, qStrideH, qStrideS;             // texels
    uint kStrideB, kStrideH, kStrideS;             // texels (also V's)
    uint vStrideB, vStrideH, vStrideS;             // texels
    uint oStrideB, oStrideH, oStrideS, oStrideSplit; // elements
    float scaleLog2;                               // scale · log2(e)
    int windowLeft, windowRight;                   // band around the diagonal (huge = unbounded)
    uint bottomRight;                              // 1: the diagonal offset starts from Lk − Lq, else 0
    int diagonalShift;                             // added to the diagonal offset (ONNX: past length)
    uint keysPerSplit;
    float softcapLog2;                             // cap · log2(e) (HAS_SOFTCAP)
    uint tileBase, zBase;                          // this dispatch's first query tile and batch·kvHead (windows)
    uint outputBase;                               // element of the output binding's start (windows)
    uint storeRowLo, storeRowHi;                   // tile rows stored by this dispatch (windows; else all)
} p;

layout(set = 0, binding = 0) uniform FloatTexels queries;
layout(set = 0, binding = 1) uniform FloatTexels keys;
layout(set = 0, binding = 2) uniform FloatTexels values;
// Output element e0 .. e0+3 (dims 4·d4 .. 4·d4+3 of a row): one vec4 store when rows are vec4-aligned
// (FETCH_WIDTH = 4, or split mode's padded partial rows), else scalar stores of the dims below dv.
#if STORAGE_F16
layout(set = 0, binding = 3, std430) writeonly buffer Output { f16vec4 o[]; } outputBuffer;
layout(set = 0, binding = 3, std430) writeonly buffer OutputScalar { float16_t o[]; } outputScalars;
void storeOutput(uint e0, uint d4, vec4 v) {
    if (FETCH_WIDTH == 4u) { outputBuffer.o[e0 >> 2] = f16vec4(v); return; }
    for (uint c = 0u; c < 4u; ++c) if (4u * d4 + c < VALUE_DIM) outputScalars.o[e0 + c] = float16_t(v[c]);
}
#elif STORAGE_BF16
layout(set = 0, binding = 3, std430) writeonly buffer Output { u16vec4 o[]; } outputBuffer;
layout(set = 0, binding = 3, std430) writeonly buffer OutputScalar { uint16_t o[]; } outputScalars;
void storeOutput(uint e0, uint d4, vec4 v) {
    if (FETCH_WIDTH == 4u) { outputBuffer.o[e0 >> 2] = u16vec4(floatToBF16(v)); return; }
    for (uint c = 0u; c < 4u; ++c) if (4u * d4 + c < VALUE_DIM) outputScalars.o[e0 + c] = uint16_t(floatToBF16(v[c]));
}
#else
layout(set = 0, binding = 3, std430) writeonly buffer Output { vec4 o[]; } outputBuffer;
layout(set = 0, binding = 3, std430) writeonly buffer OutputScalar { float o[]; } outputScalars;
void storeOutput(uint e0, uint d4, vec4 v) {
    if (FETCH_WIDTH == 4u || SPLIT_MODE != 0u) { outputBuffer.o[e0 >> 2] = v; return; }
    for (uint c = 0u; c < 4u; ++c) if (4u * d4 + c < VALUE_DIM) outputScalars.o[e0 + c] = v[c];
}
#endif
layout(set = 0, binding = 4, std430) writeonly buffer LogSumExp { float lse[]; } lseBuffer;
layout(set = 0, binding = 5, std430) readonly buffer Aux { uint words[]; } aux;
layout(set = 0, binding = 6) uniform usamplerBuffer bias;
layout(set = 0, binding = 7) uniform usamplerBuffer allowedMask;

// Bias element e as fp32, decoded from the bits of its BIAS_FORMAT.
float loadBias(uint e) {
    const uint bits = texelFetch(bias, int(e)).x;
    if (BIAS_FORMAT == 1u) return unpackHalf2x16(bits).x;
    if (BIAS_FORMAT == 2u) return bf16ToFloat(bits);
    return uintBitsToFloat(bits);
}

// Elements 4·d4 .. 4·d4+3 of the row at `base` (fetch units): one RGBA texel, or four one-element
// texels with the dims past the head dim read as zeros (they add nothing to dot products or outputs).
#define FETCH_ROW(buffer, base, d4, dim) \
    (FETCH_WIDTH == 4u ? fetchFloats(buffer, int((base) + (d4))) : vec4( \
        4u * (d4) + 0u < (dim) ? fetchFloats(buffer, int((base) + 4u * (d4) + 0u)).x : 0.0, \
        4u * (d4) + 1u < (dim) ? fetchFloats(buffer, int((base) + 4u * (d4) + 1u)).x : 0.0, \
        4u * (d4) + 2u < (dim) ? fetchFloats(buffer, int((base) + 4u * (d4) + 2u)).x : 0.0, \
        4u * (d4) + 3u < (dim) ? fetchFloats(buffer, int((base) + 4u * (d4) + 3u)).x : 0.0))

uint blockRows, blockCols;                        // from aux, read once
uint biasStride[4], allowedStride[4];             // from aux, read once (batch, head, query, key)

vec4 acc[TILE_Q];            // scores, then probabilities, of this lane's 4 keys per row
vec4 outAcc[TILE_Q * CHUNKS]; // outAcc[r * CHUNKS + c]: row r, output texel lane + c·S (unnormalised)
float rowMax[TILE_Q];        // running max per row (log2 units), uniform across lanes
float rowSum[TILE_Q];        // this lane's share of the running sum

bool blockAllowed(uint h, uint i, uint j) {
    uint kBlocks = (p.kLen + blockCols - 1u) / blockCols;
    uint index = aux.words[3] + h * aux.words[4] + (i / blockRows) * kBlocks + j / blockCols;
    return ((aux.words[index >> 2] >> (8u * (index & 3u))) & 0xffu) != 0u;
}

// Tile row R (0 .. group·Lq − 1) of key/value head kvh: query head kvh·group + R / Lq, query row R % Lq.
// Packing the query heads that share one K/V head into one tile reads K and V once for all of them
// (grouped-query attention; in decode, the whole group fills the tile).
uint rowHead(uint kvh, uint row) { return kvh * p.group + row / p.qLen; }
uint rowIndex(uint row) { return row % p.qLen; }

// Per-workgroup values that main sets once and keyTile reads.
uint lane, b, kvh, rows, r0, qLenB, kLenB, kBase, vBase;
int offset, kLo, kHi, chunkSize;
uint qTexel[Q_FETCHES];      // the Q rows this lane fetches (texel of dim 0)
float rowSlope[TILE_Q];      // ALiBi slope per row (log2 units)
float rowBiasScale[TILE_Q];  // log2(e) times the bias's max_bias slope per row (log2(e) without max_bias)

// The first diagonal position of d's chunk (floor division: negative positions form chunks too).
int chunkStart(int d) { return d >= 0 ? d / chunkSize * chunkSize : -((chunkSize - 1 - d) / chunkSize) * chunkSize; }

// One tile of TILE_K keys starting at k0: scores, the online softmax, and P·V into outAcc. `checked` is a
// constant at every call (the function is inlined): the checked copy masks every score (band, lengths,
// split, bias, ALiBi, boolean mask, per-score blocks); the unchecked copy is for interior tiles and has
// no per-score code at all. lavapipe runs both sides of a branch under a lane mask even when the
// condition is uniform, so a per-tile `if (interior)` would pay for the masking code on every tile.
void keyTile(const uint k0, const bool checked) {
    if ((FEATURES & BLOCKS_ALIGNED) != 0u && !blockAllowed(rowHead(kvh, r0), rowIndex(r0), k0)) return;
    // This lane's 4 keys, clamped into the valid keys for fetching.
    const uint myKey = k0 + 4u * lane;
    uint keyTexel[4];
    for (uint c = 0u; c < 4u; ++c) keyTexel[c] = kBase + min(myKey + c, kLenB - 1u) * p.kStrideS;

    for (uint r = 0u; r < TILE_Q; ++r) acc[r] = vec4(0.0);
    for (uint d4 = 0u; d4 < DIM4; ++d4) {
        vec4 k0v = FETCH_ROW(keys, keyTexel[0], d4, HEAD_DIM);
        vec4 k1v = FETCH_ROW(keys, keyTexel[1], d4, HEAD_DIM);
        vec4 k2v = FETCH_ROW(keys, keyTexel[2], d4, HEAD_DIM);
        vec4 k3v = FETCH_ROW(keys, keyTexel[3], d4, HEAD_DIM);
        vec4 kt0 = vec4(k0v.x, k1v.x, k2v.x, k3v.x), kt1 = vec4(k0v.y, k1v.y, k2v.y, k3v.y);
        vec4 kt2 = vec4(k0v.z, k1v.z, k2v.z, k3v.z), kt3 = vec4(k0v.w, k1v.w, k2v.w, k3v.w);
        vec4 qFetched[Q_FETCHES];
        for (uint f = 0u; f < Q_FETCHES; ++f) qFetched[f] = FETCH_ROW(queries, qTexel[f], d4, HEAD_DIM);
        for (uint r = 0u; r < TILE_Q; ++r) {
            vec4 qv = subgroupShuffle(qFetched[r / SUBGROUP_SIZE], r % SUBGROUP_SIZE);
            acc[r] = fma(vec4(qv.x), kt0, fma(vec4(qv.y), kt1, fma(vec4(qv.z), kt2, fma(vec4(qv.w), kt3, acc[r]))));
        }
    }

    // Scale, mask, and fold into the running statistics.
    for (uint r = 0u; r < TILE_Q; ++r) {
        const uint row = r0 + r;
        const uint h = rowHead(kvh, min(row, rows - 1u));
        const int i = int(rowIndex(row));
        const int diagonal = i + offset;
        vec4 s = acc[r] * p.scaleLog2;
        // Softcap (Gemma 2): cap·tanh(s/cap), in log2 units. tanh saturates to ±1 in fp32 beyond
        // |x| ≈ 9, so clamping at 10 changes nothing and keeps exp-based tanh from inf/inf.
        if ((FEATURES & HAS_SOFTCAP) != 0u) s = p.softcapLog2 * tanh(clamp(s / p.softcapLog2, -10.0, 10.0));
        if (checked) for (uint c = 0u; c < 4u; ++c) {
            const int j = int(myKey + c);
            bool allowed = row < rows && uint(i) < qLenB && j < int(kLenB) && j >= kLo && j < kHi
                && j >= diagonal - p.windowLeft && j <= diagonal + p.windowRight;
            if ((FEATURES & HAS_CHUNK) != 0u) allowed = allowed && j - chunkStart(diagonal) < chunkSize && j >= chunkStart(diagonal);
            if ((FEATURES & HAS_BLOCKS) != 0u && (FEATURES & BLOCKS_ALIGNED) == 0u && allowed)
                allowed = blockAllowed(h, uint(i), uint(j));
            if ((FEATURES & HAS_ALIBI) != 0u) s[c] -= rowSlope[r] * float(abs(diagonal - j));
            if ((FEATURES & HAS_ALLOWED) != 0u && allowed)
                allowed = texelFetch(allowedMask, int(b * allowedStride[0] + h * allowedStride[1] + uint(i) * allowedStride[2]
                                                      + uint(j) * allowedStride[3])).x != 0u;
            if ((FEATURES & HAS_BIAS) != 0u && allowed)
                s[c] += rowBiasScale[r] * loadBias(b * biasStride[0] + h * biasStride[1] + uint(i) * biasStride[2] + uint(j) * biasStride[3]);
            s[c] = allowed ? s[c] : NEG_INF;
        }
        const float tileMax = subgroupMax(max(max(s.x, s.y), max(s.z, s.w)));
        const float newMax = max(rowMax[r], tileMax);
        vec4 probability = vec4(0.0);
        if (newMax != NEG_INF) {
            const float correction = rowMax[r] == NEG_INF ? 0.0 : exp2(rowMax[r] - newMax);
            rowMax[r] = newMax;
            for (uint c = 0u; c < 4u; ++c) probability[c] = s[c] == NEG_INF ? 0.0 : exp2(s[c] - newMax);
            rowSum[r] = rowSum[r] * correction + (probability.x + probability.y + probability.z + probability.w);
            for (uint c = 0u; c < CHUNKS; ++c) outAcc[r * CHUNKS + c] *= correction;
        }
        acc[r] = probability;
    }

    // outAcc += P · V: lane q's 4 probabilities per row reach every lane by shuffle.
    for (uint q = 0u; q < SUBGROUP_SIZE; ++q) {
        const uint key = k0 + 4u * q;
        vec4 vRows[4 * CHUNKS];
        for (uint c = 0u; c < 4u; ++c) {
            const uint texel = vBase + min(key + c, kLenB - 1u) * p.vStrideS;
            for (uint t = 0u; t < CHUNKS; ++t) {
                const uint d4 = lane + t * SUBGROUP_SIZE;
                vRows[c * CHUNKS + t] = d4 < VDIM4 ? FETCH_ROW(values, texel, d4, VALUE_DIM) : vec4(0.0);
            }
        }
        for (uint r = 0u; r < TILE_Q; ++r) {
            const vec4 pr = subgroupShuffle(acc[r], q);
            for (uint t = 0u; t < CHUNKS; ++t) {
                outAcc[r * CHUNKS + t] = fma(vec4(pr.x), vRows[t], fma(vec4(pr.y), vRows[CHUNKS + t],
                    fma(vec4(pr.z), vRows[2u * CHUNKS + t], fma(vec4(pr.w), vRows[3u * CHUNKS + t], outAcc[r * CHUNKS + t]))));
            }
        }
    }
}

void main() {
    lane = gl_SubgroupInvocationID;
    const uint kvHeads = p.heads / p.group;
    const uint z = gl_WorkGroupID.z + p.zBase;
    b = z / kvHeads;
    kvh = z % kvHeads;
    rows = p.group * p.qLen;
    r0 = (gl_WorkGroupID.x + p.tileBase) * TILE_Q;
    const uint rLast = min(r0 + TILE_Q, rows) - 1u;
    const uint split = gl_WorkGroupID.y;

    qLenB = p.qLen;
    kLenB = p.kLen;
    if ((FEATURES & HAS_LENGTHS) != 0u) {
        if (aux.words[0] != 0u) qLenB = aux.words[aux.words[0] + b];
        if (aux.words[1] != 0u) kLenB = aux.words[aux.words[1] + b];
    }
    offset = (p.bottomRight != 0u ? int(kLenB) - int(qLenB) : 0) + p.diagonalShift;
    // Where this sequence's query rows and keys begin on the tensors' sequence axes.
    uint qStart = 0u, keyStart = 0u;
    if ((FEATURES & HAS_STARTS) != 0u) {
        if (aux.words[15] != 0u) qStart = aux.words[aux.words[15] + b];
        if (aux.words[16] != 0u) keyStart = aux.words[aux.words[16] + b];
    }
    chunkSize = (FEATURES & HAS_CHUNK) != 0u ? int(aux.words[22]) : 1;
    blockRows = max(aux.words[13], 1u);
    blockCols = max(aux.words[14], 1u);
    for (uint x = 0u; x < 4u; ++x) {
        biasStride[x] = (FEATURES & HAS_BIAS) != 0u ? aux.words[5u + x] : 0u;
        allowedStride[x] = (FEATURES & HAS_ALLOWED) != 0u ? aux.words[9u + x] : 0u;
    }

    for (uint r = 0u; r < TILE_Q; ++r) {
        rowMax[r] = NEG_INF;
        rowSum[r] = 0.0;
        rowSlope[r] = 0.0;
        if ((FEATURES & HAS_ALIBI) != 0u)
            rowSlope[r] = uintBitsToFloat(aux.words[aux.words[2] + b * aux.words[19] + rowHead(kvh, min(r0 + r, rows - 1u))]) * LOG2E;
        rowBiasScale[r] = LOG2E;
        if ((FEATURES & HAS_BIAS) != 0u && aux.words[20] != 0u)
            rowBiasScale[r] = uintBitsToFloat(aux.words[aux.words[20] + rowHead(kvh, min(r0 + r, rows - 1u))]) * LOG2E;
        for (uint c = 0u; c < CHUNKS; ++c) outAcc[r * CHUNKS + c] = vec4(0.0);
    }

    // Keys this tile's valid rows may see: the diagonal band, the key length, this split's range.
    // When the tile spans two heads its rows' indices wrap, so take every valid row.
    const bool oneHead = rowHead(kvh, r0) == rowHead(kvh, rLast);
    const uint iFirst = oneHead ? rowIndex(r0) : 0u;
    const uint iLast = oneHead ? rowIndex(rLast) : p.qLen - 1u;
    kLo = 0;
    kHi = 0;
    if (iFirst < qLenB && kLenB > 0u) {
        kLo = max(0, int(iFirst) + offset - p.windowLeft);
        kHi = min(int(kLenB), int(min(iLast, qLenB - 1u)) + offset + p.windowRight + 1);
        if ((FEATURES & HAS_CHUNK) != 0u) {
            kLo = max(kLo, chunkStart(int(iFirst) + offset));
            kHi = min(kHi, chunkStart(int(min(iLast, qLenB - 1u)) + offset) + chunkSize);
        }
    }
    if (SPLIT_MODE != 0u) {
        kLo = max(kLo, int(split * p.keysPerSplit));
        kHi = min(kHi, int((split + 1u) * p.keysPerSplit));
    }
    const uint TILE_K = 4u * SUBGROUP_SIZE;
    kBase = b * p.kStrideB + kvh * p.kStrideH + keyStart * p.kStrideS;
    vBase = b * p.vStrideB + kvh * p.vStrideH + keyStart * p.vStrideS;
    // The Q rows this lane fetches (rows past the valid ones are clamped, read, and never stored).
    for (uint f = 0u; f < Q_FETCHES; ++f) {
        const uint row = min(r0 + lane + f * SUBGROUP_SIZE, rows - 1u);
        qTexel[f] = b * p.qStrideB + rowHead(kvh, row) * p.qStrideH + (qStart + min(rowIndex(row), max(qLenB, 1u) - 1u)) * p.qStrideS;
    }

    // Interior tiles (every row valid, every key inside the band, the key length and the split, no
    // additive terms or per-score block lookups) skip the per-score mask.
    const bool plainScores = (FEATURES & (HAS_BIAS | HAS_ALIBI | HAS_ALLOWED)) == 0u
        && ((FEATURES & HAS_BLOCKS) == 0u || (FEATURES & BLOCKS_ALIGNED) != 0u);
    const bool rowsInterior = plainScores && oneHead && rLast + 1u == r0 + TILE_Q && iLast < qLenB;

    // Tiles in key order: the checked ones before the interior range, the interior ones (every row
    // valid, every key inside the band, the key length and the split, no additive terms or per-score
    // block lookups), then the checked ones after it. The first tile is rounded down to a multiple of
    // TILE_K so that tiles line up with aligned blocks.
    const int kFirst = kLo - kLo % int(TILE_K);
    int innerLo = kHi, innerHi = kHi;
    if (rowsInterior) {
        int lowest = max(kLo, int(iLast) + offset - p.windowLeft);        // first key an interior tile may start at
        int highest = min(kHi, int(iFirst) + offset + p.windowRight + 1);  // one past the last key it may reach
        if ((FEATURES & HAS_CHUNK) != 0u) {
            lowest = max(lowest, chunkStart(int(iLast) + offset));
            highest = min(highest, chunkStart(int(iFirst) + offset) + chunkSize);
        }
        const int first = kFirst + (max(lowest - kFirst, 0) + int(TILE_K) - 1) / int(TILE_K) * int(TILE_K);
        if (first + int(TILE_K) <= highest) {
            innerLo = first;
            innerHi = first + (highest - first) / int(TILE_K) * int(TILE_K);
        }
    }
    int kStart = kFirst;
    for (; kStart < innerLo; kStart += int(TILE_K)) keyTile(uint(kStart), true);
    for (; kStart < innerHi; kStart += int(TILE_K)) keyTile(uint(kStart), false);
    for (; kStart < kHi; kStart += int(TILE_K)) keyTile(uint(kStart), true);

    // Only split mode (never windowed: the whole z range is one dispatch) offsets the log-sum-exp by split.
    const uint batchHeads = gl_NumWorkGroups.z * p.group;
    for (uint r = 0u; r < TILE_Q; ++r) {
        float total = subgroupAdd(rowSum[r]);
        const uint row = r0 + r;
        if (row >= rows || row < p.storeRowLo || row >= p.storeRowHi) continue;
        const uint h = rowHead(kvh, row), i = rowIndex(row);
        // Packed sequences: rows past this sequence's length are the next sequence's (or no one's).
        if ((FEATURES & HAS_STARTS) != 0u && aux.words[15] != 0u && i >= qLenB) continue;
        float inverse = total > 0.0 ? 1.0 / total : 0.0;
        // The sink joins the denominator of each valid row once (split 0's share in split mode): the
        // max becomes max(M, sink) and the key sum is rescaled to it; with no key seen, output 0 and a
        // log-sum-exp of the sink itself.
        if ((FEATURES & HAS_SINKS) != 0u && split == 0u && i < qLenB) {
            const float sink = uintBitsToFloat(aux.words[aux.words[21] + h]) * LOG2E;
            const float newMax = max(rowMax[r], sink);
            const float correction = rowMax[r] == NEG_INF ? 0.0 : exp2(rowMax[r] - newMax);
            total = total * correction + exp2(sink - newMax);
            rowMax[r] = newMax;
            inverse = correction / total;
        }
        const uint oRow = split * p.oStrideSplit + b * p.oStrideB + h * p.oStrideH + (qStart + i) * p.oStrideS - p.outputBase;
        for (uint t = 0u; t < CHUNKS; ++t) {
            const uint d4 = lane + t * SUBGROUP_SIZE;
            if (d4 < VDIM4) storeOutput(oRow + 4u * d4, d4, outAcc[r * CHUNKS + t] * inverse);
        }
        if ((WRITE_LSE != 0u || SPLIT_MODE != 0u) && lane == 0u) {
            lseBuffer.lse[split * batchHeads * p.qLen + b * aux.words[17] + h * aux.words[18] + qStart + i] = total > 0.0 ? (rowMax[r] + log2(total)) * LN2 : NEG_INF;
        }
    }
}
