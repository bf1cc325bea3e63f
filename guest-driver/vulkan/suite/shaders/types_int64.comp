#version 450
// Int64 arithmetic (shaderInt64): 64-bit multiply, add, shift, stored as 64-bit words.
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { uint v[]; } src;
layout(set = 0, binding = 1) writeonly buffer Out { uint64_t v[]; } dst;
layout(push_constant) uniform P { uint n; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n) {
		uint64_t x = uint64_t(src.v[i]) * 0x9E3779B97F4A7C15ul + (uint64_t(i) << 40);
		dst.v[i] = x ^ (x >> 29);
	}
}
