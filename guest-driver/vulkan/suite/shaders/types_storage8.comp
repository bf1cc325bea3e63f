#version 450
// 8-bit storage only (StorageBuffer8BitAccess): bytes loaded, 32-bit arithmetic, bytes stored.
#extension GL_EXT_shader_8bit_storage : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { uint8_t b[]; } src;
layout(set = 0, binding = 1) writeonly buffer Out { uint8_t b[]; } dst;
layout(push_constant) uniform P { uint n; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n)
		dst.b[i] = uint8_t(uint(src.b[i]) * 5u + 3u);
}
