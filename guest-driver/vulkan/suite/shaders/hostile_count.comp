#version 450
// One atomic increment per workgroup: counts how many workgroups a dispatch really ran.
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) buffer C { uint count; };

void main()
{
	atomicAdd(count, 1u);
}
