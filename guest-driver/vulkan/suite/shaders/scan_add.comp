#version 450
// Second half of the multi-level scan: add each block's scanned total to its 512 elements.
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer Data { uint d[]; };
layout(set = 0, binding = 1) readonly buffer Sums { uint sums[]; };
layout(push_constant) uniform P { uint n; uint offset; uint sums_offset; };

void main()
{
	uint block = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
	uint add = sums[sums_offset + block];
	uint i = offset + block * 512 + gl_LocalInvocationID.x;
	if (i < offset + n)
		d[i] += add;
	if (i + 256 < offset + n)
		d[i + 256] += add;
}
