// saxpy: y[i] = a * x[i] + y[i] for i < n.
//
// Bindings (set 0): 0 = x (f32[n], read), 1 = y (f32[n], read/write).
// Push constants: n (u32, element count), a (f32). 8 bytes.
// Dispatch: ceil(n / 64) workgroups in x (at most 65535 per dimension: the y dimension
// may be used too, see the index computation below).
#version 450
layout(local_size_x = 64) in;

layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) buffer Y { float y[]; };

layout(push_constant) uniform Params {
  uint n;
  float a;
} p;

void main() {
  // Flatten a 2D grid so n above 65535 * 64 (4M elements) needs no grid-stride loop.
  uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x
           + gl_LocalInvocationID.x;
  if (i < p.n) {
    y[i] = p.a * x[i] + y[i];
  }
}
