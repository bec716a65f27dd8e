/*
 * state_file.c - the state file (FAKE_NVML_STATE): parsing, synthetic defaults, and
 * reloading it whenever it changes.
 */
#include "fake_nvml.h"

/* what the loaded state was read from: reread when any of it changes */
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

/* ------------------------------------------------------------------------- */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------- */

void copy_str(char *dst, size_t cap, const char *src)
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

/* a finite, non-negative decimal number ("37", "37.5") */
static int parse_double(const char *s, double *out)
{
    if (!((*s >= '0' && *s <= '9') || *s == '.'))
        return 0;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return 0;
    *out = v;
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
    INT("gpm", gpm)
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
    if (strncmp(f, "gpm_", 4) == 0) {
        static const char *const names[GPM_N] = {"graphics_util", "sm_util", "tensor_util", "dram_util",
                                                 "pcie_tx", "pcie_rx", "nvlink_rx", "nvlink_tx"};
        for (unsigned int k = 0; k < GPM_N; k++) {
            if (strcmp(f + 4, names[k]) != 0)
                continue;
            double d;
            if (*val == '\0')
                g->gpm_set &= ~(1u << k);
            else if (parse_double(val, &d)) {
                g->gpm_val[k] = d;
                g->gpm_set |= 1u << k;
            }
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
void maybe_reload(void)
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
