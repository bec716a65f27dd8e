/*
 * api_events.c - event sets and XID events.
 */
#include "fake_nvml.h"

static struct nvmlEventSet_st g_sets[MAX_SETS];
static unsigned long long *g_delivered; /* xid sequence numbers already delivered */
static size_t g_ndelivered, g_capdelivered;

__attribute__((destructor)) static void fake_nvml_dtor(void)
{
    free(g_delivered);
    g_delivered = NULL;
    g_ndelivered = g_capdelivered = 0;
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
