#version 450
// Records which workgroups ran: o[tag][workgroup][invocation] = packed gl_NumWorkGroups + 1, and
// counts the invocations of each tag. Workgroup ids include vkCmdDispatchBase's base.
layout(local_size_x = 4, local_size_y = 2, local_size_z = 1) in;
layout(set = 0, binding = 0) buffer O { uint o[]; };
layout(set = 0, binding = 1) buffer C { uint count[]; };
layout(push_constant) uniform P { uint tag; };

void main()
{
	uvec3 w = gl_WorkGroupID;
	if (all(lessThan(w, uvec3(16u, 16u, 4u)))) {
		uint idx = ((w.z * 16u + w.y) * 16u + w.x) * 8u + gl_LocalInvocationIndex;
		o[tag * 8192u + idx] = (gl_NumWorkGroups.x | gl_NumWorkGroups.y << 8 | gl_NumWorkGroups.z << 16) + 1u;
	}
	atomicAdd(count[tag], 1u);
}
