// SPDX-License-Identifier: MIT
/*
 * Kernel SPIR-V checks, in three steps:
 *
 * 1. Pre-checks: one linear walk over the module, before any other code reads it. Every
 *    instruction's length, every id this file looks up (below the header's bound, defined
 *    before it is used), the capabilities, and the limits that keep everything after it
 *    bounded: types nested at most MDGPU_HOST_MAX_TYPE_DEPTH deep and expanding to at most
 *    MDGPU_HOST_MAX_TYPE_PATHS member paths, at most MDGPU_HOST_MAX_MODULE_PATHS paths walked
 *    by the validator over the whole module, and the device's limits on a kernel (local
 *    size, workgroup shared memory, per-invocation Private/Function memory).
 * 2. spvValidate (SPIRV-Tools), for the Vulkan environment the module's version needs.
 * 3. The interface: what the module declares against what the caller declared, and its
 *    descriptor bindings reflected (set, binding, storage or uniform buffer, array size).
 *
 * Specialization: every value this file takes from a specialization constant (local sizes,
 * array lengths, so shared and private memory and the push-constant block's size) is the
 * specialized one where the caller's data gives it, else the module's default: the limits are
 * checked on what the driver will compile.
 *
 * Why pre-checks before the validator: a kernel comes from a guest, and the validator is not
 * linear in the size of a module. It walks every member path of a struct type, without
 * memoisation, for every variable and for every instruction that loads or stores a value of
 * that type: a push-constant block of structs nested 16 deep with 3 members each is 3^16
 * paths in 1.5 KB, and took the validator 50-90 s before failing; 20,000 storage buffer
 * variables of a 256-path struct took it 11 s, 150,000 loads and stores of one 11 s. With
 * nesting, paths per type and paths walked in all bounded, its work is at most about its work
 * on a module of plain scalars of the same size plus MDGPU_HOST_MAX_MODULE_PATHS path visits
 * (a quarter of a second). The device limits are checked here too because a module can be
 * valid and still crash the driver at dispatch (lavapipe with a 2 GiB shared array).
 *
 * Why the interface check: a module can be valid SPIR-V and still use a descriptor binding the
 * pipeline layout does not have, a uniform buffer or image, a bigger push-constant block than
 * declared, or a capability the device did not enable. Vulkan calls all of these undefined
 * behaviour, and a driver may crash on them, so they are refused before vkCreateShaderModule.
 *
 * Everything here is O(words): each type's depth, path count and natural size are computed
 * once, when it is defined (its operand types are defined before it, which the walk checks,
 * so there is no cycle to follow); member decorations are indexed once per struct; the
 * explicit-layout size of a struct is computed once and kept.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <spirv-tools/libspirv.h>

#include "internal.h"

#define SPIRV_MAGIC 0x07230203u
#define HEADER_WORDS 5u

/* Opcodes, decorations, storage classes and capabilities used below (SPIR-V 1.6 spec). */
enum {
	OP_ENTRY_POINT = 15,
	OP_EXECUTION_MODE = 16,
	OP_CAPABILITY = 17,
	OP_TYPE_VOID = 19,
	OP_TYPE_BOOL = 20,
	OP_TYPE_INT = 21,
	OP_TYPE_FLOAT = 22,
	OP_TYPE_VECTOR = 23,
	OP_TYPE_MATRIX = 24,
	OP_TYPE_IMAGE = 25,
	OP_TYPE_SAMPLER = 26,
	OP_TYPE_SAMPLED_IMAGE = 27,
	OP_TYPE_ARRAY = 28,
	OP_TYPE_RUNTIME_ARRAY = 29,
	OP_TYPE_STRUCT = 30,
	OP_TYPE_OPAQUE = 31,
	OP_TYPE_POINTER = 32,
	OP_TYPE_FUNCTION = 33,
	OP_TYPE_FORWARD_POINTER = 39,
	OP_CONSTANT_TRUE = 41,
	OP_CONSTANT_FALSE = 42,
	OP_CONSTANT = 43,
	OP_CONSTANT_COMPOSITE = 44,
	OP_CONSTANT_NULL = 46,
	OP_SPEC_CONSTANT_TRUE = 48,
	OP_SPEC_CONSTANT_FALSE = 49,
	OP_SPEC_CONSTANT = 50,
	OP_SPEC_CONSTANT_COMPOSITE = 51,
	OP_SPEC_CONSTANT_OP = 52,
	OP_FUNCTION = 54,
	OP_VARIABLE = 59,
	OP_DECORATE = 71,
	OP_MEMBER_DECORATE = 72,
	OP_GROUP_DECORATE = 74,
	OP_GROUP_MEMBER_DECORATE = 75,
	OP_EXECUTION_MODE_ID = 331,
};
enum {
	DEC_SPEC_ID = 1,
	DEC_BLOCK = 2,
	DEC_BUFFER_BLOCK = 3,
	DEC_ARRAY_STRIDE = 6,
	DEC_MATRIX_STRIDE = 7,
	DEC_BUILTIN = 11,
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
#define EXEC_MODE_LOCAL_SIZE 17
#define EXEC_MODE_LOCAL_SIZE_ID 38
#define BUILTIN_WORKGROUP_SIZE 25

/*
 * Sizes saturate here: anything this large is over every limit, and sums and products of
 * saturated values cannot overflow 64 bits.
 */
#define SIZE_SAT (1ull << 40)

/* Per-id facts gathered in one pass. */
#define F_BLOCK (1u << 0)
#define F_BUFFER_BLOCK (1u << 1)
#define F_HAS_SET (1u << 2)
#define F_HAS_BINDING (1u << 3)
#define F_TYPE (1u << 4) /* defined by one of the type instructions handled below */
#define F_WORKGROUP_SIZE (1u << 5) /* decorated BuiltIn WorkgroupSize */
#define F_SIZE_UNKNOWN (1u << 6) /* types: no natural size (runtime array, spec-op length) */
#define F_SPEC_ID (1u << 7) /* decorated SpecId */

/* Group operations (SPIR-V 1.3) whose operand 3 is a literal GroupOperation, not an id. */
#define OP_GROUP_FIRST 333 /* OpGroupNonUniformElect */
#define OP_GROUP_LAST 366 /* OpGroupNonUniformQuadSwap */
#define OP_GROUP_BALLOT_BIT_COUNT 342
#define OP_GROUP_IADD 349
#define OP_GROUP_LOGICAL_XOR 364

struct id_info {
	uint32_t def; /* word index of the instruction defining the id (0: none seen) */
	uint32_t flags;
	uint32_t set;
	uint32_t binding;
	uint32_t array_stride;
	uint32_t paths; /* types: member paths of the type, expanded (arrays count once) */
	uint32_t aux; /* structs: index into walk.structs; OpSpecConstantOp: walk.spec_values */
	uint32_t type; /* values: the type of the value (its result type), 0 unknown */
	uint32_t spec_id; /* with F_SPEC_ID */
	uint16_t depth; /* types: structs and arrays nested */
};

struct struct_info {
	uint32_t first_member; /* index into walk.members */
	uint32_t member_count;
	uint64_t natural_size; /* no explicit layout (Workgroup, Private, Function) */
	uint32_t natural_align;
	uint8_t layout_state; /* 0: not computed, 1: layout_size valid, 2: cannot tell */
	uint64_t layout_size; /* explicit layout (Offset decorations), see layout_size() */
};

struct member_info {
	uint32_t offset;
	uint32_t matrix_stride;
	uint8_t has_offset;
};

/*
 * A LocalSize or LocalSizeId execution mode of function @fn: literals, or ids of constants
 * defined after it. Checked once the whole module has been read.
 */
struct local_size_mode {
	uint32_t fn;
	bool ids;
	uint32_t v[3];
};

/*
 * The value of an OpSpecConstantOp of integers or booleans (a scalar or a vector of up to 4),
 * after specialization: each component masked to @width bits (booleans: width 1, 0 or 1).
 * @n is 0 when the walk does not evaluate it (floats, an opcode or operand it does not know).
 */
struct spec_value {
	uint64_t c[4];
	uint8_t n;
	uint8_t width;
};

struct walk {
	const uint32_t *w;
	uint32_t count;
	uint32_t bound;
	const struct mdgpu_kernel_limits *lim;
	const struct mdgpu_spec *spec;
	const char *want_entry; /* NULL: the only GLCompute entry point */
	struct id_info *ids;
	struct struct_info *structs;
	uint32_t struct_count;
	uint32_t struct_cap;
	struct member_info *members;
	uint32_t member_count;
	struct local_size_mode *modes;
	uint32_t mode_count;
	uint32_t mode_cap;
	struct spec_value *spec_values; /* one per OpSpecConstantOp, see eval_spec_op() */
	uint32_t spec_value_count;
	uint32_t spec_value_cap;
	uint64_t shared_bytes; /* Workgroup variables */
	uint64_t private_bytes; /* Private and Function variables */
	uint64_t path_cost; /* member paths the validator will walk, see count_paths() */
	uint32_t entries; /* GLCompute entry points (NULL want_entry), or those named want_entry */
	bool entry_other_model; /* want_entry names an entry point of another model */
	uint32_t entry_fn; /* the chosen entry point's function */
	char *entry; /* receives its name */
	bool in_functions; /* past the first OpFunction */
};

/* The id's facts, or NULL when @id is 0 or not below the bound: never an index outside. */
static struct id_info *id_get(const struct walk *w, uint32_t id)
{
	return id && id < w->bound ? &w->ids[id] : NULL;
}

/* The defining instruction of @id and its length, or NULL. */
static const uint32_t *inst_at(const struct walk *w, uint32_t id, uint32_t *len)
{
	const struct id_info *d = id_get(w, id);

	if (!d || !d->def)
		return NULL;
	*len = w->w[d->def] >> 16;
	return &w->w[d->def];
}

/* @id is a type the walk has seen defined (so before the current instruction). */
static const struct id_info *type_get(const struct walk *w, uint32_t id)
{
	const struct id_info *d = id_get(w, id);

	return d && (d->flags & F_TYPE) ? d : NULL;
}

static uint32_t opcode_of(const struct walk *w, const struct id_info *d)
{
	return w->w[d->def] & 0xffff;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b > SIZE_SAT ? SIZE_SAT : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
	if (a && b > SIZE_SAT / a)
		return SIZE_SAT;
	return a * b > SIZE_SAT ? SIZE_SAT : a * b;
}

static uint64_t align_up(uint64_t v, uint32_t align)
{
	return align > 1 ? sat_add(v, align - 1) / align * align : v;
}

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

/*
 * Capabilities a compute kernel may declare: exactly those the device's enabled features
 * cover (a capability whose feature is off would be undefined behaviour in the driver).
 */
static bool capability_allowed(uint32_t cap, const struct mdgpu_feature_set *fs)
{
	uint32_t f = fs->features, subgroup = fs->subgroup_ops;

	switch (cap) {
	case 0: /* Matrix */
	case 1: /* Shader */
		return true;
	case 9:
		return f & MDGPU_HOST_FEATURE_SHADER_FLOAT16;
	case 10:
		return f & MDGPU_HOST_FEATURE_SHADER_FLOAT64;
	case 11:
		return f & MDGPU_HOST_FEATURE_SHADER_INT64;
	case 22:
		return f & MDGPU_HOST_FEATURE_SHADER_INT16;
	case 39:
		return f & MDGPU_HOST_FEATURE_SHADER_INT8;
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
	case 4433:
		return f & MDGPU_HOST_FEATURE_STORAGE_BUFFER_16BIT;
	case 4434:
		return f & MDGPU_HOST_FEATURE_UNIFORM_16BIT;
	case 4435:
		return f & MDGPU_HOST_FEATURE_PUSH_CONSTANT_16BIT;
	case 4441:
		return f & MDGPU_HOST_FEATURE_VARIABLE_POINTERS; /* VariablePointersStorageBuffer */
	case 4448:
		return f & MDGPU_HOST_FEATURE_STORAGE_BUFFER_8BIT;
	case 4449:
		return f & MDGPU_HOST_FEATURE_UNIFORM_8BIT;
	case 4450:
		return f & MDGPU_HOST_FEATURE_PUSH_CONSTANT_8BIT;
	default:
		return false;
	}
}

/* The specialization entry for SpecId @id, or NULL (entries are sorted by id). */
static const struct mdgpu_host_spec_entry *spec_entry(const struct walk *w, uint32_t id)
{
	uint32_t lo = 0, hi = w->spec ? w->spec->count : 0;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct mdgpu_host_spec_entry *e = &w->spec->entries[mid];

		if (e->constant_id == id)
			return e;
		if (e->constant_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Constant evaluation, after specialization: the values this file sizes things by (array
 * lengths, local sizes) are integer constants, specialization constants, or expressions of
 * them (OpSpecConstantOp), which compilers emit for `shared float s[gl_WorkGroupSize.x]`
 * (CompositeExtract of the WorkgroupSize composite) and any arithmetic on spec constants.
 *
 * An OpSpecConstantOp is evaluated once, when the walk reaches its definition (eval_spec_op()):
 * its operands are defined before it, so they were evaluated already, and the result is kept
 * (walk.spec_values). Nothing recurses along the expression, whatever its depth or sharing (the
 * ids form a DAG), and each instruction costs O(its length). The opcodes are those Vulkan allows
 * in OpSpecConstantOp for shaders on integers and booleans (the spec's OpSpecConstantOp):
 * SConvert, UConvert, SNegate, Not, IAdd, ISub, IMul, UDiv, SDiv, UMod, SRem, SMod, the shifts,
 * the bitwise and logical operations, Select, the integer comparisons, VectorShuffle,
 * CompositeExtract, CompositeInsert. Arithmetic wraps to the result's width, as the spec says.
 * What the spec leaves undefined — division or remainder by 0, the signed minimum divided by
 * -1, a shift by the width or more — refuses the kernel: a driver may fold it to anything (or
 * crash), and a size this file computed could then differ from the one the driver uses. Floats
 * (FConvert, QuantizeToF16) and anything else are left unevaluated, which is refused only where
 * a size needs the value.
 */
enum {
	SOP_VECTOR_SHUFFLE = 79,
	SOP_COMPOSITE_EXTRACT = 81,
	SOP_COMPOSITE_INSERT = 82,
	SOP_UCONVERT = 113,
	SOP_SCONVERT = 114,
	SOP_SNEGATE = 126,
	SOP_IADD = 128,
	SOP_ISUB = 130,
	SOP_IMUL = 132,
	SOP_UDIV = 134,
	SOP_SDIV = 135,
	SOP_UMOD = 137,
	SOP_SREM = 138,
	SOP_SMOD = 139,
	SOP_LOGICAL_EQUAL = 164,
	SOP_LOGICAL_NOT_EQUAL = 165,
	SOP_LOGICAL_OR = 166,
	SOP_LOGICAL_AND = 167,
	SOP_LOGICAL_NOT = 168,
	SOP_SELECT = 169,
	SOP_IEQUAL = 170,
	SOP_INOT_EQUAL = 171,
	SOP_UGREATER = 172,
	SOP_SGREATER = 173,
	SOP_UGREATER_EQUAL = 174,
	SOP_SGREATER_EQUAL = 175,
	SOP_ULESS = 176,
	SOP_SLESS = 177,
	SOP_ULESS_EQUAL = 178,
	SOP_SLESS_EQUAL = 179,
	SOP_SHIFT_RIGHT_LOGICAL = 194,
	SOP_SHIFT_RIGHT_ARITHMETIC = 195,
	SOP_SHIFT_LEFT_LOGICAL = 196,
	SOP_BITWISE_OR = 197,
	SOP_BITWISE_XOR = 198,
	SOP_BITWISE_AND = 199,
	SOP_NOT = 200,
};

static uint64_t mask_to(uint64_t v, uint32_t width)
{
	return width >= 64 ? v : v & ((1ull << width) - 1);
}

/* @v (@width bits) sign-extended to 64 bits. */
static int64_t sign_extend(uint64_t v, uint32_t width)
{
	uint64_t sign;

	if (width >= 64)
		return (int64_t)v;
	sign = 1ull << (width - 1);
	return (int64_t)((mask_to(v, width) ^ sign) - sign);
}

/* An integer or boolean type, or a vector of up to 4 of them: its components and their width. */
static bool scalar_type(const struct walk *w, uint32_t type, uint8_t *n, uint8_t *width)
{
	const struct id_info *d = type_get(w, type);
	const uint32_t *in;

	if (!d)
		return false;
	in = &w->w[d->def];
	*n = 1;
	if ((in[0] & 0xffff) == OP_TYPE_VECTOR) {
		if (in[3] < 1 || in[3] > 4 || !(d = type_get(w, in[2])))
			return false;
		*n = (uint8_t)in[3];
		in = &w->w[d->def];
	}
	if ((in[0] & 0xffff) == OP_TYPE_BOOL)
		*width = 1;
	else if ((in[0] & 0xffff) == OP_TYPE_INT)
		*width = (uint8_t)in[2]; /* 1..64: checked where the type is defined */
	else
		return false;
	return true;
}

/* The specialization data given for SpecId @spec_id (the entry's size, little endian). */
static bool spec_data(const struct walk *w, uint32_t spec_id, uint64_t *v)
{
	const struct mdgpu_host_spec_entry *e = spec_entry(w, spec_id);

	if (!e)
		return false;
	*v = 0;
	for (uint32_t i = 0; i < e->size; i++) /* inside the data: checked by the core */
		*v |= (uint64_t)w->spec->data[e->offset + i] << (8 * i);
	return true;
}

/*
 * The value of constant @id if it is a scalar or vector of integers or booleans: a constant,
 * a specialization constant (specialized), null, a composite of scalar constants, or an
 * OpSpecConstantOp evaluated before. Composites look only one level down (their constituents
 * must be scalars here), so this recurses at most once.
 */
static bool value_of(const struct walk *w, uint32_t id, struct spec_value *out, bool scalar_only)
{
	const struct id_info *d = id_get(w, id);
	const uint32_t *in;
	uint32_t len, op;
	uint64_t v;

	if (!d || !d->def || (d->flags & F_TYPE))
		return false;
	in = &w->w[d->def];
	len = in[0] >> 16;
	op = in[0] & 0xffff;
	if (len < 3 || !scalar_type(w, in[1], &out->n, &out->width) || (scalar_only && out->n != 1))
		return false;
	switch (op) {
	case OP_CONSTANT:
	case OP_SPEC_CONSTANT:
		if (out->n != 1 || out->width == 1 || len < 4)
			return false;
		if (!(op == OP_SPEC_CONSTANT && (d->flags & F_SPEC_ID) &&
		      spec_data(w, d->spec_id, &v)))
			v = out->width > 32 && len >= 5 ? ((uint64_t)in[4] << 32) | in[3] : in[3];
		out->c[0] = mask_to(v, out->width);
		return true;
	case OP_CONSTANT_TRUE:
	case OP_CONSTANT_FALSE:
	case OP_SPEC_CONSTANT_TRUE:
	case OP_SPEC_CONSTANT_FALSE:
		if (out->n != 1 || out->width != 1)
			return false;
		if ((op == OP_SPEC_CONSTANT_TRUE || op == OP_SPEC_CONSTANT_FALSE) &&
		    (d->flags & F_SPEC_ID) && spec_data(w, d->spec_id, &v))
			out->c[0] = v != 0;
		else
			out->c[0] = op == OP_CONSTANT_TRUE || op == OP_SPEC_CONSTANT_TRUE;
		return true;
	case OP_CONSTANT_NULL:
		memset(out->c, 0, sizeof(out->c));
		return true;
	case OP_CONSTANT_COMPOSITE:
	case OP_SPEC_CONSTANT_COMPOSITE:
		if (out->n == 1 || len != 3u + out->n)
			return false;
		for (uint32_t i = 0; i < out->n; i++) {
			struct spec_value c;

			if (!value_of(w, in[3 + i], &c, true) || c.n != 1 || c.width != out->width)
				return false;
			out->c[i] = c.c[0];
		}
		return true;
	case OP_SPEC_CONSTANT_OP:
		*out = w->spec_values[d->aux];
		return out->n != 0;
	default:
		return false;
	}
}

/* CompositeExtract: down the constituents of constant composites, then into a vector value. */
static bool extract(const struct walk *w, const uint32_t *in, uint32_t len, struct spec_value *r)
{
	uint32_t id = in[4], at = 5;
	struct spec_value v;

	for (; at < len; at++) {
		const uint32_t *c;
		uint32_t clen, cop;

		c = inst_at(w, id, &clen);
		cop = c ? c[0] & 0xffff : 0;
		if (cop != OP_CONSTANT_COMPOSITE && cop != OP_SPEC_CONSTANT_COMPOSITE)
			break;
		if (in[at] >= clen - 3)
			return false; /* past its constituents: the validator refuses it */
		id = c[3 + in[at]];
	}
	if (!value_of(w, id, &v, false))
		return false;
	if (at == len) {
		*r = v;
		return true;
	}
	/* One index left, into a vector that is not a composite instruction (an expression). */
	if (at + 1 != len || in[at] >= v.n)
		return false;
	r->c[0] = v.c[in[at]];
	r->n = 1;
	r->width = v.width;
	return true;
}

/*
 * An OpSpecConstantOp at word @at whose id was just defined: its value, kept for the
 * instructions after it. Returns 0 (also when it is not evaluated) or the refusal of an
 * operation whose result the spec leaves undefined.
 */
static int eval_spec_op(struct walk *w, uint32_t at)
{
	const uint32_t *in = &w->w[at];
	uint32_t len = in[0] >> 16, op = len >= 4 ? in[3] : 0;
	struct id_info *d = &w->ids[in[2]];
	struct spec_value a, b, cond, r = { .n = 0 };
	const char *why = NULL;
	uint8_t n, width;
	bool unary = op == SOP_SNEGATE || op == SOP_NOT || op == SOP_LOGICAL_NOT ||
		     op == SOP_UCONVERT || op == SOP_SCONVERT;

	if (w->spec_value_count == w->spec_value_cap) {
		uint32_t cap = w->spec_value_cap ? w->spec_value_cap * 2 : 16;
		struct spec_value *nv = realloc(w->spec_values, cap * sizeof(*nv));

		if (!nv)
			return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
		w->spec_values = nv;
		w->spec_value_cap = cap;
	}
	d->aux = w->spec_value_count++;
	w->spec_values[d->aux] = r;
	if (len < 5 || !scalar_type(w, in[1], &n, &width))
		return 0;
	switch (op) {
	case SOP_COMPOSITE_EXTRACT:
		if (!extract(w, in, len, &r))
			return 0;
		break;
	case SOP_COMPOSITE_INSERT:
		/* Into a vector, one index (composites of other types are not evaluated). */
		if (len != 7 || !value_of(w, in[4], &a, true) || !value_of(w, in[5], &r, false) ||
		    in[6] >= r.n || a.width != r.width)
			return 0;
		r.c[in[6]] = a.c[0];
		break;
	case SOP_VECTOR_SHUFFLE:
		if (len != 6u + n || !value_of(w, in[4], &a, false) ||
		    !value_of(w, in[5], &b, false) || a.width != b.width)
			return 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = in[6 + i];

			if (k < a.n)
				r.c[i] = a.c[k];
			else if (k - a.n < b.n)
				r.c[i] = b.c[k - a.n];
			else
				return 0; /* 0xFFFFFFFF: an undefined component */
		}
		r.n = n;
		r.width = a.width;
		break;
	case SOP_SELECT:
		if (len != 7 || !value_of(w, in[4], &cond, false) || cond.width != 1 ||
		    !value_of(w, in[5], &a, false) || !value_of(w, in[6], &b, false) || a.n != n ||
		    b.n != n || (cond.n != 1 && cond.n != n))
			return 0;
		for (uint32_t i = 0; i < n; i++)
			r.c[i] = cond.c[cond.n == 1 ? 0 : i] ? a.c[i] : b.c[i];
		r.n = n;
		r.width = a.width;
		break;
	default:
		if (!value_of(w, in[4], &a, false) || a.n != n ||
		    (!unary && (len != 6 || !value_of(w, in[5], &b, false) || b.n != n)))
			return 0;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t x = a.c[i], y = unary ? 0 : b.c[i];
			int64_t sx = sign_extend(x, a.width),
				sy = unary ? 0 : sign_extend(y, b.width);
			bool by_zero = y == 0,
			     overflow =
				     sy == -1 && sx == sign_extend(1ull << (a.width - 1), a.width);

			switch (op) {
			case SOP_UCONVERT:
				r.c[i] = x;
				break;
			case SOP_SCONVERT:
				r.c[i] = (uint64_t)sx;
				break;
			case SOP_SNEGATE:
				r.c[i] = 0 - x;
				break;
			case SOP_NOT:
				r.c[i] = ~x;
				break;
			case SOP_IADD:
				r.c[i] = x + y;
				break;
			case SOP_ISUB:
				r.c[i] = x - y;
				break;
			case SOP_IMUL:
				r.c[i] = x * y;
				break;
			case SOP_UDIV:
			case SOP_UMOD:
				if (by_zero) {
					why = "divides by zero";
					goto undefined;
				}
				r.c[i] = op == SOP_UDIV ? x / y : x % y;
				break;
			case SOP_SDIV:
			case SOP_SREM:
			case SOP_SMOD:
				if (by_zero || overflow) {
					why = by_zero ?
						      "divides by zero" :
						      "divides the signed minimum by -1 (signed overflow)";
					goto undefined;
				}
				if (op == SOP_SDIV) {
					r.c[i] = (uint64_t)(sx / sy);
				} else {
					int64_t rem = sx % sy; /* the sign of sx: SRem */

					if (op == SOP_SMOD && rem && (rem < 0) != (sy < 0))
						rem += sy; /* the sign of sy: SMod */
					r.c[i] = (uint64_t)rem;
				}
				break;
			case SOP_SHIFT_RIGHT_LOGICAL:
			case SOP_SHIFT_RIGHT_ARITHMETIC:
			case SOP_SHIFT_LEFT_LOGICAL:
				if (y >= width) {
					why = "shifts by the width or more";
					goto undefined;
				}
				if (op == SOP_SHIFT_LEFT_LOGICAL)
					r.c[i] = x << y;
				else if (op == SOP_SHIFT_RIGHT_LOGICAL)
					r.c[i] = x >> y;
				else
					r.c[i] = sx < 0 ? ~(~(uint64_t)sx >> y) : (uint64_t)sx >> y;
				break;
			case SOP_BITWISE_OR:
			case SOP_LOGICAL_OR:
				r.c[i] = x | y;
				break;
			case SOP_BITWISE_XOR:
				r.c[i] = x ^ y;
				break;
			case SOP_BITWISE_AND:
			case SOP_LOGICAL_AND:
				r.c[i] = x & y;
				break;
			case SOP_LOGICAL_NOT:
				r.c[i] = !x;
				break;
			case SOP_LOGICAL_EQUAL:
			case SOP_IEQUAL:
				r.c[i] = x == y;
				break;
			case SOP_LOGICAL_NOT_EQUAL:
			case SOP_INOT_EQUAL:
				r.c[i] = x != y;
				break;
			case SOP_UGREATER:
				r.c[i] = x > y;
				break;
			case SOP_SGREATER:
				r.c[i] = sx > sy;
				break;
			case SOP_UGREATER_EQUAL:
				r.c[i] = x >= y;
				break;
			case SOP_SGREATER_EQUAL:
				r.c[i] = sx >= sy;
				break;
			case SOP_ULESS:
				r.c[i] = x < y;
				break;
			case SOP_SLESS:
				r.c[i] = sx < sy;
				break;
			case SOP_ULESS_EQUAL:
				r.c[i] = x <= y;
				break;
			case SOP_SLESS_EQUAL:
				r.c[i] = sx <= sy;
				break;
			default:
				return 0; /* not an integer or boolean operation this file evaluates */
			}
		}
		r.n = n;
		r.width = width;
		break;
	}
	if (r.n != n || r.width != width)
		return 0; /* operands and result disagree: the validator refuses it */
	for (uint32_t i = 0; i < n; i++)
		r.c[i] = mask_to(r.c[i], width);
	w->spec_values[d->aux] = r;
	return 0;

undefined:
	return mdgpu_error(-EINVAL,
			   "kernel_create: OpSpecConstantOp %u (opcode %u) %s after specialization:"
			   " its result is undefined",
			   in[2], op, why);
}

/*
 * The value of an integer constant, specialization constant (specialized: the caller's data
 * where it gives the constant a value, else its default) or evaluated OpSpecConstantOp.
 * Returns false for anything else.
 */
static bool const_value(const struct walk *w, uint32_t id, uint64_t *value)
{
	struct spec_value v;

	if (!value_of(w, id, &v, true) || v.n != 1 || v.width == 1)
		return false;
	*value = v.c[0];
	return true;
}

/*
 * Natural size and alignment of a type with no explicit layout (Workgroup, Private and
 * Function variables): scalars by width, booleans 4 bytes, 3-vectors as 4-vectors, arrays of
 * aligned elements, structs with aligned members. The driver's own layout may differ a
 * little; this errs on the large side. Structs are computed once (struct_info), so this costs
 * O(nesting depth) per call. False when the size cannot be told (runtime arrays, lengths
 * that are not constants).
 */
static bool natural_size(const struct walk *w, uint32_t type, uint64_t *size, uint32_t *align)
{
	const struct id_info *d = type_get(w, type);
	const uint32_t *in;
	uint64_t elem, n;
	uint32_t ealign;

	if (!d || (d->flags & F_SIZE_UNKNOWN))
		return false;
	in = &w->w[d->def];
	switch (in[0] & 0xffff) {
	case OP_TYPE_BOOL:
		*size = *align = 4;
		return true;
	case OP_TYPE_INT:
	case OP_TYPE_FLOAT:
		*size = in[2] >= 8 ? in[2] / 8 : 1;
		*align = (uint32_t)*size;
		return true;
	case OP_TYPE_VECTOR:
		if (!natural_size(w, in[2], &elem, &ealign))
			return false;
		n = in[3] == 3 ? 4 : in[3];
		*size = sat_mul(elem, n);
		*align = ealign * (in[3] == 2 ? 2 : 4); /* scalar components: at most 32 */
		return true;
	case OP_TYPE_MATRIX:
		if (!natural_size(w, in[2], &elem, &ealign))
			return false;
		*size = sat_mul(align_up(elem, ealign), in[3]);
		*align = ealign;
		return true;
	case OP_TYPE_ARRAY:
		if (!natural_size(w, in[2], &elem, &ealign) || !const_value(w, in[3], &n))
			return false;
		*size = sat_mul(align_up(elem, ealign), n);
		*align = ealign;
		return true;
	case OP_TYPE_STRUCT:
		*size = w->structs[d->aux].natural_size;
		*align = w->structs[d->aux].natural_align;
		return true;
	case OP_TYPE_POINTER:
	case OP_TYPE_IMAGE:
	case OP_TYPE_SAMPLER:
	case OP_TYPE_SAMPLED_IMAGE:
		*size = *align = 8;
		return true;
	default:
		return false;
	}
}

static int too_big(const char *what, uint64_t bytes, uint64_t max, const char *limit)
{
	if (bytes >= SIZE_SAT)
		return mdgpu_error(-E2BIG,
				   "kernel_create: %s are larger than 1 TiB, over the %llu"
				   " bytes allowed (%s)",
				   what, (unsigned long long)max, limit);
	return mdgpu_error(-E2BIG, "kernel_create: %s are %llu bytes, over the %llu allowed (%s)",
			   what, (unsigned long long)bytes, (unsigned long long)max, limit);
}

/*
 * A type instruction at word @at: check that each type it is made of is defined before it,
 * and compute its depth, member paths and (structs) natural size, refusing a type over
 * MDGPU_HOST_MAX_TYPE_DEPTH or MDGPU_HOST_MAX_TYPE_PATHS.
 */
static int define_type(struct walk *w, uint32_t at)
{
	const uint32_t *in = &w->w[at];
	uint32_t len = in[0] >> 16, op = in[0] & 0xffff;
	struct id_info *d = id_get(w, in[1]);
	const struct id_info *e;
	uint64_t paths = 1;
	uint32_t depth = 0;

	if (!d)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V type at word %u: id %u is not below"
				   " the bound %u",
				   at, in[1], w->bound);
	if (d->def)
		return mdgpu_error(-EINVAL, "kernel_create: SPIR-V id %u is defined twice", in[1]);
	switch (op) {
	case OP_TYPE_INT:
	case OP_TYPE_FLOAT:
		if (len < 3 || in[2] == 0 || in[2] > 64)
			return mdgpu_error(-EINVAL, "kernel_create: SPIR-V type %u: bad width",
					   in[1]);
		break;
	case OP_TYPE_VECTOR:
	case OP_TYPE_MATRIX: {
		/* Scalar components, vector columns: this keeps the recursions below bounded. */
		uint32_t want = op == OP_TYPE_MATRIX ? OP_TYPE_VECTOR : 0, got;

		if (len < 4 || !(e = type_get(w, in[2])))
			goto undefined;
		got = opcode_of(w, e);
		if (want ? got != want :
			   got != OP_TYPE_INT && got != OP_TYPE_FLOAT && got != OP_TYPE_BOOL)
			return mdgpu_error(-EINVAL,
					   "kernel_create: SPIR-V type %u: a %s of type %u", in[1],
					   want ? "matrix" : "vector", in[2]);
		break;
	}
	case OP_TYPE_ARRAY:
	case OP_TYPE_RUNTIME_ARRAY:
		if (len < 3 || !(e = type_get(w, in[2])))
			goto undefined;
		if (op == OP_TYPE_ARRAY && (len < 4 || !id_get(w, in[3]) || !w->ids[in[3]].def))
			goto undefined;
		depth = e->depth + 1u;
		paths = e->paths;
		break;
	case OP_TYPE_STRUCT: {
		struct struct_info *s;
		uint64_t size = 0;
		uint32_t align = 1;

		paths = 0;
		for (uint32_t m = 2; m < len; m++) {
			uint64_t msize;
			uint32_t malign;

			if (!(e = type_get(w, in[m])))
				goto undefined;
			if (e->depth + 1u > depth)
				depth = e->depth + 1u;
			paths += e->paths;
			if (natural_size(w, in[m], &msize, &malign)) {
				size = sat_add(align_up(size, malign), msize);
				if (malign > align)
					align = malign;
			} else {
				d->flags |= F_SIZE_UNKNOWN;
			}
		}
		if (paths == 0)
			paths = 1;
		if (depth == 0)
			depth = 1;
		if (w->struct_count == w->struct_cap) {
			uint32_t cap = w->struct_cap ? w->struct_cap * 2 : 64;
			struct struct_info *n = realloc(w->structs, cap * sizeof(*n));

			if (!n)
				return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
			w->structs = n;
			w->struct_cap = cap;
		}
		d->aux = w->struct_count++;
		s = &w->structs[d->aux];
		*s = (struct struct_info){
			.first_member = w->member_count,
			.member_count = len - 2,
			.natural_size = align_up(size, align),
			.natural_align = align,
		};
		w->member_count += len - 2; /* < word count: cannot overflow */
		break;
	}
	case OP_TYPE_POINTER:
		/* Uses of a pointer walk the type it points to (see count_paths()). */
		if (len < 4 || !(e = type_get(w, in[3])))
			goto undefined;
		paths = e->paths;
		break;
	case OP_TYPE_FUNCTION:
		for (uint32_t m = 2; m < len; m++)
			if (!type_get(w, in[m]))
				goto undefined;
		break;
	default: /* void, bool, image, sampler, sampled image, opaque: leaves */
		break;
	}
	if (depth > MDGPU_HOST_MAX_TYPE_DEPTH)
		return mdgpu_error(-E2BIG,
				   "kernel_create: SPIR-V type %u has structs and arrays nested %u"
				   " deep, more than %u (MDGPU_HOST_MAX_TYPE_DEPTH)",
				   in[1], depth, MDGPU_HOST_MAX_TYPE_DEPTH);
	if (paths > MDGPU_HOST_MAX_TYPE_PATHS)
		return mdgpu_error(-E2BIG,
				   "kernel_create: SPIR-V type %u expands to %llu member paths,"
				   " more than %u (MDGPU_HOST_MAX_TYPE_PATHS)",
				   in[1], (unsigned long long)paths, MDGPU_HOST_MAX_TYPE_PATHS);
	if (op == OP_TYPE_RUNTIME_ARRAY)
		d->flags |= F_SIZE_UNKNOWN;
	if (op == OP_TYPE_ARRAY) {
		uint64_t n;
		const struct id_info *el = &w->ids[in[2]];

		if (!const_value(w, in[3], &n) || (el->flags & F_SIZE_UNKNOWN))
			d->flags |= F_SIZE_UNKNOWN;
		else if (n == 0)
			/* Only specialization can do this (the validator refuses a 0 default). */
			return mdgpu_error(-EINVAL,
					   "kernel_create: SPIR-V array type %u has length 0 (after"
					   " specialization)",
					   in[1]);
	}
	d->def = at;
	d->flags |= F_TYPE;
	d->depth = (uint16_t)depth;
	d->paths = (uint32_t)paths;
	return 0;

undefined:
	return mdgpu_error(-EINVAL,
			   "kernel_create: SPIR-V type %u uses an id that is not a type defined"
			   " before it",
			   in[1]);
}

/* One local size (LocalSize, LocalSizeId or a WorkgroupSize constant) against the device. */
static int check_local_size(const struct walk *w, const char *what, const uint64_t size[3])
{
	const struct mdgpu_kernel_limits *lim = w->lim;
	uint64_t invocations;

	for (int i = 0; i < 3; i++) {
		if (size[i] == 0)
			return mdgpu_error(-EINVAL, "kernel_create: %s has a zero dimension", what);
		if (size[i] > lim->max_workgroup_size[i])
			return mdgpu_error(-E2BIG,
					   "kernel_create: %s %llux%llux%llu is over the device's"
					   " %ux%ux%u (maxComputeWorkGroupSize)",
					   what, (unsigned long long)size[0],
					   (unsigned long long)size[1], (unsigned long long)size[2],
					   lim->max_workgroup_size[0], lim->max_workgroup_size[1],
					   lim->max_workgroup_size[2]);
	}
	invocations = sat_mul(sat_mul(size[0], size[1]), size[2]);
	if (invocations > lim->max_workgroup_invocations)
		return mdgpu_error(-E2BIG,
				   "kernel_create: %s %llux%llux%llu has %llu invocations, over the"
				   " device's %u (maxComputeWorkGroupInvocations)",
				   what, (unsigned long long)size[0], (unsigned long long)size[1],
				   (unsigned long long)size[2], (unsigned long long)invocations,
				   lim->max_workgroup_invocations);
	return 0;
}

/* An OpVariable: its storage class's memory limits (sizes of shared and private memory). */
static int define_variable(struct walk *w, uint32_t at)
{
	const uint32_t *in = &w->w[at], *ptr;
	uint32_t len = in[0] >> 16, plen, align;
	struct id_info *d = id_get(w, len >= 4 ? in[2] : 0);
	uint64_t size;

	if (!d)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V variable at word %u: id is not below the"
				   " bound %u",
				   at, w->bound);
	if (d->def)
		return mdgpu_error(-EINVAL, "kernel_create: SPIR-V id %u is defined twice", in[2]);
	if (!type_get(w, in[1]) || !(ptr = inst_at(w, in[1], &plen)) ||
	    (ptr[0] & 0xffff) != OP_TYPE_POINTER)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V variable %u: its type is not a pointer"
				   " type defined before it",
				   in[2]);
	d->def = at;
	if (in[3] != SC_WORKGROUP && in[3] != SC_PRIVATE && in[3] != SC_FUNCTION)
		return 0;
	if (!natural_size(w, ptr[3], &size, &align))
		return mdgpu_error(-EINVAL,
				   "kernel_create: variable %u: cannot tell its size (%s memory"
				   " needs constant array lengths)",
				   in[2], in[3] == SC_WORKGROUP ? "Workgroup" : "Private/Function");
	if (in[3] == SC_WORKGROUP) {
		/* Each variable rounded up to 16 bytes: drivers align them. */
		w->shared_bytes = sat_add(w->shared_bytes, align_up(size, 16));
		if (w->shared_bytes > w->lim->max_shared_memory_size)
			return too_big("Workgroup (shared) variables", w->shared_bytes,
				       w->lim->max_shared_memory_size,
				       "maxComputeSharedMemorySize");
	} else {
		w->private_bytes = sat_add(w->private_bytes, align_up(size, 16));
		if (w->private_bytes > MDGPU_HOST_MAX_PRIVATE_SIZE)
			return too_big("Private and Function variables (per invocation)",
				       w->private_bytes, MDGPU_HOST_MAX_PRIVATE_SIZE,
				       "MDGPU_HOST_MAX_PRIVATE_SIZE");
	}
	return 0;
}

static int decorate(struct walk *w, const uint32_t *in, uint32_t len)
{
	struct id_info *d = id_get(w, in[1]);

	if (!d)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V decoration of id %u, not below the bound"
				   " %u",
				   in[1], w->bound);
	switch (in[2]) {
	case DEC_SPEC_ID:
		if (len >= 4) {
			d->spec_id = in[3];
			d->flags |= F_SPEC_ID;
		}
		break;
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
	case DEC_BUILTIN:
		if (len >= 4 && in[3] == BUILTIN_WORKGROUP_SIZE)
			d->flags |= F_WORKGROUP_SIZE;
		break;
	}
	return 0;
}

/*
 * The validator's cost of the module in member paths walked, summed as it is read, refused
 * over MDGPU_HOST_MAX_MODULE_PATHS. SPIRV-Tools walks a type's member paths for every variable
 * of it (checking its layout: measured 0.8-3.2 us per path for structs 2-9 deep) and for
 * every instruction that names it or uses a value of it (loads, stores, copies, access
 * chains: ~65 ns per path). So a variable counts its paths x (depth + 4) x 8, and every other
 * instruction after the first function, and every constant, counts the paths of each type its
 * operands name and of each value's type (a pointer counts what it points to). Types of one
 * path (scalars, vectors, arrays of them) count nothing: a module of those costs the validator
 * no more than its size. A literal operand that happens to equal an id counts as that id: the
 * sum errs on the large side.
 */
static int count_paths(struct walk *w, const uint32_t *in, uint32_t len, uint32_t op)
{
	uint64_t cost = 0;

	if (op == OP_VARIABLE) {
		const struct id_info *ptr = type_get(w, in[1]);
		const struct id_info *pointee = ptr ? type_get(w, w->w[ptr->def + 3]) : NULL;

		if (pointee && pointee->paths > 1)
			cost = (uint64_t)pointee->paths * (pointee->depth + 4u) * 8u;
	} else {
		for (uint32_t i = 1; i < len; i++) {
			const struct id_info *d = id_get(w, in[i]);

			if (d && !(d->flags & F_TYPE) && d->type)
				d = &w->ids[d->type]; /* a value: its type */
			if (d && (d->flags & F_TYPE) && d->paths > 1)
				cost += d->paths;
		}
		/* The result's type, for the instructions that use it later. */
		if (len >= 3 && type_get(w, in[1]) && id_get(w, in[2]) && !w->ids[in[2]].type)
			w->ids[in[2]].type = in[1];
	}
	w->path_cost += cost;
	if (w->path_cost > MDGPU_HOST_MAX_MODULE_PATHS)
		return mdgpu_error(
			-E2BIG,
			"kernel_create: SPIR-V makes the validator walk more than %u"
			" member paths (MDGPU_HOST_MAX_MODULE_PATHS) by word %u: too many"
			" uses of large struct types",
			MDGPU_HOST_MAX_MODULE_PATHS, (uint32_t)(in - w->w));
	return 0;
}

/*
 * An OpEntryPoint: without a wanted name, count the GLCompute ones and keep the first one's
 * name and function; with one, find the GLCompute entry point of that name.
 */
static int entry_point(struct walk *w, const uint32_t *in, uint32_t len)
{
	const char *name = (const char *)&in[3];
	size_t n = 0, max = (size_t)(len - 3) * 4;

	while (n < max && name[n])
		n++;
	if (n == max)
		return mdgpu_error(-EINVAL, "kernel_create: entry point name not terminated");
	if (w->want_entry) {
		if (strcmp(name, w->want_entry))
			return 0;
		if (in[1] != EXEC_MODEL_GLCOMPUTE) {
			w->entry_other_model = true;
			return 0;
		}
		if (w->entries++)
			return 0; /* two of one name and model: the validator refuses it */
	} else {
		if (in[1] != EXEC_MODEL_GLCOMPUTE || w->entries++)
			return 0;
		if (n > MDGPU_HOST_MAX_ENTRY_NAME)
			return mdgpu_error(-EINVAL, "kernel_create: entry point name too long");
	}
	memcpy(w->entry, name, n + 1);
	w->entry_fn = in[2];
	return 0;
}

/* A LocalSize or LocalSizeId execution mode, checked once the module is read. */
static int add_local_size(struct walk *w, const uint32_t *in, bool ids)
{
	if (w->mode_count == w->mode_cap) {
		uint32_t cap = w->mode_cap ? w->mode_cap * 2 : 4;
		struct local_size_mode *n = realloc(w->modes, cap * sizeof(*n));

		if (!n)
			return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
		w->modes = n;
		w->mode_cap = cap;
	}
	w->modes[w->mode_count++] = (struct local_size_mode){ in[1], ids, { in[3], in[4], in[5] } };
	return 0;
}

/* An integer of other than 32 bits or a 16-bit float, or a vector of them. */
static bool extended_type(const struct walk *w, uint32_t type)
{
	const struct id_info *d = type_get(w, type);
	const uint32_t *in;

	if (!d)
		return false;
	in = &w->w[d->def];
	if ((in[0] & 0xffff) == OP_TYPE_VECTOR && (d = type_get(w, in[2])))
		in = &w->w[d->def];
	return ((in[0] & 0xffff) == OP_TYPE_INT && in[2] != 32) ||
	       ((in[0] & 0xffff) == OP_TYPE_FLOAT && in[2] == 16);
}

/*
 * A group (subgroup) operation: on 8-, 16- and 64-bit integers and 16-bit floats only with
 * shaderSubgroupExtendedTypes (the validator does not know what the device enabled). Looks
 * at the result type and at the type of every value operand.
 */
static int group_operation(const struct walk *w, const uint32_t *in, uint32_t len)
{
	uint32_t op = in[0] & 0xffff;

	if (w->lim->features.subgroup_extended_types || len < 3)
		return 0;
	for (uint32_t i = 1; i < len; i++) {
		const struct id_info *d;

		if (i == 2)
			continue; /* the result id */
		if (i == 4 && (op == OP_GROUP_BALLOT_BIT_COUNT ||
			       (op >= OP_GROUP_IADD && op <= OP_GROUP_LOGICAL_XOR)))
			continue; /* a literal GroupOperation */
		d = id_get(w, in[i]);
		if (d && extended_type(w, i == 1 ? in[1] : d->type))
			return mdgpu_error(-EINVAL,
					   "kernel_create: a subgroup operation on 8-, 16- or"
					   " 64-bit integers or 16-bit floats needs"
					   " shaderSubgroupExtendedTypes, which this device lacks");
	}
	return 0;
}

/* Pass 1: the pre-checks of one walk over every instruction (see the top of the file). */
static int gather(struct walk *w)
{
	for (uint32_t at = HEADER_WORDS; at < w->count;) {
		uint32_t len = w->w[at] >> 16, op = w->w[at] & 0xffff;
		const uint32_t *in = &w->w[at];
		int ret = 0;

		if (len == 0 || len > w->count - at)
			return mdgpu_error(-EINVAL,
					   "kernel_create: SPIR-V instruction at word %u has"
					   " a bad length",
					   at);
		switch (op) {
		case OP_CAPABILITY:
			if (len >= 2 && !capability_allowed(in[1], &w->lim->features))
				return mdgpu_error(-EINVAL,
						   "kernel_create: SPIR-V capability %u is not"
						   " supported on this device",
						   in[1]);
			break;
		case OP_ENTRY_POINT:
			if (len >= 4)
				ret = entry_point(w, in, len);
			break;
		case OP_EXECUTION_MODE:
			if (len >= 6 && in[2] == EXEC_MODE_LOCAL_SIZE)
				ret = add_local_size(w, in, false);
			break;
		case OP_EXECUTION_MODE_ID:
			if (len >= 6 && in[2] == EXEC_MODE_LOCAL_SIZE_ID)
				ret = add_local_size(w, in, true);
			break;
		case OP_GROUP_DECORATE:
		case OP_GROUP_MEMBER_DECORATE:
			return mdgpu_error(-EINVAL, "kernel_create: decoration groups are not"
						    " supported");
		case OP_TYPE_FORWARD_POINTER:
			return mdgpu_error(-EINVAL, "kernel_create: forward pointers are not"
						    " supported");
		case OP_DECORATE:
			if (len >= 3)
				ret = decorate(w, in, len);
			break;
		case OP_MEMBER_DECORATE:
			if (len >= 4 && !id_get(w, in[1]))
				return mdgpu_error(-EINVAL,
						   "kernel_create: SPIR-V member decoration of"
						   " id %u, not below the bound %u",
						   in[1], w->bound);
			break;
		case OP_TYPE_VOID:
		case OP_TYPE_BOOL:
		case OP_TYPE_INT:
		case OP_TYPE_FLOAT:
		case OP_TYPE_VECTOR:
		case OP_TYPE_MATRIX:
		case OP_TYPE_IMAGE:
		case OP_TYPE_SAMPLER:
		case OP_TYPE_SAMPLED_IMAGE:
		case OP_TYPE_ARRAY:
		case OP_TYPE_RUNTIME_ARRAY:
		case OP_TYPE_STRUCT:
		case OP_TYPE_OPAQUE:
		case OP_TYPE_POINTER:
		case OP_TYPE_FUNCTION:
			if (len < 2)
				return mdgpu_error(-EINVAL,
						   "kernel_create: SPIR-V type at word %u is"
						   " truncated",
						   at);
			ret = define_type(w, at);
			break;
		case OP_CONSTANT_TRUE:
		case OP_CONSTANT_FALSE:
		case OP_CONSTANT:
		case OP_CONSTANT_COMPOSITE:
		case OP_CONSTANT_NULL:
		case OP_SPEC_CONSTANT_TRUE:
		case OP_SPEC_CONSTANT_FALSE:
		case OP_SPEC_CONSTANT:
		case OP_SPEC_CONSTANT_COMPOSITE:
		case OP_SPEC_CONSTANT_OP: {
			struct id_info *d = id_get(w, len >= 3 ? in[2] : 0);

			if (!d || d->def)
				return mdgpu_error(-EINVAL,
						   "kernel_create: SPIR-V constant at word %u:"
						   " its id is not below the bound or defined"
						   " twice",
						   at);
			d->def = at;
			if (op == OP_SPEC_CONSTANT_OP)
				ret = eval_spec_op(w, at);
			break;
		}
		case OP_VARIABLE:
			if (len < 4)
				return mdgpu_error(-EINVAL,
						   "kernel_create: SPIR-V variable at word %u is"
						   " truncated",
						   at);
			ret = define_variable(w, at);
			if (!ret)
				ret = count_paths(w, in, len, op);
			break;
		case OP_FUNCTION:
			w->in_functions = true;
			break;
		default:
			if (op >= OP_GROUP_FIRST && op <= OP_GROUP_LAST)
				ret = group_operation(w, in, len);
			break;
		}
		if (!ret && op != OP_VARIABLE &&
		    (w->in_functions || (op >= OP_CONSTANT_TRUE && op <= OP_SPEC_CONSTANT_OP)))
			ret = count_paths(w, in, len, op);
		if (ret)
			return ret;
		at += len;
	}
	if (!w->want_entry && w->entries != 1)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V has %u GLCompute entry points,"
				   " needs exactly 1",
				   w->entries);
	if (w->want_entry && !w->entries)
		return mdgpu_error(-EINVAL,
				   w->entry_other_model ?
					   "kernel_create: entry point \"%s\" is not a GLCompute"
					   " (compute) entry point" :
					   "kernel_create: SPIR-V has no entry point \"%s\"",
				   w->want_entry);
	return 0;
}

/*
 * After pass 1 (the constants they name are defined by now): every LocalSize, LocalSizeId and
 * BuiltIn WorkgroupSize against the device, specialized. @local_size receives the entry
 * point's: its LocalSize or LocalSizeId, unless a WorkgroupSize constant overrides it.
 */
static int check_local_sizes(const struct walk *w, uint32_t local_size[3])
{
	bool found = false;
	int ret;

	for (uint32_t i = 0; i < w->mode_count; i++) {
		const struct local_size_mode *m = &w->modes[i];
		uint64_t size[3];

		for (int j = 0; j < 3; j++) {
			size[j] = m->v[j];
			if (m->ids && !const_value(w, m->v[j], &size[j]))
				return mdgpu_error(-EINVAL,
						   "kernel_create: LocalSizeId operand %u is not"
						   " an integer constant",
						   m->v[j]);
		}
		ret = check_local_size(w, m->ids ? "LocalSizeId" : "LocalSize", size);
		if (ret)
			return ret;
		if (m->fn == w->entry_fn && !found) {
			for (int j = 0; j < 3; j++)
				local_size[j] =
					(uint32_t)size[j]; /* checked: within the device's */
			found = true;
		}
	}
	for (uint32_t id = 1; id < w->bound; id++) {
		const uint32_t *in;
		uint32_t len, op;
		uint64_t size[3];

		if (!(w->ids[id].flags & F_WORKGROUP_SIZE))
			continue;
		in = inst_at(w, id, &len);
		op = in ? in[0] & 0xffff : 0;
		if ((op != OP_CONSTANT_COMPOSITE && op != OP_SPEC_CONSTANT_COMPOSITE) || len != 6)
			return mdgpu_error(-EINVAL,
					   "kernel_create: BuiltIn WorkgroupSize must decorate a"
					   " constant of 3 integers");
		for (int j = 0; j < 3; j++)
			if (!const_value(w, in[3 + j], &size[j]))
				return mdgpu_error(-EINVAL,
						   "kernel_create: BuiltIn WorkgroupSize: %u is"
						   " not an integer constant",
						   in[3 + j]);
		ret = check_local_size(w, "WorkgroupSize", size);
		if (ret)
			return ret;
		for (int j = 0; j < 3; j++)
			local_size[j] = (uint32_t)size[j];
		found = true;
	}
	if (!found)
		return mdgpu_error(-EINVAL,
				   "kernel_create: the entry point has no LocalSize, LocalSizeId or"
				   " WorkgroupSize");
	return 0;
}

/*
 * Every specialization constant the caller gives a value for must get as many bytes as the
 * module's constant has (VkSpecializationMapEntry: sizeof(VkBool32) for a boolean): the
 * driver reads that many.
 */
static int check_spec_sizes(const struct walk *w)
{
	for (uint32_t id = 1; id < w->bound && w->spec && w->spec->count; id++) {
		const struct mdgpu_host_spec_entry *e;
		const uint32_t *in, *type;
		uint32_t len, tlen, op, want;

		if (!(w->ids[id].flags & F_SPEC_ID) || !(e = spec_entry(w, w->ids[id].spec_id)))
			continue;
		in = inst_at(w, id, &len);
		op = in ? in[0] & 0xffff : 0;
		if (op == OP_SPEC_CONSTANT_TRUE || op == OP_SPEC_CONSTANT_FALSE) {
			want = 4;
		} else if (op == OP_SPEC_CONSTANT && len >= 4 &&
			   (type = inst_at(w, in[1], &tlen)) && tlen >= 3 &&
			   ((type[0] & 0xffff) == OP_TYPE_INT ||
			    (type[0] & 0xffff) == OP_TYPE_FLOAT)) {
			want = type[2] / 8;
		} else {
			continue; /* SpecId on something else: the validator refuses it */
		}
		if (e->size != want)
			return mdgpu_error(-EINVAL,
					   "kernel_create: specialization constant %u is given %u"
					   " bytes, the module's constant is %u",
					   e->constant_id, e->size, want);
	}
	return 0;
}

/* Pass 2: index the Offset and MatrixStride member decorations of every struct, once. */
static int index_members(struct walk *w)
{
	w->members = calloc(w->member_count ? w->member_count : 1, sizeof(*w->members));
	if (!w->members)
		return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
	for (uint32_t at = HEADER_WORDS; at < w->count; at += w->w[at] >> 16) {
		const uint32_t *in = &w->w[at];
		const struct id_info *d;
		const struct struct_info *s;
		struct member_info *m;

		if ((in[0] & 0xffff) != OP_MEMBER_DECORATE || (in[0] >> 16) < 5 ||
		    (in[3] != DEC_OFFSET && in[3] != DEC_MATRIX_STRIDE))
			continue;
		d = type_get(w, in[1]);
		if (!d || opcode_of(w, d) != OP_TYPE_STRUCT)
			continue; /* the validator refuses it */
		s = &w->structs[d->aux];
		if (in[2] >= s->member_count)
			continue;
		m = &w->members[s->first_member + in[2]];
		if (in[3] == DEC_OFFSET) {
			m->offset = in[4];
			m->has_offset = 1;
		} else {
			m->matrix_stride = in[4];
		}
	}
	return 0;
}

/*
 * Bytes a type occupies in a push-constant block (explicit layout): scalars, vectors,
 * matrices (by the member's MatrixStride), arrays (by ArrayStride) and structs (by member
 * Offsets). 0 means "cannot tell", which the caller refuses. A struct's size is computed once
 * and kept; recursion is bounded by MDGPU_HOST_MAX_TYPE_DEPTH (checked in pass 1).
 */
static uint64_t layout_size(struct walk *w, uint32_t type, uint32_t matrix_stride)
{
	const struct id_info *d = type_get(w, type);
	const uint32_t *in;
	uint32_t len;

	if (!d)
		return 0;
	in = &w->w[d->def];
	len = in[0] >> 16;
	switch (in[0] & 0xffff) {
	case OP_TYPE_INT:
	case OP_TYPE_FLOAT:
		return in[2] / 8;
	case OP_TYPE_VECTOR:
		return sat_mul(layout_size(w, in[2], 0), in[3]);
	case OP_TYPE_MATRIX:
		/* Row-major or column-major: the larger of the two extents, to be safe. */
		if (matrix_stride)
			return sat_mul(matrix_stride, in[3] > 4 ? in[3] : 4);
		return sat_mul(layout_size(w, in[2], 0), in[3]);
	case OP_TYPE_ARRAY: {
		uint64_t n, elem = layout_size(w, in[2], matrix_stride);
		uint32_t stride = d->array_stride;

		if (!const_value(w, in[3], &n) || !n || !elem)
			return 0;
		return sat_add(sat_mul(n - 1, stride ? stride : elem), elem);
	}
	case OP_TYPE_STRUCT: {
		struct struct_info *s = &w->structs[d->aux];
		uint64_t size = 0;

		if (s->layout_state)
			return s->layout_state == 1 ? s->layout_size : 0;
		s->layout_state = 2; /* until proven otherwise */
		for (uint32_t m = 0; m + 2 < len; m++) {
			const struct member_info *mi = &w->members[s->first_member + m];
			uint64_t msize;

			if (!mi->has_offset)
				return 0;
			msize = layout_size(w, in[2 + m], mi->matrix_stride);
			if (!msize)
				return 0;
			if (sat_add(mi->offset, msize) > size)
				size = sat_add(mi->offset, msize);
		}
		s->layout_state = 1;
		s->layout_size = size;
		return size;
	}
	default:
		return 0;
	}
}

/* A descriptor binding found on a variable, for the reflection. */
struct found_binding {
	struct mdgpu_host_kernel_binding b;
	uint32_t var;
};

static int binding_cmp(const void *a, const void *b)
{
	const struct found_binding *x = a, *y = b;

	if (x->b.set != y->b.set)
		return x->b.set < y->b.set ? -1 : 1;
	if (x->b.binding != y->b.binding)
		return x->b.binding < y->b.binding ? -1 : 1;
	return x->var < y->var ? -1 : x->var > y->var;
}

/*
 * A buffer variable of a legacy kernel (contract 1.1): a storage buffer, not an array, in
 * set 0 below the declared binding count.
 */
static int legacy_buffer(const struct walk *w, uint32_t var, uint32_t sc, const uint32_t *pointee,
			 const struct id_info *pd)
{
	const struct id_info *d = id_get(w, var);

	if ((pointee[0] & 0xffff) != OP_TYPE_STRUCT)
		return mdgpu_error(-EINVAL,
				   "kernel_create: variable %%%u: arrays of buffers"
				   " are not supported",
				   var);
	if (sc == SC_UNIFORM && !(pd->flags & F_BUFFER_BLOCK))
		return mdgpu_error(-EINVAL,
				   "kernel_create: variable %%%u: uniform buffers are"
				   " not supported (use storage buffers)",
				   var);
	if (!d || !(d->flags & F_HAS_SET) || !(d->flags & F_HAS_BINDING) || d->set != 0)
		return mdgpu_error(-EINVAL,
				   "kernel_create: storage buffer %%%u is not in"
				   " descriptor set 0",
				   var);
	if (d->binding >= (uint32_t)w->lim->legacy_bindings)
		return mdgpu_error(-EINVAL,
				   "kernel_create: storage buffer at binding %u, but"
				   " binding_count is %u",
				   d->binding, (uint32_t)w->lim->legacy_bindings);
	return 0;
}

/*
 * A buffer variable, reflected: a storage or uniform buffer block, or a fixed-size array of
 * them, with a set and a binding within the limits.
 */
static int reflect_buffer(const struct walk *w, uint32_t var, uint32_t sc, uint32_t pointee_id,
			  struct found_binding *out)
{
	const struct id_info *d = id_get(w, var), *ed;
	const uint32_t *t;
	uint32_t len;
	uint64_t count = 1;

	t = inst_at(w, pointee_id, &len);
	if ((t[0] & 0xffff) == OP_TYPE_RUNTIME_ARRAY)
		return mdgpu_error(-EINVAL,
				   "kernel_create: variable %%%u: runtime-sized descriptor arrays"
				   " are not supported",
				   var);
	if ((t[0] & 0xffff) == OP_TYPE_ARRAY && len >= 4) {
		if (!const_value(w, t[3], &count))
			return mdgpu_error(-EINVAL,
					   "kernel_create: variable %%%u: the length of a"
					   " descriptor array must be a constant",
					   var);
		pointee_id = t[2];
		t = inst_at(w, pointee_id, &len);
		if (!t || (t[0] & 0xffff) == OP_TYPE_ARRAY ||
		    (t[0] & 0xffff) == OP_TYPE_RUNTIME_ARRAY)
			return mdgpu_error(-EINVAL,
					   "kernel_create: variable %%%u: arrays of arrays of"
					   " buffers are not supported",
					   var);
	}
	ed = id_get(w, pointee_id);
	if (!t || !ed || (t[0] & 0xffff) != OP_TYPE_STRUCT)
		return mdgpu_error(-EINVAL, "kernel_create: variable %%%u: not a buffer block",
				   var);
	if (sc == SC_STORAGE_BUFFER || (ed->flags & F_BUFFER_BLOCK))
		out->b.type = MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER;
	else if (ed->flags & F_BLOCK)
		out->b.type = MDGPU_HOST_DESCRIPTOR_UNIFORM_BUFFER;
	else
		return mdgpu_error(-EINVAL,
				   "kernel_create: variable %%%u: a Uniform variable that is not"
				   " a Block or BufferBlock",
				   var);
	if (!d || !(d->flags & F_HAS_SET) || !(d->flags & F_HAS_BINDING))
		return mdgpu_error(-EINVAL,
				   "kernel_create: variable %%%u has no DescriptorSet or Binding",
				   var);
	if (d->set >= w->lim->max_sets)
		return mdgpu_error(-E2BIG,
				   "kernel_create: variable %%%u is in descriptor set %u; sets"
				   " must be below %u (maxBoundDescriptorSets)",
				   var, d->set, w->lim->max_sets);
	if (d->binding >= MDGPU_HOST_MAX_BINDING_NUMBER)
		return mdgpu_error(-E2BIG,
				   "kernel_create: variable %%%u has binding %u; bindings must be"
				   " below %u (MDGPU_HOST_MAX_BINDING_NUMBER)",
				   var, d->binding, MDGPU_HOST_MAX_BINDING_NUMBER);
	if (count > MDGPU_HOST_MAX_STAGE_DESCRIPTORS)
		return mdgpu_error(-E2BIG,
				   "kernel_create: variable %%%u is an array of %llu buffers, more"
				   " than %u (MDGPU_HOST_MAX_STAGE_DESCRIPTORS)",
				   var, (unsigned long long)count,
				   MDGPU_HOST_MAX_STAGE_DESCRIPTORS);
	out->b.set = d->set;
	out->b.binding = d->binding;
	out->b.count = (uint32_t)count;
	out->var = var;
	return 0;
}

/*
 * The reflected bindings: sorted, variables sharing a binding merged (they must agree on its
 * type and size: aliases of one descriptor), counted against the device's per-kernel limits.
 */
static int reflect_layout(const struct walk *w, struct found_binding *found, uint32_t n,
			  struct mdgpu_kernel_iface *out)
{
	uint64_t storage = 0, uniform = 0;
	uint32_t kept = 0;

	if (n > 1)
		qsort(found, n, sizeof(*found), binding_cmp);
	for (uint32_t i = 0; i < n; i++) {
		struct found_binding *f = &found[i];

		if (kept && found[kept - 1].b.set == f->b.set &&
		    found[kept - 1].b.binding == f->b.binding) {
			if (found[kept - 1].b.type != f->b.type ||
			    found[kept - 1].b.count != f->b.count)
				return mdgpu_error(-EINVAL,
						   "kernel_create: variables %%%u and %%%u are both"
						   " set %u, binding %u, with different types or"
						   " array sizes",
						   found[kept - 1].var, f->var, f->b.set,
						   f->b.binding);
			continue;
		}
		if (f->b.type == MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER)
			storage += f->b.count;
		else
			uniform += f->b.count;
		found[kept++] = *f;
	}
	if (storage > w->lim->max_storage)
		return mdgpu_error(-E2BIG,
				   "kernel_create: %llu storage-buffer descriptors, over the %u"
				   " allowed (maxPerStageDescriptorStorageBuffers)",
				   (unsigned long long)storage, w->lim->max_storage);
	if (uniform > w->lim->max_uniform)
		return mdgpu_error(-E2BIG,
				   "kernel_create: %llu uniform-buffer descriptors, over the %u"
				   " allowed (maxPerStageDescriptorUniformBuffers)",
				   (unsigned long long)uniform, w->lim->max_uniform);
	if (storage + uniform > w->lim->max_resources)
		return mdgpu_error(-E2BIG,
				   "kernel_create: %llu descriptors, over the %u allowed"
				   " (maxPerStageResources)",
				   (unsigned long long)(storage + uniform), w->lim->max_resources);
	out->bindings = calloc(kept ? kept : 1, sizeof(*out->bindings));
	if (!out->bindings)
		return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
	for (uint32_t i = 0; i < kept; i++)
		out->bindings[i] = found[i].b;
	out->binding_count = kept;
	return 0;
}

/* A legacy kernel's layout: @legacy_bindings storage buffers in set 0. */
static int legacy_layout(const struct walk *w, struct mdgpu_kernel_iface *out)
{
	uint32_t n = (uint32_t)w->lim->legacy_bindings;

	out->bindings = calloc(n ? n : 1, sizeof(*out->bindings));
	if (!out->bindings)
		return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
	for (uint32_t i = 0; i < n; i++)
		out->bindings[i] = (struct mdgpu_host_kernel_binding){
			0, i, MDGPU_HOST_DESCRIPTOR_STORAGE_BUFFER, 1
		};
	out->binding_count = n;
	return 0;
}

/* Step 3: the module's resources against what the caller declared; the bindings reflected. */
static int check_variables(struct walk *w, struct mdgpu_kernel_iface *out)
{
	struct found_binding *found = NULL;
	uint32_t push_blocks = 0, n = 0, cap = 0;
	bool legacy = w->lim->legacy_bindings >= 0;
	int ret = 0;

	for (uint32_t at = HEADER_WORDS; at < w->count && !ret; at += w->w[at] >> 16) {
		const uint32_t *in = &w->w[at], *ptr, *pointee;
		uint32_t len = in[0] >> 16, plen, tlen, sc, var;
		const struct id_info *pd;

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
			ret = mdgpu_error(-EINVAL,
					  "kernel_create: variable %%%u: %s %u is not"
					  " supported (%s buffers and push constants only)",
					  var, storage_class_name(sc), sc,
					  legacy ? "storage" : "storage and uniform");
			continue;
		}
		ptr = inst_at(w, in[1], &plen);
		if (!ptr || (ptr[0] & 0xffff) != OP_TYPE_POINTER || plen < 4) {
			ret = mdgpu_error(-EINVAL, "kernel_create: variable %%%u: bad type", var);
			continue;
		}
		pointee = inst_at(w, ptr[3], &tlen);
		pd = id_get(w, ptr[3]);
		if (!pointee || !pd) {
			ret = mdgpu_error(-EINVAL, "kernel_create: variable %%%u: bad type", var);
			continue;
		}
		if (sc == SC_PUSH_CONSTANT) {
			uint64_t size = layout_size(w, ptr[3], 0);

			if ((pointee[0] & 0xffff) != OP_TYPE_STRUCT)
				ret = mdgpu_error(-EINVAL,
						  "kernel_create: variable %%%u: a push-constant"
						  " variable that is not a block",
						  var);
			else if (++push_blocks > 1)
				ret = mdgpu_error(-EINVAL, "kernel_create: more than one"
							   " push-constant block");
			else if (size == 0)
				ret = mdgpu_error(-EINVAL,
						  "kernel_create: cannot tell the size of the"
						  " push-constant block");
			else if (size > w->lim->push_constant_size)
				ret = mdgpu_error(-EINVAL,
						  "kernel_create: push-constant block is %llu"
						  " bytes, push_constant_size is %u",
						  (unsigned long long)size,
						  w->lim->push_constant_size);
			continue;
		}
		if (legacy) {
			ret = legacy_buffer(w, var, sc, pointee, pd);
			continue;
		}
		if (n == cap) {
			struct found_binding *f;

			cap = cap ? cap * 2 : 16;
			f = realloc(found, cap * sizeof(*f));
			if (!f) {
				ret = mdgpu_error(-ENOMEM, "kernel_create: out of memory");
				continue;
			}
			found = f;
		}
		ret = reflect_buffer(w, var, sc, ptr[3], &found[n]);
		if (!ret)
			n++;
	}
	if (!ret)
		ret = legacy ? legacy_layout(w, out) : reflect_layout(w, found, n, out);
	free(found);
	return ret;
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

static int validate(const uint32_t *words, uint32_t word_count, spv_target_env env)
{
	spv_const_binary_t binary = { words, word_count };
	spv_diagnostic diag = NULL;
	spv_context ctx;
	spv_result_t res;
	int ret = 0;

	ctx = spvContextCreate(env);
	if (!ctx)
		return mdgpu_error(-ENOMEM, "kernel_create: spvContextCreate failed");
	res = spvValidate(ctx, &binary, &diag);
	if (res != SPV_SUCCESS)
		ret = mdgpu_error(-EINVAL, "kernel_create: SPIR-V invalid (%s): %s",
				  spvTargetEnvDescription(env),
				  diag && diag->error ? diag->error : "no diagnostic");
	spvDiagnosticDestroy(diag);
	spvContextDestroy(ctx);
	return ret;
}

int mdgpu_spirv_validate(const uint32_t *words, uint32_t word_count, uint32_t api_version)
{
	spv_target_env env;
	int ok;

	if (word_count < HEADER_WORDS)
		return mdgpu_error(-EINVAL, "kernel_create: not SPIR-V");
	env = target_env(words[1], api_version, &ok);
	if (!ok)
		return mdgpu_error(-EINVAL, "kernel_create: SPIR-V version not supported");
	return validate(words, word_count, env);
}

int mdgpu_spirv_check(const uint32_t *words, uint32_t word_count,
		      const struct mdgpu_kernel_limits *lim, const char *entry,
		      const struct mdgpu_spec *spec, struct mdgpu_kernel_iface *out)
{
	spv_target_env env;
	struct walk w = { 0 };
	int ok, ret;

	memset(out, 0, sizeof(*out));
	if (word_count < HEADER_WORDS || words[0] != SPIRV_MAGIC)
		return mdgpu_error(-EINVAL, "kernel_create: not SPIR-V (bad magic or shorter than"
					    " a header)");
	env = target_env(words[1], lim->api_version, &ok);
	if (!ok)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V version %u.%u is not supported by"
				   " this device",
				   (words[1] >> 16) & 0xff, (words[1] >> 8) & 0xff);

	/* Ids are below the header's bound; a bound far above the module's size is refused. */
	w.w = words;
	w.count = word_count;
	w.bound = words[3];
	w.lim = lim;
	w.spec = spec;
	w.want_entry = entry;
	w.entry = out->entry;
	if (w.bound > word_count + 1024)
		return mdgpu_error(-EINVAL,
				   "kernel_create: SPIR-V id bound %u is implausible for"
				   " %u words",
				   w.bound, word_count);
	w.ids = calloc(w.bound ? w.bound : 1, sizeof(*w.ids));
	if (!w.ids)
		return mdgpu_error(-ENOMEM, "kernel_create: out of memory");
	ret = gather(&w);
	if (!ret)
		ret = check_spec_sizes(&w);
	if (!ret)
		ret = check_local_sizes(&w, out->local_size);
	if (!ret)
		ret = validate(words, word_count, env);
	if (!ret)
		ret = index_members(&w);
	if (!ret)
		ret = check_variables(&w, out);
	if (ret) {
		free(out->bindings);
		out->bindings = NULL;
		out->binding_count = 0;
	}
	free(w.ids);
	free(w.structs);
	free(w.members);
	free(w.modes);
	free(w.spec_values);
	return ret;
}
