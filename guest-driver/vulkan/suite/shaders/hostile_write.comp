#version 450
// Writes value + k at target[idx[k]] and reads target[idx[k] ^ 1] into out[k], for indices a
// hostile program chooses (beyond the descriptor's range, or through a bad descriptor).
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) buffer Target { uint t[]; };
layout(set = 0, binding = 1) writeonly buffer Out { uint o[4]; };
layout(push_constant) uniform P { uvec4 idx; uint value; };

void main()
{
	for (uint k = 0; k < 4; k++) {
		t[idx[k]] = value + k;
		o[k] = t[idx[k] ^ 1u];
	}
}
