#version 450
// log[seq] = value of the counter before this step, then counter += add: a trace of the order
// in which dependent submissions ran.
layout(local_size_x = 1) in;
layout(set = 0, binding = 0) buffer S { uint counter; uint log[]; } s;
layout(push_constant) uniform P { uint seq; uint add; };

void main()
{
	s.log[seq] = s.counter;
	s.counter += add;
}
