#version 450
// spec.comp compiled for Vulkan 1.3: the specialized workgroup size is an OpExecutionModeId
// LocalSizeId (SPIR-V 1.6; the device needs maintenance4), and it sizes a shared array.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int SC_I = 1;
layout(constant_id = 2) const float SC_F = 1.0;
layout(constant_id = 3) const bool SC_B = false;
layout(constant_id = 4) const uint SC_U = 7u;
layout(set = 0, binding = 0) writeonly buffer Out { uint o[]; };
layout(set = 0, binding = 1) writeonly buffer Meta { uint meta[8]; };

shared uint sh[gl_WorkGroupSize.x];

void main()
{
	uint l = gl_LocalInvocationID.x;
	sh[l] = l * uint(SC_I) + SC_U;
	barrier();
	// The mirror image in the workgroup: wrong if the specialized size is not the real one.
	o[gl_GlobalInvocationID.x] = sh[gl_WorkGroupSize.x - 1u - l] + (SC_B ? 0x10000u : 0u);
	if (gl_GlobalInvocationID.x == 0) {
		meta[0] = gl_WorkGroupSize.x;
		meta[1] = uint(SC_I);
		meta[2] = floatBitsToUint(SC_F);
		meta[3] = SC_B ? 1u : 0u;
		meta[4] = SC_U;
		meta[5] = gl_NumWorkGroups.x;
	}
}
