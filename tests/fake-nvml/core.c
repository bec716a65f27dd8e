/*
 * core.c - the fake's shared state, call bookkeeping (counting, error injection, the
 * wedged-driver delay) and the effective, possibly animated, readings.
 */
#include "fake_nvml.h"

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
state_t g_st;
int g_refcount;
unsigned long long g_calls, g_init_calls;
struct nvmlDevice_st g_devs[MAX_GPUS];
unsigned int g_gpm_live;
static energy_t g_energy[MAX_GPUS];
static struct timespec g_t0;

__attribute__((constructor)) static void fake_nvml_ctor(void)
{
    clock_gettime(CLOCK_MONOTONIC, &g_t0);
    for (unsigned i = 0; i < MAX_GPUS; i++) {
        g_devs[i].magic = 0x4e564d4cu;
        g_devs[i].index = i;
    }
}

static double secs_since_load(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - g_t0.tv_sec) + (double)(now.tv_nsec - g_t0.tv_nsec) / 1e9;
}

double mono_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

void sleep_ms(double ms)
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
/* Call bookkeeping                                                          */
/* ------------------------------------------------------------------------- */

void write_stats(void)
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
    fprintf(f, "calls=%llu\ninit_calls=%llu\ngpm_samples=%u\n", g_calls, g_init_calls, g_gpm_live);
    if (fclose(f) != 0) {
        unlink(tmp);
        return;
    }
    if (rename(tmp, p) != 0)
        unlink(tmp);
}

/* count the call (not for nvmlEventSetWait*), reload state; returns with g_mu held */
void enter(int count)
{
    pthread_mutex_lock(&g_mu);
    if (count) {
        g_calls++;
        write_stats();
    }
    maybe_reload();
}

nvmlReturn_t leave(nvmlReturn_t r)
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
nvmlReturn_t global_checks(const char *fn)
{
    int e = err_lookup(g_st.errs, g_st.nerr, fn);
    if (e)
        return e;
    if (list_matches(g_st.unsupported, fn, 0))
        return NVML_ERROR_NOT_SUPPORTED;
    return NVML_SUCCESS;
}

nvmlReturn_t gpu_checks(const char *fn, const gpu_t *g, int star_ok)
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
void device_delay(void)
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
nvmlReturn_t dev_begin(const char *fn, nvmlDevice_t d, int badarg, gpu_t **gp, unsigned int *ip)
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

nvmlReturn_t sys_begin(const char *fn, int badarg, int is_device_fn)
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

nvmlReturn_t put_str(char *buf, unsigned int len, const char *s)
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

unsigned int eff_util_gpu(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_UTIL_GPU) || !animate())
        return g->util_gpu;
    return clamp_u(50.0 + 40.0 * wave(30.0, i, 0.0));
}

unsigned int eff_util_mem(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_UTIL_MEM) || !animate())
        return g->util_mem;
    return clamp_u(30.0 + 20.0 * wave(30.0, i, -0.2));
}

unsigned int eff_temp(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_TEMP) || !animate())
        return g->temp;
    return clamp_u(55.0 + 15.0 * wave(30.0, i, -0.5));
}

unsigned int eff_power(const gpu_t *g, unsigned int i)
{
    if ((g->set & S_POWER) || !animate())
        return g->power_mw;
    /* proportional to utilisation: 80 W idle .. 450 W at 100 % */
    return 80000u + 3700u * eff_util_gpu(g, i);
}

unsigned int eff_clock(const gpu_t *g, unsigned int i, unsigned int type)
{
    static const unsigned int bits[4] = {S_CLK_GR, S_CLK_SM, S_CLK_MEM, S_CLK_VID};
    if (type == 2 || (g->set & bits[type]) || !animate())
        return g->clk[type];
    unsigned int u = eff_util_gpu(g, i);
    if (type == 3)
        return 800u + 12u * u;
    return 1000u + 17u * u;
}

unsigned long long eff_energy(const gpu_t *g, unsigned int i)
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

long long now_us_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* a GPM value as the state file set it or derived from the other readings; 0 when NVML would say NOT_SUPPORTED */
int eff_gpm(const gpu_t *g, unsigned int i, unsigned int which, double *out)
{
    if (which >= GPM_N)
        return 0;
    if (g->gpm_set & (1u << which)) {
        *out = g->gpm_val[which];
        return 1;
    }
    switch (which) {
    case GPM_GRAPHICS_UTIL:
    case GPM_SM_UTIL: *out = (double)eff_util_gpu(g, i); return 1;
    case GPM_TENSOR_UTIL: *out = (double)eff_util_gpu(g, i) / 2.0; return 1;
    case GPM_DRAM_UTIL: *out = (double)eff_util_mem(g, i); return 1;
    case GPM_PCIE_TX: *out = 100.0 * (double)(i + 1); return 1;
    case GPM_PCIE_RX: *out = 200.0 * (double)(i + 1); return 1;
    default: return 0; /* NVLink: only where the state file sets it */
    }
}
