// SPDX-License-Identifier: MIT
/*
 * libvulkan_mdgpu: which descriptors a kernel uses. A DISPATCH2 may name only descriptors its
 * kernel declares (the device refuses others with BAD_DESCRIPTOR), while a pipeline layout may
 * have more; so the driver reads, from the SPIR-V, the storage and uniform buffer variables the
 * entry point uses: their set, binding, type and array length. SPIR-V 1.4 and later list every
 * global variable an entry point uses in its interface; before 1.4 the functions the entry point
 * reaches are searched for references to the variables. Unknown or malformed input is refused,
 * never read past its end.
 *
 * It also folds the integer OpSpecConstantOps a module uses for sizes (gl_WorkGroupSize.x as a
 * shared array's length is an OpSpecConstantOp CompositeExtract of the WorkgroupSize composite)
 * into plain OpConstants of their specialized values, so that a host that sizes Workgroup and
 * Private memory only from constants (docs/device.md, "Kernel limits") accepts the kernel: the
 * module means exactly what it meant with this specialization applied.
 */
#include <stdlib.h>
#include <string.h>

#include "mdgpu_vk.h"

#define SPV_MAGIC 0x07230203u
#define SPV_MAX_IDS (1u << 20)

enum {
	OP_ENTRY_POINT = 15,
	OP_TYPE_INT = 21,
	OP_TYPE_ARRAY = 28,
	OP_TYPE_RUNTIME_ARRAY = 29,
	OP_TYPE_STRUCT = 30,
	OP_TYPE_POINTER = 32,
	OP_CONSTANT = 43,
	OP_CONSTANT_COMPOSITE = 44,
	OP_SPEC_CONSTANT = 50,
	OP_SPEC_CONSTANT_COMPOSITE = 51,
	OP_SPEC_CONSTANT_OP = 52,
	OP_FUNCTION = 54,
	OP_FUNCTION_END = 56,
	OP_FUNCTION_CALL = 57,
	OP_VARIABLE = 59,
	OP_DECORATE = 71,
};

enum {
	DEC_SPEC_ID = 1,
	DEC_BLOCK = 2,
	DEC_BUFFER_BLOCK = 3,
	DEC_BINDING = 33,
	DEC_DESCRIPTOR_SET = 34,
};

enum {
	SC_UNIFORM = 2,
	SC_STORAGE_BUFFER = 12,
};

#define EXEC_GLCOMPUTE 5

enum {
	F_SET = 1 << 0,
	F_BINDING = 1 << 1,
	F_BLOCK = 1 << 2,
	F_BUFFER_BLOCK = 1 << 3,
	F_SPEC_ID = 1 << 4,
	F_USED = 1 << 5,
	F_REACHED = 1 << 6,
};

struct id_info {
	uint16_t op;
	uint16_t flags;
	uint32_t set, binding, spec_id;
	/* OpTypePointer: storage class, pointee; OpTypeArray: element, length id; OpVariable:
	 * pointer type, storage class; OpFunction: first word, end word */
	uint32_t a, b;
	uint64_t value;
};

struct module {
	const uint32_t *w;
	size_t n;
	uint32_t bound;
	struct id_info *ids;
};

static struct id_info *id(struct module *m, uint32_t i)
{
	return i && i < m->bound ? &m->ids[i] : NULL;
}

/* The value of a constant, with its specialization applied (for array lengths). */
static bool constant_value(struct module *m, uint32_t c, const VkSpecializationInfo *spec,
			   uint64_t *out)
{
	struct id_info *k = id(m, c);

	if (!k || (k->op != OP_CONSTANT && k->op != OP_SPEC_CONSTANT))
		return false;
	*out = k->value;
	if (k->op == OP_SPEC_CONSTANT && (k->flags & F_SPEC_ID) && spec) {
		for (uint32_t i = 0; i < spec->mapEntryCount; i++) {
			const VkSpecializationMapEntry *e = &spec->pMapEntries[i];
			uint64_t v = 0;

			if (e->constantID != k->spec_id || e->size > 8 ||
			    e->offset + e->size > spec->dataSize)
				continue;
			memcpy(&v, (const uint8_t *)spec->pData + e->offset, e->size);
			*out = v;
		}
	}
	return true;
}

/* Mark the functions reachable from @fn, and every id their instructions mention. */
static void reach(struct module *m, uint32_t fn, int depth)
{
	struct id_info *f = id(m, fn);

	if (!f || f->op != OP_FUNCTION || (f->flags & F_REACHED) || depth > 64)
		return;
	f->flags |= F_REACHED;
	for (size_t at = f->a; at < f->b;) {
		uint32_t len = m->w[at] >> 16, op = m->w[at] & 0xffff;

		if (!len || at + len > f->b)
			return;
		/*
		 * Every operand word that is a descriptor variable's id counts as a use. A literal
		 * that happens to equal one only adds a descriptor the kernel declares anyway.
		 */
		for (uint32_t k = 1; k < len; k++) {
			struct id_info *x = id(m, m->w[at + k]);

			if (x && x->op == OP_VARIABLE)
				x->flags |= F_USED;
		}
		if (op == OP_FUNCTION_CALL && len >= 4)
			reach(m, m->w[at + 3], depth + 1);
		at += len;
	}
}

static int kernel_binding_order(const void *a, const void *b)
{
	const struct mdgpu_vk_kernel_binding *x = a, *y = b;

	if (x->set != y->set)
		return x->set < y->set ? -1 : 1;
	return x->binding < y->binding ? -1 : x->binding > y->binding;
}

VkResult mdgpu_vk_reflect(const uint32_t *code, size_t size, const char *entry,
			  const VkSpecializationInfo *spec, struct mdgpu_vk_reflection *out)
{
	struct module m = { .w = code, .n = size / 4 };
	uint32_t version, entry_fn = 0, current_fn = 0, count = 0, cap = 0;
	const uint32_t *interface = NULL;
	size_t interface_len = 0;
	VkResult result = VK_ERROR_UNKNOWN;

	memset(out, 0, sizeof(*out));
	if (size % 4 || m.n < 5 || code[0] != SPV_MAGIC || code[3] == 0 || code[3] > SPV_MAX_IDS)
		return VK_ERROR_UNKNOWN;
	version = code[1];
	m.bound = code[3];
	m.ids = calloc(m.bound, sizeof(*m.ids));
	if (!m.ids)
		return VK_ERROR_OUT_OF_HOST_MEMORY;

	for (size_t at = 5; at < m.n;) {
		uint32_t len = m.w[at] >> 16, op = m.w[at] & 0xffff;
		const uint32_t *o = &m.w[at + 1];
		struct id_info *x;

		if (!len || at + len > m.n)
			goto out;
		switch (op) {
		case OP_ENTRY_POINT:
			if (len >= 4 && o[0] == EXEC_GLCOMPUTE) {
				const char *name = (const char *)&o[2];
				size_t max = (len - 3) * 4, nlen = strnlen(name, max);

				if (nlen < max && !strcmp(name, entry)) {
					entry_fn = o[1];
					interface = &o[2 + nlen / 4 + 1];
					interface_len = len - 3 - (nlen / 4 + 1);
				}
			}
			break;
		case OP_DECORATE:
			x = len >= 3 ? id(&m, o[0]) : NULL;
			if (!x)
				break;
			if (o[1] == DEC_DESCRIPTOR_SET && len >= 4) {
				x->flags |= F_SET;
				x->set = o[2];
			} else if (o[1] == DEC_BINDING && len >= 4) {
				x->flags |= F_BINDING;
				x->binding = o[2];
			} else if (o[1] == DEC_SPEC_ID && len >= 4) {
				x->flags |= F_SPEC_ID;
				x->spec_id = o[2];
			} else if (o[1] == DEC_BLOCK) {
				x->flags |= F_BLOCK;
			} else if (o[1] == DEC_BUFFER_BLOCK) {
				x->flags |= F_BUFFER_BLOCK;
			}
			break;
		case OP_TYPE_POINTER:
			if (len >= 4 && (x = id(&m, o[0]))) {
				x->op = op;
				x->a = o[1];
				x->b = o[2];
			}
			break;
		case OP_TYPE_ARRAY:
			if (len >= 4 && (x = id(&m, o[0]))) {
				x->op = op;
				x->a = o[1];
				x->b = o[2];
			}
			break;
		case OP_TYPE_RUNTIME_ARRAY:
			if (len >= 3 && (x = id(&m, o[0]))) {
				x->op = op;
				x->a = o[1];
			}
			break;
		case OP_TYPE_STRUCT:
			if (len >= 2 && (x = id(&m, o[0])))
				x->op = op;
			break;
		case OP_CONSTANT:
		case OP_SPEC_CONSTANT:
			if (len >= 4 && (x = id(&m, o[1]))) {
				x->op = op;
				x->value = o[2] | (len >= 5 ? (uint64_t)o[3] << 32 : 0);
			}
			break;
		case OP_VARIABLE:
			/* Only module-level variables can be descriptors. */
			if (!current_fn && len >= 4 && (x = id(&m, o[1]))) {
				x->op = op;
				x->a = o[0];
				x->b = o[2];
			}
			break;
		case OP_FUNCTION:
			if (len >= 5 && (x = id(&m, o[1]))) {
				x->op = op;
				x->a = (uint32_t)at;
				current_fn = o[1];
			}
			break;
		case OP_FUNCTION_END:
			if ((x = id(&m, current_fn)))
				x->b = (uint32_t)(at + len);
			current_fn = 0;
			break;
		default:
			break;
		}
		at += len;
	}
	if (!entry_fn || !id(&m, entry_fn) || id(&m, entry_fn)->op != OP_FUNCTION) {
		mdgpu_vk_debug("SPIR-V: no GLCompute entry point \"%s\"", entry);
		goto out;
	}

	/* SPIR-V 1.4: the interface lists every global variable the entry point uses. */
	if (version >= 0x00010400) {
		for (size_t i = 0; i < interface_len; i++) {
			struct id_info *x = id(&m, interface[i]);

			if (x && x->op == OP_VARIABLE)
				x->flags |= F_USED;
		}
	} else {
		reach(&m, entry_fn, 0);
	}

	for (uint32_t v = 1; v < m.bound; v++) {
		struct id_info *x = &m.ids[v], *ptr, *t, *elem;
		struct mdgpu_vk_kernel_binding kb;
		uint64_t length = 1;

		if (x->op != OP_VARIABLE || !(x->flags & F_USED) || !(x->flags & F_BINDING))
			continue;
		if (x->b != SC_UNIFORM && x->b != SC_STORAGE_BUFFER)
			continue;
		ptr = id(&m, x->a);
		t = ptr && ptr->op == OP_TYPE_POINTER ? id(&m, ptr->b) : NULL;
		if (!t)
			continue;
		kb.count = 1;
		elem = t;
		if (t->op == OP_TYPE_ARRAY) {
			elem = id(&m, t->a);
			kb.count = constant_value(&m, t->b, spec, &length) && length <= UINT32_MAX ?
					   (uint32_t)length :
					   0;
		} else if (t->op == OP_TYPE_RUNTIME_ARRAY) {
			elem = id(&m, t->a);
			kb.count = 0;
		}
		if (!elem || elem->op != OP_TYPE_STRUCT)
			continue;
		kb.set = x->flags & F_SET ? x->set : 0;
		kb.binding = x->binding;
		kb.type = x->b == SC_UNIFORM && !(elem->flags & F_BUFFER_BLOCK) ?
				  MDGPU_DESCRIPTOR_UNIFORM_BUFFER :
				  MDGPU_DESCRIPTOR_STORAGE_BUFFER;
		if (count == cap) {
			uint32_t ncap = cap ? cap * 2 : 8;
			void *p = realloc(out->bindings, ncap * sizeof(*out->bindings));

			if (!p) {
				result = VK_ERROR_OUT_OF_HOST_MEMORY;
				goto out;
			}
			out->bindings = p;
			cap = ncap;
		}
		out->bindings[count++] = kb;
	}
	if (count)
		qsort(out->bindings, count, sizeof(out->bindings[0]), kernel_binding_order);
	out->binding_count = count;
	result = VK_SUCCESS;
out:
	if (result != VK_SUCCESS)
		mdgpu_vk_reflection_fini(out);
	free(m.ids);
	return result;
}

void mdgpu_vk_reflection_fini(struct mdgpu_vk_reflection *r)
{
	free(r->bindings);
	r->bindings = NULL;
	r->binding_count = 0;
}

/* ---- folding integer OpSpecConstantOps ---- */

enum {
	OPC_COMPOSITE_EXTRACT = 81,
	OPC_IADD = 128,
	OPC_ISUB = 130,
	OPC_IMUL = 132,
	OPC_UDIV = 134,
	OPC_UMOD = 137,
	OPC_SHIFT_RIGHT_LOGICAL = 194,
	OPC_SHIFT_LEFT_LOGICAL = 196,
};

struct fold_id {
	uint8_t known; /* an integer constant whose (specialized) value is @value */
	uint8_t width; /* OpTypeInt: its width */
	uint32_t spec_id;
	bool has_spec_id;
	uint64_t value;
	uint32_t first, count; /* composites: where the constituents are in the module */
};

static uint64_t width_mask(uint32_t width)
{
	return width >= 64 ? ~0ull : (1ull << width) - 1;
}

VkResult mdgpu_vk_fold_spec_ops(const uint32_t *code, size_t size, const VkSpecializationInfo *spec,
				uint32_t **out, size_t *out_size)
{
	size_t n = size / 4, len_out = 0;
	uint32_t bound, folds = 0;
	struct fold_id *ids;
	uint32_t *w;

	*out = NULL;
	*out_size = 0;
	if (size % 4 || n < 5 || code[0] != SPV_MAGIC || code[3] == 0 || code[3] > SPV_MAX_IDS)
		return VK_SUCCESS; /* not ours to judge: the device refuses what is malformed */
	bound = code[3];
	ids = calloc(bound, sizeof(*ids));
	w = malloc(size);
	if (!ids || !w) {
		free(ids);
		free(w);
		return VK_ERROR_OUT_OF_HOST_MEMORY;
	}
	memcpy(w, code, 5 * 4);
	len_out = 5;
	for (size_t at = 5; at < n;) {
		uint32_t len = code[at] >> 16, op = code[at] & 0xffff;
		const uint32_t *o = &code[at + 1];
		struct fold_id *r, *t;

		if (!len || at + len > n) {
			free(ids);
			free(w);
			return VK_SUCCESS;
		}
		/* Only the module's declarations: nothing in a function is folded. */
		if (op == OP_FUNCTION) {
			memcpy(w + len_out, code + at, (n - at) * 4);
			len_out += n - at;
			break;
		}
		switch (op) {
		case OP_DECORATE:
			if (len >= 4 && o[1] == DEC_SPEC_ID && o[0] < bound) {
				ids[o[0]].has_spec_id = true;
				ids[o[0]].spec_id = o[2];
			}
			break;
		case OP_TYPE_INT:
			if (len >= 4 && o[0] < bound && o[1] <= 64)
				ids[o[0]].width = (uint8_t)o[1];
			break;
		case OP_CONSTANT:
		case OP_SPEC_CONSTANT:
			if (len >= 4 && o[0] < bound && o[1] < bound && ids[o[0]].width) {
				r = &ids[o[1]];
				t = &ids[o[0]];
				r->value = o[2] | (len >= 5 ? (uint64_t)o[3] << 32 : 0);
				if (op == OP_SPEC_CONSTANT && r->has_spec_id && spec) {
					for (uint32_t i = 0; i < spec->mapEntryCount; i++) {
						const VkSpecializationMapEntry *e =
							&spec->pMapEntries[i];
						uint64_t v = 0;

						if (e->constantID != r->spec_id || e->size > 8 ||
						    e->offset + e->size > spec->dataSize)
							continue;
						memcpy(&v, (const uint8_t *)spec->pData + e->offset,
						       e->size);
						r->value = v;
					}
				}
				r->value &= width_mask(t->width);
				r->width = t->width;
				r->known = 1;
			}
			break;
		case OP_CONSTANT_COMPOSITE:
		case OP_SPEC_CONSTANT_COMPOSITE:
			if (len >= 3 && o[1] < bound) {
				ids[o[1]].first = (uint32_t)(at + 3);
				ids[o[1]].count = len - 3;
			}
			break;
		case OP_SPEC_CONSTANT_OP:
			if (len >= 5 && o[0] < bound && o[1] < bound && ids[o[0]].width) {
				uint32_t width = ids[o[0]].width, opc = o[2];
				struct fold_id *a = o[3] < bound ? &ids[o[3]] : NULL;
				struct fold_id *b = len >= 6 && o[4] < bound ? &ids[o[4]] : NULL;
				bool ok = false;
				uint64_t v = 0;

				if (opc == OPC_COMPOSITE_EXTRACT && len == 6 && a && a->count &&
				    o[4] < a->count && code[a->first + o[4]] < bound &&
				    ids[code[a->first + o[4]]].known) {
					v = ids[code[a->first + o[4]]].value;
					ok = true;
				} else if (len == 6 && a && b && a->known && b->known) {
					ok = true;
					switch (opc) {
					case OPC_IADD:
						v = a->value + b->value;
						break;
					case OPC_ISUB:
						v = a->value - b->value;
						break;
					case OPC_IMUL:
						v = a->value * b->value;
						break;
					case OPC_UDIV:
						ok = b->value != 0;
						v = ok ? a->value / b->value : 0;
						break;
					case OPC_UMOD:
						ok = b->value != 0;
						v = ok ? a->value % b->value : 0;
						break;
					case OPC_SHIFT_LEFT_LOGICAL:
						ok = b->value < width;
						v = ok ? a->value << b->value : 0;
						break;
					case OPC_SHIFT_RIGHT_LOGICAL:
						ok = b->value < width;
						v = ok ? a->value >> b->value : 0;
						break;
					default:
						ok = false;
						break;
					}
				}
				if (ok) {
					r = &ids[o[1]];
					r->value = v & width_mask(width);
					r->width = (uint8_t)width;
					r->known = 1;
					/* OpConstant <type> <id> <value...>: never longer than the op. */
					w[len_out] = (width > 32 ? 5u : 4u) << 16 | OP_CONSTANT;
					w[len_out + 1] = o[0];
					w[len_out + 2] = o[1];
					w[len_out + 3] = (uint32_t)r->value;
					if (width > 32)
						w[len_out + 4] = (uint32_t)(r->value >> 32);
					len_out += width > 32 ? 5 : 4;
					folds++;
					at += len;
					continue;
				}
			}
			break;
		default:
			break;
		}
		memcpy(w + len_out, code + at, len * 4);
		len_out += len;
		at += len;
	}
	free(ids);
	if (!folds) {
		free(w);
		return VK_SUCCESS;
	}
	mdgpu_vk_debug("SPIR-V: %u specialization constant operations folded", folds);
	*out = w;
	*out_size = len_out * 4;
	return VK_SUCCESS;
}
