/*
 * fake_nvml.h - the fake NVML's internal header: NVML types, the fake state, and what its
 * files share. Not installed, not an NVML header.
 *
 * The library (see README.md in this directory: it is the contract these files implement) is
 * built from every .c file here:
 *   gcc -O2 -shared -fPIC -Wall -Wextra -Werror -Wl,-soname,libnvidia-ml.so.1 \
 *       -o build/libnvidia-ml.so.1 *.c -lm -lpthread
 *   add -DFAKE_NVML_LEGACY for the "old driver" variant without the newer exports.
 *
 * Types are declared here (nvml.h is not used); layouts are the x86_64 ones. Only the NVML
 * entry points (EXPORT) are visible outside the library: everything declared below is hidden.
 */
#ifndef FAKE_NVML_H
#define FAKE_NVML_H

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

/* GPM (GPU Performance Monitoring) */
typedef struct nvmlGpmSample_st *nvmlGpmSample_t;

#define NVML_GPM_METRIC_MAX 333
#define NVML_GPM_METRICS_GET_VERSION 1
#define NVML_GPM_SUPPORT_VERSION 1

typedef struct {
    unsigned int version;
    unsigned int isSupportedDevice;
} nvmlGpmSupport_t;

typedef struct {
    unsigned int metricId;
    nvmlReturn_t nvmlReturn;
    double value;
    struct {
        char *shortName;
        char *longName;
        char *unit;
    } metricInfo;
} nvmlGpmMetric_t;

typedef struct {
    unsigned int version;
    unsigned int numMetrics;
    nvmlGpmSample_t sample1;
    nvmlGpmSample_t sample2;
    nvmlGpmMetric_t metrics[NVML_GPM_METRIC_MAX];
} nvmlGpmMetricsGet_t;

_Static_assert(sizeof(nvmlGpmSupport_t) == 8, "nvmlGpmSupport_t size");
_Static_assert(offsetof(nvmlGpmSupport_t, isSupportedDevice) == 4, "nvmlGpmSupport_t.isSupportedDevice");
_Static_assert(sizeof(nvmlGpmMetric_t) == 40, "nvmlGpmMetric_t size");
_Static_assert(offsetof(nvmlGpmMetric_t, nvmlReturn) == 4, "nvmlGpmMetric_t.nvmlReturn");
_Static_assert(offsetof(nvmlGpmMetric_t, value) == 8, "nvmlGpmMetric_t.value");
_Static_assert(offsetof(nvmlGpmMetric_t, metricInfo) == 16, "nvmlGpmMetric_t.metricInfo");
_Static_assert(sizeof(nvmlGpmMetricsGet_t) == 13344, "nvmlGpmMetricsGet_t size");
_Static_assert(offsetof(nvmlGpmMetricsGet_t, numMetrics) == 4, "nvmlGpmMetricsGet_t.numMetrics");
_Static_assert(offsetof(nvmlGpmMetricsGet_t, sample1) == 8, "nvmlGpmMetricsGet_t.sample1");
_Static_assert(offsetof(nvmlGpmMetricsGet_t, sample2) == 16, "nvmlGpmMetricsGet_t.sample2");
_Static_assert(offsetof(nvmlGpmMetricsGet_t, metrics) == 24, "nvmlGpmMetricsGet_t.metrics");

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
#define MAX_GPM_SAMPLES 256

/* GPM metrics the fake knows (gpu_t.gpm_val index; gpm_set bit = 1 << index) */
enum {
    GPM_GRAPHICS_UTIL,  /* metric 1, %: default util_gpu */
    GPM_SM_UTIL,        /* metric 2, %: default util_gpu */
    GPM_TENSOR_UTIL,    /* metric 5 (any tensor), %: default util_gpu / 2 */
    GPM_DRAM_UTIL,      /* metric 10, %: default util_mem */
    GPM_PCIE_TX,        /* metric 20, MiB/s: default 100 * (i + 1) */
    GPM_PCIE_RX,        /* metric 21, MiB/s: default 200 * (i + 1) */
    GPM_NVLINK_RX,      /* metric 60, MiB/s: NOT_SUPPORTED unless set */
    GPM_NVLINK_TX,      /* metric 61, MiB/s: NOT_SUPPORTED unless set */
    GPM_N
};

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
    int gpm;                 /* nvmlGpmQueryDeviceSupport's isSupportedDevice */
    unsigned int gpm_set;    /* GPM values the state file set (bit per GPM_* index) */
    double gpm_val[GPM_N];
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

struct nvmlGpmSample_st {
    int in_use;
    int taken;               /* nvmlGpmSampleGet filled it */
    unsigned int gpu;
    double t_ms;             /* monotonic time of the sample */
    unsigned int supported;  /* bit per GPM_* value available */
    double val[GPM_N];
};

/* ------------------------------------------------------------------------- */
/* Shared between the files (hidden)                                          */
/* ------------------------------------------------------------------------- */

#pragma GCC visibility push(hidden)

/* core.c */
extern pthread_mutex_t g_mu; /* guards everything below */
extern state_t g_st;
extern int g_refcount;
extern unsigned long long g_calls, g_init_calls;
extern struct nvmlDevice_st g_devs[MAX_GPUS];
extern unsigned int g_gpm_live; /* GPM samples allocated and not freed */

double mono_ms(void);
void sleep_ms(double ms);
void write_stats(void);
void enter(int count);
nvmlReturn_t leave(nvmlReturn_t r);
nvmlReturn_t global_checks(const char *fn);
nvmlReturn_t gpu_checks(const char *fn, const gpu_t *g, int star_ok);
void device_delay(void);
nvmlReturn_t dev_begin(const char *fn, nvmlDevice_t d, int badarg, gpu_t **gp, unsigned int *ip);
nvmlReturn_t sys_begin(const char *fn, int badarg, int is_device_fn);
nvmlReturn_t put_str(char *buf, unsigned int len, const char *s);
unsigned int eff_util_gpu(const gpu_t *g, unsigned int i);
unsigned int eff_util_mem(const gpu_t *g, unsigned int i);
unsigned int eff_temp(const gpu_t *g, unsigned int i);
unsigned int eff_power(const gpu_t *g, unsigned int i);
unsigned int eff_clock(const gpu_t *g, unsigned int i, unsigned int type);
unsigned long long eff_energy(const gpu_t *g, unsigned int i);
int eff_gpm(const gpu_t *g, unsigned int i, unsigned int which, double *out);
long long now_us_realtime(void);

/* state_file.c */
void copy_str(char *dst, size_t cap, const char *src);
void maybe_reload(void);

#pragma GCC visibility pop

/* Standard prologue of an nvmlDevice* call: g, idx and r for the device, or an early return. */
#define DEV_PROLOGUE(badarg)                                                                       \
    gpu_t *g = NULL;                                                                               \
    unsigned int idx = 0;                                                                          \
    nvmlReturn_t r = dev_begin(__func__, device, (badarg), &g, &idx);                              \
    (void)idx;                                                                                     \
    if (r != NVML_SUCCESS)                                                                         \
        return leave(r);

#endif /* FAKE_NVML_H */
