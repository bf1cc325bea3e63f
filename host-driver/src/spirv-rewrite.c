// SPDX-License-Identifier: MIT
/*
 * NumWorkgroups from push constants: mdgpu_spirv_supply_num_workgroups() (internal.h).
 *
 * Why: mdgpu preempts long dispatches by running them as several, each over a range of the
 * workgroups (vkCmdDispatchBase). WorkgroupId and GlobalInvocationId include the base, so a
 * range computes exactly what it computes inside the whole dispatch; NumWorkgroups does not:
 * the device gives the recorded range's count. A kernel that reads it (a grid-stride loop, a
 * bounds check against the grid) would compute something else. So the host supplies the value
 * itself: the built-in input becomes a Private variable that the entry point's function sets,
 * before anything else, from push constants the host writes for every dispatch (the whole
 * dispatch's count). A Private variable rather than rewriting each load: the variable's loads
 * and access chains stay where they are, in whatever function they are, and only their
 * pointer types change storage class.
 *
 * The module was accepted by mdgpu_spirv_check() (valid, bounded), and the result is validated
 * again by the caller. SPIRV-Tools' parser (spvBinaryParse) says which operand of which
 * instruction is an id, so every use of the variable and of the push-constant block is found,
 * and any use this does not know how to carry over makes it give up (-ENOTSUP): the kernel is
 * then built as it is, and not split.
 *
 * What changes, in one copy of the module:
 * - the NumWorkgroups variable: declared again at the end of the global section as Private
 *   (its BuiltIn decoration dropped, and, before SPIR-V 1.4, taken out of the entry points'
 *   interfaces); access chains into it get Private pointer types;
 * - the push-constant variable (or a new one): declared again at the end of the global section
 *   with a new block type, the old block's members plus the value at @offset. Only access
 *   chains into its members may use it, so their types do not change;
 * - three instructions at the start of the entry point's function: an access chain to the
 *   value, a load and a store into the Private variable.
 * Global variables are used only by functions and by the preamble (entry points, names,
 * decorations, where forward references are allowed), so moving them to the end of the global
 * section keeps every definition before its uses.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * Older libspirv.h (Debian 12's) defines a const object, kDefaultMaxIdBound, which in C has
 * external linkage: included by two files of one library it is defined twice. Its name here
 * is this file's own.
 */
#define kDefaultMaxIdBound mdgpu_rewrite_default_max_id_bound
#include <spirv-tools/libspirv.h>
#undef kDefaultMaxIdBound

#include "internal.h"

enum {
	OP_NOP = 0,
	OP_SOURCE_CONTINUED = 2,
	OP_SOURCE = 3,
	OP_SOURCE_EXTENSION = 4,
	OP_NAME = 5,
	OP_MEMBER_NAME = 6,
	OP_STRING = 7,
	OP_LINE = 8,
	OP_EXTENSION = 10,
	OP_EXT_INST_IMPORT = 11,
	OP_MEMORY_MODEL = 14,
	OP_ENTRY_POINT = 15,
	OP_EXECUTION_MODE = 16,
	OP_CAPABILITY = 17,
	OP_TYPE_INT = 21,
	OP_TYPE_VECTOR = 23,
	OP_TYPE_STRUCT = 30,
	OP_TYPE_POINTER = 32,
	OP_CONSTANT = 43,
	OP_FUNCTION = 54,
	OP_VARIABLE = 59,
	OP_LOAD = 61,
	OP_STORE = 62,
	OP_ACCESS_CHAIN = 65,
	OP_IN_BOUNDS_ACCESS_CHAIN = 66,
	OP_DECORATE = 71,
	OP_MEMBER_DECORATE = 72,
	OP_DECORATION_GROUP = 73,
	OP_GROUP_DECORATE = 74,
	OP_GROUP_MEMBER_DECORATE = 75,
	OP_LABEL = 248,
	OP_NO_LINE = 317,
	OP_MODULE_PROCESSED = 330,
	OP_EXECUTION_MODE_ID = 331,
	OP_DECORATE_ID = 332,
	OP_DECORATE_STRING = 5632,
	OP_MEMBER_DECORATE_STRING = 5633,
};
#define SC_INPUT 1u
#define SC_PRIVATE 6u
#define SC_PUSH_CONSTANT 9u
#define DEC_BLOCK 2u
#define DEC_BUILTIN 11u
#define DEC_OFFSET 35u
#define BUILTIN_NUM_WORKGROUPS 24u
#define EXEC_MODEL_GLCOMPUTE 5u
#define VERSION_1_4 0x00010400u
#define HEADER_WORDS 5u

/* What happens to the instruction that starts at a word offset (struct rw.act). */
enum { ACT_COPY = 0, ACT_DROP, ACT_RETYPE, ACT_ENTRY };

struct rw {
	const uint32_t *w;
	uint32_t count;
	uint32_t ids; /* the module's id bound: the per-id arrays' size */
	uint32_t bound; /* grows as new ids are handed out */
	uint32_t version;
	const char *entry;
	int pass;
	const char *why; /* set: give up */
	bool oom;
	uint32_t *def; /* id -> word offset of its definition (0: none) */
	uint32_t *priv_ptr; /* pointee id -> an existing OpTypePointer Private to it */
	uint32_t *pc_ptr; /* pointee id -> an existing OpTypePointer PushConstant to it */
	uint32_t *retype; /* Input pointer type id -> the Private pointer type replacing it */
	uint8_t *derived; /* id -> a pointer into the NumWorkgroups variable */
	uint8_t *act; /* word offset -> ACT_* */
	uint32_t *new_ptrs; /* pointees that get a new Private pointer type, in order */
	uint32_t new_ptr_count;
	uint32_t *copies; /* offsets of the push block type's OpDecorate/OpMemberDecorate */
	uint32_t copy_count, copy_cap;
	uint32_t nwg_var, nwg_decoration;
	uint32_t push_var, push_struct;
	uint32_t entry_fn;
	uint32_t types_start, globals_end, init_at;
	int fn_state; /* 0 before the entry function, 1 in it, 2 in its first block, 3 done */
};

static bool preamble_op(uint32_t op)
{
	switch (op) {
	case OP_NOP:
	case OP_SOURCE_CONTINUED:
	case OP_SOURCE:
	case OP_SOURCE_EXTENSION:
	case OP_NAME:
	case OP_MEMBER_NAME:
	case OP_STRING:
	case OP_EXTENSION:
	case OP_EXT_INST_IMPORT:
	case OP_MEMORY_MODEL:
	case OP_ENTRY_POINT:
	case OP_EXECUTION_MODE:
	case OP_CAPABILITY:
	case OP_DECORATE:
	case OP_MEMBER_DECORATE:
	case OP_DECORATION_GROUP:
	case OP_GROUP_DECORATE:
	case OP_GROUP_MEMBER_DECORATE:
	case OP_MODULE_PROCESSED:
	case OP_EXECUTION_MODE_ID:
	case OP_DECORATE_ID:
	case OP_DECORATE_STRING:
	case OP_MEMBER_DECORATE_STRING:
		return true;
	}
	return false;
}

static bool id_operand(spv_operand_type_t t)
{
	return t == SPV_OPERAND_TYPE_ID || t == SPV_OPERAND_TYPE_TYPE_ID ||
	       t == SPV_OPERAND_TYPE_MEMORY_SEMANTICS_ID || t == SPV_OPERAND_TYPE_SCOPE_ID;
}

/* Words an OpEntryPoint's name takes (a NUL-terminated string padded to a word). */
static uint32_t name_words(const uint32_t *in, uint32_t len)
{
	uint32_t bytes = (len - 3) * 4;

	return (uint32_t)(strnlen((const char *)&in[3], bytes) / 4 + 1);
}

/* The definition of @id, or NULL; *@len its length in words. */
static const uint32_t *def_of(const struct rw *r, uint32_t id, uint32_t *len)
{
	const uint32_t *in;

	if (id == 0 || id >= r->ids || !r->def[id])
		return NULL;
	in = &r->w[r->def[id]];
	*len = in[0] >> 16;
	return in;
}

/* Pass 1: where things are, which pointer types exist, which variable is NumWorkgroups. */
static void pass1(struct rw *r, const spv_parsed_instruction_t *in, uint32_t at)
{
	const uint32_t *w = in->words;
	uint32_t op = in->opcode;

	if (in->result_id && in->result_id < r->ids)
		r->def[in->result_id] = at;
	if (!r->types_start && !preamble_op(op))
		r->types_start = at;
	switch (op) {
	case OP_ENTRY_POINT:
		if (w[1] == EXEC_MODEL_GLCOMPUTE &&
		    strncmp((const char *)&w[3], r->entry, (in->num_words - 3) * 4) == 0)
			r->entry_fn = w[2];
		break;
	case OP_DECORATE:
		if (in->num_words >= 4 && w[2] == DEC_BUILTIN && w[3] == BUILTIN_NUM_WORKGROUPS) {
			if (r->nwg_var)
				r->why = "two NumWorkgroups variables";
			r->nwg_var = w[1];
			r->nwg_decoration = at;
		}
		break;
	case OP_MEMBER_DECORATE:
		if (in->num_words >= 5 && w[3] == DEC_BUILTIN && w[4] == BUILTIN_NUM_WORKGROUPS)
			r->why = "NumWorkgroups is a member of an interface block";
		break;
	case OP_TYPE_POINTER:
		if (w[3] < r->ids && w[2] == SC_PRIVATE && !r->priv_ptr[w[3]])
			r->priv_ptr[w[3]] = w[1];
		if (w[3] < r->ids && w[2] == SC_PUSH_CONSTANT && !r->pc_ptr[w[3]])
			r->pc_ptr[w[3]] = w[1];
		break;
	case OP_VARIABLE:
		if (!r->globals_end && w[3] == SC_PUSH_CONSTANT)
			r->push_var = w[2];
		break;
	case OP_FUNCTION:
		if (!r->globals_end)
			r->globals_end = at;
		if (w[2] == r->entry_fn && r->fn_state == 0)
			r->fn_state = 1;
		break;
	}
	/* The first instruction of the entry function's first block that is not a variable. */
	if (r->fn_state == 2 && op != OP_VARIABLE && op != OP_LINE && op != OP_NO_LINE) {
		r->init_at = at;
		r->fn_state = 3;
	}
	if (r->fn_state == 1 && op == OP_LABEL)
		r->fn_state = 2;
}

/* Pass 2, a use of the NumWorkgroups variable or of a pointer into it as operand @i. */
static void nwg_use(struct rw *r, const spv_parsed_instruction_t *in, uint32_t at, uint32_t i)
{
	const uint32_t *ptr;
	uint32_t len;

	switch (in->opcode) {
	case OP_ENTRY_POINT:
	case OP_NAME:
		return;
	case OP_DECORATE:
		if (at != r->nwg_decoration)
			r->why = "the NumWorkgroups variable has decorations besides BuiltIn";
		return;
	case OP_LOAD:
		if (i == 2)
			return;
		break;
	case OP_ACCESS_CHAIN:
	case OP_IN_BOUNDS_ACCESS_CHAIN:
		if (i != 2)
			break;
		ptr = def_of(r, in->type_id, &len);
		if (!ptr || (ptr[0] & 0xffff) != OP_TYPE_POINTER || ptr[2] != SC_INPUT ||
		    ptr[3] >= r->ids || in->result_id >= r->ids) {
			r->why = "an access chain into NumWorkgroups of an unexpected type";
			return;
		}
		if (!r->retype[in->type_id]) {
			uint32_t pointee = ptr[3];

			if (r->priv_ptr[pointee]) {
				r->retype[in->type_id] = r->priv_ptr[pointee];
			} else {
				r->retype[in->type_id] = r->bound++;
				r->new_ptrs[r->new_ptr_count++] = pointee;
				r->priv_ptr[pointee] = r->retype[in->type_id];
			}
		}
		r->derived[in->result_id] = 1;
		r->act[at] = ACT_RETYPE;
		return;
	}
	r->why = "NumWorkgroups is used otherwise than by loads and access chains";
}

/* Pass 2, a use of the push-constant variable as operand @i. */
static void push_use(struct rw *r, const spv_parsed_instruction_t *in, uint32_t i)
{
	switch (in->opcode) {
	case OP_ENTRY_POINT:
	case OP_NAME:
		return;
	case OP_ACCESS_CHAIN:
	case OP_IN_BOUNDS_ACCESS_CHAIN:
		if (i == 2)
			return;
		break;
	}
	r->why = "the push-constant block is used otherwise than through access chains";
}

/* Pass 2, a use of the push-constant block's type: its decorations are copied. */
static void struct_use(struct rw *r, const spv_parsed_instruction_t *in, uint32_t at, uint32_t i)
{
	switch (in->opcode) {
	case OP_DECORATE:
	case OP_MEMBER_DECORATE:
		if (i != 0)
			return;
		if (r->copy_count == r->copy_cap) {
			uint32_t cap = r->copy_cap ? 2 * r->copy_cap : 16;
			uint32_t *c = realloc(r->copies, cap * sizeof(*c));

			if (!c) {
				r->why = "out of memory";
				r->oom = true;
				return;
			}
			r->copies = c;
			r->copy_cap = cap;
		}
		r->copies[r->copy_count++] = at;
		return;
	case OP_GROUP_DECORATE:
	case OP_GROUP_MEMBER_DECORATE:
	case OP_DECORATE_ID:
	case OP_DECORATE_STRING:
	case OP_MEMBER_DECORATE_STRING:
		r->why = "the push-constant block has decorations this does not copy";
		return;
	}
}

static void pass2(struct rw *r, const spv_parsed_instruction_t *in, uint32_t at)
{
	if (in->opcode == OP_ENTRY_POINT)
		r->act[at] = ACT_ENTRY;
	if (at == r->nwg_decoration ||
	    (in->result_id && (in->result_id == r->nwg_var || in->result_id == r->push_var) &&
	     in->opcode == OP_VARIABLE))
		r->act[at] = ACT_DROP;
	for (uint32_t i = 0; i < in->num_operands && !r->why; i++) {
		const spv_parsed_operand_t *o = &in->operands[i];
		uint32_t id;

		if (!id_operand(o->type))
			continue;
		id = in->words[o->offset];
		if (id == r->nwg_var || (id < r->ids && r->derived[id]))
			nwg_use(r, in, at, i);
		else if (r->push_var && id == r->push_var)
			push_use(r, in, i);
		else if (r->push_struct && id == r->push_struct)
			struct_use(r, in, at, i);
	}
}

static spv_result_t on_header(void *user, spv_endianness_t endian, uint32_t magic, uint32_t version,
			      uint32_t generator, uint32_t id_bound, uint32_t reserved)
{
	struct rw *r = user;

	(void)endian, (void)magic, (void)generator, (void)id_bound, (void)reserved;
	r->version = version;
	return SPV_SUCCESS;
}

static spv_result_t on_inst(void *user, const spv_parsed_instruction_t *in)
{
	struct rw *r = user;
	uint32_t at = (uint32_t)(in->words - r->w);

	if (r->pass == 1)
		pass1(r, in, at);
	else
		pass2(r, in, at);
	return r->why ? SPV_REQUESTED_TERMINATION : SPV_SUCCESS;
}

/* A growable output module. */
struct out {
	uint32_t *w;
	uint32_t n, cap;
	bool failed;
};

static void put(struct out *o, const uint32_t *words, uint32_t n)
{
	if (o->failed)
		return;
	if (o->n + n > o->cap) {
		uint32_t cap = (o->n + n) * 2;
		uint32_t *w = realloc(o->w, (size_t)cap * 4);

		if (!w) {
			o->failed = true;
			return;
		}
		o->w = w;
		o->cap = cap;
	}
	memcpy(o->w + o->n, words, (size_t)n * 4);
	o->n += n;
}

#define PUT(o, ...)                                                                           \
	do {                                                                                  \
		const uint32_t put_words_[] = { __VA_ARGS__ };                                \
		put((o), put_words_, (uint32_t)(sizeof(put_words_) / sizeof(put_words_[0]))); \
	} while (0)
#define INST(op, len) (((uint32_t)(len) << 16) | (op))

/* New ids and what the three inserted places need. */
struct plan {
	uint32_t vec, comp; /* NumWorkgroups' type and its component type */
	uint32_t priv_vec; /* Private pointer to vec */
	uint32_t block, block_ptr, push_var, pc_vec, new_pc_vec, index, members;
	uint32_t chain, value;
	uint32_t offset;
	const uint32_t *old_block; /* the old block's OpTypeStruct, or NULL */
};

static void emit_annotations(struct rw *r, const struct plan *p, struct out *o)
{
	for (uint32_t c = 0; c < r->copy_count; c++) {
		const uint32_t *in = &r->w[r->copies[c]];
		uint32_t len = in[0] >> 16;

		/* Block is written below in any case; Offset of the new member too. */
		if ((in[0] & 0xffff) == OP_DECORATE && len >= 3 && in[2] == DEC_BLOCK)
			continue;
		put(o, in, 1);
		PUT(o, p->block);
		put(o, in + 2, len - 2);
	}
	PUT(o, INST(OP_DECORATE, 3), p->block, DEC_BLOCK);
	PUT(o, INST(OP_MEMBER_DECORATE, 5), p->block, p->members, DEC_OFFSET, p->offset);
}

static void emit_globals(struct rw *r, const struct plan *p, struct out *o)
{
	for (uint32_t i = 0; i < r->new_ptr_count; i++)
		PUT(o, INST(OP_TYPE_POINTER, 4), r->priv_ptr[r->new_ptrs[i]], SC_PRIVATE,
		    r->new_ptrs[i]);
	PUT(o, INST(OP_VARIABLE, 4), p->priv_vec, r->nwg_var, SC_PRIVATE);
	PUT(o, INST(OP_TYPE_STRUCT, 2 + p->members + 1), p->block);
	if (p->old_block)
		put(o, p->old_block + 2, p->members);
	PUT(o, p->vec);
	PUT(o, INST(OP_TYPE_POINTER, 4), p->block_ptr, SC_PUSH_CONSTANT, p->block);
	PUT(o, INST(OP_VARIABLE, 4), p->block_ptr, p->push_var, SC_PUSH_CONSTANT);
	if (p->new_pc_vec)
		PUT(o, INST(OP_TYPE_POINTER, 4), p->pc_vec, SC_PUSH_CONSTANT, p->vec);
	PUT(o, INST(OP_CONSTANT, 4), p->comp, p->index, p->members);
}

static void emit_entry(struct rw *r, const struct plan *p, const uint32_t *in, struct out *o)
{
	uint32_t len = in[0] >> 16, head = 3 + name_words(in, len), start = o->n;
	bool chosen = in[1] == EXEC_MODEL_GLCOMPUTE && in[2] == r->entry_fn &&
		      strncmp((const char *)&in[3], r->entry, (len - 3) * 4) == 0;
	bool listed = false;

	put(o, in, head);
	for (uint32_t i = head; i < len; i++) {
		if (in[i] == r->nwg_var && r->version < VERSION_1_4)
			continue; /* a Private variable is not part of the interface before 1.4 */
		listed |= in[i] == p->push_var;
		PUT(o, in[i]);
	}
	/* From 1.4 on, the interface lists every global variable the entry point uses. */
	if (chosen && !listed && r->version >= VERSION_1_4)
		PUT(o, p->push_var);
	if (!o->failed)
		o->w[start] = INST(OP_ENTRY_POINT, o->n - start);
}

static int plan_ids(struct rw *r, uint32_t offset, struct plan *p)
{
	const uint32_t *var, *ptr, *vec, *comp, *pvar, *pptr, *block;
	uint32_t len;

	memset(p, 0, sizeof(*p));
	var = def_of(r, r->nwg_var, &len);
	if (!var || (var[0] & 0xffff) != OP_VARIABLE || var[3] != SC_INPUT)
		return -ENOTSUP;
	ptr = def_of(r, var[1], &len);
	if (!ptr || (ptr[0] & 0xffff) != OP_TYPE_POINTER)
		return -ENOTSUP;
	vec = def_of(r, ptr[3], &len);
	if (!vec || (vec[0] & 0xffff) != OP_TYPE_VECTOR || vec[3] != 3)
		return -ENOTSUP;
	comp = def_of(r, vec[2], &len);
	if (!comp || (comp[0] & 0xffff) != OP_TYPE_INT || comp[2] != 32)
		return -ENOTSUP;
	p->vec = vec[1];
	p->comp = comp[1];
	if (r->push_var) {
		pvar = def_of(r, r->push_var, &len);
		pptr = pvar ? def_of(r, pvar[1], &len) : NULL;
		block = pptr ? def_of(r, pptr[3], &len) : NULL;
		if (!block || (block[0] & 0xffff) != OP_TYPE_STRUCT)
			return -ENOTSUP;
		p->old_block = block;
		p->members = len - 2;
		r->push_struct = block[1];
	}
	p->offset = offset;
	return 0;
}

int mdgpu_spirv_supply_num_workgroups(const uint32_t *words, uint32_t word_count, const char *entry,
				      uint32_t offset, uint32_t **out, uint32_t *out_count,
				      const char **why)
{
	struct rw r = { .w = words, .count = word_count, .entry = entry };
	struct out o = { 0 };
	struct plan p;
	spv_context ctx = NULL;
	uint32_t ids;
	int ret = -ENOMEM;

	*out = NULL;
	*out_count = 0;
	*why = NULL;
	if (word_count < HEADER_WORDS)
		return 0;
	/* mdgpu_spirv_check() bounded the id bound by the module's size. */
	ids = words[3];
	r.ids = ids;
	r.bound = ids;
	r.def = calloc(ids + 1, sizeof(*r.def));
	r.priv_ptr = calloc(ids + 1, sizeof(*r.priv_ptr));
	r.pc_ptr = calloc(ids + 1, sizeof(*r.pc_ptr));
	r.retype = calloc(ids + 1, sizeof(*r.retype));
	r.derived = calloc(ids + 1, 1);
	r.new_ptrs = calloc(ids + 1, sizeof(*r.new_ptrs));
	r.act = calloc(word_count, 1);
	ctx = spvContextCreate(SPV_ENV_UNIVERSAL_1_6);
	if (!r.def || !r.priv_ptr || !r.pc_ptr || !r.retype || !r.derived || !r.new_ptrs ||
	    !r.act || !ctx)
		goto done;

	r.pass = 1;
	if (spvBinaryParse(ctx, &r, words, word_count, on_header, on_inst, NULL) != SPV_SUCCESS &&
	    !r.why)
		r.why = "the module does not parse";
	if (!r.why && !r.nwg_var) {
		ret = 0; /* nothing reads NumWorkgroups */
		goto done;
	}
	if (!r.why && (!r.entry_fn || !r.types_start || !r.globals_end || !r.init_at))
		r.why = "no entry point function to set NumWorkgroups in";
	if (!r.why && plan_ids(&r, offset, &p))
		r.why = "NumWorkgroups or the push-constant block has an unexpected type";
	/* Pass 2 may hand out new ids (Private pointer types): it runs with the bound as it is. */
	r.pass = 2;
	if (!r.why &&
	    spvBinaryParse(ctx, &r, words, word_count, on_header, on_inst, NULL) != SPV_SUCCESS &&
	    !r.why)
		r.why = "the module does not parse";
	if (r.why) {
		*why = r.why;
		ret = r.oom ? -ENOMEM : -ENOTSUP;
		goto done;
	}

	if (r.priv_ptr[p.vec]) {
		p.priv_vec = r.priv_ptr[p.vec];
	} else {
		p.priv_vec = r.bound++;
		r.priv_ptr[p.vec] = p.priv_vec;
		r.new_ptrs[r.new_ptr_count++] = p.vec;
	}
	p.block = r.bound++;
	p.block_ptr = r.bound++;
	p.push_var = r.push_var ? r.push_var : r.bound++;
	p.pc_vec = r.pc_ptr[p.vec];
	if (!p.pc_vec) {
		p.pc_vec = r.bound++;
		p.new_pc_vec = 1;
	}
	p.index = r.bound++;
	p.chain = r.bound++;
	p.value = r.bound++;

	put(&o, words, HEADER_WORDS);
	for (uint32_t at = HEADER_WORDS; at < word_count;) {
		const uint32_t *in = &words[at];
		uint32_t len = in[0] >> 16;

		if (len == 0)
			break; /* cannot happen in a parsed module */
		if (at == r.types_start)
			emit_annotations(&r, &p, &o);
		if (at == r.globals_end)
			emit_globals(&r, &p, &o);
		if (at == r.init_at) {
			PUT(&o, INST(OP_ACCESS_CHAIN, 5), p.pc_vec, p.chain, p.push_var, p.index);
			PUT(&o, INST(OP_LOAD, 4), p.vec, p.value, p.chain);
			PUT(&o, INST(OP_STORE, 3), r.nwg_var, p.value);
		}
		switch (r.act[at]) {
		case ACT_DROP:
			break;
		case ACT_RETYPE:
			put(&o, in, 1);
			PUT(&o, r.retype[in[1]]);
			put(&o, in + 2, len - 2);
			break;
		case ACT_ENTRY:
			emit_entry(&r, &p, in, &o);
			break;
		default:
			put(&o, in, len);
		}
		at += len;
	}
	if (o.failed)
		goto done;
	o.w[3] = r.bound;
	*out = o.w;
	*out_count = o.n;
	o.w = NULL;
	ret = 1;
done:
	free(o.w);
	spvContextDestroy(ctx);
	free(r.def);
	free(r.priv_ptr);
	free(r.pc_ptr);
	free(r.retype);
	free(r.derived);
	free(r.new_ptrs);
	free(r.act);
	free(r.copies);
	return ret;
}
