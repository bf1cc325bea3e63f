#version 450
// 16-bit storage only (StorageBuffer16BitAccess): 16-bit values are loaded, converted to 32
// bits for the arithmetic, and stored back as 16 bits.
#extension GL_EXT_shader_16bit_storage : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer InU { uint16_t u[]; } src_u;
layout(set = 0, binding = 1) readonly buffer InH { float16_t h[]; } src_h;
layout(set = 0, binding = 2) writeonly buffer OutU { uint16_t u[]; } dst_u;
layout(set = 0, binding = 3) writeonly buffer OutH { float16_t h[]; } dst_h;
layout(push_constant) uniform P { uint n; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n) {
		dst_u.u[i] = uint16_t(uint(src_u.u[i]) * 3u + 1u);
		dst_h.h[i] = float16_t(float(src_h.h[i]) * 0.5 + 1.0);
	}
}
