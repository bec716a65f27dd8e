/*
 * fake_nvml.c - a test double of NVIDIA's NVML (libnvidia-ml.so.1).
 *
 * Exports the NVML entry points the agent uses; values come from a state file
 * (FAKE_NVML_STATE) or from deterministic synthetic defaults. See README.md in
 * this directory: it is the contract this file implements.
 *
 * Build:
 *   gcc -O2 -shared -fPIC -Wall -Wextra -Werror -Wl,-soname,libnvidia-ml.so.1 \
 *       -o build/libnvidia-ml.so.1 fake_nvml.c -lm -lpthread
 *   add -DFAKE_NVML_LEGACY for the "old driver" variant without the newer exports.
 *
 * Types are declared here (nvml.h is not used); layouts are the x86_64 ones.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------------- */
/* NVML types                                                                */
/* ------------------------------------------------------------------------- */

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999
};

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

#define nvmlMemory_v2 0x02000028u

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t; /* == nvmlProcessInfo_v2_t */

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    signed int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    unsigned int valueType;
    unsigned int nvmlReturn; /* nvmlReturn_t */
    nvmlValue_t value;
} nvmlFieldValue_t;

_Static_assert(sizeof(void *) == 8, "x86_64 layouts assumed");
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t size");
_Static_assert(offsetof(nvmlMemory_t, total) == 0, "nvmlMemory_t.total");
_Static_assert(offsetof(nvmlMemory_t, free) == 8, "nvmlMemory_t.free");
_Static_assert(offsetof(nvmlMemory_t, used) == 16, "nvmlMemory_t.used");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t size");
_Static_assert(offsetof(nvmlMemory_v2_t, version) == 0, "nvmlMemory_v2_t.version");
_Static_assert(offsetof(nvmlMemory_v2_t, total) == 8, "nvmlMemory_v2_t.total");
_Static_assert(offsetof(nvmlMemory_v2_t, reserved) == 16, "nvmlMemory_v2_t.reserved");
_Static_assert(offsetof(nvmlMemory_v2_t, free) == 24, "nvmlMemory_v2_t.free");
_Static_assert(offsetof(nvmlMemory_v2_t, used) == 32, "nvmlMemory_v2_t.used");
_Static_assert((nvmlMemory_v2 & 0xFFFFFFu) == sizeof(nvmlMemory_v2_t), "nvmlMemory_v2 constant");
_Static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t size");
_Static_assert(offsetof(nvmlUtilization_t, gpu) == 0, "nvmlUtilization_t.gpu");
_Static_assert(offsetof(nvmlUtilization_t, memory) == 4, "nvmlUtilization_t.memory");
_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t size");
_Static_assert(offsetof(nvmlPciInfo_t, busIdLegacy) == 0, "nvmlPciInfo_t.busIdLegacy");
_Static_assert(offsetof(nvmlPciInfo_t, domain) == 16, "nvmlPciInfo_t.domain");
_Static_assert(offsetof(nvmlPciInfo_t, bus) == 20, "nvmlPciInfo_t.bus");
_Static_assert(offsetof(nvmlPciInfo_t, device) == 24, "nvmlPciInfo_t.device");
_Static_assert(offsetof(nvmlPciInfo_t, pciDeviceId) == 28, "nvmlPciInfo_t.pciDeviceId");
_Static_assert(offsetof(nvmlPciInfo_t, pciSubSystemId) == 32, "nvmlPciInfo_t.pciSubSystemId");
_Static_assert(offsetof(nvmlPciInfo_t, busId) == 36, "nvmlPciInfo_t.busId");
_Static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t size");
_Static_assert(offsetof(nvmlProcessInfo_v1_t, pid) == 0, "nvmlProcessInfo_v1_t.pid");
_Static_assert(offsetof(nvmlProcessInfo_v1_t, usedGpuMemory) == 8, "nvmlProcessInfo_v1_t.usedGpuMemory");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t size");
_Static_assert(offsetof(nvmlProcessInfo_t, pid) == 0, "nvmlProcessInfo_t.pid");
_Static_assert(offsetof(nvmlProcessInfo_t, usedGpuMemory) == 8, "nvmlProcessInfo_t.usedGpuMemory");
_Static_assert(offsetof(nvmlProcessInfo_t, gpuInstanceId) == 16, "nvmlProcessInfo_t.gpuInstanceId");
_Static_assert(offsetof(nvmlProcessInfo_t, computeInstanceId) == 20, "nvmlProcessInfo_t.computeInstanceId");
_Static_assert(sizeof(nvmlEventData_t) == 32, "nvmlEventData_t size");
_Static_assert(offsetof(nvmlEventData_t, device) == 0, "nvmlEventData_t.device");
_Static_assert(offsetof(nvmlEventData_t, eventType) == 8, "nvmlEventData_t.eventType");
_Static_assert(offsetof(nvmlEventData_t, eventData) == 16, "nvmlEventData_t.eventData");
_Static_assert(offsetof(nvmlEventData_t, gpuInstanceId) == 24, "nvmlEventData_t.gpuInstanceId");
_Static_assert(offsetof(nvmlEventData_t, computeInstanceId) == 28, "nvmlEventData_t.computeInstanceId");
_Static_assert(sizeof(nvmlValue_t) == 8, "nvmlValue_t size");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t size");
_Static_assert(offsetof(nvmlFieldValue_t, fieldId) == 0, "nvmlFieldValue_t.fieldId");
_Static_assert(offsetof(nvmlFieldValue_t, scopeId) == 4, "nvmlFieldValue_t.scopeId");
_Static_assert(offsetof(nvmlFieldValue_t, timestamp) == 8, "nvmlFieldValue_t.timestamp");
_Static_assert(offsetof(nvmlFieldValue_t, latencyUsec) == 16, "nvmlFieldValue_t.latencyUsec");
_Static_assert(offsetof(nvmlFieldValue_t, valueType) == 24, "nvmlFieldValue_t.valueType");
_Static_assert(offsetof(nvmlFieldValue_t, nvmlReturn) == 28, "nvmlFieldValue_t.nvmlReturn");
_Static_assert(offsetof(nvmlFieldValue_t, value) == 32, "nvmlFieldValue_t.value");

#define NVML_TEMPERATURE_GPU 0
#define NVML_TEMPERATURE_THRESHOLD_SHUTDOWN 0
#define NVML_TEMPERATURE_THRESHOLD_SLOWDOWN 1
#define NVML_TEMPERATURE_THRESHOLD_MEM_MAX 2
#define NVML_TEMPERATURE_THRESHOLD_GPU_MAX 3
#define NVML_TEMPERATURE_THRESHOLD_COUNT 8
#define NVML_CLOCK_COUNT 4
#define NVML_FI_DEV_MEMORY_TEMP 82
#define NVML_VALUE_TYPE_UNSIGNED_INT 1
#define NVML_EVENT_TYPE_SINGLE_BIT_ECC 0x1ULL
#define NVML_EVENT_TYPE_DOUBLE_BIT_ECC 0x2ULL
#define NVML_EVENT_TYPE_PSTATE 0x4ULL
#define NVML_EVENT_TYPE_XID 0x8ULL
#define NVML_EVENT_TYPE_CLOCK 0x10ULL
#define FAKE_SUPPORTED_EVENTS                                                                      \
    (NVML_EVENT_TYPE_XID | NVML_EVENT_TYPE_SINGLE_BIT_ECC | NVML_EVENT_TYPE_DOUBLE_BIT_ECC |       \
     NVML_EVENT_TYPE_PSTATE | NVML_EVENT_TYPE_CLOCK)

/* ------------------------------------------------------------------------- */
/* Fake state                                                                */
/* ------------------------------------------------------------------------- */

#define MAX_GPUS 64
#define MAX_FANS 16
#define MAX_PROCS 256
#define MAX_ERRS 32
#define MAX_GLOBAL_ERRS 64
#define MAX_XIDS 1024
#define MAX_SETS 64
#define STR_MAX 256
#define LIST_MAX 2048
#define FN_MAX 96
#define LINE_MAX_LEN 4096
#define RACY_MS 50.0

typedef struct {
    char fn[FN_MAX];
    int code;
} err_entry_t;

typedef struct {
    unsigned int pid;
    unsigned long long bytes;
} proc_entry_t;

/* bits of gpu_t.set: which animated / optional fields the state file set */
enum {
    S_UTIL_GPU = 1u << 0,
    S_UTIL_MEM = 1u << 1,
    S_TEMP = 1u << 2,
    S_POWER = 1u << 3,
    S_CLK_GR = 1u << 4,
    S_CLK_SM = 1u << 5,
    S_CLK_VID = 1u << 6,
    S_ENERGY = 1u << 7,
    S_MEM_TEMP = 1u << 8,
    S_TH_SHUT = 1u << 9,
    S_TH_SLOW = 1u << 10,
    S_TH_GPUMAX = 1u << 11,
    S_TH_MEMMAX = 1u << 12,
    S_ECC = 1u << 13,
    S_REMAP = 1u << 14,
    S_CLK_MEM = 1u << 15
};

typedef struct {
    unsigned int set;
    char name[STR_MAX];
    char uuid[STR_MAX];
    char pci_bus_id[32];
    char vbios[STR_MAX];
    unsigned int minor;
    int cc_major, cc_minor;
    unsigned int util_gpu, util_mem, enc_util, dec_util;
    unsigned long long mem_total, mem_used, mem_reserved;
    unsigned int temp, mem_temp;
    unsigned int th_shutdown, th_slowdown, th_gpu_max, th_mem_max;
    unsigned int power_mw, power_limit_mw, power_default_limit_mw;
    unsigned long long energy_mj;
    unsigned int nfans;
    unsigned int fans[MAX_FANS];
    unsigned int clk[4];
    unsigned int max_clk[4];
    int pstate;
    unsigned long long clock_event_reasons;
    unsigned int pcie_gen, pcie_width, pcie_gen_max, pcie_width_max, pcie_replay;
    int persistence;
    int ecc_mode;
    unsigned long long ecc[2][2]; /* [errorType][counterType] */
    unsigned int remap_corr, remap_unc, remap_pending, remap_failure;
    unsigned int nproc;
    proc_entry_t procs[MAX_PROCS];
    int lost, reset_required;
    char unsupported[LIST_MAX];
    unsigned int nerr;
    err_entry_t errs[MAX_ERRS];
} gpu_t;

typedef struct {
    unsigned long long n;
    unsigned int gpu;
    unsigned long long xid;
} xid_t;

typedef struct {
    unsigned int gpus;
    int init_rc;
    char driver_version[STR_MAX];
    char nvml_version[STR_MAX];
    int cuda_version;
    unsigned int call_delay_ms;
    char unsupported[LIST_MAX];
    unsigned int nerr;
    err_entry_t errs[MAX_GLOBAL_ERRS];
    unsigned int nxid;
    xid_t xids[MAX_XIDS];
    int event_wait_error;
    gpu_t gpu[MAX_GPUS];
} state_t;

struct nvmlDevice_st {
    unsigned int magic;
    unsigned int index;
};

struct nvmlEventSet_st {
    int in_use;
    unsigned int gen;
    unsigned long long types[MAX_GPUS];
};

typedef struct {
    int valid;
    double acc_mj;
    double last_t;
} energy_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static state_t g_st;
static int g_loaded;
static struct {
    int have;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
    char path[PATH_MAX];
    char gpus_env[32];
    int racy;
} g_key;
static int g_refcount;
static unsigned long long g_calls, g_init_calls;
static struct nvmlDevice_st g_devs[MAX_GPUS];
static struct nvmlEventSet_st g_sets[MAX_SETS];
static energy_t g_energy[MAX_GPUS];
static struct timespec g_t0;
static unsigned long long *g_delivered; /* xid sequence numbers already delivered */
static size_t g_ndelivered, g_capdelivered;

__attribute__((constructor)) static void fake_nvml_ctor(void)
{
    clock_gettime(CLOCK_MONOTONIC, &g_t0);
    for (unsigned i = 0; i < MAX_GPUS; i++) {
        g_devs[i].magic = 0x4e564d4cu;
        g_devs[i].index = i;
    }
}

__attribute__((destructor)) static void fake_nvml_dtor(void)
{
    free(g_delivered);
    g_delivered = NULL;
    g_ndelivered = g_capdelivered = 0;
}

static double secs_since_load(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - g_t0.tv_sec) + (double)(now.tv_nsec - g_t0.tv_nsec) / 1e9;
}

static double mono_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000.0);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------------- */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* decimal or 0x hex, whole string, no sign */
static int parse_u64(const char *s, unsigned long long *out)
{
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return 0;
    } else if (!(*s >= '0' && *s <= '9')) {
        return 0;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, base);
    if (errno != 0 || end == s || *end != '\0')
        return 0;
    *out = v;
    return 1;
}

static int parse_u32(const char *s, unsigned int *out)
{
    unsigned long long v;
    if (!parse_u64(s, &v) || v > 0xFFFFFFFFull)
        return 0;
    *out = (unsigned int)v;
    return 1;
}

static int parse_int(const char *s, int *out)
{
    unsigned long long v;
    if (!parse_u64(s, &v) || v > (unsigned long long)INT_MAX)
        return 0;
    *out = (int)v;
    return 1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static void set_err(err_entry_t *errs, unsigned int *n, unsigned int cap, const char *fn, const char *val)
{
    unsigned int code;
    if (*fn == '\0' || strlen(fn) >= FN_MAX || !parse_u32(val, &code))
        return;
    for (unsigned int i = 0; i < *n; i++) {
        if (strcmp(errs[i].fn, fn) == 0) {
            errs[i].code = (int)code;
            return;
        }
    }
    if (*n >= cap)
        return;
    copy_str(errs[*n].fn, FN_MAX, fn);
    errs[*n].code = (int)code;
    (*n)++;
}

/* "30,32" -> list; empty -> 0 entries; any malformed entry -> whole value ignored */
static int parse_u32_list(const char *val, unsigned int *out, unsigned int cap, unsigned int *n)
{
    char buf[LIST_MAX];
    unsigned int tmp[MAX_FANS];
    unsigned int k = 0;
    if (strlen(val) >= sizeof buf)
        return 0;
    copy_str(buf, sizeof buf, val);
    char *p = trim(buf);
    if (*p == '\0') {
        *n = 0;
        return 1;
    }
    char *save = NULL;
    for (char *tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (k >= cap || k >= MAX_FANS || !parse_u32(trim(tok), &tmp[k]))
            return 0;
        k++;
    }
    memcpy(out, tmp, k * sizeof(unsigned int));
    *n = k;
    return 1;
}

static int parse_procs(const char *val, gpu_t *g)
{
    char buf[LINE_MAX_LEN];
    static proc_entry_t tmp[MAX_PROCS]; /* only used under g_mu */
    unsigned int k = 0;
    if (strlen(val) >= sizeof buf)
        return 0;
    copy_str(buf, sizeof buf, val);
    char *p = trim(buf);
    if (*p != '\0') {
        char *save = NULL;
        for (char *tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *colon = strchr(tok, ':');
            if (!colon || k >= MAX_PROCS)
                return 0;
            *colon = '\0';
            if (!parse_u32(trim(tok), &tmp[k].pid) || !parse_u64(trim(colon + 1), &tmp[k].bytes))
                return 0;
            k++;
        }
    }
    memcpy(g->procs, tmp, k * sizeof(proc_entry_t));
    g->nproc = k;
    return 1;
}

static void gpu_defaults(gpu_t *g, unsigned int i)
{
    memset(g, 0, sizeof *g);
    copy_str(g->name, sizeof g->name, "NVIDIA GeForce RTX 4090");
    snprintf(g->uuid, sizeof g->uuid, "GPU-00000000-fa4e-4000-8000-0000000000%02x", i & 0xFFu);
    snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "00000000:%02X:00.0", (i + 1) & 0xFFu);
    copy_str(g->vbios, sizeof g->vbios, "95.02.3C.40.A7");
    g->minor = i;
    g->cc_major = 8;
    g->cc_minor = 9;
    g->util_gpu = 50 + i;
    g->util_mem = 20 + i;
    g->mem_total = 25757220864ull;
    g->mem_used = 1073741824ull * (i + 1);
    g->mem_reserved = 354549760ull;
    g->temp = 40 + i;
    g->th_shutdown = 92;
    g->th_slowdown = 89;
    g->th_gpu_max = 87;
    g->set = S_TH_SHUT | S_TH_SLOW | S_TH_GPUMAX;
    g->power_mw = 150000 + 1000 * i;
    g->power_limit_mw = 450000;
    g->power_default_limit_mw = 450000;
    g->nfans = 2;
    g->fans[0] = 30;
    g->fans[1] = 32;
    g->clk[0] = 2520;
    g->clk[1] = 2520;
    g->clk[2] = 10501;
    g->clk[3] = 1965;
    g->max_clk[0] = 3120;
    g->max_clk[1] = 3120;
    g->max_clk[2] = 10501;
    g->max_clk[3] = 2415;
    g->pstate = 2;
    g->pcie_gen = 4;
    g->pcie_width = 16;
    g->pcie_gen_max = 4;
    g->pcie_width_max = 16;
    g->persistence = 1;
}

/* optional numeric field: empty value unsets it (-> NOT_SUPPORTED) */
static void opt_u32(gpu_t *g, unsigned int bit, unsigned int *field, const char *val)
{
    if (*val == '\0') {
        g->set &= ~bit;
        return;
    }
    if (parse_u32(val, field))
        g->set |= bit;
}

static void apply_gpu_key(gpu_t *g, const char *f, const char *val)
{
    unsigned int u;
    unsigned long long ull;
    int iv;

#define U32(key, field)                                                                            \
    if (strcmp(f, key) == 0) {                                                                     \
        if (parse_u32(val, &u))                                                                    \
            g->field = u;                                                                          \
        return;                                                                                    \
    }
#define U32S(key, field, bit)                                                                      \
    if (strcmp(f, key) == 0) {                                                                     \
        if (parse_u32(val, &u)) {                                                                  \
            g->field = u;                                                                          \
            g->set |= (bit);                                                                       \
        }                                                                                          \
        return;                                                                                    \
    }
#define U64(key, field)                                                                            \
    if (strcmp(f, key) == 0) {                                                                     \
        if (parse_u64(val, &ull))                                                                  \
            g->field = ull;                                                                        \
        return;                                                                                    \
    }
#define INT(key, field)                                                                            \
    if (strcmp(f, key) == 0) {                                                                     \
        if (parse_int(val, &iv))                                                                   \
            g->field = iv;                                                                         \
        return;                                                                                    \
    }
#define STR(key, field)                                                                            \
    if (strcmp(f, key) == 0) {                                                                     \
        if (strlen(val) < sizeof g->field)                                                         \
            copy_str(g->field, sizeof g->field, val);                                              \
        return;                                                                                    \
    }
#define OPT(key, field, bit)                                                                       \
    if (strcmp(f, key) == 0) {                                                                     \
        opt_u32(g, bit, &g->field, val);                                                           \
        return;                                                                                    \
    }

    STR("name", name)
    STR("uuid", uuid)
    STR("pci_bus_id", pci_bus_id)
    STR("vbios", vbios)
    U32("minor", minor)
    INT("cc_major", cc_major)
    INT("cc_minor", cc_minor)
    U32S("util_gpu", util_gpu, S_UTIL_GPU)
    U32S("util_mem", util_mem, S_UTIL_MEM)
    U32("enc_util", enc_util)
    U32("dec_util", dec_util)
    U64("mem_total", mem_total)
    U64("mem_used", mem_used)
    U64("mem_reserved", mem_reserved)
    U32S("temp", temp, S_TEMP)
    OPT("mem_temp", mem_temp, S_MEM_TEMP)
    OPT("temp_shutdown", th_shutdown, S_TH_SHUT)
    OPT("temp_slowdown", th_slowdown, S_TH_SLOW)
    OPT("temp_gpu_max", th_gpu_max, S_TH_GPUMAX)
    OPT("temp_mem_max", th_mem_max, S_TH_MEMMAX)
    U32S("power_mw", power_mw, S_POWER)
    U32("power_limit_mw", power_limit_mw)
    U32("power_default_limit_mw", power_default_limit_mw)
    U32S("clock_graphics", clk[0], S_CLK_GR)
    U32S("clock_sm", clk[1], S_CLK_SM)
    U32S("clock_mem", clk[2], S_CLK_MEM)
    U32S("clock_video", clk[3], S_CLK_VID)
    U32("max_clock_graphics", max_clk[0])
    U32("max_clock_sm", max_clk[1])
    U32("max_clock_mem", max_clk[2])
    U32("max_clock_video", max_clk[3])
    INT("pstate", pstate)
    U64("clock_event_reasons", clock_event_reasons)
    U32("pcie_gen", pcie_gen)
    U32("pcie_width", pcie_width)
    U32("pcie_gen_max", pcie_gen_max)
    U32("pcie_width_max", pcie_width_max)
    U32("pcie_replay", pcie_replay)
    INT("persistence", persistence)
    U64("ecc_vol_corr", ecc[0][0])
    U64("ecc_vol_uncorr", ecc[1][0])
    U64("ecc_agg_corr", ecc[0][1])
    U64("ecc_agg_uncorr", ecc[1][1])
    INT("lost", lost)
    INT("reset_required", reset_required)

#undef U32
#undef U32S
#undef U64
#undef INT
#undef STR
#undef OPT

    if (strcmp(f, "energy_mj") == 0) {
        if (*val == '\0')
            g->set &= ~(unsigned)S_ENERGY;
        else if (parse_u64(val, &ull)) {
            g->energy_mj = ull;
            g->set |= S_ENERGY;
        }
        return;
    }
    if (strcmp(f, "ecc_mode") == 0) {
        if (*val == '\0')
            g->set &= ~(unsigned)S_ECC;
        else if (parse_int(val, &iv)) {
            g->ecc_mode = iv;
            g->set |= S_ECC;
        }
        return;
    }
    if (strncmp(f, "remap_", 6) == 0) {
        unsigned int *field = NULL;
        if (strcmp(f, "remap_corr") == 0)
            field = &g->remap_corr;
        else if (strcmp(f, "remap_unc") == 0)
            field = &g->remap_unc;
        else if (strcmp(f, "remap_pending") == 0)
            field = &g->remap_pending;
        else if (strcmp(f, "remap_failure") == 0)
            field = &g->remap_failure;
        if (field && parse_u32(val, field))
            g->set |= S_REMAP;
        return;
    }
    if (strcmp(f, "fan_speeds") == 0) {
        unsigned int n;
        unsigned int tmp[MAX_FANS] = {0};
        if (parse_u32_list(val, tmp, MAX_FANS, &n)) {
            memcpy(g->fans, tmp, sizeof tmp);
            g->nfans = n;
        }
        return;
    }
    if (strcmp(f, "processes") == 0) {
        parse_procs(val, g);
        return;
    }
    if (strcmp(f, "unsupported") == 0) {
        if (strlen(val) < sizeof g->unsupported)
            copy_str(g->unsupported, sizeof g->unsupported, val);
        return;
    }
    if (strncmp(f, "error.", 6) == 0) {
        set_err(g->errs, &g->nerr, MAX_ERRS, f + 6, val);
        return;
    }
    /* unknown key: ignored */
}

static void apply_xid(const char *nstr, const char *val)
{
    unsigned long long n, xid;
    unsigned int gpu;
    char buf[128];
    if (!parse_u64(nstr, &n) || strlen(val) >= sizeof buf)
        return;
    copy_str(buf, sizeof buf, val);
    char *colon = strchr(buf, ':');
    if (!colon)
        return;
    *colon = '\0';
    if (!parse_u32(trim(buf), &gpu) || gpu >= MAX_GPUS || !parse_u64(trim(colon + 1), &xid))
        return;
    for (unsigned int i = 0; i < g_st.nxid; i++) {
        if (g_st.xids[i].n == n) {
            g_st.xids[i].gpu = gpu;
            g_st.xids[i].xid = xid;
            return;
        }
    }
    if (g_st.nxid >= MAX_XIDS)
        return;
    g_st.xids[g_st.nxid].n = n;
    g_st.xids[g_st.nxid].gpu = gpu;
    g_st.xids[g_st.nxid].xid = xid;
    g_st.nxid++;
}

static void apply_line(char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *s = trim(line);
    if (*s == '\0')
        return;
    char *eq = strchr(s, '=');
    if (!eq)
        return;
    *eq = '\0';
    char *key = trim(s);
    char *val = trim(eq + 1);
    unsigned int u;
    int iv;

    if (strncmp(key, "gpu.", 4) == 0) {
        const char *p = key + 4;
        unsigned int idx = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            idx = idx * 10 + (unsigned)(*p - '0');
            if (++digits > 4)
                return;
            p++;
        }
        if (digits == 0 || *p != '.' || idx >= MAX_GPUS)
            return;
        apply_gpu_key(&g_st.gpu[idx], p + 1, val);
        return;
    }
    if (strcmp(key, "gpus") == 0) {
        if (parse_u32(val, &u))
            g_st.gpus = u > MAX_GPUS ? MAX_GPUS : u;
    } else if (strcmp(key, "init") == 0) {
        if (parse_int(val, &iv))
            g_st.init_rc = iv;
    } else if (strcmp(key, "driver_version") == 0) {
        if (strlen(val) < sizeof g_st.driver_version)
            copy_str(g_st.driver_version, sizeof g_st.driver_version, val);
    } else if (strcmp(key, "nvml_version") == 0) {
        if (strlen(val) < sizeof g_st.nvml_version)
            copy_str(g_st.nvml_version, sizeof g_st.nvml_version, val);
    } else if (strcmp(key, "cuda_version") == 0) {
        if (parse_int(val, &iv))
            g_st.cuda_version = iv;
    } else if (strcmp(key, "call_delay_ms") == 0) {
        if (parse_u32(val, &u))
            g_st.call_delay_ms = u;
    } else if (strcmp(key, "unsupported") == 0) {
        if (strlen(val) < sizeof g_st.unsupported)
            copy_str(g_st.unsupported, sizeof g_st.unsupported, val);
    } else if (strncmp(key, "error.", 6) == 0) {
        set_err(g_st.errs, &g_st.nerr, MAX_GLOBAL_ERRS, key + 6, val);
    } else if (strncmp(key, "xid.", 4) == 0) {
        apply_xid(key + 4, val);
    } else if (strcmp(key, "event_wait_error") == 0) {
        if (parse_int(val, &iv))
            g_st.event_wait_error = iv;
    }
    /* unknown keys ignored */
}

static unsigned int env_gpus(void)
{
    const char *e = getenv("FAKE_NVML_GPUS");
    unsigned int u;
    if (e && parse_u32(e, &u))
        return u > MAX_GPUS ? MAX_GPUS : u;
    return 2;
}

static void load_state(const char *path, int have)
{
    memset(&g_st, 0, sizeof g_st);
    g_st.gpus = env_gpus();
    copy_str(g_st.driver_version, sizeof g_st.driver_version, "550.54.15");
    copy_str(g_st.nvml_version, sizeof g_st.nvml_version, "12.550.54.15");
    g_st.cuda_version = 12040;
    for (unsigned int i = 0; i < MAX_GPUS; i++)
        gpu_defaults(&g_st.gpu[i], i);
    if (!have)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    static char line[LINE_MAX_LEN]; /* only used under g_mu */
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
            /* over-long line: skip the rest of it and ignore it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        apply_line(line);
    }
    fclose(f);
}

/* called with g_mu held */
static void maybe_reload(void)
{
    const char *path = getenv("FAKE_NVML_STATE");
    const char *genv = getenv("FAKE_NVML_GPUS");
    struct stat sb;
    int have = 0;
    if (path && *path && strlen(path) < PATH_MAX && stat(path, &sb) == 0)
        have = 1;
    const char *p = have ? path : "";
    const char *ge = genv ? genv : "";
    if (g_loaded && !g_key.racy && have == g_key.have && strcmp(p, g_key.path) == 0 &&
        strncmp(ge, g_key.gpus_env, sizeof g_key.gpus_env - 1) == 0 &&
        (!have || (sb.st_dev == g_key.dev && sb.st_ino == g_key.ino && sb.st_size == g_key.size &&
                   sb.st_mtim.tv_sec == g_key.mtim.tv_sec && sb.st_mtim.tv_nsec == g_key.mtim.tv_nsec)))
        return;
    /* File timestamps are coarse (one kernel tick): a same-size rewrite within the
     * tick of the version we read would keep mtime and size. Like git's "racy
     * clean" check, a file read while younger than RACY_MS is read again on the
     * next call, until a read happens when it is older than that. */
    g_key.racy = 0;
    if (have) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        double age_ms = (double)(now.tv_sec - sb.st_mtim.tv_sec) * 1e3 +
                        (double)(now.tv_nsec - sb.st_mtim.tv_nsec) / 1e6;
        g_key.racy = age_ms < RACY_MS;
    }
    g_key.have = have;
    copy_str(g_key.path, sizeof g_key.path, p);
    copy_str(g_key.gpus_env, sizeof g_key.gpus_env, ge);
    if (have) {
        g_key.dev = sb.st_dev;
        g_key.ino = sb.st_ino;
        g_key.size = sb.st_size;
        g_key.mtim = sb.st_mtim;
    }
    load_state(path, have);
    g_loaded = 1;
}

/* ------------------------------------------------------------------------- */
/* Call bookkeeping                                                          */
/* ------------------------------------------------------------------------- */

static void write_stats(void)
{
    const char *p = getenv("FAKE_NVML_STATS");
    if (!p || !*p)
        return;
    char tmp[PATH_MAX + 64];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "calls=%llu\ninit_calls=%llu\n", g_calls, g_init_calls);
    if (fclose(f) != 0) {
        unlink(tmp);
        return;
    }
    if (rename(tmp, p) != 0)
        unlink(tmp);
}

/* count the call (not for nvmlEventSetWait*), reload state; returns with g_mu held */
static void enter(int count)
{
    pthread_mutex_lock(&g_mu);
    if (count) {
        g_calls++;
        write_stats();
    }
    maybe_reload();
}

static nvmlReturn_t leave(nvmlReturn_t r)
{
    pthread_mutex_unlock(&g_mu);
    return r;
}

static int animate(void)
{
    const char *a = getenv("FAKE_NVML_ANIMATE");
    return a && strcmp(a, "1") == 0;
}

/* does `called` match one token of a name list? exact name, or name without a
 * trailing _v<N>; ...ClocksThrottleReasons also covers ...ClocksEventReasons */
static int fn_token_matches(const char *called, const char *tok, size_t toklen)
{
    size_t clen = strlen(called);
    if (toklen == clen && memcmp(called, tok, clen) == 0)
        return 1;
    size_t base = clen;
    while (base > 0 && called[base - 1] >= '0' && called[base - 1] <= '9')
        base--;
    if (base < clen && base >= 2 && called[base - 1] == 'v' && called[base - 2] == '_') {
        base -= 2;
        if (toklen == base && memcmp(called, tok, base) == 0)
            return 1;
    }
    static const char ev[] = "nvmlDeviceGetCurrentClocksEventReasons";
    static const char th[] = "nvmlDeviceGetCurrentClocksThrottleReasons";
    if (strcmp(called, ev) == 0 && toklen == sizeof th - 1 && memcmp(tok, th, toklen) == 0)
        return 1;
    return 0;
}

static int list_matches(const char *list, const char *called, int star_ok)
{
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t len = (size_t)(end - start);
        if (len == 1 && *start == '*') {
            if (star_ok)
                return 1;
        } else if (len > 0 && fn_token_matches(called, start, len)) {
            return 1;
        }
    }
    return 0;
}

static int err_lookup(const err_entry_t *errs, unsigned int n, const char *called)
{
    /* exact name first, then the base name */
    for (unsigned int i = 0; i < n; i++)
        if (errs[i].code != 0 && strcmp(errs[i].fn, called) == 0)
            return errs[i].code;
    for (unsigned int i = 0; i < n; i++)
        if (errs[i].code != 0 && fn_token_matches(called, errs[i].fn, strlen(errs[i].fn)))
            return errs[i].code;
    return 0;
}

/* global error.<fn> / unsupported for calls that do not take a device */
static nvmlReturn_t global_checks(const char *fn)
{
    int e = err_lookup(g_st.errs, g_st.nerr, fn);
    if (e)
        return e;
    if (list_matches(g_st.unsupported, fn, 0))
        return NVML_ERROR_NOT_SUPPORTED;
    return NVML_SUCCESS;
}

static nvmlReturn_t gpu_checks(const char *fn, const gpu_t *g, int star_ok)
{
    if (g->lost)
        return NVML_ERROR_GPU_IS_LOST;
    if (g->reset_required)
        return NVML_ERROR_RESET_REQUIRED;
    int e = err_lookup(g->errs, g->nerr, fn);
    if (e)
        return e;
    e = err_lookup(g_st.errs, g_st.nerr, fn);
    if (e)
        return e;
    if (list_matches(g->unsupported, fn, star_ok) || list_matches(g_st.unsupported, fn, star_ok))
        return NVML_ERROR_NOT_SUPPORTED;
    return NVML_SUCCESS;
}

/* every nvmlDevice* call sleeps call_delay_ms first, without the mutex */
static void device_delay(void)
{
    unsigned int d = g_st.call_delay_ms;
    if (d == 0)
        return;
    pthread_mutex_unlock(&g_mu);
    sleep_ms((double)d);
    pthread_mutex_lock(&g_mu);
    maybe_reload();
}

static int handle_index(nvmlDevice_t d)
{
    uintptr_t p = (uintptr_t)d;
    uintptr_t b = (uintptr_t)&g_devs[0];
    if (p < b || p >= b + sizeof g_devs || (p - b) % sizeof g_devs[0] != 0)
        return -1;
    unsigned int idx = (unsigned int)((p - b) / sizeof g_devs[0]);
    if (idx >= g_st.gpus)
        return -1;
    return (int)idx;
}

/* Standard prologue for a call taking a device handle. Always returns with g_mu
 * held (release with leave()). On success *gp / *ip point at the GPU. */
static nvmlReturn_t dev_begin(const char *fn, nvmlDevice_t d, int badarg, gpu_t **gp, unsigned int *ip)
{
    enter(1);
    device_delay();
    if (g_refcount == 0)
        return NVML_ERROR_UNINITIALIZED;
    int idx = handle_index(d);
    if (idx < 0 || badarg)
        return NVML_ERROR_INVALID_ARGUMENT;
    gpu_t *g = &g_st.gpu[idx];
    nvmlReturn_t r = gpu_checks(fn, g, 1);
    if (r != NVML_SUCCESS)
        return r;
    *gp = g;
    if (ip)
        *ip = (unsigned int)idx;
    return NVML_SUCCESS;
}

static nvmlReturn_t sys_begin(const char *fn, int badarg, int is_device_fn)
{
    enter(1);
    if (is_device_fn)
        device_delay();
    if (g_refcount == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (badarg)
        return NVML_ERROR_INVALID_ARGUMENT;
    return global_checks(fn);
}

static nvmlReturn_t put_str(char *buf, unsigned int len, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)len < n + 1)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, s, n + 1);
    return NVML_SUCCESS;
}

/* ------------------------------------------------------------------------- */
/* Effective (possibly animated) readings                                    */
/* ------------------------------------------------------------------------- */

static double wave(double period_div, unsigned int i, double phase)
{
    return sin(secs_since_load() / period_div + (double)i + phase);
}

static unsigned int clamp_u(double v)
{
    if (v < 0)
        return 0;
    return (unsigned int)lround(v);
}

static unsigned int eff_util_gpu(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_UTIL_GPU) || !animate())
        return g->util_gpu;
    return clamp_u(50.0 + 40.0 * wave(30.0, i, 0.0));
}

static unsigned int eff_util_mem(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_UTIL_MEM) || !animate())
        return g->util_mem;
    return clamp_u(30.0 + 20.0 * wave(30.0, i, -0.2));
}

static unsigned int eff_temp(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_TEMP) || !animate())
        return g->temp;
    return clamp_u(55.0 + 15.0 * wave(30.0, i, -0.5));
}

static unsigned int eff_power(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_POWER) || !animate())
        return g->power_mw;
    /* proportional to utilisation: 80 W idle .. 450 W at 100 % */
    return 80000u + 3700u * eff_util_gpu(g, i);
}

static unsigned int eff_clock(const gpu_t *g, unsigned int i, unsigned int type)
{
    static const unsigned int bits[4] = {S_CLK_GR, S_CLK_SM, S_CLK_MEM, S_CLK_VID};
    if (type == 2 || (g->set & bits[type]) || !animate())
        return g->clk[type];
    unsigned int u = eff_util_gpu(g, i);
    if (type == 3)
        return 800u + 12u * u;
    return 1000u + 17u * u;
}

static unsigned long long eff_energy(const gpu_t *g, unsigned int i)
{
    if (g->set & S_ENERGY)
        return g->energy_mj;
    double t = secs_since_load();
    double p = (double)eff_power(g, i); /* mW = mJ/s */
    energy_t *e = &g_energy[i];
    if (!e->valid) {
        e->valid = 1;
        e->acc_mj = 1000000.0 * (double)(i + 1) + p * t;
    } else if (t > e->last_t) {
        e->acc_mj += p * (t - e->last_t);
    }
    e->last_t = t;
    return (unsigned long long)e->acc_mj;
}

static long long now_us_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------- */
/* Init / shutdown / errors                                                  */
/* ------------------------------------------------------------------------- */

static nvmlReturn_t init_impl(void)
{
    pthread_mutex_lock(&g_mu);
    g_calls++;
    g_init_calls++;
    write_stats();
    maybe_reload();
    if (g_st.init_rc != 0)
        return leave(g_st.init_rc);
    g_refcount++;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return init_impl(); }
EXPORT nvmlReturn_t nvmlInit(void) { return init_impl(); }
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    return init_impl();
}

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    enter(1);
    if (g_refcount == 0)
        return leave(NVML_ERROR_UNINITIALIZED);
    g_refcount--;
    return leave(NVML_SUCCESS);
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    pthread_mutex_lock(&g_mu);
    g_calls++;
    write_stats();
    pthread_mutex_unlock(&g_mu);
    switch (result) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 4: return "Insufficient Permissions";
    case 5: return "Already Initialized";
    case 6: return "Not Found";
    case 7: return "Insufficient Size";
    case 8: return "Insufficient External Power";
    case 9: return "Driver Not Loaded";
    case 10: return "Timeout";
    case 11: return "Interrupt Request Issue";
    case 12: return "NVML Shared Library Not Found";
    case 13: return "Function Not Found";
    case 14: return "Corrupted infoROM";
    case 15: return "GPU is lost";
    case 16: return "GPU requires restart";
    case 17: return "The operating system has blocked the request.";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    case 19: return "In use by another client";
    case 20: return "Insufficient Memory";
    case 21: return "No data";
    case 22: return "The requested vgpu operation is not available on target device, becasue ECC is enabled.";
    case 23: return "Ran out of critical resources, other than memory";
    case 24: return "The requested frequency is not supported";
    case 25: return "The provided version is invalid/unsupported";
    case 26: return "The requested functionality has been deprecated";
    case 27: return "The system is not ready for the request";
    case 28: return "The GPU was not found";
    case 29: return "The requested operation is invalid in the current state";
    case 30: return "The requested reset type is not supported";
    default: return "Unknown Error";
    }
}

/* ------------------------------------------------------------------------- */
/* System                                                                    */
/* ------------------------------------------------------------------------- */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    nvmlReturn_t r = sys_begin(__func__, version == NULL, 0);
    if (r == NVML_SUCCESS)
        r = put_str(version, length, g_st.driver_version);
    return leave(r);
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    nvmlReturn_t r = sys_begin(__func__, version == NULL, 0);
    if (r == NVML_SUCCESS)
        r = put_str(version, length, g_st.nvml_version);
    return leave(r);
}

static nvmlReturn_t cuda_version_impl(const char *fn, int *v)
{
    nvmlReturn_t r = sys_begin(fn, v == NULL, 0);
    if (r == NVML_SUCCESS)
        *v = g_st.cuda_version;
    return leave(r);
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return cuda_version_impl(__func__, v); }
#endif
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { return cuda_version_impl(__func__, v); }

/* ------------------------------------------------------------------------- */
/* Enumeration                                                               */
/* ------------------------------------------------------------------------- */

static nvmlReturn_t count_impl(const char *fn, unsigned int *count)
{
    nvmlReturn_t r = sys_begin(fn, count == NULL, 1);
    if (r == NVML_SUCCESS)
        *count = g_st.gpus;
    return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *c) { return count_impl(__func__, c); }
EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *c) { return count_impl(__func__, c); }

static nvmlReturn_t by_index_impl(const char *fn, unsigned int index, nvmlDevice_t *device)
{
    enter(1);
    device_delay();
    if (g_refcount == 0)
        return leave(NVML_ERROR_UNINITIALIZED);
    if (device == NULL || index >= g_st.gpus)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    nvmlReturn_t r = gpu_checks(fn, &g_st.gpu[index], 0);
    if (r == NVML_SUCCESS)
        *device = &g_devs[index];
    return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    return by_index_impl(__func__, index, device);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return by_index_impl(__func__, index, device);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    enter(1);
    device_delay();
    if (g_refcount == 0)
        return leave(NVML_ERROR_UNINITIALIZED);
    if (uuid == NULL || device == NULL)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    for (unsigned int i = 0; i < g_st.gpus; i++) {
        if (strcmp(g_st.gpu[i].uuid, uuid) == 0) {
            nvmlReturn_t r = gpu_checks(__func__, &g_st.gpu[i], 0);
            if (r == NVML_SUCCESS)
                *device = &g_devs[i];
            return leave(r);
        }
    }
    nvmlReturn_t r = global_checks(__func__);
    return leave(r != NVML_SUCCESS ? r : NVML_ERROR_NOT_FOUND);
}

/* ------------------------------------------------------------------------- */
/* Identity                                                                  */
/* ------------------------------------------------------------------------- */

#define DEV_PROLOGUE(badarg)                                                                       \
    gpu_t *g = NULL;                                                                               \
    unsigned int idx = 0;                                                                          \
    nvmlReturn_t r = dev_begin(__func__, device, (badarg), &g, &idx);                              \
    (void)idx;                                                                                     \
    if (r != NVML_SUCCESS)                                                                         \
        return leave(r);

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    DEV_PROLOGUE(name == NULL)
    return leave(put_str(name, length, g->name));
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    DEV_PROLOGUE(uuid == NULL)
    return leave(put_str(uuid, length, g->uuid));
}

EXPORT nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char *version, unsigned int length)
{
    DEV_PROLOGUE(version == NULL)
    return leave(put_str(version, length, g->vbios));
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    DEV_PROLOGUE(index == NULL)
    *index = idx;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber)
{
    DEV_PROLOGUE(minorNumber == NULL)
    *minorNumber = g->minor;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    DEV_PROLOGUE(pci == NULL)
    unsigned int dom = 0, bus = 0, dev = 0, fn = 0;
    if (sscanf(g->pci_bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) {
        dom = bus = dev = 0;
        if (sscanf(g->pci_bus_id, "%x:%x.%x", &bus, &dev, &fn) != 3)
            bus = dev = 0;
    }
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0", dom & 0xFFFFu, bus & 0xFFu,
             dev & 0x1Fu);
    pci->domain = dom;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = 0x268410DEu;    /* AD102 [GeForce RTX 4090], vendor 10DE */
    pci->pciSubSystemId = 0x16F310DEu; /* fixed */
    copy_str(pci->busId, sizeof pci->busId, g->pci_bus_id);
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
    DEV_PROLOGUE(major == NULL || minor == NULL)
    *major = g->cc_major;
    *minor = g->cc_minor;
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------- */
/* Utilisation / memory                                                      */
/* ------------------------------------------------------------------------- */

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
    DEV_PROLOGUE(utilization == NULL)
    utilization->gpu = eff_util_gpu(g, idx);
    utilization->memory = eff_util_mem(g, idx);
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                    unsigned int *samplingPeriodUs)
{
    DEV_PROLOGUE(utilization == NULL || samplingPeriodUs == NULL)
    *utilization = g->enc_util;
    *samplingPeriodUs = 167000;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                    unsigned int *samplingPeriodUs)
{
    DEV_PROLOGUE(utilization == NULL || samplingPeriodUs == NULL)
    *utilization = g->dec_util;
    *samplingPeriodUs = 167000;
    return leave(NVML_SUCCESS);
}

static unsigned long long mem_free(const gpu_t *g)
{
    unsigned long long taken = g->mem_used + g->mem_reserved;
    return taken >= g->mem_total ? 0 : g->mem_total - taken;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    DEV_PROLOGUE(memory == NULL)
    memory->total = g->mem_total;
    memory->used = g->mem_used + g->mem_reserved;
    memory->free = mem_free(g);
    return leave(NVML_SUCCESS);
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    DEV_PROLOGUE(memory == NULL)
    if (memory->version != nvmlMemory_v2)
        return leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    memory->total = g->mem_total;
    memory->reserved = g->mem_reserved;
    memory->used = g->mem_used;
    memory->free = mem_free(g);
    return leave(NVML_SUCCESS);
}
#endif

/* ------------------------------------------------------------------------- */
/* Temperature / field values                                                */
/* ------------------------------------------------------------------------- */

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType, unsigned int *temp)
{
    DEV_PROLOGUE(temp == NULL || sensorType != NVML_TEMPERATURE_GPU)
    *temp = eff_temp(g, idx);
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, int thresholdType, unsigned int *temp)
{
    DEV_PROLOGUE(temp == NULL || thresholdType < 0 || thresholdType >= NVML_TEMPERATURE_THRESHOLD_COUNT)
    unsigned int bit = 0, v = 0;
    switch (thresholdType) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: bit = S_TH_SHUT; v = g->th_shutdown; break;
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: bit = S_TH_SLOW; v = g->th_slowdown; break;
    case NVML_TEMPERATURE_THRESHOLD_MEM_MAX: bit = S_TH_MEMMAX; v = g->th_mem_max; break;
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX: bit = S_TH_GPUMAX; v = g->th_gpu_max; break;
    default: break; /* acoustic / GPS thresholds: not supported */
    }
    if (bit == 0 || !(g->set & bit))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *temp = v;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values)
{
    DEV_PROLOGUE(valuesCount < 0 || (valuesCount > 0 && values == NULL))
    long long ts = now_us_realtime();
    for (int k = 0; k < valuesCount; k++) {
        nvmlFieldValue_t *v = &values[k];
        v->timestamp = ts;
        v->latencyUsec = 0;
        if (v->fieldId == NVML_FI_DEV_MEMORY_TEMP && (g->set & S_MEM_TEMP)) {
            v->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
            v->value.ullVal = 0;
            v->value.uiVal = g->mem_temp;
            v->nvmlReturn = NVML_SUCCESS;
        } else {
            v->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        }
    }
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------- */
/* Power / energy                                                            */
/* ------------------------------------------------------------------------- */

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    DEV_PROLOGUE(power == NULL)
    *power = eff_power(g, idx);
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    DEV_PROLOGUE(limit == NULL)
    *limit = g->power_limit_mw;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, unsigned int *defaultLimit)
{
    DEV_PROLOGUE(defaultLimit == NULL)
    *defaultLimit = g->power_default_limit_mw;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
    DEV_PROLOGUE(energy == NULL)
    *energy = eff_energy(g, idx);
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------- */
/* Fans                                                                      */
/* ------------------------------------------------------------------------- */

EXPORT nvmlReturn_t nvmlDeviceGetNumFans(nvmlDevice_t device, unsigned int *numFans)
{
    DEV_PROLOGUE(numFans == NULL)
    if (g->nfans == 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *numFans = g->nfans;
    return leave(NVML_SUCCESS);
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed_v2(nvmlDevice_t device, unsigned int fan, unsigned int *speed)
{
    DEV_PROLOGUE(speed == NULL)
    if (g->nfans == 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    if (fan >= g->nfans)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    *speed = g->fans[fan];
    return leave(NVML_SUCCESS);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed)
{
    DEV_PROLOGUE(speed == NULL)
    if (g->nfans == 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *speed = g->fans[0];
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------- */
/* Clocks / performance                                                      */
/* ------------------------------------------------------------------------- */

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock)
{
    DEV_PROLOGUE(clock == NULL || type < 0 || type >= NVML_CLOCK_COUNT)
    *clock = eff_clock(g, idx, (unsigned int)type);
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, unsigned int *clock)
{
    DEV_PROLOGUE(clock == NULL || type < 0 || type >= NVML_CLOCK_COUNT)
    *clock = g->max_clk[type];
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, int *pState)
{
    DEV_PROLOGUE(pState == NULL)
    *pState = g->pstate;
    return leave(NVML_SUCCESS);
}

static nvmlReturn_t clock_reasons_impl(const char *fn, nvmlDevice_t device, unsigned long long *reasons)
{
    gpu_t *g = NULL;
    nvmlReturn_t r = dev_begin(fn, device, reasons == NULL, &g, NULL);
    if (r == NVML_SUCCESS)
        *reasons = g->clock_event_reasons;
    return leave(r);
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    return clock_reasons_impl(__func__, device, reasons);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    return clock_reasons_impl(__func__, device, reasons);
}

/* ------------------------------------------------------------------------- */
/* PCIe                                                                      */
/* ------------------------------------------------------------------------- */

#define SIMPLE_U32_GETTER(fname, field)                                                            \
    EXPORT nvmlReturn_t fname(nvmlDevice_t device, unsigned int *out)                              \
    {                                                                                              \
        DEV_PROLOGUE(out == NULL)                                                                  \
        *out = g->field;                                                                           \
        return leave(NVML_SUCCESS);                                                                \
    }

SIMPLE_U32_GETTER(nvmlDeviceGetCurrPcieLinkGeneration, pcie_gen)
SIMPLE_U32_GETTER(nvmlDeviceGetCurrPcieLinkWidth, pcie_width)
SIMPLE_U32_GETTER(nvmlDeviceGetMaxPcieLinkGeneration, pcie_gen_max)
SIMPLE_U32_GETTER(nvmlDeviceGetMaxPcieLinkWidth, pcie_width_max)
SIMPLE_U32_GETTER(nvmlDeviceGetPcieReplayCounter, pcie_replay)

/* ------------------------------------------------------------------------- */
/* Modes / ECC / remapping                                                   */
/* ------------------------------------------------------------------------- */

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, int *mode)
{
    DEV_PROLOGUE(mode == NULL)
    *mode = g->persistence;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, int *current, int *pending)
{
    DEV_PROLOGUE(current == NULL || pending == NULL)
    if (!(g->set & S_ECC))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *current = g->ecc_mode;
    *pending = g->ecc_mode;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType, int counterType,
                                                unsigned long long *eccCounts)
{
    DEV_PROLOGUE(eccCounts == NULL || errorType < 0 || errorType > 1 || counterType < 0 || counterType > 1)
    if (!(g->set & S_ECC))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *eccCounts = g->ecc[errorType][counterType];
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corrRows, unsigned int *uncRows,
                                              unsigned int *isPending, unsigned int *failureOccurred)
{
    DEV_PROLOGUE(corrRows == NULL || uncRows == NULL || isPending == NULL || failureOccurred == NULL)
    if (!(g->set & S_REMAP))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *corrRows = g->remap_corr;
    *uncRows = g->remap_unc;
    *isPending = g->remap_pending;
    *failureOccurred = g->remap_failure;
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------------- */
/* Processes                                                                 */
/* ------------------------------------------------------------------------- */

static nvmlReturn_t procs_impl(const char *fn, nvmlDevice_t device, unsigned int *infoCount, void *infos, int v1)
{
    gpu_t *g = NULL;
    nvmlReturn_t r = dev_begin(fn, device, infoCount == NULL, &g, NULL);
    if (r != NVML_SUCCESS)
        return leave(r);
    unsigned int need = g->nproc;
    if (*infoCount < need) {
        *infoCount = need;
        return leave(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    if (need > 0 && infos == NULL)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    for (unsigned int k = 0; k < need; k++) {
        if (v1) {
            nvmlProcessInfo_v1_t *p = &((nvmlProcessInfo_v1_t *)infos)[k];
            memset(p, 0, sizeof *p);
            p->pid = g->procs[k].pid;
            p->usedGpuMemory = g->procs[k].bytes;
        } else {
            nvmlProcessInfo_t *p = &((nvmlProcessInfo_t *)infos)[k];
            memset(p, 0, sizeof *p);
            p->pid = g->procs[k].pid;
            p->usedGpuMemory = g->procs[k].bytes;
            p->gpuInstanceId = 0xFFFFFFFFu;
            p->computeInstanceId = 0xFFFFFFFFu;
        }
    }
    *infoCount = need;
    return leave(NVML_SUCCESS);
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos)
{
    return procs_impl(__func__, device, infoCount, infos, 0);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos)
{
    return procs_impl(__func__, device, infoCount, infos, 0);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                         nvmlProcessInfo_v1_t *infos)
{
    return procs_impl(__func__, device, infoCount, infos, 1);
}

/* ------------------------------------------------------------------------- */
/* Events                                                                    */
/* ------------------------------------------------------------------------- */

static struct nvmlEventSet_st *set_lookup(nvmlEventSet_t set)
{
    uintptr_t p = (uintptr_t)set;
    uintptr_t b = (uintptr_t)&g_sets[0];
    if (p < b || p >= b + sizeof g_sets || (p - b) % sizeof g_sets[0] != 0)
        return NULL;
    struct nvmlEventSet_st *s = (struct nvmlEventSet_st *)set;
    return s->in_use ? s : NULL;
}

static int is_delivered(unsigned long long n)
{
    for (size_t i = 0; i < g_ndelivered; i++)
        if (g_delivered[i] == n)
            return 1;
    return 0;
}

static int mark_delivered(unsigned long long n)
{
    if (g_ndelivered == g_capdelivered) {
        size_t cap = g_capdelivered ? g_capdelivered * 2 : 64;
        unsigned long long *p = realloc(g_delivered, cap * sizeof *p);
        if (!p)
            return 0;
        g_delivered = p;
        g_capdelivered = cap;
    }
    g_delivered[g_ndelivered++] = n;
    return 1;
}

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    nvmlReturn_t r = sys_begin(__func__, set == NULL, 0);
    if (r != NVML_SUCCESS)
        return leave(r);
    for (unsigned int i = 0; i < MAX_SETS; i++) {
        if (!g_sets[i].in_use) {
            unsigned int gen = g_sets[i].gen + 1;
            memset(&g_sets[i], 0, sizeof g_sets[i]);
            g_sets[i].in_use = 1;
            g_sets[i].gen = gen;
            *set = (nvmlEventSet_t)&g_sets[i];
            return leave(NVML_SUCCESS);
        }
    }
    return leave(NVML_ERROR_MEMORY);
}

EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long *eventTypes)
{
    DEV_PROLOGUE(eventTypes == NULL)
    *eventTypes = FAKE_SUPPORTED_EVENTS;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set)
{
    DEV_PROLOGUE(set == NULL)
    struct nvmlEventSet_st *s = set_lookup(set);
    if (!s)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (eventTypes & ~FAKE_SUPPORTED_EVENTS)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    s->types[idx] |= eventTypes;
    return leave(NVML_SUCCESS);
}

static nvmlReturn_t wait_impl(const char *fn, nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms)
{
    enter(0); /* not counted in FAKE_NVML_STATS */
    if (g_refcount == 0)
        return leave(NVML_ERROR_UNINITIALIZED);
    struct nvmlEventSet_st *s = set_lookup(set);
    if (data == NULL || s == NULL)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    unsigned int gen = s->gen;
    double deadline = mono_ms() + (double)timeoutms;
    for (;;) {
        if (g_st.event_wait_error != 0)
            return leave(g_st.event_wait_error);
        nvmlReturn_t r = global_checks(fn);
        if (r != NVML_SUCCESS)
            return leave(r);
        const xid_t *best = NULL;
        for (unsigned int i = 0; i < g_st.nxid; i++) {
            const xid_t *x = &g_st.xids[i];
            if (x->gpu >= g_st.gpus || !(s->types[x->gpu] & NVML_EVENT_TYPE_XID))
                continue;
            if (best && x->n >= best->n)
                continue;
            if (is_delivered(x->n))
                continue;
            best = x;
        }
        if (best) {
            if (!mark_delivered(best->n))
                return leave(NVML_ERROR_MEMORY);
            memset(data, 0, sizeof *data);
            data->device = &g_devs[best->gpu];
            data->eventType = NVML_EVENT_TYPE_XID;
            data->eventData = best->xid;
            data->gpuInstanceId = 0xFFFFFFFFu;
            data->computeInstanceId = 0xFFFFFFFFu;
            return leave(NVML_SUCCESS);
        }
        double left = deadline - mono_ms();
        if (left <= 0)
            return leave(NVML_ERROR_TIMEOUT);
        pthread_mutex_unlock(&g_mu);
        /* Polls the state file 4 times a second: a real driver blocks in the kernel until an event or the
         * timeout, so a faster poll would only add the fake's own CPU to the agent's measured cost. */
        sleep_ms(left < 250.0 ? left : 250.0);
        pthread_mutex_lock(&g_mu);
        maybe_reload();
        if (g_refcount == 0)
            return leave(NVML_ERROR_UNINITIALIZED);
        if (!s->in_use || s->gen != gen)
            return leave(NVML_ERROR_INVALID_ARGUMENT); /* freed while waiting */
    }
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms)
{
    return wait_impl(__func__, set, data, timeoutms);
}
#endif

EXPORT nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms)
{
    return wait_impl(__func__, set, data, timeoutms);
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    nvmlReturn_t r = sys_begin(__func__, 0, 0);
    if (r != NVML_SUCCESS)
        return leave(r);
    struct nvmlEventSet_st *s = set_lookup(set);
    if (!s)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    s->in_use = 0;
    return leave(NVML_SUCCESS);
}
