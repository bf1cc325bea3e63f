#version 450
// Writes a VkDispatchIndirectCommand on the device (args[at .. at+2]) for a later
// vkCmdDispatchIndirect.
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) writeonly buffer Args { uint args[]; };
layout(push_constant) uniform P { uint at; uint x, y, z; };

void main()
{
	args[at] = x;
	args[at + 1] = y;
	args[at + 2] = z;
}
