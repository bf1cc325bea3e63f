#version 450
// A kernel that does not end in any useful time unless the host sets `stop`: each invocation
// waits for the flag, counting its turns (the atomic keeps every iteration observable, so no
// compiler drops the loop). Some implementations (llvmpipe) end an invocation's loops after
// 65535 iterations, so the program dispatches a million invocations: minutes of work.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) coherent buffer F { uint stop; uint turns; };

void main()
{
	while (stop == 0u)
		atomicAdd(turns, 1u);
}
