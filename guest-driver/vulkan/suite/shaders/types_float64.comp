#version 450
// Float64 arithmetic (shaderFloat64): products of integers below 2^26 and halves, exact in
// double precision.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer In { uint v[]; } src;
layout(set = 0, binding = 1) writeonly buffer Out { double v[]; } dst;
layout(push_constant) uniform P { uint n; };

void main()
{
	uint i = gl_GlobalInvocationID.x;
	if (i < n) {
		double a = double(src.v[i]), b = double(src.v[(i + 1u) % n]);
		dst.v[i] = a * b + 0.5 - double(i) / 4.0;
	}
}
