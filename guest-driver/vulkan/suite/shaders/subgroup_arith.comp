#version 450
// Subgroup arithmetic: every invocation records where it is (subgroup id, lane) and what
// subgroupAdd / InclusiveAdd / ExclusiveAdd / Min / Max returned for it.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { uint v[]; };
layout(set = 0, binding = 1) writeonly buffer Out { uvec4 o[]; };
layout(set = 0, binding = 2) writeonly buffer Out2 { uvec2 p[]; };
layout(set = 0, binding = 3) writeonly buffer Meta { uint meta[4]; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	uint x = v[i];
	o[i] = uvec4(gl_SubgroupID << 16 | gl_SubgroupInvocationID, subgroupAdd(x),
		     subgroupInclusiveAdd(x), subgroupExclusiveAdd(x));
	p[i] = uvec2(subgroupMin(x), subgroupMax(x));
	if (i == 0) {
		meta[0] = gl_SubgroupSize;
		meta[1] = gl_NumSubgroups;
	}
}
