# Neuron: the two commands are `make demo` and `make test`; both install what is missing first.
SHELL := /bin/bash
# fortunes: real English text for the character-level language model demo (neuron charlm).
DEB_PACKAGES := libomp-dev libopenblas-dev libpng-dev fortunes
# -march=native: every build is made on the machine that runs it (CI builds from a fresh clone).
ARCH_FLAGS := -march=native
SWIFT_FLAGS := -c release -Xcc -fopenmp -Xcc $(ARCH_FLAGS)
CC := clang
CFLAGS := -O2 $(ARCH_FLAGS) -fopenmp -Wall -Wextra -std=c11 -D_GNU_SOURCE -ICKernels/include -ICKernels
# clang adds -lomp for -fopenmp; Debian keeps that name under LLVM 14 (the soname, libomp.so.5, is on the loader path).
LDLIBS := -L/usr/lib/llvm-14/lib -lopenblas -lm
KERNEL_SRCS := $(wildcard CKernels/*.c)
CTEST_SRCS := $(wildcard Tests/CKernelTests/test_*.c)
KERNEL_OBJS := $(patsubst CKernels/%.c,build/obj/%.o,$(KERNEL_SRCS))
KERNEL_OBJS_ASAN := $(patsubst CKernels/%.c,build/obj-asan/%.o,$(KERNEL_SRCS))
ASAN_FLAGS := -O1 -g -fsanitize=address -fno-omit-frame-pointer
CTESTS := $(patsubst Tests/CKernelTests/%.c,build/ctest/%,$(CTEST_SRCS))
CTESTS_ASAN := $(patsubst Tests/CKernelTests/%.c,build/ctest-asan/%,$(CTEST_SRCS))
export OMP_NUM_THREADS ?= 2

.PHONY: deps build demo test swift-test ctest ctest-asan asan consumer bench bench-c compare clean

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	swift build $(SWIFT_FLAGS)

demo: build
	.build/release/neuron demo

# Tests run on optimised code (release with testability) so the training tests stay fast.
test: deps ctest swift-test consumer

swift-test: deps
	NEURON_EXPECT_OPENMP=1 swift test $(SWIFT_FLAGS) -Xswiftc -enable-testing

# The kernels are compiled once into objects that every C test links.
build/obj/%.o: CKernels/%.c CKernels/include/*.h CKernels/*.h | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

build/obj-asan/%.o: CKernels/%.c CKernels/include/*.h CKernels/*.h | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

build/ctest/%: Tests/CKernelTests/%.c $(KERNEL_OBJS) Tests/CKernelTests/ctest.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(KERNEL_OBJS) $(LDLIBS)

build/ctest-asan/%: Tests/CKernelTests/%.c $(KERNEL_OBJS_ASAN) Tests/CKernelTests/ctest.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(KERNEL_OBJS_ASAN) $(LDLIBS)

# C kernel tests, run on 1 and 2 threads (results must not depend on it).
ctest: $(CTESTS)
	@for t in $(CTESTS); do OMP_NUM_THREADS=1 $$t && OMP_NUM_THREADS=2 $$t || exit 1; done

# The C kernel tests under AddressSanitizer with leak detection.
ctest-asan: $(CTESTS_ASAN)
	@for t in $(CTESTS_ASAN); do ASAN_OPTIONS=detect_leaks=1 $$t || exit 1; done

# The Swift suite under AddressSanitizer (XCTest's own small leaks are why leaks are off here).
asan: deps
	ASAN_OPTIONS=detect_leaks=0 swift test --sanitize=address -Xcc -fopenmp --scratch-path .build-asan

# Proves `import Neuron` works from another package.
consumer: deps
	cd Tests/Consumer && swift run -c release -Xcc -fopenmp --scratch-path ../../.build-consumer consumer

bench-c: build/bench/cbench
	build/bench/cbench

build/bench/cbench: Benchmarks/C/cbench.c Benchmarks/C/*.h $(KERNEL_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(KERNEL_OBJS) $(LDLIBS)

bench: build bench-c
	.build/release/neuron-bench --threads 2

# Side by side with PyTorch (needs a Python with torch: see Benchmarks/README.md).
TORCH_PYTHON ?= $(HOME)/.venvs/torch/bin/python
compare: build
	python3 ../shared/bench/compare.py --python $(TORCH_PYTHON) --neuron .build/release/neuron-bench $(if $(CASES),--cases $(CASES)) --rounds 3

clean:
	rm -rf .build .build-* build
