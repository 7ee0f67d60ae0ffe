/* SPDX-License-Identifier: MIT */
/*
 * util/coroutine-ucontext.c - the coroutine backend: stacks and switches.
 *
 * A coroutine is a stack plus a saved set of registers.  Switching from
 * one coroutine to another saves the callee-saved registers and the stack
 * pointer of the first and loads those of the second; nothing else.
 *
 * Two libc tools can do that:
 *
 *   makecontext() +       can start a function on a brand-new stack, but
 *   swapcontext()         swapcontext() saves and restores the signal mask
 *                         each time: a sigprocmask system call, about
 *                         450 ns here.
 *   sigsetjmp(env, 0) /   save and restore only registers: about 10 ns
 *   siglongjmp()          for the bare pair.  But they can only jump to a
 *                         point that some sigsetjmp() has recorded, on an
 *                         existing stack.
 *
 * So each stack is started once with makecontext() and setcontext() (the
 * one-way half of swapcontext(): we come back by a longjmp, so there is
 * no context to save, and ASan's swapcontext interceptor would print a
 * warning in every process), its first act is to record a setjmp point,
 * and every later switch is a setjmp/longjmp pair (written sigsetjmp and
 * siglongjmp below, QEMU's choice; aiolab's default build uses the
 * compiler's cheaper builtins, see co_setjmp()):
 *
 *   creator                               new stack (coroutine_trampoline)
 *   -------                               -------------------------------
 *   sigsetjmp(start.env)
 *   setcontext(&uc) --------------------> sigsetjmp(self->env)
 *                                         siglongjmp(start.env)
 *   returns the new coroutine <----------'
 *   ...
 *   qemu_coroutine_switch(from, co, ENTER):
 *   sigsetjmp(from->env)
 *   siglongjmp(co->env) ----------------> returns from the sigsetjmp above
 *                                         loop: entry(arg)
 *                                               switch(co, caller, TERMINATE)
 *
 * A terminated coroutine sits in that last switch; entering it again (it
 * was recycled by the pool) runs the next entry function on the same
 * stack without another makecontext.
 *
 * Each thread also has a "leader": a pseudo-coroutine for the thread's
 * own stack, with a jmp_buf to return to.  It is what qemu_coroutine_self()
 * returns outside any coroutine, and the caller of the coroutines the
 * thread enters from plain code.
 *
 * Sanitizers must be told about stack switches (a build with neither
 * compiles all of that out):
 *   ASan: __sanitizer_start_switch_fiber() just before a switch names the
 *         target stack; __sanitizer_finish_switch_fiber() just after it
 *         restores the fake stack (for use-after-return detection) and
 *         reports the stack we came from.  A coroutine that terminates
 *         passes NULL so that its fake stack is dropped.
 *   TSan: each coroutine is a TSan "fiber"; __tsan_switch_to_fiber(to, 0)
 *         just before a switch keeps happens-before between the code
 *         before and after it, wherever the coroutine runs next.
 *
 * Cost, measured by /perf/switch in tests/c/test-coroutine.c: a whole
 * qemu_coroutine_enter() or qemu_coroutine_yield(), bookkeeping included,
 * is about 26 ns per switch on the 2-core test machine with the builtins
 * (about 35 ns with glibc's sigsetjmp/siglongjmp; tracing off), against
 * about 250 ns for swapcontext().  Most of the difference from
 * the bare pair is the return-address predictor: after a longjmp, every
 * `ret` up the coroutine's call chain is mispredicted once.
 *
 * Where QEMU differs: QEMU's util/coroutine-ucontext.c follows the same
 * plan (it is where the idea comes from).  QEMU allocates the stack with
 * qemu_alloc_stack() and can use a shadow stack on some hosts.  aiolab
 * needs Linux and glibc (and scripts/aiolab-gdb.py decodes x86-64
 * jmp_bufs only).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "util/atomic.h"
#include "util/check.h"
#include "util/coroutine-int.h"
#include "util/mem.h"

#if defined(__SANITIZE_ADDRESS__)
#define AIOLAB_CO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AIOLAB_CO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define AIOLAB_CO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AIOLAB_CO_TSAN 1
#endif
#endif

#ifdef AIOLAB_CO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef AIOLAB_CO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/*
 * The jump itself.  By default the compiler's __builtin_setjmp and
 * __builtin_longjmp: they save only the frame pointer, the stack pointer
 * and the resume address (the compiler spills every other register around
 * the setjmp point), and cost about 9 ns per switch here.  glibc's
 * sigsetjmp(env, 0)/siglongjmp, which QEMU uses, do the same job at about
 * 29 ns per switch on this machine (siglongjmp also walks the thread's
 * cleanup handlers and goes through pointer mangling), which leaves no
 * room for the bookkeeping under the 30 ns budget of a whole switch.
 * `make CO_JMP=sigsetjmp` builds QEMU's choice for comparison, and TSan
 * builds always use it: TSan intercepts siglongjmp to unwind its shadow
 * call stack, which a __builtin_longjmp would leave growing by a frame
 * per switch until it overflows.
 *
 * The builtins carry no value (setjmp returns 0, then 1), so the action
 * travels in the destination's `action` field; and __builtin_longjmp may
 * not be called from the function that called __builtin_setjmp, hence
 * co_longjmp().
 */
#if defined(AIOLAB_CO_TSAN) && !defined(AIOLAB_CO_SIGSETJMP)
#define AIOLAB_CO_SIGSETJMP 1
#endif
#ifdef AIOLAB_CO_SIGSETJMP
typedef sigjmp_buf CoJmpBuf;
#define co_setjmp(buf) sigsetjmp((buf), 0)
static void __attribute__((noreturn)) co_longjmp(CoJmpBuf *buf)
{
    siglongjmp(*buf, 1);
}
#else
typedef void *CoJmpBuf[5];
#define co_setjmp(buf) __builtin_setjmp(buf)
static void __attribute__((noinline, noreturn)) co_longjmp(CoJmpBuf *buf)
{
    __builtin_longjmp(*buf, 1);
}
#endif

/* What the creator leaves for a new stack's first run (on its own stack). */
typedef struct CoroutineStart {
    CoJmpBuf env;               /* where the trampoline jumps back to */
    void *creator_fiber;        /* TSan: the creator's fiber */
} CoroutineStart;

/*
 * The backend's coroutine.  `base` comes first, so the gdb script (and
 * co_upcast) can go from a Coroutine * to this.
 */
typedef struct CoroutineUContext {
    Coroutine base;
    CoJmpBuf env;               /* registers saved when it switched out */
    CoroutineAction action;     /* why we were switched to (set by the
                                 * jumper just before the jump) */
    void *stack;                /* lowest usable byte (the guard is below) */
    size_t stack_size;          /* without the guard page */
    CoroutineStart *start;      /* only during qemu_coroutine_new() */
    void *asan_fake_stack;      /* ASan: saved while switched out */
    void *tsan_fiber;           /* TSan: this coroutine's fiber */
} CoroutineUContext;

/*
 * Thread-local state, reached only through the accessors below.
 *
 * A coroutine may yield on one thread and be resumed on another (by
 * aio_co_schedule()).  If a function computed the address of a __thread
 * variable before a switch and reused it after, it would touch the old
 * thread's copy.  Compilers do cache TLS addresses (glibc's
 * __tls_get_addr is declared const), so every access goes through a
 * noinline function whose compiler barrier makes it opaque: each call
 * computes the address on the thread that runs it.  QEMU does the same
 * with QEMU_DEFINE_STATIC_CO_TLS.  Cost: a call, a few ns.
 *
 * tls_current is read on every enter and yield.  The initial-exec model
 * makes that one %fs-relative load instead of a __tls_get_addr() call
 * (about 10% of a switch).  It takes 8 bytes of glibc's static TLS
 * surplus, which is there for exactly this when a library is dlopen()ed
 * (as by the Python bindings).  The leader is looked up only on a
 * thread's first qemu_coroutine_self() and by the ASan hooks, so it keeps
 * the default model.
 */
static __thread Coroutine *tls_current
    __attribute__((tls_model("initial-exec")));
static __thread CoroutineUContext tls_leader;

static __attribute__((noinline)) Coroutine *co_get_current(void)
{
    barrier();
    return tls_current;
}

static __attribute__((noinline)) void co_set_current(Coroutine *co)
{
    barrier();
    tls_current = co;
}

static __attribute__((noinline)) CoroutineUContext *co_get_leader(void)
{
    CoroutineUContext *leader = &tls_leader;

    /*
     * The empty asm makes the returned address opaque: without it, clang
     * (before LLVM 16, where a TLS variable's address is a constant)
     * propagates "returns &tls_leader" into the callers and may compute
     * the address there once, before a switch that moves the coroutine to
     * another thread.
     */
    asm("" : "+r"(leader));
    return leader;
}

static inline CoroutineUContext *co_upcast(Coroutine *co)
{
    return container_of(co, CoroutineUContext, base);
}

/* makecontext() passes int arguments only: a pointer travels as two. */
typedef union {
    void *p;
    int i[2];
} PtrInts;

_Static_assert(sizeof(void *) <= sizeof(int[2]), "pointer fits two ints");

/* --- sanitizer hooks (empty without a sanitizer) ----------------------
 *
 * always_inline matters: TSan instruments every function with an entry
 * and an exit event on the *current* fiber's shadow stack.  A helper
 * that called __tsan_switch_to_fiber() would record its entry on one
 * fiber and its exit on the other, corrupting both.
 */
#define SAN_INLINE static inline __attribute__((always_inline))

/* Just before leaving @from for @to. */
SAN_INLINE void san_switch_begin(CoroutineUContext *from,
                                 CoroutineUContext *to,
                                 CoroutineAction action)
{
#ifdef AIOLAB_CO_ASAN
    void **save = &from->asan_fake_stack;

    if (action == COROUTINE_TERMINATE) {
        /* Never resumed where it is now: let ASan free its fake stack. */
        from->asan_fake_stack = NULL;
        save = NULL;
    }
    __sanitizer_start_switch_fiber(save, to->stack, to->stack_size);
#endif
#ifdef AIOLAB_CO_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);   /* 0: synchronise */
#endif
}

/*
 * Just after @self was switched back in.
 *
 * ASan: the first switch in a thread always leaves the thread's own
 * stack, so the first finish reports the leader's stack, which later
 * switches back to the leader must name.  It is stored straight into the
 * (thread-local) leader: with detect_stack_use_after_return, a local
 * here would live in this frame's fake stack, which is gone by the time
 * a terminated coroutine is recycled and resumes in this function.
 */
SAN_INLINE void san_switch_end(CoroutineUContext *self)
{
#ifdef AIOLAB_CO_ASAN
    CoroutineUContext *leader = co_get_leader();
    void *fake_stack = self->asan_fake_stack;

    self->asan_fake_stack = NULL;
    if (leader->stack) {
        __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
    } else {
        __sanitizer_finish_switch_fiber(fake_stack,
                                        (const void **)&leader->stack,
                                        &leader->stack_size);
    }
#endif
}

/* --- stacks ------------------------------------------------------------ */

/*
 *   map                      stack                          stack + size
 *   | guard page (PROT_NONE) | usable, grows down <--------- |
 *
 * An overflow faults on the guard page instead of corrupting whatever
 * lies below.  MAP_NORESERVE: a 1 MiB stack costs only the pages it
 * touches, and is not charged against strict overcommit.
 */
static void co_stack_alloc(CoroutineUContext *co)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = COROUTINE_STACK_SIZE + page;
    char *map;

    map = mmap(NULL, len, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
               -1, 0);
    if (map == MAP_FAILED) {
        aiolab_die(__func__, "cannot map a coroutine stack: %s",
                   strerror(errno));
    }
    if (mprotect(map, page, PROT_NONE) < 0) {
        aiolab_die(__func__, "cannot protect the guard page: %s",
                   strerror(errno));
    }
    co->stack = map + page;
    co->stack_size = COROUTINE_STACK_SIZE;
#ifdef AIOLAB_CO_ASAN
    /* The range may have held a thread's stack with poisoned redzones
     * (ASan's swapcontext interceptor would clear them too). */
    ASAN_UNPOISON_MEMORY_REGION(co->stack, co->stack_size);
#endif
}

static void co_stack_free(CoroutineUContext *co)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

#ifdef AIOLAB_CO_ASAN
    /* Frames left on the stack keep poisoned redzones in the shadow; a
     * later mapping at the same address must not inherit them. */
    ASAN_UNPOISON_MEMORY_REGION(co->stack, co->stack_size);
#endif
    munmap((char *)co->stack - page, co->stack_size + page);
}

/* --- the new stack's first function ----------------------------------- */

static void coroutine_trampoline(int i0, int i1)
{
    PtrInts arg = { .i = { i0, i1 } };
    CoroutineUContext *self = arg.p;
    Coroutine *co = &self->base;
#ifdef AIOLAB_CO_ASAN
    CoroutineUContext *leader = co_get_leader();
    const void *creator_bottom;
    size_t creator_size;

    /* Arrived by setcontext() from the creator: a fresh fiber, no fake
     * stack yet (this frame is on the real stack: ASan allocates none
     * while a switch is in progress). */
    __sanitizer_finish_switch_fiber(NULL, &creator_bottom, &creator_size);
    if (!leader->stack) {
        leader->stack = (void *)creator_bottom;     /* see san_switch_end */
        leader->stack_size = creator_size;
    }
#endif

    /* Record where the first enter will land, and go back at once. */
    if (!co_setjmp(self->env)) {
        CoroutineStart *start = self->start;

#ifdef AIOLAB_CO_ASAN
        __sanitizer_start_switch_fiber(&self->asan_fake_stack,
                                       creator_bottom, creator_size);
#endif
#ifdef AIOLAB_CO_TSAN
        __tsan_switch_to_fiber(start->creator_fiber, 0);
#endif
        co_longjmp(&start->env);
    }

    /* First enter, by qemu_coroutine_switch(from, co, COROUTINE_ENTER). */
    san_switch_end(self);
    for (;;) {
        co->entry(co->entry_arg);
        /* Back to the enterer for good (until the pool recycles us, and
         * a later enter returns from this call to run the next entry). */
        qemu_coroutine_switch(co, co->caller, COROUTINE_TERMINATE);
    }
}

/* --- the backend interface (coroutine-int.h) -------------------------- */

/*
 * qemu_coroutine_new: allocate a coroutine and start its stack.  Costs
 * two mmap-family calls and a setcontext: several microseconds, which
 * is why qemu-coroutine.c keeps terminated coroutines in a pool.
 */
Coroutine *qemu_coroutine_new(void)
{
    CoroutineUContext *creator = co_upcast(qemu_coroutine_self());
    CoroutineUContext *co;
    CoroutineStart start;
    ucontext_t uc;
    PtrInts arg;

    co = aiolab_xcalloc(1, sizeof(*co));
    co_stack_alloc(co);

    if (getcontext(&uc) < 0) {
        aiolab_die(__func__, "getcontext: %s", strerror(errno));
    }
    uc.uc_link = NULL;          /* the trampoline never returns */
    uc.uc_stack.ss_sp = co->stack;
    uc.uc_stack.ss_size = co->stack_size;
    uc.uc_stack.ss_flags = 0;
    arg.p = co;
    makecontext(&uc, (void (*)(void))coroutine_trampoline, 2,
                arg.i[0], arg.i[1]);

#ifdef AIOLAB_CO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
    start.creator_fiber = __tsan_get_current_fiber();
#else
    start.creator_fiber = NULL;
#endif
    co->start = &start;

    /* In by setcontext(), out by siglongjmp() (see the diagram above). */
    if (!co_setjmp(start.env)) {
#ifdef AIOLAB_CO_ASAN
        __sanitizer_start_switch_fiber(&creator->asan_fake_stack,
                                       co->stack, co->stack_size);
#endif
#ifdef AIOLAB_CO_TSAN
        __tsan_switch_to_fiber(co->tsan_fiber, 0);
#endif
        setcontext(&uc);
    }
    san_switch_end(creator);
    co->start = NULL;
    return &co->base;
}

/* qemu_coroutine_delete: free a coroutine that is not running. */
void qemu_coroutine_delete(Coroutine *co_)
{
    CoroutineUContext *co = co_upcast(co_);

#ifdef AIOLAB_CO_TSAN
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    co_stack_free(co);
    free(co);
}

/*
 * qemu_coroutine_switch: leave @from_ (the running coroutine) for @to_.
 * Returns in @from_ when someone switches back to it, with their action.
 *
 * After the siglongjmp this function may continue on another thread
 * (a yielded coroutine is resumed wherever it was scheduled): the only
 * thread-local state touched after it goes through the accessors.
 */
CoroutineAction qemu_coroutine_switch(Coroutine *from_, Coroutine *to_,
                                      CoroutineAction action)
{
    CoroutineUContext *from = co_upcast(from_);
    CoroutineUContext *to = co_upcast(to_);
    int ret;

    co_set_current(to_);
    to->action = action;
    if (!co_setjmp(from->env)) {
        san_switch_begin(from, to, action);
        co_longjmp(&to->env);
    }
    san_switch_end(from);
    ret = from->action;
    return (CoroutineAction)ret;
}

/*
 * The current coroutine lives here, with the leader, because the switch
 * above maintains it.  (QEMU keeps them in its backend files too.)
 */

Coroutine *qemu_coroutine_self(void)
{
    Coroutine *self = co_get_current();

    if (unlikely(!self)) {
        CoroutineUContext *leader = co_get_leader();

        /* First call in this thread: we are on the thread's own stack. */
        QSIMPLEQ_INIT(&leader->base.co_queue_wakeup);
#ifdef AIOLAB_CO_TSAN
        leader->tsan_fiber = __tsan_get_current_fiber();
#endif
        self = &leader->base;
        co_set_current(self);
    }
    return self;
}

bool qemu_in_coroutine(void)
{
    Coroutine *self = co_get_current();

    /* The leader never has a caller; a running coroutine always has. */
    return self && qatomic_read(&self->caller) != NULL;
}
