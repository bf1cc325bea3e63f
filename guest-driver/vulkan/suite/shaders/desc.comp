#version 450
// Four descriptor sets, descriptor arrays of storage and uniform buffers, a binding number with
// a hole before it, std140 uniform blocks. o[i] = sum_k ins[k].v[i] * u.mul[k] + u.add.x
// + ua[0].k.x * ua[1].k.y, and every invocation counts itself in set 3.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) writeonly buffer Out { uint o[]; };
layout(set = 1, binding = 0, std140) uniform U { uvec4 mul; uvec4 add; } u;
layout(set = 1, binding = 2) readonly buffer In { uint v[]; } ins[4];
layout(set = 2, binding = 0, std140) uniform UA { uvec4 k; } ua[2];
layout(set = 3, binding = 5) buffer Counter { uint c; } counter;

void main()
{
	uint i = gl_GlobalInvocationID.x;
	uint s = ins[0].v[i] * u.mul.x + ins[1].v[i] * u.mul.y + ins[2].v[i] * u.mul.z +
		 ins[3].v[i] * u.mul.w;
	o[i] = s + u.add.x + ua[0].k.x * ua[1].k.y;
	atomicAdd(counter.c, 1u);
}
