// Data-movement kernels on 4-byte elements (float32 or int32 alike): a strided copy that serves
// Transpose and Slice, row gathers (GatherV2) and their adjoint, a segment sum (UnsortedSegmentSum).
// Plain C++ (the compiler vectorizes what it can); split over the thread pool when large.
#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "pool.h"

namespace quorum {

namespace {

constexpr long kGrainCopy = 1 << 15;  // elements per chunk
constexpr long kTile = 32;            // tile edge for transposes that move the last axis

// out (contiguous, shape[0..rank)) = x[offset + sum_d i_d * stride[d]], rows of the last two axes.
void stridedCopyRun(const uint32_t* x, uint32_t* out, int rank, const long* shape, const long* stride,
                    long offset) {
  const long cols = shape[rank - 1];
  const long sc = stride[rank - 1];
  if (sc <= 1 || rank == 1) {
    // Rows: each output row is one run of the input (contiguous when sc == 1, one repeated value when
    // sc == 0: a broadcast).
    long rows = 1;
    for (int d = 0; d < rank - 1; d++) rows *= shape[d];
    parallelFor(rows, std::max(1L, kGrainCopy / std::max(1L, cols)), [&](long r0, long r1) {
      for (long r = r0; r < r1; r++) {
        long rem = r, src = offset;
        for (int d = rank - 2; d >= 0; d--) {
          src += (rem % shape[d]) * stride[d];
          rem /= shape[d];
        }
        uint32_t* dst = out + r * cols;
        if (sc == 1) {
          std::memcpy(dst, x + src, static_cast<size_t>(cols) * 4);
        } else if (sc == 0) {
          std::fill(dst, dst + cols, x[src]);
        } else {
          for (long j = 0; j < cols; j++) dst[j] = x[src + j * sc];
        }
      }
    });
    return;
  }
  // The last output axis is strided in the input: copy [rowsOut x cols] planes in tiles, so that reads
  // and writes both stay within a few cache lines.
  const long rowsOut = shape[rank - 2];
  const long sr = stride[rank - 2];
  long planes = 1;
  for (int d = 0; d < rank - 2; d++) planes *= shape[d];
  const long tilesR = (rowsOut + kTile - 1) / kTile, tilesC = (cols + kTile - 1) / kTile;
  const long perPlane = tilesR * tilesC;
  parallelFor(planes * perPlane, std::max(1L, kGrainCopy / (kTile * kTile)), [&](long w0, long w1) {
    for (long w = w0; w < w1; w++) {
      const long p = w / perPlane, t = w % perPlane;
      long rem = p, base = offset;
      for (int d = rank - 3; d >= 0; d--) {
        base += (rem % shape[d]) * stride[d];
        rem /= shape[d];
      }
      const long i0 = (t / tilesC) * kTile, j0 = (t % tilesC) * kTile;
      const long i1 = std::min(rowsOut, i0 + kTile), j1 = std::min(cols, j0 + kTile);
      uint32_t* dst = out + p * rowsOut * cols;
      for (long i = i0; i < i1; i++)
        for (long j = j0; j < j1; j++) dst[i * cols + j] = x[base + i * sr + j * sc];
    }
  });
}

}  // namespace

void stridedCopy(const void* x, void* out, int rank, const long* shape, const long* stride, long offset) {
  stridedCopyRun(static_cast<const uint32_t*>(x), static_cast<uint32_t*>(out), rank, shape, stride, offset);
}

void gatherRows(const void* xv, const int32_t* idx, void* outv, long outer, long dim, long nIdx, long inner) {
  const uint32_t* x = static_cast<const uint32_t*>(xv);
  uint32_t* out = static_cast<uint32_t*>(outv);
  const long rows = outer * nIdx;
  parallelFor(rows, std::max(1L, kGrainCopy / std::max(1L, inner)), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const long o = r / nIdx, i = r % nIdx;
      const uint32_t* src = x + (o * dim + idx[i]) * inner;
      uint32_t* dst = out + r * inner;
      if (inner == 1) {
        *dst = *src;
      } else {
        std::memcpy(dst, src, static_cast<size_t>(inner) * 4);
      }
    }
  });
}

void segmentSum(const float* x, const int32_t* ids, float* out, long nIds, long inner, long numSegments) {
  // Each chunk owns a range of segments and scans every id, so the additions into one segment happen
  // in increasing id order, exactly as a sequential loop would.
  const long grainSegs = std::max(1L, numSegments * kGrainCopy / std::max(1L, nIds * inner) + 1);
  parallelFor(numSegments, grainSegs, [&](long s0, long s1) {
    std::memset(out + s0 * inner, 0, static_cast<size_t>((s1 - s0) * inner) * sizeof(float));
    for (long i = 0; i < nIds; i++) {
      const long s = ids[i];
      if (s < s0 || s >= s1) continue;
      float* dst = out + s * inner;
      const float* src = x + i * inner;
      for (long j = 0; j < inner; j++) dst[j] += src[j];
    }
  });
}

}  // namespace quorum
