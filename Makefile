# SPDX-License-Identifier: MIT
# aiolab - one non-recursive Makefile.  `make help` lists the targets.
#
# Build variants (each in its own directory):
#   make                  build/            debug checks on (the default)
#   make RELEASE=1        build/release/    checks compiled out
#   make SAN=asan         build/asan/       ASan + UBSan (gcc)
#   make SAN=tsan         build/tsan/       TSan (clang)

PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
V       ?= 0

ifeq ($(SAN),tsan)
CC      := clang
endif
CC      ?= cc

ifneq ($(SAN),)
BUILD   ?= build/$(SAN)
else ifeq ($(RELEASE),1)
BUILD   ?= build/release
else
BUILD   ?= build
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

HAVE_LIBURING := $(shell test -f /usr/include/liburing.h && echo 1)

CHECKS  := $(if $(filter 1,$(RELEASE)),0,1)
WARN    := -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
           -Wno-sign-compare -Wmissing-prototypes -Wstrict-prototypes
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden \
           -pthread -D_GNU_SOURCE -Ic/include -Ic -DAIOLAB_CHECKS=$(CHECKS) \
           -MMD -MP
LIBS    := -lpthread
ifeq ($(HAVE_LIBURING),1)
ALL_CFLAGS += -DCONFIG_LIBURING=1
LIBS    += -luring
endif

ifeq ($(SAN),asan)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
else ifeq ($(SAN),tsan)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
SANFLAGS :=
endif
ALL_CFLAGS += $(SANFLAGS)
LDFLAGS_SAN := $(SANFLAGS)
# clang links the TSan runtime into executables only: the library's
# sanitizer symbols resolve there, so it cannot be linked with -z defs.
ZDEFS := $(if $(SAN),,-Wl,-z,defs)

# --- the library -------------------------------------------------------
LIB_SRCS := $(sort $(wildcard c/util/*.c c/system/*.c c/block/*.c c/hw/*.c))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB_SO   := $(BUILD)/libaiolab.so
LIB_A    := $(BUILD)/libaiolab.a
LIB_PC   := $(BUILD)/aiolab.pc

# Coroutine switches use sigsetjmp/siglongjmp between stacks, which
# _FORTIFY_SOURCE's longjmp check would reject (QEMU undefines it too).
$(BUILD)/obj/c/util/coroutine-ucontext.o: ALL_CFLAGS += -U_FORTIFY_SOURCE

all: $(LIB_SO) $(LIB_A) $(LIB_PC) tools
.PHONY: all

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_SO): $(LIB_OBJS)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) -shared -Wl,-soname,libaiolab.so $(ZDEFS) -o $@ $^ $(LDFLAGS_SAN) $(LIBS)

$(LIB_A): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIB_PC): Makefile
	@mkdir -p $(dir $@)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: aiolab\nDescription: a working model of QEMU'"'"'s event-loop concurrency\nVersion: 0.1.0\nLibs: -L$${libdir} -laiolab\nLibs.private: %s\nCflags: -I$${includedir}\n' \
	    "$(PREFIX)" "$(LIBS)" > $@

# --- programs ----------------------------------------------------------
TOOL_SRCS := $(wildcard c/tools/*.c)
TOOLS     := $(patsubst c/tools/%.c,$(BUILD)/bin/%,$(TOOL_SRCS))
LINK_EXE   = $(CC) $(ALL_CFLAGS) -o $@ $(filter %.c %.o,$^) -L$(BUILD) -laiolab \
             -Wl,-rpath,$(abspath $(BUILD)) $(LDFLAGS_SAN) $(LIBS) -lm

tools: $(TOOLS)
.PHONY: tools

$(BUILD)/bin/%: c/tools/%.c $(LIB_SO)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(LINK_EXE)

# --- C tests -----------------------------------------------------------
TEST_SRCS := $(wildcard tests/c/test-*.c)
TESTS     := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
HARNESS   := $(BUILD)/obj/tests/c/harness.o

$(BUILD)/tests/%: tests/c/%.c $(HARNESS) $(LIB_SO)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(LINK_EXE)

c-tests: $(TESTS)
.PHONY: c-tests

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
