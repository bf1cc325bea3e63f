#version 450
// Sum (mod 2^32), minimum and maximum of n uints: a grid-stride loop per invocation, a tree in
// shared memory per workgroup, then one atomic per workgroup into r[0..2].
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer In { uint v[]; };
layout(set = 0, binding = 1) buffer R { uint sum; uint lo; uint hi; } r;
layout(push_constant) uniform P { uint n; };

shared uint ssum[256], smin[256], smax[256];

void main()
{
	uint lid = gl_LocalInvocationID.x;
	uint stride = gl_NumWorkGroups.x * 256;
	uint s = 0, lo = 0xffffffffu, hi = 0;
	for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
		uint x = v[i];
		s += x;
		lo = min(lo, x);
		hi = max(hi, x);
	}
	ssum[lid] = s;
	smin[lid] = lo;
	smax[lid] = hi;
	barrier();
	for (uint w = 128; w > 0; w >>= 1) {
		if (lid < w) {
			ssum[lid] += ssum[lid + w];
			smin[lid] = min(smin[lid], smin[lid + w]);
			smax[lid] = max(smax[lid], smax[lid + w]);
		}
		barrier();
	}
	if (lid == 0) {
		atomicAdd(r.sum, ssum[0]);
		atomicMin(r.lo, smin[0]);
		atomicMax(r.hi, smax[0]);
	}
}
