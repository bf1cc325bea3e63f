#version 450
// Float16 arithmetic (shaderFloat16) on values whose results are exact in half precision.
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { float v[]; } src;
layout(set = 0, binding = 1) writeonly buffer Out { float v[]; } dst;
layout(push_constant) uniform P { uint n; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n) {
		float16_t h = float16_t(src.v[i]);
		float16_t r = h * float16_t(0.5) + float16_t(1.0);
		dst.v[i] = float(r);
	}
}
