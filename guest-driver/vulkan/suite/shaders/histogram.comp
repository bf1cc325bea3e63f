#version 450
// 256-bin histogram of the bytes of n uints: atomics on shared memory per workgroup, then on
// the global bins (push.global_only: straight to the global bins, contended atomics).
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer In { uint v[]; };
layout(set = 0, binding = 1) buffer Bins { uint bins[256]; };
layout(push_constant) uniform P { uint n; uint global_only; };

shared uint local_bins[256];

void main()
{
	uint lid = gl_LocalInvocationID.x;
	local_bins[lid] = 0;
	barrier();
	uint stride = gl_NumWorkGroups.x * 256;
	for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
		uint x = v[i];
		for (uint k = 0; k < 4; k++) {
			uint byte = (x >> (8 * k)) & 0xffu;
			if (global_only != 0)
				atomicAdd(bins[byte], 1u);
			else
				atomicAdd(local_bins[byte], 1u);
		}
	}
	barrier();
	if (global_only == 0 && local_bins[lid] != 0)
		atomicAdd(bins[lid], local_bins[lid]);
}
