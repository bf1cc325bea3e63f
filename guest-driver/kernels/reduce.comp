// reduce: f32 sum, atomic-free and deterministic, in two passes of this same kernel.
//
// Bindings (set 0): 0 = in (f32[n], read), 1 = out (f32[number of workgroups], write).
// Push constants: n (u32, element count of `in`). 4 bytes.
//
// One pass: workgroup g (of G, 1D dispatch of G workgroups of 64) sums the elements
// i = g*64 + lid, g*64 + lid + G*64, ... (a grid-stride loop, so G can be much smaller than
// n / 64), then the 64 partial sums are added in a shared-memory tree and written to out[g].
// The result of a pass is G partial sums.
//
// Full reduction of n elements:
//   pass 1: dispatch G workgroups (e.g. G = min(ceil(n / 64), 1024)), in = data, n = n -> G partials
//   BARRIER
//   pass 2: dispatch 1 workgroup, in = partials, n = G                               -> out[0] = sum
// No atomics (which would make float sums order-dependent): the same input and G always give
// the same bits. The order of additions differs from a sequential CPU loop, so compare with a
// tolerance (or use inputs whose sums are exact in f32).
#version 450
layout(local_size_x = 64) in;

layout(set = 0, binding = 0) readonly buffer In { float src[]; };
layout(set = 0, binding = 1) writeonly buffer Out { float partial[]; };

layout(push_constant) uniform Params {
  uint n;
} p;

const uint WG = 64;
shared float sums[WG];

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint stride = gl_NumWorkGroups.x * WG;
  float acc = 0.0;
  for (uint i = gl_WorkGroupID.x * WG + lid; i < p.n; i += stride) {
    acc += src[i];
  }
  sums[lid] = acc;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (lid < s) {
      sums[lid] += sums[lid + s];
    }
    barrier();
  }
  if (lid == 0) {
    partial[gl_WorkGroupID.x] = sums[0];
  }
}
