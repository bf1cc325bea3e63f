#version 450
// Exclusive prefix sum (mod 2^32) of 512-element blocks in place: each invocation takes a pair,
// a Hillis-Steele scan of the 256 pair sums in shared memory; the block's total goes to sums[]
// for the next level. Workgroups form a 2D grid, linearised.
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) buffer Data { uint d[]; };
layout(set = 0, binding = 1) writeonly buffer Sums { uint sums[]; };
layout(push_constant) uniform P { uint n; uint offset; uint sums_offset; };

shared uint s[2][256];

void main()
{
	uint lid = gl_LocalInvocationID.x;
	uint block = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
	uint i = offset + block * 512 + 2 * lid;
	uint end = offset + n;
	uint a = i < end ? d[i] : 0;
	uint b = i + 1 < end ? d[i + 1] : 0;
	uint cur = 0;
	s[0][lid] = a + b;
	barrier();
	for (uint w = 1; w < 256; w <<= 1) {
		uint x = s[cur][lid];
		if (lid >= w)
			x += s[cur][lid - w];
		s[cur ^ 1][lid] = x;
		cur ^= 1;
		barrier();
	}
	uint inclusive = s[cur][lid];
	uint exclusive = inclusive - (a + b);
	if (i < end)
		d[i] = exclusive;
	if (i + 1 < end)
		d[i + 1] = exclusive + a;
	if (lid == 255)
		sums[sums_offset + block] = inclusive;
}
