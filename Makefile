# One entry point: make, make test, make bench, make demo (README.md).
CC      ?= cc
BUILD   ?= build
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE
LIBS    := -lseccomp -lcap
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

COMMON_SRC  := $(wildcard common/*.c)
RUNTIME_SRC := $(wildcard runtime/*.c)
AGENTD_SRC  := $(wildcard agentd/*.c)
AGENTD_LIB  := $(filter-out agentd/main.c,$(AGENTD_SRC))
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/test_*.c))
HEADERS     := $(wildcard common/*.h runtime/*.h agentd/*.h tests/unit/*.h)

obj  = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
sobj = $(patsubst %.c,$(BUILD)/san/%.o,$(1))

# Keep the sanitizer objects between runs (they are intermediate files).
.SECONDARY:

.PHONY: all deps test test-unit test-integration test-v2 bench demo fuzz clean
all: $(BUILD)/agentd

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	ar rcs $@ $^
$(BUILD)/libruntime.a: $(call obj,$(RUNTIME_SRC))
	ar rcs $@ $^

# Linked statically: `agentd run` is on the start path, and the dynamic
# loader's work (libc, libseccomp, libcap) was 2.5 ms of a 12 ms start.
$(BUILD)/agentd: $(call obj,$(AGENTD_SRC)) $(BUILD)/libruntime.a $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -static -o $@ $^ $(LIBS)

# Unit tests: every module's sources, built with ASan and UBSan.
$(BUILD)/tests/test_%: tests/unit/test_%.c $(call sobj,$(COMMON_SRC) $(RUNTIME_SRC) $(AGENTD_LIB)) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $< $(call sobj,$(COMMON_SRC) $(RUNTIME_SRC) $(AGENTD_LIB)) $(LIBS) -lcmocka

# Integration tests run the real kernel paths; built without sanitizers so
# that the forked children behave as in production.
$(BUILD)/tests/test_%: tests/integration/test_%.c $(BUILD)/libruntime.a $(BUILD)/libcommon.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libruntime.a $(BUILD)/libcommon.a $(LIBS) -lcmocka

# A static probe binary the integration tests run inside containers.
$(BUILD)/tests/probe: tests/fixtures/probe.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $<

deps:
	@tests/deps.sh

test: all $(UNIT_TESTS) $(INTEG_TESTS) $(BUILD)/tests/probe
	@BUILD=$(BUILD) tests/run.sh

test-unit: $(UNIT_TESTS)
	@BUILD=$(BUILD) tests/run.sh unit

test-integration: all $(INTEG_TESTS) $(BUILD)/tests/probe
	@BUILD=$(BUILD) tests/run.sh integration

test-v2: all $(INTEG_TESTS) $(BUILD)/tests/probe
	@BUILD=$(BUILD) tests/run.sh v2

$(BUILD)/spawn_time: bench/spawn_time.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

bench: all $(BUILD)/spawn_time
	BUILD=$(BUILD) bench/start

demo: all
	examples/hello/run.sh

clean:
	rm -rf $(BUILD)
