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
LIB_SRCS := $(sort $(wildcard c/util/*.c c/system/*.c c/block/*.c c/hw/*.c \
                               c/export/*.c))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB_SO   := $(BUILD)/libaiolab.so
LIB_A    := $(BUILD)/libaiolab.a
LIB_PC   := $(BUILD)/aiolab.pc

# Coroutine switches jump between stacks, which _FORTIFY_SOURCE's longjmp
# check would reject (QEMU undefines it too).  CO_JMP=sigsetjmp switches
# with glibc's sigsetjmp/siglongjmp as QEMU does (default: the compiler's
# __builtin_setjmp/longjmp; see c/util/coroutine-ucontext.c).
$(BUILD)/obj/c/util/coroutine-ucontext.o: ALL_CFLAGS += -U_FORTIFY_SOURCE \
    $(if $(filter sigsetjmp,$(CO_JMP)),-DAIOLAB_CO_SIGSETJMP)

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

# --- Python extension modules (default build only, built in place) -----
PY_EXT  := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))" 2>/dev/null)
PY_INC  := $(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_paths()['include'])" 2>/dev/null)
PYPKG   := bindings/python/aiolab
CDEFS   := $(wildcard bindings/cffi/cdefs/*.h)
CFFI_MOD := $(PYPKG)/_aiolab_cffi$(PY_EXT)
SWIG_MOD := $(PYPKG)/_aiolab_swig$(PY_EXT)
ifeq ($(BUILD)$(PY_EXT),build$(PY_EXT))
ifneq ($(PY_EXT),)
PY_MODULES := $(CFFI_MOD) $(SWIG_MOD)
endif
endif

$(CFFI_MOD): bindings/cffi/build.py $(CDEFS) $(LIB_SO)
	$(Q)$(PYTHON) bindings/cffi/build.py --build $(BUILD) --out $(PYPKG)

# -threads: every call releases the GIL (callbacks from IOThreads take it).
$(SWIG_MOD): bindings/swig/aiolab.i bindings/swig/hw.i $(CDEFS) $(LIB_SO)
	@mkdir -p $(BUILD)/swig
	@$(if $(Q),echo "  SWIG    $@")
	$(Q)swig -python -threads -w451 -Ic/include -o $(BUILD)/swig/aiolab_swig_wrap.c -outdir $(PYPKG) $<
	$(Q)$(CC) -shared -fPIC -O2 -g -std=gnu11 -Wno-unused-parameter -Ic/include -I$(PY_INC) \
	    $(BUILD)/swig/aiolab_swig_wrap.c -L$(BUILD) -laiolab -Wl,-rpath,$(abspath $(BUILD)) -o $@

python: $(PY_MODULES)
.PHONY: python
all: $(PY_MODULES)

# --- programs ----------------------------------------------------------
# Every c/tools/aiolab-NAME.c is a program.  It links its own helpers,
# c/tools/PREFIX-*.c with PREFIX = TOOL_PREFIX_aiolab-NAME or else NAME
# (vm-*.c for aiolab-vm, img-*.c for aiolab-img, sd-*.c for
# aiolab-storage-daemon), and the QMP monitor (c/monitor/, the one user of
# a JSON library: jansson); never the library.
TOOL_SRCS := $(wildcard c/tools/aiolab-*.c)
TOOLS     := $(patsubst c/tools/%.c,$(BUILD)/bin/%,$(TOOL_SRCS))
TOOL_PREFIX_aiolab-storage-daemon := sd
# ... and the shared files TOOL_SHARED_aiolab-NAME names (c/tools/opts.c:
# the command-line pieces of aiolab-vm and aiolab-storage-daemon;
# tool-main.c: their main()s' signal handling and IOThread shutdown).
TOOL_SHARED_aiolab-vm := opts tool-main
TOOL_SHARED_aiolab-storage-daemon := opts tool-main
tool_prefix = $(or $(TOOL_PREFIX_$(1)),$(patsubst aiolab-%,%,$(1)))
tool_objs = $(patsubst %.c,$(BUILD)/obj/%.o,\
                $(wildcard c/tools/$(call tool_prefix,$(1))-*.c) \
                $(foreach s,$(TOOL_SHARED_$(1)),c/tools/$(s).c))
MONITOR_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard c/monitor/*.c))
TOOL_LIBS := -ljansson
LINK_EXE   = $(CC) $(ALL_CFLAGS) -o $@ $(filter %.c %.o,$^) -L$(BUILD) -laiolab \
             -Wl,-rpath,$(abspath $(BUILD)) $(LDFLAGS_SAN) $(LIBS) -lm

tools: $(TOOLS)
.PHONY: tools

.SECONDEXPANSION:
$(BUILD)/bin/%: c/tools/%.c $$(call tool_objs,$$*) $(MONITOR_OBJS) $(LIB_SO)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(LINK_EXE) $(TOOL_LIBS)

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

# --- project targets -----------------------------------------------------
# The sanitizer and release variants are this same Makefile run again with
# SAN= or RELEASE=, building into their own directories.

SUBMAKE := $(MAKE) --no-print-directory

help:
	@echo "aiolab - a working model of QEMU's event-loop concurrency"
	@echo
	@echo "  make              build build/libaiolab.{so,a}, aiolab.pc, tools"
	@echo "  make demo         the main job: the toy VM, main loop vs IOThread, a mirror"
	@echo "  make test         every test (installs missing Debian packages)"
	@echo "  make stress       long stress runs (AIOLAB_TEST_SCALE=20)"
	@echo "  make bench        benchmarks beside their peers -> build/bench/"
	@echo "  make fuzz         libFuzzer targets for FUZZ_TIME s (default 300)"
	@echo "  make lint         clang-format check of the C lines changed since"
	@echo "                    LINT_BASE (default HEAD); lint-all: whole tree"
	@echo "  make student      build/student/: the tutorial without solutions"
	@echo "  make notebook     Jupyter on notebooks/ (127.0.0.1; prints the URL)"
	@echo "  make install      PREFIX=$(PREFIX): headers, libraries, aiolab.pc"
	@echo "  make deps         build tier of Debian packages (also deps-test,"
	@echo "                    deps-clients)"
	@echo "  make clean"
	@echo
	@echo "Variables: V=1 (show commands), RELEASE=1 (no threading checks),"
	@echo "SAN=asan|tsan, PREFIX=..., PYTHON=$(PYTHON)"
.PHONY: help

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-clients:
	@scripts/deps.sh clients
.PHONY: deps deps-test deps-clients

# Everything the test run needs, in every variant.
test-build:
	@scripts/deps.sh build test clients
	@$(SUBMAKE) all c-tests
	@$(SUBMAKE) SAN=asan c-tests tools
	@$(SUBMAKE) SAN=tsan c-tests tools
	@$(SUBMAKE) RELEASE=1 all
.PHONY: test-build

test: test-build
	@$(PYTHON) tests/run.py
.PHONY: test

stress: test-build
	@$(PYTHON) tests/run.py --stress
.PHONY: stress

bench:
	@scripts/deps.sh build test clients
	@$(SUBMAKE) RELEASE=1 all
	@$(SUBMAKE) all
	@$(PYTHON) tests/bench/run.py --build build/release --out build/bench
.PHONY: bench

demo:
	@scripts/deps.sh build
	@$(SUBMAKE) all
	@$(PYTHON) scripts/demo.py --build $(BUILD) --out build/demo
.PHONY: demo

# libFuzzer targets (clang) over the corpus in tests/fuzz/corpus, then on.
FUZZ_TIME ?= 300
fuzz:
	@scripts/deps.sh build test
	@$(PYTHON) tests/fuzz/run.py fuzz --time $(FUZZ_TIME)
.PHONY: fuzz

LINT_BASE ?= HEAD
lint:
	@scripts/lint.sh $(LINT_BASE)
lint-all:
	@scripts/lint.sh --all
.PHONY: lint lint-all

student:
	@$(PYTHON) scripts/make-student.py --out build/student
.PHONY: student

notebook: python
	@scripts/deps.sh build test
	@$(PYTHON) scripts/notebook.py
.PHONY: notebook

install: all
	install -d $(DESTDIR)$(PREFIX)/include/aiolab $(DESTDIR)$(PREFIX)/lib/pkgconfig
	cp -R c/include/aiolab/. $(DESTDIR)$(PREFIX)/include/aiolab/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|^prefix=.*|prefix=$(PREFIX)|' $(LIB_PC) > $(DESTDIR)$(PREFIX)/lib/pkgconfig/aiolab.pc
	@echo "installed in $(DESTDIR)$(PREFIX) (pkg-config: $(PREFIX)/lib/pkgconfig)"
.PHONY: install

clean:
	rm -rf build
.PHONY: clean
