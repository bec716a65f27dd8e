/*
 * api_device.c - per-device queries: identity, utilisation and memory, temperatures,
 * power, fans, clocks, PCIe, modes and ECC, processes.
 */
#include "fake_nvml.h"

/* ------------------------------------------------------------------------- */
/* Identity                                                                  */
/* ------------------------------------------------------------------------- */

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
