// SPDX-License-Identifier: MIT
/*
 * Kernel SPIR-V checks: SPIRV-Tools validation (spvValidate), then a small walk over the
 * module that checks its interface against what the caller declared.
 *
 * Why the walk: a kernel comes from a guest. A module can be valid SPIR-V and still use a
 * descriptor binding the pipeline layout does not have, a uniform buffer or image, a bigger
 * push-constant block than declared, or a capability the device did not enable. Vulkan calls
 * all of these undefined behaviour, and a driver may crash on them, so they are refused here,
 * before vkCreateShaderModule. The walk trusts nothing: every index is bounds-checked even
 * though the validator has seen the module first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <spirv-tools/libspirv.h>

#include "internal.h"

#define SPIRV_MAGIC 0x07230203u

/* Opcodes, decorations, storage classes and capabilities used below (SPIR-V 1.6 spec). */
enum {
	OP_ENTRY_POINT = 15,
	OP_CAPABILITY = 17,
	OP_TYPE_INT = 21,
	OP_TYPE_FLOAT = 22,
	OP_TYPE_VECTOR = 23,
	OP_TYPE_MATRIX = 24,
	OP_TYPE_ARRAY = 28,
	OP_TYPE_STRUCT = 30,
	OP_TYPE_POINTER = 32,
	OP_CONSTANT = 43,
	OP_VARIABLE = 59,
	OP_DECORATE = 71,
	OP_MEMBER_DECORATE = 72,
	OP_GROUP_DECORATE = 74,
	OP_GROUP_MEMBER_DECORATE = 75,
	OP_DECORATE_ID = 332,
	OP_DECORATE_STRING = 5632,
	OP_MEMBER_DECORATE_STRING = 5633,
};
enum {
	DEC_BLOCK = 2,
	DEC_BUFFER_BLOCK = 3,
	DEC_ROW_MAJOR = 4,
	DEC_ARRAY_STRIDE = 6,
	DEC_MATRIX_STRIDE = 7,
	DEC_BINDING = 33,
	DEC_DESCRIPTOR_SET = 34,
	DEC_OFFSET = 35,
};
enum {
	SC_UNIFORM_CONSTANT = 0,
	SC_INPUT = 1,
	SC_UNIFORM = 2,
	SC_OUTPUT = 3,
	SC_WORKGROUP = 4,
	SC_PRIVATE = 6,
	SC_FUNCTION = 7,
	SC_PUSH_CONSTANT = 9,
	SC_STORAGE_BUFFER = 12,
};
#define EXEC_MODEL_GLCOMPUTE 5

/* Per-id facts gathered in one pass. */
#define F_BLOCK (1u << 0)
#define F_BUFFER_BLOCK (1u << 1)
#define F_HAS_SET (1u << 2)
#define F_HAS_BINDING (1u << 3)

struct id_info {
	uint32_t def; /* word index of the instruction defining the id (0: none) */
	uint32_t flags;
	uint32_t set;
	uint32_t binding;
	uint32_t array_stride;
};

struct member_dec {
	uint32_t type;
	uint32_t member;
	uint32_t decoration;
	uint32_t value;
};

struct walk {
	const uint32_t *w;
	uint32_t count;
	uint32_t bound;
	struct id_info *ids;
	struct member_dec *mdecs;
	uint32_t mdec_count;
	uint32_t mdec_cap;
};

static const char *storage_class_name(uint32_t sc)
{
	switch (sc) {
	case SC_UNIFORM_CONSTANT:
		return "UniformConstant (image, sampler)";
	case SC_UNIFORM:
		return "Uniform (uniform buffer)";
	case 5349:
		return "PhysicalStorageBuffer";
	case 11:
		return "Image";
	default:
		return "storage class";
	}
}

/* Capabilities a compute kernel may declare, given the device's enabled features. */
static bool capability_allowed(uint32_t cap, uint32_t features)
{
	uint32_t subgroup = features >> MDGPU_FEAT_SUBGROUP_SHIFT;

	switch (cap) {
	case 0: /* Matrix */
	case 1: /* Shader */
		return true;
	case 10:
		return features & MDGPU_FEAT_FLOAT64;
	case 11:
		return features & MDGPU_FEAT_INT64;
	case 22:
		return features & MDGPU_FEAT_INT16;
	case 61:
		return subgroup & 0x01; /* GroupNonUniform: BASIC */
	case 62:
		return subgroup & 0x02; /* Vote */
	case 63:
		return subgroup & 0x04; /* Arithmetic */
	case 64:
		return subgroup & 0x08; /* Ballot */
	case 65:
		return subgroup & 0x10; /* Shuffle */
	case 66:
		return subgroup & 0x20; /* ShuffleRelative */
	case 67:
		return subgroup & 0x40; /* Clustered */
	case 68:
		return subgroup & 0x80; /* Quad */
	default:
		return false;
	}
}

static const uint32_t *inst_at(const struct walk *w, uint32_t id, uint32_t *len)
{
	uint32_t at;

	if (id == 0 || id >= w->bound || !(at = w->ids[id].def))
		return NULL;
	*len = w->w[at] >> 16;
	return &w->w[at];
}

static bool member_dec(const struct walk *w, uint32_t type, uint32_t member, uint32_t dec,
		       uint32_t *value)
{
	for (uint32_t i = 0; i < w->mdec_count; i++) {
		const struct member_dec *m = &w->mdecs[i];

		if (m->type == type && m->member == member && m->decoration == dec) {
			*value = m->value;
			return true;
		}
	}
	return false;
}

/*
 * Bytes a type occupies in a push-constant block (explicit layout): scalars, vectors,
 * matrices (by the member's MatrixStride), arrays (by ArrayStride) and structs (by member
 * Offsets). 0 means "cannot tell", which the caller refuses.
 */
static uint64_t type_size(const struct walk *w, uint32_t type, uint32_t matrix_stride, int depth)
{
	const uint32_t *in;
	uint32_t len;

	if (depth > 16 || !(in = inst_at(w, type, &len)))
		return 0;
	switch (in[0] & 0xffff) {
	case OP_TYPE_INT:
	case OP_TYPE_FLOAT:
		return len >= 3 ? in[2] / 8 : 0;
	case OP_TYPE_VECTOR:
		return len >= 4 ? type_size(w, in[2], 0, depth + 1) * in[3] : 0;
	case OP_TYPE_MATRIX: {
		uint64_t col;

		if (len < 4)
			return 0;
		col = type_size(w, in[2], 0, depth + 1);
		/* Row-major or column-major: the larger of the two extents, to be safe. */
		if (matrix_stride)
			return (uint64_t)matrix_stride * (in[3] > 4 ? in[3] : 4);
		return col * in[3];
	}
	case OP_TYPE_ARRAY: {
		const uint32_t *c;
		uint32_t clen, n, stride;
		uint64_t elem;

		if (len < 4 || !(c = inst_at(w, in[3], &clen)) || (c[0] & 0xffff) != OP_CONSTANT ||
		    clen < 4)
			return 0;
		n = c[3]; /* low word of the length constant */
		elem = type_size(w, in[2], matrix_stride, depth + 1);
		stride = w->ids[type].array_stride;
		if (!n || !elem)
			return 0;
		return (uint64_t)(n - 1) * (stride ? stride : elem) + elem;
	}
	case OP_TYPE_STRUCT: {
		uint64_t size = 0;

		for (uint32_t m = 0; m + 2 < len; m++) {
			uint32_t offset, mstride = 0;
			uint64_t msize;

			if (!member_dec(w, type, m, DEC_OFFSET, &offset))
				return 0;
			member_dec(w, type, m, DEC_MATRIX_STRIDE, &mstride);
			msize = type_size(w, in[2 + m], mstride, depth + 1);
			if (!msize)
				return 0;
			if (offset + msize > size)
				size = offset + msize;
		}
		return size;
	}
	default:
		return 0;
	}
}

static int gather(struct walk *w, char *entry, size_t entry_size, uint32_t features)
{
	uint32_t entries = 0;

	for (uint32_t at = 5; at < w->count;) {
		uint32_t len = w->w[at] >> 16, op = w->w[at] & 0xffff;
		const uint32_t *in = &w->w[at];

		if (len == 0 || len > w->count - at)
			return mdgpu_error(-EINVAL,
					   "kernel_create: SPIR-V instruction at word %u has"
					   " a bad length",
					   at);
		switch (op) {
		case OP_CAPABILITY:
			if (len >= 2 && !capability_allowed(in[1], features))
				return mdgpu_error(-EINVAL,
						   "kernel_create: SPIR-V capability %u is not"
						   " supported on this device",
						   in[1]);
			break;
		case OP_ENTRY_POINT:
			if (len >= 4 && in[1] == EXEC_MODEL_GLCOMPUTE) {
				size_t n = 0;
				const char *name = (const char *)&in[3];
				size_t max = (size_t)(len - 3) * 4;

				while (n < max && name[n])
					n++;
				if (n == max || n >= entry_size)
					return mdgpu_error(-EINVAL,
							   "kernel_create: entry point name"
							   " too long");
				memcpy(entry, name, n + 1);
				entries++;
			}
			break;
		case OP_GROUP_DECORATE:
		case OP_GROUP_MEMBER_DECORATE:
			return mdgpu_error(-EINVAL, "kernel_create: decoration groups are not"
						    " supported");
		case OP_DECORATE:
			if (len >= 3 && in[1] < w->bound) {
				struct id_info *d = &w->ids[in[1]];

				switch (in[2]) {
				case DEC_BLOCK:
					d->flags |= F_BLOCK;
					break;
				case DEC_BUFFER_BLOCK:
					d->flags |= F_BUFFER_BLOCK;
					break;
				case DEC_ARRAY_STRIDE:
					if (len >= 4)
						d->array_stride = in[3];
					break;
				case DEC_DESCRIPTOR_SET:
					if (len >= 4) {
						d->set = in[3];
						d->flags |= F_HAS_SET;
					}
					break;
				case DEC_BINDING:
					if (len >= 4) {
						d->binding = in[3];
						d->flags |= F_HAS_BINDING;
					}
					break;
				}
			}
			break;
		case OP_MEMBER_DECORATE:
			if (len >= 5 && (in[3] == DEC_OFFSET || in[3] == DEC_MATRIX_STRIDE)) {
				if (w->mdec_count == w->mdec_cap) {
					uint32_t cap = w->mdec_cap ? w->mdec_cap * 2 : 64;
					struct member_dec *m = realloc(w->mdecs, cap * sizeof(*m));

					if (!m)
						return mdgpu_error(-ENOMEM, "kernel_create: out of"
									    " memory");
					w->mdecs = m;
					w->mdec_cap = cap;
				}
				w->mdecs[w->mdec_count++] = (struct member_dec){
					.type = in[1],
					.member = in[2],
					.decoration = in[3],
					.value = in[4],
				};
			}
			break;
		case OP_TYPE_INT:
		case OP_TYPE_FLOAT:
		case OP_TYPE_VECTOR:
		case OP_TYPE_MATRIX:
		case OP_TYPE_ARRAY:
		case OP_TYPE_STRUCT:
		case OP_TYPE_POINTER:
		case 20 /* OpTypeBool */:
		case 29 /* OpTypeRuntimeArray */:
			if (len >= 2 && in[1] < w->bound)
				w->ids[in[1]].def = at;
			break;
		case OP_CONSTANT:
		case OP_VARIABLE:
			if (len >= 3 && in[2] < w->bound)
				w->ids[in[2]].def = at;
			break;
		}
		at += len;
	}
	if (entries != 1)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V has %u GLCompute entry points,"
				   " needs exactly 1",
				   entries);
	return 0;
}

static int check_variables(const struct walk *w, uint32_t binding_count, uint32_t push_size)
{
	uint32_t push_blocks = 0;

	for (uint32_t at = 5; at < w->count; at += w->w[at] >> 16) {
		const uint32_t *in = &w->w[at], *ptr, *pointee;
		uint32_t len = in[0] >> 16, plen, tlen, sc, var;
		const struct id_info *d;

		if ((in[0] & 0xffff) != OP_VARIABLE || len < 4)
			continue;
		var = in[2];
		sc = in[3];
		switch (sc) {
		case SC_INPUT:
		case SC_OUTPUT:
		case SC_WORKGROUP:
		case SC_PRIVATE:
		case SC_FUNCTION:
			continue;
		case SC_PUSH_CONSTANT:
		case SC_STORAGE_BUFFER:
		case SC_UNIFORM:
			break;
		default:
			return mdgpu_error(-EINVAL,
					   "kernel_create: variable %%%u: %s %u is not"
					   " supported (storage buffers and push constants only)",
					   var, storage_class_name(sc), sc);
		}
		ptr = inst_at(w, in[1], &plen);
		if (!ptr || (ptr[0] & 0xffff) != OP_TYPE_POINTER || plen < 4)
			return mdgpu_error(-EINVAL, "kernel_create: variable %%%u: bad type", var);
		pointee = inst_at(w, ptr[3], &tlen);
		if (!pointee || (pointee[0] & 0xffff) != OP_TYPE_STRUCT)
			return mdgpu_error(-EINVAL,
					   "kernel_create: variable %%%u: arrays of buffers"
					   " are not supported",
					   var);
		if (sc == SC_PUSH_CONSTANT) {
			uint64_t size = type_size(w, ptr[3], 0, 0);

			if (++push_blocks > 1)
				return mdgpu_error(-EINVAL, "kernel_create: more than one"
							    " push-constant block");
			if (size == 0)
				return mdgpu_error(-EINVAL,
						   "kernel_create: cannot tell the size of the"
						   " push-constant block");
			if (size > push_size)
				return mdgpu_error(-EINVAL,
						   "kernel_create: push-constant block is %llu"
						   " bytes, push_constant_size is %u",
						   (unsigned long long)size, push_size);
			continue;
		}
		if (sc == SC_UNIFORM && !(w->ids[ptr[3]].flags & F_BUFFER_BLOCK))
			return mdgpu_error(-EINVAL,
					   "kernel_create: variable %%%u: uniform buffers are"
					   " not supported (use storage buffers)",
					   var);
		d = &w->ids[var];
		if (!(d->flags & F_HAS_SET) || !(d->flags & F_HAS_BINDING) || d->set != 0)
			return mdgpu_error(-EINVAL,
					   "kernel_create: storage buffer %%%u is not in"
					   " descriptor set 0",
					   var);
		if (d->binding >= binding_count)
			return mdgpu_error(-EINVAL,
					   "kernel_create: storage buffer at binding %u, but"
					   " binding_count is %u",
					   d->binding, binding_count);
	}
	return 0;
}

static spv_target_env target_env(uint32_t version, uint32_t api_version, int *ok)
{
	uint32_t minor = (version >> 8) & 0xff, api_minor = (api_version >> 12) & 0x3ff;

	*ok = 1;
	if ((version >> 16) != 1)
		*ok = 0;
	else if (minor <= 3)
		return SPV_ENV_VULKAN_1_1;
	else if (minor == 4 && api_minor >= 2)
		return SPV_ENV_VULKAN_1_2;
	else if (minor == 5 && api_minor >= 2)
		return SPV_ENV_VULKAN_1_2;
	else if (minor == 6 && api_minor >= 3)
		return SPV_ENV_VULKAN_1_3;
	*ok = 0;
	return SPV_ENV_VULKAN_1_1;
}

int mdgpu_spirv_check(const uint32_t *words, uint32_t word_count, uint32_t binding_count,
		      uint32_t push_constant_size, uint32_t api_version, uint32_t features,
		      char *entry, size_t entry_size)
{
	spv_const_binary_t binary = { words, word_count };
	spv_diagnostic diag = NULL;
	spv_target_env env;
	spv_context ctx;
	struct walk w = { 0 };
	spv_result_t res;
	int ok, ret;

	if (word_count < 5 || words[0] != SPIRV_MAGIC)
		return mdgpu_error(-EINVAL, "kernel_create: not SPIR-V (bad magic or shorter than"
					    " a header)");
	env = target_env(words[1], api_version, &ok);
	if (!ok)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V version %u.%u is not supported by"
				   " this device",
				   (words[1] >> 16) & 0xff, (words[1] >> 8) & 0xff);
	ctx = spvContextCreate(env);
	if (!ctx)
		return mdgpu_error(-ENOMEM, "kernel_create: spvContextCreate failed");
	res = spvValidate(ctx, &binary, &diag);
	if (res != SPV_SUCCESS) {
		ret = mdgpu_error(-EINVAL, "kernel_create: SPIR-V invalid (%s): %s",
				  spvTargetEnvDescription(env),
				  diag && diag->error ? diag->error : "no diagnostic");
		spvDiagnosticDestroy(diag);
		spvContextDestroy(ctx);
		return ret;
	}
	spvDiagnosticDestroy(diag);
	spvContextDestroy(ctx);

	/* Ids are below the header's bound; a bound far above the module's size is refused. */
	w.w = words;
	w.count = word_count;
	w.bound = words[3];
	if (w.bound > word_count + 1024)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V id bound %u is implausible for"
				   " %u words",
				   w.bound, word_count);
	w.ids = calloc(w.bound ? w.bound : 1, sizeof(*w.ids));
	if (!w.ids)
		return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
	ret = gather(&w, entry, entry_size, features);
	if (!ret)
		ret = check_variables(&w, binding_count, push_constant_size);
	free(w.ids);
	free(w.mdecs);
	return ret;
}
