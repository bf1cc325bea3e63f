// gemm: C = A * B, f32, row-major: A is M x K, B is K x N, C is M x N.
//
// Bindings (set 0): 0 = A (f32[M*K], read), 1 = B (f32[K*N], read), 2 = C (f32[M*N], write).
// Push constants: M, N, K (u32). 12 bytes.
// Dispatch: ceil(N / 16) x ceil(M / 16) workgroups of 16 x 16; each invocation computes one
// element of C. The K dimension is walked in 16-wide tiles of A and B staged in shared memory,
// so each element of A and B is read from the buffer once per workgroup instead of 16 times.
// Tiles are zero-padded at the edges: any M, N, K work, including ones not a multiple of 16.
#version 450
layout(local_size_x = 16, local_size_y = 16) in;

layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer C { float c[]; };

layout(push_constant) uniform Params {
  uint M;
  uint N;
  uint K;
} p;

const uint TILE = 16;
shared float tileA[TILE][TILE];
shared float tileB[TILE][TILE];

void main() {
  uint tx = gl_LocalInvocationID.x;     // column within the tile
  uint ty = gl_LocalInvocationID.y;     // row within the tile
  uint col = gl_WorkGroupID.x * TILE + tx;
  uint row = gl_WorkGroupID.y * TILE + ty;

  float acc = 0.0;
  for (uint k0 = 0; k0 < p.K; k0 += TILE) {
    uint ka = k0 + tx;                  // column of A this invocation loads
    uint kb = k0 + ty;                  // row of B this invocation loads
    tileA[ty][tx] = (row < p.M && ka < p.K) ? a[row * p.K + ka] : 0.0;
    tileB[ty][tx] = (kb < p.K && col < p.N) ? b[kb * p.N + col] : 0.0;
    barrier();
    for (uint k = 0; k < TILE; ++k) {
      acc += tileA[ty][k] * tileB[k][tx];
    }
    barrier();
  }
  if (row < p.M && col < p.N) {
    c[row * p.N + col] = acc;
  }
}
