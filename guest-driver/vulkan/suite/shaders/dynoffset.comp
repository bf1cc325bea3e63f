#version 450
// A dynamic uniform buffer and a dynamic storage buffer: each dispatch sees the windows the
// dynamic offsets of its vkCmdBindDescriptorSets chose.
layout(local_size_x = 16) in;
layout(set = 0, binding = 0, std140) uniform U { uint value; uint slot; } u;
layout(set = 0, binding = 1) writeonly buffer O { uint o[16]; } win;

void main()
{
	win.o[gl_LocalInvocationID.x] = u.value * 16u + gl_LocalInvocationID.x + u.slot * 1000u;
}
