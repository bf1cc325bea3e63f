#version 450
// b[i] = 2 * a[i] + k: a small step whose result shows whether it ran after what it depends on.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer A { uint a[]; };
layout(set = 0, binding = 1) buffer B { uint b[]; };
layout(push_constant) uniform P { uint n; uint k; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n)
		b[i] = 2u * a[i] + k;
}
