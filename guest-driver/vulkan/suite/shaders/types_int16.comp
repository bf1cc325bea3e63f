#version 450
// Int16 arithmetic (shaderInt16): the multiply and add wrap at 16 bits.
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { int v[]; } src;
layout(set = 0, binding = 1) writeonly buffer Out { int v[]; } dst;
layout(push_constant) uniform P { uint n; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n) {
		int16_t x = int16_t(src.v[i]);
		int16_t y = x * int16_t(1234) + int16_t(-77);
		dst.v[i] = int(y) + int(uint16_t(x) >> uint16_t(3));
	}
}
