#version 450
// Subgroup ballot and votes: subgroupBallot / BallotBitCount, subgroupElect,
// subgroupBroadcastFirst, subgroupAll / subgroupAny.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_vote : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { uint v[]; };
layout(set = 0, binding = 1) writeonly buffer Out { uvec4 o[]; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	uint x = v[i];
	uvec4 b = subgroupBallot((x & 1u) != 0u);
	uint votes = (subgroupAll(x > 0u) ? 1u : 0u) | (subgroupAny((x & 7u) == 0u) ? 2u : 0u) |
		     (subgroupElect() ? 4u : 0u);
	o[i] = uvec4(gl_SubgroupID << 16 | gl_SubgroupInvocationID, subgroupBallotBitCount(b),
		     subgroupBroadcastFirst(x), votes);
}
