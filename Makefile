# Neuron: the two commands are `make demo` and `make test`; both install what is missing first.
SHELL := /bin/bash
# fortunes: real English text for the character-level language model demo (neuron charlm).
# Open MPI (libopenmpi-dev: headers and pkg-config ompi-c; openmpi-bin: mpirun) for NeuronDistributed.
DEB_PACKAGES := libomp-dev libopenblas-dev libpng-dev fortunes libopenmpi-dev openmpi-bin
# OpenMP and the C optimisation flags come from Package.swift; no -march anywhere: the kernels choose
# baseline, AVX2 or AVX-512 code at load time (CKernels/README.md), so a binary runs on any x86-64.
SWIFT_FLAGS := -c release
CC := clang
# The same C flags as Package.swift's CKernels target.
CFLAGS := -O2 -fopenmp -fno-math-errno -Wall -Wextra -std=c11 -D_GNU_SOURCE -ICKernels/include -ICKernels
# clang adds -lomp for -fopenmp; Debian keeps that name under LLVM 14 (the soname, libomp.so.5, is on the loader path).
LDLIBS := -L/usr/lib/llvm-14/lib -lopenblas -lm
KERNEL_SRCS := $(wildcard CKernels/*.c)
CTEST_SRCS := $(wildcard Tests/CKernelTests/test_*.c)
KERNEL_OBJS := $(patsubst CKernels/%.c,build/obj/%.o,$(KERNEL_SRCS))
KERNEL_OBJS_ASAN := $(patsubst CKernels/%.c,build/obj-asan/%.o,$(KERNEL_SRCS))
# The sanitizer builds optimise as the release one does (-O2): at -O1 test_conv2d alone took 66 s under
# ASan and 94 s under UBSan on a 2-core Zen 3, against 19 and 29 at -O2, with the same checks.
ASAN_FLAGS := -O2 -g -fsanitize=address -fno-omit-frame-pointer
CTESTS := $(patsubst Tests/CKernelTests/%.c,build/ctest/%,$(CTEST_SRCS))
CTESTS_ASAN := $(patsubst Tests/CKernelTests/%.c,build/ctest-asan/%,$(CTEST_SRCS))
KERNEL_OBJS_UBSAN := $(patsubst CKernels/%.c,build/obj-ubsan/%.o,$(KERNEL_SRCS))
UBSAN_FLAGS := -O2 -g -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CTESTS_UBSAN := $(patsubst Tests/CKernelTests/%.c,build/ctest-ubsan/%,$(CTEST_SRCS))
export OMP_NUM_THREADS ?= 2

.PHONY: deps build demo train-co2 test swift-test ctest ctest-asan ctest-ubsan asan consumer isa-check cpu-levels qemu bench bench-c compare clean fuzz fuzz-shapes fuzz-slice fuzz-slice-asan

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

# The CO2 forecast trained to convergence (make test runs a two-epoch version).
train-co2: build
	.build/release/neuron co2

# Tests run on optimised code (release with testability) so the training tests stay fast; the C kernel
# suite also runs under AddressSanitizer (with leak checks) and UndefinedBehaviorSanitizer, the short
# slice of `make fuzz` that fits CI's budget; mpi-test runs the distributed tests on 2 ranks.
test: deps ctest ctest-asan ctest-ubsan isa-check swift-test mpi-test consumer fuzz-slice

# One build of everything (tests, tools, demos) with the flags the tests need, so the fuzz slice and the
# demos after it reuse it instead of compiling the library again.
swift-test: deps
	swift build $(SWIFT_FLAGS) -Xswiftc -enable-testing --build-tests
	NEURON_EXPECT_OPENMP=1 swift test $(SWIFT_FLAGS) -Xswiftc -enable-testing --skip-build

# ---- Distributed (NeuronDistributed over Open MPI) ----------------------------------------------
# Two ranks on this machine, one OpenMP thread each. mpirun refuses root without --allow-run-as-root;
# --oversubscribe lets 2 ranks start on a machine whose slots mpirun counts fewer; `timeout` turns a
# hang (ranks waiting in mismatched collectives) into a failure.
MPI_RANKS ?= 2
MPIRUN := mpirun $(if $(filter 0,$(shell id -u)),--allow-run-as-root) --oversubscribe -x OMP_NUM_THREADS=1
.PHONY: mpi-test mpi-kill-test bench-mpi

# The collective tests (Tests/NeuronDistributedTests) on the test bundle swift-test built; a plain
# `swift test` skips them.
mpi-test: deps
	swift build $(SWIFT_FLAGS) -Xswiftc -enable-testing --build-tests
	timeout 300 $(MPIRUN) -np $(MPI_RANKS) .build/release/NeuronPackageTests.xctest NeuronDistributedTests.DistributedTests
	Tests/Distributed/kill-rank.sh .build/release/neuron $(MPIRUN)

# kill -9 of one rank mid-training ends the job within 30 s and the last checkpoint loads (a few seconds;
# make mpi-test runs it too).
mpi-kill-test: build
	Tests/Distributed/kill-rank.sh .build/release/neuron $(MPIRUN)

# All-reduce bandwidth (LeNet-5's gradient, 10M floats) on 2 ranks; LeNet-5 training images/s on 2 ranks x
# 1 thread against 1 process x 2 threads (Benchmarks/MPIBench).
bench-mpi: build
	$(MPIRUN) -np 2 .build/release/neuron-mpi-bench allreduce
	$(MPIRUN) -np 2 .build/release/neuron-mpi-bench lenet
	OMP_NUM_THREADS=2 .build/release/neuron-mpi-bench lenet

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

build/obj-ubsan/%.o: CKernels/%.c CKernels/include/*.h CKernels/*.h | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(UBSAN_FLAGS) -c -o $@ $<

build/ctest-ubsan/%: Tests/CKernelTests/%.c $(KERNEL_OBJS_UBSAN) Tests/CKernelTests/ctest.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(UBSAN_FLAGS) -o $@ $< $(KERNEL_OBJS_UBSAN) $(LDLIBS)

build/ctest-asan/%: Tests/CKernelTests/%.c $(KERNEL_OBJS_ASAN) Tests/CKernelTests/ctest.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $< $(KERNEL_OBJS_ASAN) $(LDLIBS)

# C kernel tests, run on 1 and 2 threads (results must not depend on it). The suites that call OpenBLAS
# run again with its Haswell kernels (those of every AVX2 machine, Zen 1-3 included), whose thread split
# shows in the last bits where the AVX-512 ones' does not.
ctest: $(CTESTS)
	@for t in $(CTESTS); do OMP_NUM_THREADS=1 $$t && OMP_NUM_THREADS=2 $$t || exit 1; done
	@if grep -qw avx2 /proc/cpuinfo; then for t in build/ctest/test_core build/ctest/test_rnn; do \
	  OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=1 $$t && OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=2 $$t || exit 1; done; fi

# The baseline code must not use AVX by accident. levels.h puts the AVX2 and AVX-512 instances of every
# kernel in the sections .text.nn_avx2 and .text.nn_avx512; all other code (the baseline instance in
# .text.nn_baseline, common code and OpenMP's outlined loop bodies in .text) must touch no ymm/zmm/opmask
# register and use no VEX/EVEX-encoded instruction (a v-prefixed mnemonic).
isa-check: $(KERNEL_OBJS)
	@objdump -d --no-show-raw-insn $(KERNEL_OBJS) | awk ' \
	  / file format / { file = $$1 } \
	  /^Disassembly of section / { sec = $$4; sub(/:$$/, "", sec); next } \
	  /^ +[0-9a-f]+:\t/ { \
	    if (sec == ".text.nn_avx2" || sec == ".text.nn_avx512") { if ($$0 ~ /%[yz]mm/) wide++; next } \
	    base++; if ($$0 ~ /%[yz]mm|%k[0-7]|:\tv[a-z0-9]+ /) { if (bad++ < 20) print "AVX outside the AVX sections: " file " " sec ": " $$0 } } \
	  END { if (bad) { print bad " instructions"; exit 1 } \
	        if (!wide) { print "isa-check: no AVX code found in .text.nn_avx2/.text.nn_avx512 (sections renamed?)"; exit 1 } \
	        print "isa-check: " base " baseline instructions without AVX; " wide " ymm/zmm instructions, all in the AVX sections" }'

# The C kernel suite under qemu's user-mode CPU models (slow, so not part of `make test`): Nehalem has no
# AVX, so baseline code that used it would fault (SIGILL) and only the baseline level runs; `max` is
# everything qemu's TCG emulates, AVX2+FMA but no AVX-512, so the baseline and AVX2 levels run. A request
# for AVX-512 there is refused.
QEMU := qemu-x86_64
cpu-levels: $(CTESTS) | qemu
	@for cpu in Nehalem:baseline max:avx2; do \
	  model=$${cpu%%:*}; top=$${cpu##*:}; \
	  for t in $(CTESTS); do \
	    out=$$(OMP_NUM_THREADS=2 $(QEMU) -cpu $$model $$t) || { echo "$$out"; echo "$$t failed under -cpu $$model"; exit 1; }; \
	    echo "[$$model] $$out"; \
	    echo "$$out" | grep -q "levels baseline..$$top)" || { echo "$$t: expected levels up to $$top under -cpu $$model"; exit 1; }; \
	  done; \
	done
	@NEURON_CPU=avx512 $(QEMU) -cpu max build/ctest/test_core 2>&1 >/dev/null | grep "refused"

qemu:
	@dpkg -s qemu-user >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user; }

# The C kernel tests under AddressSanitizer with leak detection.
ctest-asan: $(CTESTS_ASAN)
	@for t in $(CTESTS_ASAN); do ASAN_OPTIONS=detect_leaks=1 $$t || exit 1; done

# The C kernel tests under UndefinedBehaviorSanitizer, stopping at the first report (signed overflow,
# shifts, out-of-range conversions), on 1 and 2 threads.
# One thread here, two under ASan (ctest-asan): each sanitizer sees one of the paths, in half the time.
ctest-ubsan: $(CTESTS_UBSAN)
	@for t in $(CTESTS_UBSAN); do OMP_NUM_THREADS=1 $$t || exit 1; done

# The Swift suite under AddressSanitizer (XCTest's own small leaks are why leaks are off here).
asan: deps
	ASAN_OPTIONS=detect_leaks=0 swift test --sanitize=address --scratch-path .build-asan

# Shape fuzzing (Sources/neuron-fuzz): random, often invalid, calls of the public ops, each of which must
# throw NeuronError or match a double-precision reference; traps, sanitizer reports and wrong results fail.
# Reproduce one case with `neuron-fuzz --seed S --case N` from the same build.
FUZZ_SEED ?= 1
FUZZ_CASES ?= 100000
FUZZ_JOBS ?= 2
FUZZ_BATCH ?= 2500
FUZZ_SLICE_CASES ?= 5000
UBSAN := -Xcc -fsanitize=undefined -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined

fuzz: fuzz-shapes fuzz-safetensors fuzz-png

# 100,000 cases under AddressSanitizer and UndefinedBehaviorSanitizer (leak checks off: Foundation's own
# allocations show up as leaks at exit). A debug build, so the C asserts are on (they must agree with what
# Swift admits); the kernels are -O2 in every configuration (Package.swift) and the Swift code is
# optimised too, so the references stay quick.
fuzz-shapes: deps
	swift build -Xswiftc -O --sanitize=address $(UBSAN) --scratch-path .build-fuzz --product neuron-fuzz
	ASAN_OPTIONS=detect_leaks=0 .build-fuzz/debug/neuron-fuzz --seed $(FUZZ_SEED) --cases $(FUZZ_CASES) --jobs $(FUZZ_JOBS) --batch $(FUZZ_BATCH)

# A few thousand cases for `make test`, on the build swift-test made (same flags, so nothing is rebuilt).
fuzz-slice: deps
	swift build $(SWIFT_FLAGS) -Xswiftc -enable-testing --product neuron-fuzz
	.build/release/neuron-fuzz --seed $(FUZZ_SEED) --cases $(FUZZ_SLICE_CASES) --jobs $(FUZZ_JOBS) --batch 1000

# The same slice with every kernel under AddressSanitizer (a second full build; Foundation's own small
# leaks are why leak detection is off, as in `make asan`).
fuzz-slice-asan: deps
	swift build $(SWIFT_FLAGS) --sanitize=address --scratch-path .build-fuzz-slice --product neuron-fuzz
	ASAN_OPTIONS=detect_leaks=0 .build-fuzz-slice/release/neuron-fuzz --seed $(FUZZ_SEED) --cases $(FUZZ_SLICE_CASES) --jobs $(FUZZ_JOBS) --batch 1000

# Proves that `import Neuron` works from another package as a user would take it: Neuron (the committed
# HEAD plus uncommitted changes to tracked files) is cloned into a temporary folder and tagged with the
# README's version, and Tests/Consumer, copied beside it, depends on it by version (`from:`, a file URL)
# and is built with a plain `swift build -c release`. The consumer fails unless OpenMP is on and the
# kernels run at the best level this CPU has; CONSUMER_ARGS=--lenet-step also times a LeNet-5 training
# step. The README's example, extracted from README.md into a second executable (`readme`), must build,
# run and end with at most half its first loss. The build must compile no demo and nothing of
# swift-argument-parser (the library product is Neuron and its C targets only).
NEURON_VERSION := $(shell sed -n 's/^Version \([0-9][0-9.]*\) .*/\1/p' README.md | head -1)
consumer: deps
	@set -eo pipefail; tmp=$$(mktemp -d /tmp/neuron-consumer.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	rev=$$(git stash create); rev=$${rev:-HEAD}; \
	git clone -q --no-checkout "$(CURDIR)" "$$tmp/Neuron"; \
	git -C "$$tmp/Neuron" checkout -q --detach "$$rev" && git -C "$$tmp/Neuron" tag "$(NEURON_VERSION)"; \
	cp -R Tests/Consumer "$$tmp/consumer"; \
	mkdir -p "$$tmp/consumer/Sources/readme"; \
	awk '/^## Example/ { inside = 1; next } inside && /^```swift/ { copying = 1; next } copying && /^```/ { exit } copying' \
	  README.md > "$$tmp/consumer/Sources/readme/main.swift"; \
	test -s "$$tmp/consumer/Sources/readme/main.swift" || { echo "consumer: no swift block under '## Example' in README.md"; exit 1; }; \
	cd "$$tmp/consumer" && env -u NEURON_CPU NEURON_PACKAGE_URL="file://$$tmp/Neuron" NEURON_VERSION="$(NEURON_VERSION)" \
	  swift build -c release -v > build.log 2>&1 || { tail -40 build.log; exit 1; }; \
	if grep -E -- '-module-name (ArgumentParser[A-Za-z]*|GenerateManual|GenerateDoccReference|NeuronDemos) ' build.log >/dev/null \
	   || test -e .build/checkouts/swift-argument-parser \
	   || find .build/release/ -maxdepth 1 \( -name '*ArgumentParser*' -o -name 'NeuronDemos*' \) | grep -q . \
	   || find .build/release/Neuron.build/ -name '*Demo*' | grep -q .; then \
	  echo "consumer: FAILED: the build compiled demo or ArgumentParser code:"; \
	  grep -oE -- '-module-name [A-Za-z]+' build.log | sort -u; exit 1; \
	fi; \
	echo "consumer: built modules: $$(grep -oE -- '-module-name [A-Za-z_]+' build.log | sed 's/-module-name //' | sort -u | tr '\n' ' ')(no demo; swift-argument-parser neither fetched nor compiled)"; \
	env -u NEURON_CPU ./.build/release/consumer $(CONSUMER_ARGS); \
	./.build/release/readme | tee readme.out; \
	awk '/^epoch [0-9]+: loss / { loss = $$4; if (first == "") first = loss } \
	     END { if (first == "" || loss + 0 > first / 2) { print "consumer: FAILED: README example: the loss went from " first " to " loss ", not down by half"; exit 1 } \
	           print "consumer: README example: the loss fell from " first " to " loss }' readme.out

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

# The DocC documentation (Sources/Neuron/Neuron.docc and the doc comments) through swift-docc-plugin,
# into build/docs/Neuron.doccarchive (`docc preview` or any static host serves it). Any DocC warning
# fails the build (an unresolved link, an undocumented parameter of a documented function); then the
# articles' Swift examples are type-checked against the module the plugin just built, and the share of
# documented public declarations is printed. The plugin builds the library in debug mode, in .build.
.PHONY: docs doc-coverage
DOCS_DIR := build/docs
# Found when the recipe runs (make expands a recipe before its first line runs, when a fresh tree has none).
SYMBOL_GRAPHS = $$(ls -d .build/*/extracted-symbols/*/Neuron 2>/dev/null | head -1)
docs: deps
	@mkdir -p $(DOCS_DIR) && rm -rf $(DOCS_DIR)/Neuron.doccarchive
	swift package --allow-writing-to-directory $(DOCS_DIR) generate-documentation --target Neuron \
	  --warnings-as-errors --output-path $(DOCS_DIR)/Neuron.doccarchive
	python3 scripts/check-doc-examples.py .build/debug
	python3 scripts/doc-coverage.py $(SYMBOL_GRAPHS)

# The documented share with every public declaration that has no doc comment, by file (after make docs).
doc-coverage:
	@graphs=$(SYMBOL_GRAPHS); test -n "$$graphs" || { echo "no symbol graphs: run make docs first"; exit 1; }; \
	python3 scripts/doc-coverage.py $$graphs --by-file --list

clean:
	rm -rf .build .build-* build

# ---- Fuzzing the readers of untrusted files (libFuzzer), and the crash test of saves ------------
# fuzz-safetensors: the safetensors reader (Swift: swiftc -sanitize=fuzzer,address over Sources/Neuron
# and Tests/Fuzz/safetensors, built outside SwiftPM so Package.swift stays free of unsafe flags);
# fuzz-png: the PNG reader (C: Sources/CPNG with clang -fsanitize=fuzzer,address). Each runs
# FUZZ_SECONDS (default 10 minutes) from the seeds in Tests/Fuzz/corpus/<target> (regenerate with
# Tests/Fuzz/corpus/make_seeds.py) plus what earlier runs found, kept in build/fuzz/corpus/<target>;
# a crashing input is saved as build/fuzz/artifacts/<target>-crash-*. fuzz-smoke: both, briefly
# (FUZZ_SMOKE_SECONDS each, fixed seed), for `make test`.
# savetest: 50 kill -9 during 40 MB saves; 0 torn files and, after one more save, 0 temp files.
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_DIR := build/fuzz
NEURON_SWIFT_SRCS := $(shell find Sources/Neuron -name '*.swift' | sort)
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address -std=c11 -D_GNU_SOURCE \
  -Wall -Wextra -Wno-unknown-pragmas -ICKernels/include -ICKernels -ISources/CPNG/include
FUZZ_OBJS := $(patsubst CKernels/%.c,$(FUZZ_DIR)/obj/%.o,$(KERNEL_SRCS)) $(FUZZ_DIR)/obj/png_support.o
# The C modules Neuron imports, for swiftc outside SwiftPM.
FUZZ_MODULEMAP := $(FUZZ_DIR)/modules/module.modulemap
SWIFTC_NEURON = swiftc -parse-as-library -module-name Neuron -module-cache-path $(FUZZ_DIR)/module-cache \
  -Xcc -fmodule-map-file=$(FUZZ_MODULEMAP)
LIBFUZZER_FLAGS = -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=30 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)-

.PHONY: fuzz-safetensors fuzz-png fuzz-smoke savetest

$(FUZZ_MODULEMAP):
	@mkdir -p $(@D)
	printf 'module CKernels {\n  header "%s/CKernels/include/ckernels.h"\n  export *\n}\nmodule CPNG {\n  header "%s/Sources/CPNG/include/png_support.h"\n  export *\n}\n' "$(CURDIR)" "$(CURDIR)" > $@

$(FUZZ_DIR)/obj/%.o: CKernels/%.c CKernels/include/*.h CKernels/*.h | deps
	@mkdir -p $(@D)
	$(CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/obj/png_support.o: Sources/CPNG/png_support.c Sources/CPNG/include/png_support.h | deps
	@mkdir -p $(@D)
	$(CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/fuzz-safetensors: $(NEURON_SWIFT_SRCS) Tests/Fuzz/safetensors/FuzzSafetensors.swift $(FUZZ_OBJS) $(FUZZ_MODULEMAP)
	$(SWIFTC_NEURON) -O -g -sanitize=fuzzer,address -use-ld=lld -o $@ $(NEURON_SWIFT_SRCS) Tests/Fuzz/safetensors/FuzzSafetensors.swift \
	  $(FUZZ_OBJS) -L/usr/lib/llvm-14/lib -lopenblas -lpng16 -lm

$(FUZZ_DIR)/fuzz-png: Tests/Fuzz/png/fuzz_png.c Sources/CPNG/png_support.c Sources/CPNG/include/png_support.h | deps
	@mkdir -p $(@D)
	$(CC) -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address -fuse-ld=lld -std=c11 -Wall -Wextra -ISources/CPNG/include \
	  -o $@ Tests/Fuzz/png/fuzz_png.c Sources/CPNG/png_support.c -lpng16

# $(1): target name, $(2): seconds, $(3): extra libFuzzer flags.
define run_fuzzer
	@mkdir -p $(FUZZ_DIR)/corpus/$(1) $(FUZZ_DIR)/artifacts
	$(FUZZ_DIR)/fuzz-$(1) $(call LIBFUZZER_FLAGS,$(1)) -max_total_time=$(2) $(3) $(FUZZ_DIR)/corpus/$(1) Tests/Fuzz/corpus/$(1)
endef

fuzz-safetensors: $(FUZZ_DIR)/fuzz-safetensors
	$(call run_fuzzer,safetensors,$(FUZZ_SECONDS),-max_len=4096)

fuzz-png: $(FUZZ_DIR)/fuzz-png
	$(call run_fuzzer,png,$(FUZZ_SECONDS),-max_len=4096)

# Short and repeatable: a fixed seed, new finds kept apart (build/fuzz/smoke) so the run does not grow.
fuzz-smoke: $(FUZZ_DIR)/fuzz-safetensors $(FUZZ_DIR)/fuzz-png
	@for t in safetensors png; do \
	  rm -rf $(FUZZ_DIR)/smoke/$$t && mkdir -p $(FUZZ_DIR)/smoke/$$t $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts && \
	  $(FUZZ_DIR)/fuzz-$$t -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=30 -seed=1 -max_len=4096 -max_total_time=$(FUZZ_SMOKE_SECONDS) \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_DIR)/smoke/$$t $(FUZZ_DIR)/corpus/$$t Tests/Fuzz/corpus/$$t \
	    2>$(FUZZ_DIR)/smoke/$$t.log || { tail -40 $(FUZZ_DIR)/smoke/$$t.log; exit 1; }; \
	  echo "fuzz-smoke $$t: $$(grep -E '^(#[0-9]+.*DONE|Done)' $(FUZZ_DIR)/smoke/$$t.log | tail -1)"; \
	done

$(FUZZ_DIR)/savekill: $(NEURON_SWIFT_SRCS) Tests/Fuzz/savekill/main.swift $(KERNEL_OBJS) build/obj/png_support.o $(FUZZ_MODULEMAP)
	swiftc -module-name Neuron -module-cache-path $(FUZZ_DIR)/module-cache -Xcc -fmodule-map-file=$(FUZZ_MODULEMAP) \
	  -O -o $@ $(NEURON_SWIFT_SRCS) Tests/Fuzz/savekill/main.swift $(KERNEL_OBJS) build/obj/png_support.o \
	  -L/usr/lib/llvm-14/lib -lomp -lopenblas -lpng16 -lm

build/obj/png_support.o: Sources/CPNG/png_support.c Sources/CPNG/include/png_support.h | deps
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -std=c11 -D_GNU_SOURCE -ISources/CPNG/include -c -o $@ $<

savetest: $(FUZZ_DIR)/savekill
	$(FUZZ_DIR)/savekill --kills 50 --megabytes 40 --directory $(FUZZ_DIR)/savekill-run
