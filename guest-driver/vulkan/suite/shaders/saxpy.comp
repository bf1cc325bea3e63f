#version 450
// y = a * x + y over n floats; a 2D grid of 256-wide workgroups, linearised.
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform P { float a; uint n; };

void main()
{
	uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256 + gl_LocalInvocationID.x;
	if (i < n)
		y[i] = a * x[i] + y[i];
}
