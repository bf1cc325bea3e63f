#version 450
// Descriptor arrays indexed by a dynamically uniform value (a push constant): needs the
// shader{Storage,Uniform}BufferArrayDynamicIndexing features.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) writeonly buffer Out { uint o[]; };
layout(set = 0, binding = 1) readonly buffer In { uint v[]; } ins[4];
layout(set = 0, binding = 2, std140) uniform UA { uvec4 k; } ua[2];
layout(push_constant) uniform P { uint which; uint uwhich; uint base; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	o[base + i] = ins[which].v[i] * 10u + ua[uwhich].k.z;
}
