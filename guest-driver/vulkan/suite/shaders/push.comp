#version 450
// Writes the push constants it sees to o[slot*32 ...]. The block starts at offset 16: the
// pipeline layout's one range is [16, 128), and the program updates it piece by piece.
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform P {
	layout(offset = 16) uint slot;
	uint a;
	float f;
	uint b;
	uvec4 v[6];
};

void main()
{
	uint base = slot * 32;
	o[base + 0] = slot;
	o[base + 1] = a;
	o[base + 2] = floatBitsToUint(f * 2.0);
	o[base + 3] = b;
	for (uint k = 0; k < 6; k++)
		for (uint c = 0; c < 4; c++)
			o[base + 4 + 4 * k + c] = v[k][c];
}
