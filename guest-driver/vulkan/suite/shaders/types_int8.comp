#version 450
// Int8 arithmetic (shaderInt8): the multiply and add wrap at 8 bits.
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { int v[]; } src;
layout(set = 0, binding = 1) writeonly buffer Out { int v[]; } dst;
layout(push_constant) uniform P { uint n; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n) {
		int8_t x = int8_t(src.v[i]);
		int8_t y = x * int8_t(3) + int8_t(7);
		dst.v[i] = int(y) + int(x >> int8_t(2));
	}
}
