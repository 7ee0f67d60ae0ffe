/* cdefs for aiolab/coroutine.h.  Only the diagnostics are bound: every
 * coroutine_fn, and every function that needs a C Coroutine or CoMutex,
 * is C-only (bindings/c-only.txt): no Python frame may run on a C
 * coroutine stack.  Python's image of a coroutine_fn is an `async def`
 * task stepped by BHs (aiolab.AioContext.create_task). */
typedef struct Coroutine Coroutine;
bool qemu_in_coroutine(void);
void qemu_coroutine_inc_pool_size(unsigned int additional_pool_size);
void qemu_coroutine_dec_pool_size(unsigned int removing_pool_size);
typedef struct AiolabCoroutineInfo {
    const void *co;
    const char *state;
    const char *scheduled_by;
    const char *ctx_name;
    void *entry;
} AiolabCoroutineInfo;
size_t aiolab_coroutine_list(AiolabCoroutineInfo *out, size_t max);
void aiolab_coroutine_pool_stats(uint64_t *allocated, uint64_t *pooled);
