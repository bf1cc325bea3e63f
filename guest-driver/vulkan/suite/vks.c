/* SPDX-License-Identifier: MIT */
/* The common part of the suite: options, instance and device, buffers, pipelines, reporting. */
#define _GNU_SOURCE
#include "vks.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Validation messages counted by the debug messenger (called from any thread). */
static atomic_uint validation_errors, validation_warnings;
static bool messenger_active;
static atomic_bool validation_layer_active;

const char *vks_result_name(VkResult r)
{
	switch (r) {
#define C(x)    \
	case x: \
		return #x;
		C(VK_SUCCESS)
		C(VK_NOT_READY)
		C(VK_TIMEOUT)
		C(VK_EVENT_SET)
		C(VK_EVENT_RESET)
		C(VK_INCOMPLETE)
		C(VK_ERROR_OUT_OF_HOST_MEMORY)
		C(VK_ERROR_OUT_OF_DEVICE_MEMORY)
		C(VK_ERROR_INITIALIZATION_FAILED)
		C(VK_ERROR_DEVICE_LOST)
		C(VK_ERROR_MEMORY_MAP_FAILED)
		C(VK_ERROR_LAYER_NOT_PRESENT)
		C(VK_ERROR_EXTENSION_NOT_PRESENT)
		C(VK_ERROR_FEATURE_NOT_PRESENT)
		C(VK_ERROR_INCOMPATIBLE_DRIVER)
		C(VK_ERROR_TOO_MANY_OBJECTS)
		C(VK_ERROR_FORMAT_NOT_SUPPORTED)
		C(VK_ERROR_FRAGMENTED_POOL)
		C(VK_ERROR_UNKNOWN)
		C(VK_ERROR_OUT_OF_POOL_MEMORY)
		C(VK_ERROR_INVALID_EXTERNAL_HANDLE)
		C(VK_ERROR_FRAGMENTATION)
		C(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
		C(VK_PIPELINE_COMPILE_REQUIRED)
		C(VK_ERROR_INVALID_SHADER_NV)
#undef C
	default:
		return "VK_RESULT_UNKNOWN";
	}
}

_Noreturn void vks_fatal(struct vks *v, const char *call, VkResult r)
{
	fprintf(stderr, "%s: %s failed: %s (%d)\n", v->prog, call, vks_result_name(r), (int)r);
	printf("VKSUITE name=%s ok=0 digest=- ms=0 error=%s\n", v->current ? v->current : v->prog,
	       vks_result_name(r));
	fflush(stdout);
	exit(1);
}

void vks_note(struct vks *v, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: %s: ", v->prog, v->current ? v->current : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void vks_report(struct vks *v, const char *name, bool ok, uint64_t digest, double ms,
		const char *extra, ...)
{
	char more[512] = "";
	if (extra) {
		va_list ap;
		va_start(ap, extra);
		more[0] = ' ';
		vsnprintf(more + 1, sizeof(more) - 1, extra, ap);
		va_end(ap);
	}
	printf("VKSUITE name=%s ok=%d digest=%016" PRIx64 " ms=%.3f%s\n", name, ok ? 1 : 0, digest,
	       ms, more);
	fflush(stdout);
	v->checks++;
	if (!ok)
		v->failures++;
}

void vks_skip(struct vks *v, const char *name, const char *feature)
{
	printf("VKSUITE name=%s ok=1 skipped=feature feature=%s digest=- ms=0\n", name, feature);
	fflush(stdout);
	v->checks++;
	v->skips++;
}

void vks_phase(struct vks *v, const char *name, bool begin)
{
	/*
	 * Opened before the first line is printed: an answer that arrives before we read it
	 * waits in the file (a tty's input buffer) instead of being lost.
	 */
	static int sync_fd = -2;
	if (sync_fd == -2) {
		const char *path = getenv("VKSUITE_PHASE_SYNC");
		sync_fd = path && *path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		if (path && *path && sync_fd < 0)
			vks_fatal(v, "open $VKSUITE_PHASE_SYNC", VK_ERROR_INITIALIZATION_FAILED);
	}
	printf("VKSUITE-PHASE prog=%s name=%s state=%s\n", v->prog, name, begin ? "begin" : "end");
	fflush(stdout);
	if (sync_fd >= 0) {
		/* One line: the observer has taken its sample. */
		char c;
		ssize_t n;
		while ((n = read(sync_fd, &c, 1)) == 1 || (n < 0 && errno == EINTR))
			if (n == 1 && c == '\n')
				break;
		if (n == 0)
			vks_fatal(v, "$VKSUITE_PHASE_SYNC closed", VK_ERROR_INITIALIZATION_FAILED);
	}
	const char *pause = getenv("VKSUITE_PHASE_PAUSE_MS");
	long ms = pause ? strtol(pause, NULL, 10) : 0;
	if (ms > 0) {
		if (ms > 60000)
			ms = 60000;
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

uint64_t vks_hash(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t vks_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

double vks_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double vks_median(double *values, uint32_t n)
{
	if (n == 0)
		return 0;
	qsort(values, n, sizeof(*values), cmp_double);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t n = strtoull(s, &end, 0);
	if (*end == 'K' || *end == 'k')
		n <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		n <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		n <<= 30, end++;
	if (*end || end == s) {
		fprintf(stderr, "bad size: %s\n", s);
		exit(2);
	}
	return n;
}

static void usage(const char *prog, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [--size N[K|M]] [--iterations N] [--cache FILE] [--device N] [--quiet]\n"
		"  Runs its checks and prints one 'VKSUITE name=... ok=...' line per check.\n"
		"  VKSUITE_DEVICE=N selects the physical device too.\n",
		prog);
	exit(status);
}

static void parse_options(struct vks *v, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "cache", required_argument, NULL, 'c' },
		{ "device", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev = getenv("VKSUITE_DEVICE");
	v->opt.iterations = 1;
	if (dev)
		v->opt.device = (uint32_t)strtoul(dev, NULL, 0);
	int c;
	while ((c = getopt_long(argc, argv, "s:n:c:d:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			v->opt.size = parse_size(optarg);
			break;
		case 'n':
			v->opt.iterations = (uint32_t)parse_size(optarg);
			v->opt.iterations_set = 1;
			if (v->opt.iterations == 0 || v->opt.iterations > 100000)
				usage(v->prog, 2);
			break;
		case 'c':
			v->opt.cache = optarg;
			break;
		case 'd':
			v->opt.device = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			v->opt.quiet = 1;
			break;
		case 'h':
			usage(v->prog, 0);
			break;
		default:
			usage(v->prog, 2);
		}
	}
	if (optind != argc)
		usage(v->prog, 2);
}

struct vks_timing vks_timed(struct vks *v, vks_prepare_fn prepare, vks_record_fn record, void *ctx)
{
	uint32_t n = v->opt.iterations;
	double *dev = calloc(n, sizeof(*dev)), *wall = calloc(n, sizeof(*wall));
	if (!dev || !wall)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	for (uint32_t i = 0; i < n; i++) {
		if (prepare)
			prepare(v, ctx);
		VkCommandBuffer cmd = vks_cmd_begin(v);
		vks_timer_begin(v, cmd);
		record(v, cmd, ctx);
		vks_timer_end(v, cmd);
		double t0 = vks_now_ms();
		vks_cmd_submit_wait(v, cmd);
		wall[i] = vks_now_ms() - t0;
		dev[i] = vks_timer_ms(v);
	}
	struct vks_timing t = { vks_median(dev, n), vks_median(wall, n), n };
	free(dev);
	free(wall);
	return t;
}

void vks_groups(struct vks *v, uint64_t groups, uint32_t *gx, uint32_t *gy)
{
	uint64_t max_x = v->props.limits.maxComputeWorkGroupCount[0];
	uint64_t x = groups < max_x ? groups : max_x;
	uint64_t y = x ? (groups + x - 1) / x : 0;
	if (y > v->props.limits.maxComputeWorkGroupCount[1])
		vks_fatal(v, "problem too large for the device's workgroup counts",
			  VK_ERROR_OUT_OF_DEVICE_MEMORY);
	*gx = (uint32_t)x;
	*gy = (uint32_t)y;
}

uint64_t vks_size(struct vks *v, uint64_t fallback)
{
	return v->opt.size ? v->opt.size : fallback;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
						 VkDebugUtilsMessageTypeFlagsEXT types,
						 const VkDebugUtilsMessengerCallbackDataEXT *data,
						 void *user)
{
	(void)user;
	/* Only the validation layer's messages count; the loader's and drivers' are shown. */
	bool validation = types & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT;
	const char *id = data->pMessageIdName ? data->pMessageIdName : "-";
	const char *what = "info";
	/* The Khronos layer says it is active when the instance is created: proof it ran. */
	if (validation && strstr(id, "CreateInstance-status-message"))
		atomic_store(&validation_layer_active, true);
	if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
		if (validation)
			atomic_fetch_add(&validation_errors, 1);
		what = "error";
	} else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
		if (validation)
			atomic_fetch_add(&validation_warnings, 1);
		what = "warning";
	} else if (!getenv("VKSUITE_VERBOSE")) {
		return VK_FALSE; /* information: only when asked for */
	}
	fprintf(stderr, "VKSUITE-MESSAGE %s severity=%s id=%s: %s\n",
		validation ? "validation" : "general", what, id,
		data->pMessage ? data->pMessage : "");
	return VK_FALSE;
}

static bool has_extension(const VkExtensionProperties *exts, uint32_t n, const char *name)
{
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(exts[i].extensionName, name))
			return true;
	return false;
}

static bool layer_has_debug_utils(const char *layer)
{
	uint32_t n = 0;
	bool found = false;
	if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0)
		return false;
	VkExtensionProperties *e = calloc(n, sizeof(*e));
	if (e && vkEnumerateInstanceExtensionProperties(layer, &n, e) == VK_SUCCESS)
		found = has_extension(e, n, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
	free(e);
	return found;
}

/* VK_EXT_debug_utils from the implementation or from a layer enabled by VK_INSTANCE_LAYERS. */
static bool debug_utils_available(void)
{
	if (layer_has_debug_utils(NULL))
		return true;
	const char *layers = getenv("VK_INSTANCE_LAYERS");
	char *list = layers ? strdup(layers) : NULL;
	bool found = false;
	char *save = NULL;
	for (char *name = list ? strtok_r(list, ":", &save) : NULL; name && !found;
	     name = strtok_r(NULL, ":", &save))
		found = layer_has_debug_utils(name);
	free(list);
	return found;
}

static void create_instance(struct vks *v)
{
	uint32_t loader = VK_API_VERSION_1_0;
	PFN_vkEnumerateInstanceVersion enum_version =
		(PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL,
								      "vkEnumerateInstanceVersion");
	if (enum_version)
		enum_version(&loader);
	const VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = v->prog,
		.applicationVersion = 1,
		.pEngineName = "mdgpu-vulkan-suite",
		.apiVersion = loader >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : loader,
	};
	const VkDebugUtilsMessengerCreateInfoEXT messenger = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
		.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT |
				   VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
				   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
		.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
			       VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT,
		.pfnUserCallback = on_message,
	};
	const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
	bool debug = debug_utils_available();
	const VkInstanceCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pNext = debug ? &messenger : NULL,
		.pApplicationInfo = &app,
		.enabledExtensionCount = debug ? 1 : 0,
		.ppEnabledExtensionNames = exts,
	};
	VKS_CHECK(v, vkCreateInstance(&info, NULL, &v->instance));
	if (debug) {
		PFN_vkCreateDebugUtilsMessengerEXT create =
			(PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
				v->instance, "vkCreateDebugUtilsMessengerEXT");
		if (create && create(v->instance, &messenger, NULL, &v->messenger) == VK_SUCCESS)
			messenger_active = true;
	}
}

static void pick_device(struct vks *v)
{
	uint32_t n = 0;
	VKS_CHECK(v, vkEnumeratePhysicalDevices(v->instance, &n, NULL));
	if (n == 0 || v->opt.device >= n) {
		fprintf(stderr, "%s: no physical device %u (%u found)\n", v->prog, v->opt.device,
			n);
		printf("VKSUITE name=%s ok=0 digest=- ms=0 error=no-device\n", v->prog);
		exit(1);
	}
	VkPhysicalDevice *devs = calloc(n, sizeof(*devs));
	if (!devs)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	VKS_CHECK(v, vkEnumeratePhysicalDevices(v->instance, &n, devs));
	v->phys = devs[v->opt.device];
	free(devs);

	v->subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
	VkPhysicalDeviceProperties2 props2 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
		.pNext = &v->subgroup,
	};
	vkGetPhysicalDeviceProperties(v->phys, &v->props);
	if (v->props.apiVersion >= VK_API_VERSION_1_1)
		vkGetPhysicalDeviceProperties2(v->phys, &props2);
	v->api = v->props.apiVersion;
	vkGetPhysicalDeviceMemoryProperties(v->phys, &v->mem);

	uint32_t nq = 0;
	vkGetPhysicalDeviceQueueFamilyProperties(v->phys, &nq, NULL);
	VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof(*qf));
	if (!qf)
		vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
	vkGetPhysicalDeviceQueueFamilyProperties(v->phys, &nq, qf);
	v->queue_family = UINT32_MAX;
	for (uint32_t i = 0; i < nq; i++) {
		if ((qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
		    (v->queue_family == UINT32_MAX ||
		     (qf[i].timestampValidBits && !v->queue_props.timestampValidBits))) {
			v->queue_family = i;
			v->queue_props = qf[i];
		}
	}
	free(qf);
	if (v->queue_family == UINT32_MAX) {
		printf("VKSUITE name=%s ok=0 digest=- ms=0 error=no-compute-queue\n", v->prog);
		exit(1);
	}
}

/* Enable what the program wants among what the device has. */
static void choose_features(struct vks *v, unsigned want)
{
	v->has13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES;
	v->has12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
	v->has11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
	v->has.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
	v->on13.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES;
	v->on12.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES;
	v->on11.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES;
	v->on.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
	if (v->api >= VK_API_VERSION_1_2) {
		v->has.pNext = &v->has11;
		v->has11.pNext = &v->has12;
		if (v->api >= VK_API_VERSION_1_3)
			v->has12.pNext = &v->has13;
		vkGetPhysicalDeviceFeatures2(v->phys, &v->has);
	} else {
		vkGetPhysicalDeviceFeatures(v->phys, &v->has.features);
	}
	const VkPhysicalDeviceFeatures *f = &v->has.features;
	VkPhysicalDeviceFeatures *o = &v->on.features;
	if (want & VKS_WANT_ROBUST)
		o->robustBufferAccess = f->robustBufferAccess;
	if (want & VKS_WANT_TYPES) {
		o->shaderInt64 = f->shaderInt64;
		o->shaderInt16 = f->shaderInt16;
		o->shaderFloat64 = f->shaderFloat64;
		v->on11.storageBuffer16BitAccess = v->has11.storageBuffer16BitAccess;
		v->on11.uniformAndStorageBuffer16BitAccess =
			v->has11.uniformAndStorageBuffer16BitAccess;
		v->on11.storagePushConstant16 = v->has11.storagePushConstant16;
		v->on12.storageBuffer8BitAccess = v->has12.storageBuffer8BitAccess;
		v->on12.uniformAndStorageBuffer8BitAccess =
			v->has12.uniformAndStorageBuffer8BitAccess;
		v->on12.storagePushConstant8 = v->has12.storagePushConstant8;
		v->on12.shaderFloat16 = v->has12.shaderFloat16;
		v->on12.shaderInt8 = v->has12.shaderInt8;
	}
	/* Cheap and used by vks-descriptors: always on when present. */
	o->shaderStorageBufferArrayDynamicIndexing = f->shaderStorageBufferArrayDynamicIndexing;
	o->shaderUniformBufferArrayDynamicIndexing = f->shaderUniformBufferArrayDynamicIndexing;
	/* Timeline semaphores and host query reset are used all over: always on when present. */
	v->on12.timelineSemaphore = v->has12.timelineSemaphore;
	v->on12.hostQueryReset = v->has12.hostQueryReset;
	if (want & VKS_WANT_SYNC2)
		v->on13.synchronization2 = v->has13.synchronization2;
	if (want & VKS_WANT_MAINTENANCE4)
		v->on13.maintenance4 = v->has13.maintenance4;
	if (v->api >= VK_API_VERSION_1_2) {
		v->on.pNext = &v->on11;
		v->on11.pNext = &v->on12;
		if (v->api >= VK_API_VERSION_1_3)
			v->on12.pNext = &v->on13;
	}
}

static void create_device(struct vks *v, unsigned want)
{
	choose_features(v, want);
	const char *exts[1];
	uint32_t next = 0;
	if (want & VKS_WANT_BUDGET) {
		uint32_t n = 0;
		VKS_CHECK(v, vkEnumerateDeviceExtensionProperties(v->phys, NULL, &n, NULL));
		VkExtensionProperties *e = calloc(n ? n : 1, sizeof(*e));
		if (!e)
			vks_fatal(v, "calloc", VK_ERROR_OUT_OF_HOST_MEMORY);
		VKS_CHECK(v, vkEnumerateDeviceExtensionProperties(v->phys, NULL, &n, e));
		if (has_extension(e, n, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) {
			exts[next++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
			v->budget = true;
		}
		free(e);
	}
	const float priority = 1.0f;
	const VkDeviceQueueCreateInfo queue = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
		.queueFamilyIndex = v->queue_family,
		.queueCount = 1,
		.pQueuePriorities = &priority,
	};
	const VkDeviceCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
		.pNext = v->api >= VK_API_VERSION_1_2 ? &v->on : NULL,
		.queueCreateInfoCount = 1,
		.pQueueCreateInfos = &queue,
		.enabledExtensionCount = next,
		.ppEnabledExtensionNames = exts,
		.pEnabledFeatures = v->api >= VK_API_VERSION_1_2 ? NULL : &v->on.features,
	};
	VKS_CHECK(v, vkCreateDevice(v->phys, &info, NULL, &v->dev));
	vkGetDeviceQueue(v->dev, v->queue_family, 0, &v->queue);
	const VkCommandPoolCreateInfo pool = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
		.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
		.queueFamilyIndex = v->queue_family,
	};
	VKS_CHECK(v, vkCreateCommandPool(v->dev, &pool, NULL, &v->pool));
	if (v->queue_props.timestampValidBits) {
		const VkQueryPoolCreateInfo qp = {
			.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
			.queryType = VK_QUERY_TYPE_TIMESTAMP,
			.queryCount = 2,
		};
		VKS_CHECK(v, vkCreateQueryPool(v->dev, &qp, NULL, &v->timer));
	}
}

void vks_init(struct vks *v, const char *prog, int argc, char **argv, unsigned want)
{
	memset(v, 0, sizeof(*v));
	v->prog = prog;
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_options(v, argc, argv);
	create_instance(v);
	pick_device(v);
	create_device(v, want);
	if (!v->opt.quiet)
		printf("VKSUITE-DEVICE prog=%s name=\"%s\" api=%u.%u.%u driver=0x%x vendor=0x%x "
		       "device=0x%x type=%d subgroup=%u timestamp_bits=%u timestamp_period=%g\n",
		       prog, v->props.deviceName, VK_API_VERSION_MAJOR(v->api),
		       VK_API_VERSION_MINOR(v->api), VK_API_VERSION_PATCH(v->api),
		       v->props.driverVersion, v->props.vendorID, v->props.deviceID,
		       (int)v->props.deviceType, v->subgroup.subgroupSize,
		       v->queue_props.timestampValidBits, v->props.limits.timestampPeriod);
}

int vks_finish(struct vks *v)
{
	v->current = NULL;
	if (v->dev) {
		VKS_CHECK(v, vkDeviceWaitIdle(v->dev));
		if (v->timer)
			vkDestroyQueryPool(v->dev, v->timer, NULL);
		vkDestroyCommandPool(v->dev, v->pool, NULL);
		vkDestroyDevice(v->dev, NULL);
	}
	if (v->messenger) {
		PFN_vkDestroyDebugUtilsMessengerEXT destroy =
			(PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
				v->instance, "vkDestroyDebugUtilsMessengerEXT");
		if (destroy)
			destroy(v->instance, v->messenger, NULL);
	}
	vkDestroyInstance(v->instance, NULL);
	unsigned errors = atomic_load(&validation_errors);
	if (messenger_active)
		printf("VKSUITE-VALIDATION prog=%s errors=%u warnings=%u layer=%d\n", v->prog,
		       errors, atomic_load(&validation_warnings),
		       atomic_load(&validation_layer_active) ? 1 : 0);
	fflush(stdout);
	return v->failures || errors ? 1 : 0;
}

int vks_memory_type(struct vks *v, uint32_t type_bits, VkMemoryPropertyFlags props)
{
	props |= VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
	for (uint32_t i = 0; i < v->mem.memoryTypeCount; i++)
		if ((type_bits & (1u << i)) &&
		    (v->mem.memoryTypes[i].propertyFlags & props) == props)
			return (int)i;
	return -1;
}

void vks_buf_create_typed(struct vks *v, struct vks_buf *b, VkDeviceSize size,
			  VkBufferUsageFlags usage, VkMemoryPropertyFlags props)
{
	memset(b, 0, sizeof(*b));
	b->size = size;
	const VkBufferCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = size,
		.usage = usage,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VKS_CHECK(v, vkCreateBuffer(v->dev, &info, NULL, &b->buf));
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(v->dev, b->buf, &req);
	int type = vks_memory_type(v, req.memoryTypeBits, props);
	if (type < 0)
		vks_fatal(v, "no host-visible memory type", VK_ERROR_FEATURE_NOT_PRESENT);
	b->type = (uint32_t)type;
	const VkMemoryAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
		.allocationSize = req.size,
		.memoryTypeIndex = b->type,
	};
	VKS_CHECK(v, vkAllocateMemory(v->dev, &alloc, NULL, &b->mem));
	VKS_CHECK(v, vkBindBufferMemory(v->dev, b->buf, b->mem, 0));
	VKS_CHECK(v, vkMapMemory(v->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
}

void vks_buf_create(struct vks *v, struct vks_buf *b, VkDeviceSize size, VkBufferUsageFlags usage)
{
	vks_buf_create_typed(v, b, size, usage, VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
}

void vks_buf_destroy(struct vks *v, struct vks_buf *b)
{
	if (b->map)
		vkUnmapMemory(v->dev, b->mem);
	vkDestroyBuffer(v->dev, b->buf, NULL);
	vkFreeMemory(v->dev, b->mem, NULL);
	memset(b, 0, sizeof(*b));
}

VkShaderModule vks_shader(struct vks *v, const uint32_t *code, size_t size)
{
	const VkShaderModuleCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
		.codeSize = size,
		.pCode = code,
	};
	VkShaderModule m;
	VKS_CHECK(v, vkCreateShaderModule(v->dev, &info, NULL, &m));
	return m;
}

VkDescriptorSetLayout vks_set_layout(struct vks *v, const VkDescriptorSetLayoutBinding *bindings,
				     uint32_t n)
{
	const VkDescriptorSetLayoutCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
		.bindingCount = n,
		.pBindings = bindings,
	};
	VkDescriptorSetLayout l;
	VKS_CHECK(v, vkCreateDescriptorSetLayout(v->dev, &info, NULL, &l));
	return l;
}

VkPipelineLayout vks_pipeline_layout(struct vks *v, const VkDescriptorSetLayout *sets,
				     uint32_t nsets, uint32_t push_offset, uint32_t push_size)
{
	const VkPushConstantRange range = {
		.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		.offset = push_offset,
		.size = push_size,
	};
	const VkPipelineLayoutCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
		.setLayoutCount = nsets,
		.pSetLayouts = sets,
		.pushConstantRangeCount = push_size ? 1 : 0,
		.pPushConstantRanges = &range,
	};
	VkPipelineLayout l;
	VKS_CHECK(v, vkCreatePipelineLayout(v->dev, &info, NULL, &l));
	return l;
}

VkPipeline vks_compute_pipeline(struct vks *v, VkShaderModule module, VkPipelineLayout layout,
				const VkSpecializationInfo *spec, VkPipelineCreateFlags flags,
				VkPipelineCache cache)
{
	const VkComputePipelineCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.flags = flags,
		.stage =
			{
				.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
				.stage = VK_SHADER_STAGE_COMPUTE_BIT,
				.module = module,
				.pName = "main",
				.pSpecializationInfo = spec,
			},
		.layout = layout,
	};
	VkPipeline p;
	VKS_CHECK(v, vkCreateComputePipelines(v->dev, cache, 1, &info, NULL, &p));
	return p;
}

VkDescriptorSet vks_alloc_set(struct vks *v, VkDescriptorPool pool, VkDescriptorSetLayout layout)
{
	const VkDescriptorSetAllocateInfo info = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
		.descriptorPool = pool,
		.descriptorSetCount = 1,
		.pSetLayouts = &layout,
	};
	VkDescriptorSet set;
	VKS_CHECK(v, vkAllocateDescriptorSets(v->dev, &info, &set));
	return set;
}

void vks_write_buffer(struct vks *v, VkDescriptorSet set, uint32_t binding, uint32_t element,
		      VkDescriptorType type, VkBuffer buf, VkDeviceSize offset, VkDeviceSize range)
{
	const VkDescriptorBufferInfo info = { buf, offset, range };
	const VkWriteDescriptorSet w = {
		.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
		.dstSet = set,
		.dstBinding = binding,
		.dstArrayElement = element,
		.descriptorCount = 1,
		.descriptorType = type,
		.pBufferInfo = &info,
	};
	vkUpdateDescriptorSets(v->dev, 1, &w, 0, NULL);
}

void vks_pipe_create_flags(struct vks *v, struct vks_pipe *p, const uint32_t *code, size_t size,
			   uint32_t nbuf, uint32_t push_size, const VkSpecializationInfo *spec,
			   VkPipelineCreateFlags flags)
{
	memset(p, 0, sizeof(*p));
	p->nbuf = nbuf;
	p->module = vks_shader(v, code, size);
	VkDescriptorSetLayoutBinding bindings[16];
	if (nbuf > VKS_ARRAY_SIZE(bindings))
		vks_fatal(v, "too many bindings", VK_ERROR_TOO_MANY_OBJECTS);
	for (uint32_t i = 0; i < nbuf; i++)
		bindings[i] = (VkDescriptorSetLayoutBinding){
			.binding = i,
			.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.descriptorCount = 1,
			.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		};
	p->set_layout = vks_set_layout(v, bindings, nbuf);
	p->layout = vks_pipeline_layout(v, &p->set_layout, 1, 0, push_size);
	p->pipeline = vks_compute_pipeline(v, p->module, p->layout, spec, flags, VK_NULL_HANDLE);
	if (nbuf) {
		const VkDescriptorPoolSize size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, nbuf };
		const VkDescriptorPoolCreateInfo dp = {
			.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
			.maxSets = 1,
			.poolSizeCount = 1,
			.pPoolSizes = &size,
		};
		VKS_CHECK(v, vkCreateDescriptorPool(v->dev, &dp, NULL, &p->pool));
		p->set = vks_alloc_set(v, p->pool, p->set_layout);
	}
}

void vks_pipe_create(struct vks *v, struct vks_pipe *p, const uint32_t *code, size_t size,
		     uint32_t nbuf, uint32_t push_size, const VkSpecializationInfo *spec)
{
	vks_pipe_create_flags(v, p, code, size, nbuf, push_size, spec, 0);
}

void vks_pipe_bind(struct vks *v, struct vks_pipe *p, struct vks_buf *const *bufs)
{
	VkDescriptorBufferInfo infos[16];
	VkWriteDescriptorSet writes[16];
	for (uint32_t i = 0; i < p->nbuf; i++) {
		infos[i] = (VkDescriptorBufferInfo){ bufs[i]->buf, 0, VK_WHOLE_SIZE };
		writes[i] = (VkWriteDescriptorSet){
			.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
			.dstSet = p->set,
			.dstBinding = i,
			.descriptorCount = 1,
			.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.pBufferInfo = &infos[i],
		};
	}
	vkUpdateDescriptorSets(v->dev, p->nbuf, writes, 0, NULL);
}

void vks_pipe_destroy(struct vks *v, struct vks_pipe *p)
{
	vkDestroyPipeline(v->dev, p->pipeline, NULL);
	vkDestroyPipelineLayout(v->dev, p->layout, NULL);
	vkDestroyDescriptorSetLayout(v->dev, p->set_layout, NULL);
	if (p->pool)
		vkDestroyDescriptorPool(v->dev, p->pool, NULL);
	vkDestroyShaderModule(v->dev, p->module, NULL);
	memset(p, 0, sizeof(*p));
}

void vks_pipe_use(struct vks_pipe *p, VkCommandBuffer cmd, const void *push, uint32_t push_size)
{
	vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
	if (p->nbuf)
		vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1,
					&p->set, 0, NULL);
	if (push_size)
		vkCmdPushConstants(cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
}

VkCommandBuffer vks_cmd_begin(struct vks *v)
{
	const VkCommandBufferAllocateInfo alloc = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = v->pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	VkCommandBuffer cmd;
	VKS_CHECK(v, vkAllocateCommandBuffers(v->dev, &alloc, &cmd));
	const VkCommandBufferBeginInfo begin = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
	};
	VKS_CHECK(v, vkBeginCommandBuffer(cmd, &begin));
	return cmd;
}

void vks_cmd_submit_wait(struct vks *v, VkCommandBuffer cmd)
{
	VKS_CHECK(v, vkEndCommandBuffer(cmd));
	const VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VkFence fence;
	VKS_CHECK(v, vkCreateFence(v->dev, &fi, NULL, &fence));
	const VkSubmitInfo submit = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = 1,
		.pCommandBuffers = &cmd,
	};
	VKS_CHECK(v, vkQueueSubmit(v->queue, 1, &submit, fence));
	VKS_CHECK(v, vkWaitForFences(v->dev, 1, &fence, VK_TRUE, VKS_WAIT_NS));
	vkDestroyFence(v->dev, fence, NULL);
	vkFreeCommandBuffers(v->dev, v->pool, 1, &cmd);
}

void vks_barrier(VkCommandBuffer cmd)
{
	const VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
				 VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
				 VK_ACCESS_INDIRECT_COMMAND_READ_BIT | VK_ACCESS_UNIFORM_READ_BIT |
				 VK_ACCESS_HOST_READ_BIT,
	};
	vkCmdPipelineBarrier(
		cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
		VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
			VK_PIPELINE_STAGE_DRAW_INDIRECT_BIT | VK_PIPELINE_STAGE_HOST_BIT,
		0, 1, &mb, 0, NULL, 0, NULL);
}

void vks_timer_begin(struct vks *v, VkCommandBuffer cmd)
{
	if (!v->timer)
		return;
	vkCmdResetQueryPool(cmd, v->timer, 0, 2);
	vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, v->timer, 0);
}

void vks_timer_end(struct vks *v, VkCommandBuffer cmd)
{
	if (v->timer)
		vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, v->timer, 1);
}

double vks_timer_ms(struct vks *v)
{
	if (!v->timer)
		return 0;
	uint64_t ts[2];
	VKS_CHECK(v, vkGetQueryPoolResults(v->dev, v->timer, 0, 2, sizeof(ts), ts, sizeof(ts[0]),
					   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
	uint64_t mask = v->queue_props.timestampValidBits >= 64 ?
				UINT64_MAX :
				(1ull << v->queue_props.timestampValidBits) - 1;
	uint64_t ticks = (ts[1] - ts[0]) & mask;
	return (double)ticks * v->props.limits.timestampPeriod / 1e6;
}

uint64_t vks_compare_u32(struct vks *v, const char *what, const uint32_t *got, const uint32_t *want,
			 uint64_t n)
{
	uint64_t bad = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (got[i] != want[i]) {
			if (bad < 5)
				vks_note(v, "%s[%" PRIu64 "] = 0x%08x, want 0x%08x", what, i,
					 got[i], want[i]);
			bad++;
		}
	}
	if (bad)
		vks_note(v, "%s: %" PRIu64 " of %" PRIu64 " words differ", what, bad, n);
	return bad;
}
