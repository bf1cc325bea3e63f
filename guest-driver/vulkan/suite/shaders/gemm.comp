#version 450
// C (MxN) = A (MxK) * B (KxN), row-major floats, 16x16 tiles through shared memory.
layout(local_size_x = 16, local_size_y = 16) in;
layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer C { float c[]; };
layout(push_constant) uniform P { uint M, N, K; };

shared float ta[16][16];
shared float tb[16][16];

void main()
{
	uint row = gl_GlobalInvocationID.y, col = gl_GlobalInvocationID.x;
	uint ly = gl_LocalInvocationID.y, lx = gl_LocalInvocationID.x;
	float acc = 0.0;
	for (uint t = 0; t < K; t += 16) {
		ta[ly][lx] = (row < M && t + lx < K) ? a[row * K + t + lx] : 0.0;
		tb[ly][lx] = (col < N && t + ly < K) ? b[(t + ly) * N + col] : 0.0;
		barrier();
		for (uint k = 0; k < 16; k++)
			acc += ta[ly][k] * tb[k][lx];
		barrier();
	}
	if (row < M && col < N)
		c[row * N + col] = acc;
}
