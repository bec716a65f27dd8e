/*
 * api_system.c - init, shutdown and error strings, system queries, device enumeration.
 */
#include "fake_nvml.h"

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
