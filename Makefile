# Switchyard - build with GNU make and gcc (or clang); nothing else needed.
#
#   make                  library, tests, benchmarks and examples into build/
#   make demo             build and run the demo
#   make test             build and run the test suite (ends "N passed, N failed")
#   make bench            build and run the benchmarks (Go benchmark format)
#   make stress           the randomized multi-CPU stress for 60 s (STRESS_SECONDS=)
#   make install PREFIX=/usr/local   header, libswitchyard.{a,so}, pkg-config file
#
# Variants, each in a build folder of its own:
#   make test SAN=asan    ASan + UBSan (the switch tells ASan about each stack)
#   make test SAN=tsan    ThreadSanitizer (each task a TSan fiber) + running guard
#   make test VALGRIND=1  under valgrind memcheck (stacks registered with it)
#   make test LTO=1       -O3 and link-time optimisation (stale per-CPU data shows here)
#   make test ARCH=aarch64   cross-built with aarch64-linux-gnu-gcc, run in qemu-user
#   make test CC=clang    another compiler
#   make test URING=0     without the io_uring backend (epoll only; the default
#                         for ARCH=aarch64, which has no arm64 liburing here)
# `make test` runs the I/O tests twice: on the default backend (io_uring where
# the kernel allows it) and again with SY_IO=epoll (IO_TESTS below).
# TEST_TIMEOUT_MULT=N multiplies every test's timeout (slow machines).
# LOAD=1 runs the tests (any variant) beside one CPU-bound hog per core; LOAD=squeeze: on one core.

ARCH     ?= $(shell uname -m)
SAN      ?=
VALGRIND ?=
PREFIX   ?= /usr/local

ifeq ($(ARCH),aarch64)
  ifneq ($(shell uname -m),aarch64)
    CC       := aarch64-linux-gnu-gcc
    AR       := aarch64-linux-gnu-ar
    OBJCOPY  := aarch64-linux-gnu-objcopy
    OBJDUMP  := aarch64-linux-gnu-objdump
    NM       := aarch64-linux-gnu-nm
    EMULATOR := qemu-aarch64 -L /usr/aarch64-linux-gnu
    # t_stress's own watchdog (secs + 50 s, sized for native speed) fired
    # once in a loaded qemu run still winding down: give it what valgrind
    # gets, inside tests/run.sh's 600 s limit under an emulator
    STRESS_WATCHDOG := 400
    B        ?= build-aarch64
  endif
endif

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
LIBOPT   ?= $(CFLAGS)
OBJCOPY  ?= objcopy
OBJDUMP  ?= objdump
NM       ?= nm
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE     := -std=c11 -D_GNU_SOURCE -Iinclude -fPIC
# -fno-plt: the runtime calls the C library through the GOT, not through
# PLT stubs, which would sit in the program's own text, outside sy_text,
# where the preemption tick takes code for the program's (src/preempt.c)
LIBFLAGS := -fvisibility=hidden -fno-plt
# AArch64: GCC calls libgcc's helpers for atomics (__aarch64_swp4_acq, ...),
# which land in the program's own text, outside sy_text, where the tick takes
# code for the program's: a task taking a runtime spinlock was preempted (or
# killed) inside the helper, holding the lock, and its CPU's next task spun on
# it for ever (found by tests/t_syncstress under qemu).  Inline them; the
# archive rule below fails if any call is left.
ifeq ($(ARCH),aarch64)
  LIBFLAGS += -mno-outline-atomics
endif
LDLIBS   := -lrt

# The io_uring backend (src/uring.c) needs liburing (Debian's liburing-dev).
# URING=0 builds without it: the epoll backend only.  The AArch64 cross
# build has no arm64 liburing here, and qemu-user may not pass io_uring's
# system calls through: it is built with URING=0.  Linked dynamically: the
# tick never preempts a task inside a shared library (preempt.c), so never
# inside liburing's submit or wait while it has the ring half updated.
ifeq ($(ARCH),aarch64)
  ifneq ($(shell uname -m),aarch64)
    URING ?= 0
  endif
endif
URING ?= 1
ifeq ($(URING),1)
  BASE   += -DSY_URING
  LDLIBS += -luring
endif

ifeq ($(SAN),asan)
  B        ?= build-asan
  BASE     += -DSY_ASAN -DSY_DEBUG -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
  LDFLAGS  += -fsanitize=address,undefined
else ifeq ($(SAN),tsan)
  B        ?= build-tsan
  BASE     += -DSY_TSAN -DSY_DEBUG -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS  += -fsanitize=thread
else ifneq ($(SAN),)
  $(error SAN=$(SAN): known values are asan, tsan)
endif
ifneq ($(LTO),)
  # Programs at -O3 with link-time optimisation; the library at -O3 without
  # it, so that its code stays in its own section (see sy_text below).
  B        ?= build-lto
  OPT      := -O3 -flto=auto
  LIBOPT   := -O3 -g
  LDFLAGS  += -O3 -flto=auto
endif
ifneq ($(VALGRIND),)
  B        ?= build-valgrind
  BASE     += -DSY_VALGRIND
  # --fair-sched: valgrind runs one thread at a time, and its default lock
  # lets a thread that spins and yields take the CPU back before the one it
  # waits for.  (t_stress stalled under valgrind twice, cause not found;
  # its watchdog now prints the runtime's state if it happens again.)
  EMULATOR := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-possibly-lost=no \
              --fair-sched=yes \
              --exit-on-first-error=no
endif
B ?= build

ifeq ($(ARCH),x86_64)
  ARCHDIR := src/arch/x86_64
else ifeq ($(ARCH),aarch64)
  ARCHDIR := src/arch/aarch64
else
  $(error ARCH=$(ARCH): Switchyard has a context switch for x86_64 and aarch64)
endif

SONAME  := libswitchyard.so.0
SRCS    := src/cpu.c src/sched.c src/runq.c src/task.c src/timer.c src/preempt.c src/stack.c \
           src/ps.c src/hostlock.c src/hostsync.c src/spinlock.c src/sleep.c src/wait.c src/sync.c src/chan.c \
           src/io.c src/epoll.c src/fileio.c src/handoff.c $(if $(filter 1,$(URING)),src/uring.c)
ASRCS   := $(ARCHDIR)/switch.S
OBJS    := $(SRCS:src/%.c=$(B)/obj/%.o) $(ASRCS:src/%.S=$(B)/obj/%.o)
HDRS    := include/switchyard.h src/internal.h src/runq.h src/wait.h src/hostsync.h src/io.h src/san.h src/arch/arch.h \
           $(ARCHDIR)/arch.h

TESTS   := $(patsubst tests/%.c,%,$(filter-out tests/test_%.h,$(wildcard tests/t_*.c)))
# tests/t_hostlib.c links Debian's static SQLite (libsqlite3-dev, which
# scripts/deps.sh installs), native only: there is no arm64 libsqlite3.a
# for the cross build (ARCH=aarch64 under qemu-user), so it is left out there.
ifeq ($(ARCH),aarch64)
  ifneq ($(shell uname -m),aarch64)
    TESTS := $(filter-out t_hostlib,$(TESTS))
  endif
endif
TESTBIN := $(TESTS:%=$(B)/tests/%)
BENCHES := $(patsubst bench/%.c,%,$(wildcard bench/b_*.c))
BENCHBIN:= $(BENCHES:%=$(B)/bench/%)
EXAMPLES:= $(patsubst examples/%.c,%,$(wildcard examples/*.c))
EXBIN   := $(EXAMPLES:%=$(B)/examples/%)

all: $(B)/libswitchyard.a $(B)/libswitchyard.so $(TESTBIN) $(BENCHBIN) $(EXBIN)

# The runtime's code goes into a section of its own, sy_text, whose bounds
# the linker provides (__start_sy_text, __stop_sy_text): the preemption
# tick never switches a task that is inside the runtime (src/preempt.c).
# All of it: cold parts of functions (.text.unlikely), constructors, and
# whatever else the compiler puts in code sections; the build fails if any
# code section is left outside.
TEXTSECS := .text .text.unlikely .text.hot .text.startup .text.exit .text.unlikely. .text.hot.
SY_TEXT   = $(OBJCOPY) $(foreach t,$(TEXTSECS),--rename-section $(t)=sy_text) $@ && \
	    $(OBJDUMP) -h $@ | awk '/^ +[0-9]+ /{n=$$2} /CODE/ && n!="sy_text" \
	        {print "$@: code outside sy_text: " n; bad=1} END{exit bad}'

$(B)/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(LIBFLAGS) $(WARN) $(LIBOPT) -c -o $@ $<
	@$(SY_TEXT)

$(B)/obj/%.o: src/%.S src/arch/arch.h $(ARCHDIR)/arch.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(LIBOPT) -c -o $@ $<
	@$(SY_TEXT)

# The switch resumes a task with `ret` (src/arch/*/switch.S), which the
# return-stack predictor gets right only if sy__arch_switch is called from
# one place: context_switch() in src/sched.c, kept out of line.  The build
# counts the call sites and fails unless there is exactly one.
SWITCH_SITES = n=$$($(OBJDUMP) -r $(filter-out %/switch.o,$(filter %.o,$^)) | grep -cE \
	'(X86_64_(PLT32|PC32|GOTPCRELX)|AARCH64_(CALL26|JUMP26|LD64_GOT_LO12_NC)) +sy__arch_switch'); \
	[ "$$n" -eq 1 ] || { echo "$@: sy__arch_switch has $$n call sites, must have" \
	    "exactly 1 (src/sched.c: context_switch)" >&2; exit 1; }

$(B)/libswitchyard.a: $(OBJS)
	@$(SWITCH_SITES)
	@! $(NM) -u $(OBJS) | grep -q __aarch64_ || { echo "$@: the runtime calls libgcc's" \
	    "outline atomics (code outside sy_text): build it with -mno-outline-atomics" >&2; exit 1; }
	rm -f $@
	$(AR) rcs $@ $^

$(B)/libswitchyard.so: $(OBJS) src/exports.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/exports.map \
	    -Wl,-z,noexecstack $(LDFLAGS) -o $(B)/$(SONAME) $(OBJS) $(LDLIBS)
	ln -sf $(SONAME) $@

# Tests and benchmarks link the static library (they may reach internals),
# and tests also the assembly helpers of tests/arch/<isa>/.
TESTASM := $(wildcard tests/arch/$(ARCH)/*.S)
$(B)/tests/%: tests/%.c tests/test.h tests/longcall.h $(TESTASM) $(B)/libswitchyard.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE) -Isrc $(WARN) -Wno-missing-prototypes $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(TESTASM) $(B)/libswitchyard.a $(LDLIBS) -lm -lpthread

# t_hostlib: SQLite's archive (its pthread calls resolve to the runtime's
# interposed ones, as any statically linked library's do), then what it needs.
# A static pattern rule: make prefers it to the generic one above.
SQLITE_A ?= $(firstword $(wildcard /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/libsqlite3.a \
                                   /usr/lib/libsqlite3.a) /usr/lib/x86_64-linux-gnu/libsqlite3.a)
$(B)/tests/t_hostlib: $(B)/tests/%: tests/%.c tests/test.h tests/longcall.h $(TESTASM) $(B)/libswitchyard.a
	@mkdir -p $(dir $@)
	@[ -f $(SQLITE_A) ] || { echo "$@: no $(SQLITE_A): install libsqlite3-dev" \
	    "(scripts/deps.sh does)" >&2; exit 1; }
	$(CC) $(BASE) -Isrc $(WARN) -Wno-missing-prototypes $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(TESTASM) $(B)/libswitchyard.a $(SQLITE_A) $(LDLIBS) -lm -ldl -lpthread

# t_hostshared: linked with the shared library (the other tests link the
# archive), found at run time through its rpath.
$(B)/tests/t_hostshared: tests/t_hostshared.c $(B)/libswitchyard.so
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(WARN) -Wno-missing-prototypes $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    -L$(B) -l:$(SONAME) -Wl,-rpath,$(abspath $(B)) $(LDLIBS) -lpthread

BENCHASM := $(wildcard bench/arch/$(ARCH)/*.S)
$(B)/bench/%: bench/%.c bench/bench.h bench/latency.h $(BENCHASM) $(B)/libswitchyard.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE) -Isrc $(WARN) -Wno-missing-prototypes $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    $(BENCHASM) $(B)/libswitchyard.a $(LDLIBS) -lpthread

$(B)/examples/%: examples/%.c $(B)/libswitchyard.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libswitchyard.a $(LDLIBS)

demo: $(B)/examples/demo
	@$(EMULATOR) $(B)/examples/demo

# The I/O tests, run a second time on the epoll backend (SY_IO=epoll) when
# the default is io_uring (URING=1), and t_iocancel a third time with the
# parked rings woken through an eventfd (as on kernels before 6.7).
IO_TESTS := $(filter t_io%,$(TESTS))
test: $(TESTBIN)
	@EMULATOR="$(EMULATOR)" LOAD="$(LOAD)" $(if $(STRESS_QUANTUM),SY_STRESS_QUANTUM_US=$(STRESS_QUANTUM)) \
	    $(if $(STRESS_WATCHDOG),SY_STRESS_WATCHDOG=$(STRESS_WATCHDOG)) \
	    tests/run.sh $(B)/tests $(TESTS) \
	    $(if $(filter 1,$(URING)),$(IO_TESTS:%=%:SY_IO=epoll) t_iocancel:SY_IO_WAKE=eventfd)

# One core, as the peers' one-scheduler-thread benchmarks run.
BENCH_CPU ?= $(shell echo $$(( $$(nproc) - 1 )))
# The long randomized stress (tests/t_stress.c runs 3 s in `make test`).
STRESS_SECONDS ?= 60
stress: $(B)/tests/t_stress
	SY_STRESS_SECONDS=$(STRESS_SECONDS) $(EMULATOR) $(B)/tests/t_stress

# tests/t_preempt.c's libc case (malloc, free, printf under a 100 us
# quantum on 2 CPUs) for 60 s instead of 1 s.
SOAK_SECONDS ?= 60
soak: $(B)/tests/t_preempt
	SY_SOAK_SECONDS=$(SOAK_SECONDS) SY_TEST_ONLY=test_libc_not_interrupted $(EMULATOR) $(B)/tests/t_preempt

# b_io's Http rows run build/examples/httpd (b_io http, last in b_io all).
bench: $(BENCHBIN) $(B)/examples/httpd
	@taskset -c $(BENCH_CPU) $(B)/bench/b_core all
	@taskset -c $(BENCH_CPU) $(B)/bench/b_preempt all
	@taskset -c $(BENCH_CPU) $(B)/bench/b_hostlock 1cpu
	@$(B)/bench/b_hostlock 2cpu
	@$(B)/bench/b_smp all
	@taskset -c $(BENCH_CPU) $(B)/bench/b_sync 1cpu >$(B)/bench/b_sync.out; s=$$?; \
	    cat $(B)/bench/b_sync.out; exit $$s
	@$(B)/bench/b_sync 2cpu >$(B)/bench/b_sync.2.out; s=$$?; cat $(B)/bench/b_sync.2.out; \
	    cat $(B)/bench/b_sync.2.out >>$(B)/bench/b_sync.out; exit $$s
	@$(B)/bench/b_io all
	@$(B)/bench/b_handoff all
	@$(MAKE) -s bench-go

# The Go versions of b_preempt's latency workload, of b_handoff's (a cgo
# call of zlib: zlib1g-dev) and of b_sync's, when Go is installed; sync.go
# prints its ratios to b_sync's last run (make bench).  b_handoff and
# handoff.go run on both cores: the hand-off's spare thread runs beside the
# stuck one.
# (Debian's golang-1.19-go puts go in /usr/lib/go-1.19/bin, off PATH.)
GO ?= $(or $(shell command -v go),$(lastword $(wildcard /usr/lib/go-*/bin/go)))
bench-go:
	@if [ -n "$(GO)" ]; then \
	    cd bench/go && GOCACHE=$(CURDIR)/$(B)/gocache GO111MODULE=off \
	        taskset -c $(BENCH_CPU) $(GO) run latency.go shortlat.go && \
	    GOCACHE=$(CURDIR)/$(B)/gocache GO111MODULE=off $(GO) run handoff.go shortlat.go && \
	    GOCACHE=$(CURDIR)/$(B)/gocache GO111MODULE=off taskset -c $(BENCH_CPU) $(GO) run sync.go 1cpu \
	        $(if $(wildcard $(B)/bench/b_sync.out),--vs $(CURDIR)/$(B)/bench/b_sync.out) && \
	    GOCACHE=$(CURDIR)/$(B)/gocache GO111MODULE=off $(GO) run sync.go 2cpu \
	        $(if $(wildcard $(B)/bench/b_sync.out),--vs $(CURDIR)/$(B)/bench/b_sync.out); \
	else echo "# go not installed: skipping bench/go/*.go"; fi

install: $(B)/libswitchyard.a $(B)/libswitchyard.so
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/switchyard.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/libswitchyard.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/$(SONAME) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libswitchyard.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1|' src/switchyard.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/switchyard.pc

clean:
	rm -rf build build-*

.PHONY: all demo test stress soak bench bench-go install clean
.SECONDARY:
