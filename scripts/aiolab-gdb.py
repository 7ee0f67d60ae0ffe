# SPDX-License-Identifier: MIT
"""aiolab-gdb.py - gdb commands for looking at aiolab's coroutines.

A yielded coroutine is not on any thread's stack, so `thread apply all bt`
never shows it.  These commands find every coroutine and unwind a yielded
one from the registers it saved when it switched out.

Load it (Debian's gdb 13, x86-64 only):

    gdb -x scripts/aiolab-gdb.py --args build/tests/test-coroutine ...
    (or `source scripts/aiolab-gdb.py` at the gdb prompt)

Commands (the program must be running or stopped, not a core file for
`aiolab bt`):

    aiolab coroutines       every allocated coroutine: address, state
                            (running, yielded, scheduled by <func>,
                            pooled), entry function, context name
    aiolab bt <coroutine>   backtrace of a yielded coroutine; <coroutine>
                            is any expression giving a Coroutine *, e.g.
                            an address printed by `aiolab coroutines`

How `aiolab bt` works: a coroutine that switched out saved its registers
in its CoroutineUContext.env (c/util/coroutine-ucontext.c).  The script
loads them into the selected thread for a moment, runs `bt`, and puts the
thread's real registers back.  This is the trick of QEMU's
scripts/qemugdb/coroutine.py; the code here is aiolab's own.  Two layouts:

  - the default build switches with __builtin_setjmp: env is five words,
    the frame pointer, the resume address and the stack pointer first
    (the compiler keeps every other register in the frame);
  - `make CO_JMP=sigsetjmp` uses glibc's sigsetjmp: on x86-64 it stores
    rbx, rbp, r12-r15, rsp and the return address, and "mangles" rbp, rsp
    and rip (PTR_MANGLE): xor with the thread's pointer guard (at
    %fs_base + 0x30), then rotate left by 0x11 bits.  The script undoes
    that (rotate right, then xor).

The coroutine registry is the list `aiolab_coroutine_registry` in
c/util/qemu-coroutine.c, linked through Coroutine.all_next.
"""

import gdb

MASK64 = (1 << 64) - 1

# Offsets into glibc's x86-64 __jmp_buf (sysdeps/x86_64/jmpbuf-offsets.h).
JB_REGS = (("rbx", 0, False), ("rbp", 1, True), ("r12", 2, False),
           ("r13", 3, False), ("r14", 4, False), ("r15", 5, False),
           ("rsp", 6, True), ("rip", 7, True))


def _ror64(value, bits):
    return ((value >> bits) | (value << (64 - bits))) & MASK64


def pointer_guard():
    """The pointer guard of the selected thread (all threads share it)."""
    fs_base = int(gdb.parse_and_eval("$fs_base")) & MASK64
    guard = gdb.parse_and_eval("*(unsigned long *)%d" % (fs_base + 0x30))
    return int(guard) & MASK64


def demangle(value, guard):
    """Undo glibc's PTR_MANGLE: it was rol(value ^ guard, 0x11)."""
    return _ror64(value & MASK64, 0x11) ^ guard


def registry():
    """Every allocated coroutine, newest first."""
    sym = gdb.lookup_static_symbol("aiolab_coroutine_registry")
    if sym is None:
        raise gdb.GdbError("no aiolab_coroutine_registry: is libaiolab "
                           "loaded, with debug information?")
    co = sym.value()
    while int(co) != 0:
        yield co
        co = co["all_next"]


def _string(value):
    if int(value) == 0:
        return None
    try:
        return value.string()
    except gdb.error:
        return "?"


def co_state(co):
    if bool(co["pooled"]):
        return "pooled"
    scheduled = _string(co["scheduled"])
    if scheduled:
        return "scheduled by %s" % scheduled
    if int(co["caller"]) != 0:
        return "running"
    return "yielded"


def co_entry_name(co):
    entry = int(co["entry"])
    if entry == 0:
        return "-"
    block = gdb.block_for_pc(entry)
    if block is not None and block.function is not None:
        return block.function.print_name
    return "0x%x" % entry


def co_ctx_name(co):
    ctx = co["ctx"]
    if int(ctx) == 0:
        return "-"
    try:
        return _string(ctx.dereference()["name"]) or "-"
    except gdb.error:
        return "0x%x" % int(ctx)


def saved_registers(co):
    """The registers @co saved when it last switched out."""
    uctx_type = gdb.lookup_type("CoroutineUContext").pointer()
    env = co.cast(uctx_type).dereference()["env"]
    if env.type.strip_typedefs().target().code == gdb.TYPE_CODE_PTR:
        # __builtin_setjmp: [0] frame pointer, [1] resume address, [2] sp.
        return {"rbp": int(env[0]) & MASK64, "rip": int(env[1]) & MASK64,
                "rsp": int(env[2]) & MASK64}
    env = env[0]["__jmpbuf"]
    guard = pointer_guard()
    regs = {}
    for name, index, mangled in JB_REGS:
        value = int(env[index]) & MASK64
        regs[name] = demangle(value, guard) if mangled else value
    return regs


def _set_registers(regs):
    # A register written in an outer frame would land in that frame's
    # save slot: always write the innermost frame's.
    for name, value in regs.items():
        gdb.newest_frame().select()
        gdb.execute("set $%s = %d" % (name, value), to_string=True)


def backtrace_with_registers(regs):
    """Run `bt` as if the selected thread had @regs, then restore."""
    frame = gdb.selected_frame()
    gdb.newest_frame().select()
    saved = {name: int(gdb.parse_and_eval("(unsigned long)$" + name))
             & MASK64 for name in regs}
    try:
        _set_registers(regs)
        gdb.execute("bt")
    finally:
        _set_registers(saved)
        try:
            frame.select()
        except gdb.error:
            pass


class AiolabCommand(gdb.Command):
    """aiolab: commands for aiolab's coroutines (see `help aiolab`)."""

    def __init__(self):
        super().__init__("aiolab", gdb.COMMAND_USER, prefix=True)


class AiolabCoroutinesCommand(gdb.Command):
    """aiolab coroutines: list every allocated coroutine and its state."""

    def __init__(self):
        super().__init__("aiolab coroutines", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        n = 0
        print("%-18s  %-28s  %-32s  %s" % ("coroutine", "state", "entry",
                                          "context"))
        for co in registry():
            print("0x%-16x  %-28s  %-32s  %s" % (int(co), co_state(co),
                                               co_entry_name(co),
                                               co_ctx_name(co)))
            n += 1
        print("%d coroutine(s)" % n)


class AiolabBtCommand(gdb.Command):
    """aiolab bt COROUTINE: backtrace of a yielded coroutine.

COROUTINE is an expression giving a Coroutine * (an address from
`aiolab coroutines`, a variable...)."""

    def __init__(self):
        super().__init__("aiolab bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        if not arg:
            raise gdb.GdbError("usage: aiolab bt <Coroutine *>")
        co_type = gdb.lookup_type("Coroutine").pointer()
        co = gdb.parse_and_eval(arg).cast(co_type)
        if int(co["caller"]) != 0:
            print("coroutine 0x%x is running: its frames are on a thread's "
                  "stack (try `thread apply all bt`)" % int(co))
            return
        if bool(co["pooled"]):
            print("coroutine 0x%x is pooled (terminated); its stack holds "
                  "only the trampoline:" % int(co))
        backtrace_with_registers(saved_registers(co))


AiolabCommand()
AiolabCoroutinesCommand()
AiolabBtCommand()
