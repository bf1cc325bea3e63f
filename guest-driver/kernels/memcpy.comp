// memcpy: dst[i] = src[i] for i < n, 32-bit words.
//
// Bindings (set 0): 0 = src (u32[n], read), 1 = dst (u32[n], write).
// Push constants: n (u32, word count). 4 bytes.
// Dispatch: ceil(n / 64) workgroups, as a 2D grid when above 65535 in x (see saxpy.comp).
#version 450
layout(local_size_x = 64) in;

layout(set = 0, binding = 0) readonly buffer Src { uint src[]; };
layout(set = 0, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform Params {
  uint n;
} p;

void main() {
  uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x
           + gl_LocalInvocationID.x;
  if (i < p.n) {
    dst[i] = src[i];
  }
}
