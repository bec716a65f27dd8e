/*
 * api_gpm.c - GPM (GPU Performance Monitoring, Hopper and newer): device support, samples
 * and the metrics between two samples. Not in the legacy variant (older drivers lack GPM).
 */
#include "fake_nvml.h"

#ifndef FAKE_NVML_LEGACY

static struct nvmlGpmSample_st g_samples[MAX_GPM_SAMPLES];

static struct nvmlGpmSample_st *sample_of(nvmlGpmSample_t s)
{
    uintptr_t p = (uintptr_t)s;
    uintptr_t b = (uintptr_t)&g_samples[0];
    if (p < b || p >= b + sizeof g_samples || (p - b) % sizeof g_samples[0] != 0)
        return NULL;
    struct nvmlGpmSample_st *sample = &g_samples[(p - b) / sizeof g_samples[0]];
    return sample->in_use ? sample : NULL;
}

EXPORT nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t device, nvmlGpmSupport_t *gpmSupport)
{
    DEV_PROLOGUE(gpmSupport == NULL)
    if (gpmSupport->version != NVML_GPM_SUPPORT_VERSION)
        return leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    gpmSupport->isSupportedDevice = g->gpm ? 1u : 0u;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *gpmSample)
{
    nvmlReturn_t r = sys_begin(__func__, gpmSample == NULL, 0);
    if (r != NVML_SUCCESS)
        return leave(r);
    for (unsigned int k = 0; k < MAX_GPM_SAMPLES; k++) {
        if (!g_samples[k].in_use) {
            memset(&g_samples[k], 0, sizeof g_samples[k]);
            g_samples[k].in_use = 1;
            *gpmSample = &g_samples[k];
            g_gpm_live++;
            write_stats();
            return leave(NVML_SUCCESS);
        }
    }
    return leave(NVML_ERROR_MEMORY);
}

EXPORT nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t gpmSample)
{
    nvmlReturn_t r = sys_begin(__func__, 0, 0);
    if (r != NVML_SUCCESS)
        return leave(r);
    struct nvmlGpmSample_st *sample = sample_of(gpmSample);
    if (sample == NULL)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    sample->in_use = 0;
    g_gpm_live--;
    write_stats();
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t device, nvmlGpmSample_t gpmSample)
{
    DEV_PROLOGUE(0)
    struct nvmlGpmSample_st *sample = sample_of(gpmSample);
    if (sample == NULL)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (!g->gpm)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    sample->taken = 1;
    sample->gpu = idx;
    sample->t_ms = mono_ms();
    sample->supported = 0;
    for (unsigned int k = 0; k < GPM_N; k++) {
        sample->val[k] = 0;
        if (eff_gpm(g, idx, k, &sample->val[k]))
            sample->supported |= 1u << k;
    }
    return leave(NVML_SUCCESS);
}

static const struct {
    unsigned int id;
    int which;
    char *shortName, *longName, *unit;
} k_metrics[] = {
    {1, GPM_GRAPHICS_UTIL, "gr_util", "graphics utilization", "%"},
    {2, GPM_SM_UTIL, "sm_util", "SM utilization", "%"},
    {5, GPM_TENSOR_UTIL, "any_tensor_util", "any tensor utilization", "%"},
    {10, GPM_DRAM_UTIL, "dram_bw_util", "DRAM bandwidth utilization", "%"},
    {20, GPM_PCIE_TX, "pcie_tx", "PCIe TX", "MiB/sec"},
    {21, GPM_PCIE_RX, "pcie_rx", "PCIe RX", "MiB/sec"},
    {60, GPM_NVLINK_RX, "nvlink_total_rx", "NVLink total RX", "MiB/sec"},
    {61, GPM_NVLINK_TX, "nvlink_total_tx", "NVLink total TX", "MiB/sec"},
};

/* Every value is the mean of the two samples' readings (constant readings give exactly themselves). */
EXPORT nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *metricsGet)
{
    enter(1);
    if (g_refcount == 0)
        return leave(NVML_ERROR_UNINITIALIZED);
    if (metricsGet == NULL)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (metricsGet->version != NVML_GPM_METRICS_GET_VERSION)
        return leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    struct nvmlGpmSample_st *s1 = sample_of(metricsGet->sample1);
    struct nvmlGpmSample_st *s2 = sample_of(metricsGet->sample2);
    if (metricsGet->numMetrics > NVML_GPM_METRIC_MAX || s1 == NULL || s2 == NULL || !s1->taken || !s2->taken ||
        s1->gpu != s2->gpu || s2->t_ms <= s1->t_ms)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    nvmlReturn_t r = global_checks(__func__);
    if (r == NVML_SUCCESS && s2->gpu < g_st.gpus)
        r = gpu_checks(__func__, &g_st.gpu[s2->gpu], 0);
    if (r != NVML_SUCCESS)
        return leave(r);
    for (unsigned int m = 0; m < metricsGet->numMetrics; m++) {
        nvmlGpmMetric_t *out = &metricsGet->metrics[m];
        out->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        out->value = 0;
        out->metricInfo.shortName = out->metricInfo.longName = out->metricInfo.unit = NULL;
        for (size_t k = 0; k < sizeof k_metrics / sizeof k_metrics[0]; k++) {
            unsigned int bit = 1u << k_metrics[k].which;
            if (k_metrics[k].id != out->metricId)
                continue;
            out->metricInfo.shortName = k_metrics[k].shortName;
            out->metricInfo.longName = k_metrics[k].longName;
            out->metricInfo.unit = k_metrics[k].unit;
            if ((s1->supported & bit) && (s2->supported & bit)) {
                out->value = (s1->val[k_metrics[k].which] + s2->val[k_metrics[k].which]) / 2.0;
                out->nvmlReturn = NVML_SUCCESS;
            }
        }
    }
    return leave(NVML_SUCCESS);
}

#endif /* FAKE_NVML_LEGACY */
