# One entry point: make, make test, make bench, make demo (README.md).
CC      ?= cc
BUILD   ?= build
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE
LIBS    := -lseccomp -lcap
BUILDER_LIBS := -larchive -ljansson -lzstd -lcrypto -lpthread -ldl
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

COMMON_SRC  := $(wildcard common/*.c)
RUNTIME_SRC := $(wildcard runtime/*.c)
BUILDER_SRC := $(wildcard builder/*.c)
PROTO_SRC   := $(wildcard proto/*.c)
AGENTD_SRC  := $(wildcard agentd/*.c)
AGENTD_LIB  := $(filter-out agentd/main.c,$(AGENTD_SRC))
DEPLOY_SRC  := $(wildcard deploy/*.c)
DEPLOY_LIB  := $(filter-out deploy/main.c,$(DEPLOY_SRC))
CONTROL_SRC := $(wildcard control/*.c)
CONTROL_LIB := $(filter-out control/main.c,$(CONTROL_SRC))
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/test_*.c))
HEADERS     := $(wildcard common/*.h runtime/*.h builder/*.h proto/*.h agentd/*.h deploy/*.h control/*.h tests/unit/*.h) deploy/mcp_tools.json

obj  = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
sobj = $(patsubst %.c,$(BUILD)/san/%.o,$(1))

# Keep the sanitizer objects between runs (they are intermediate files).
.SECONDARY:

.PHONY: all deps test test-unit test-integration test-v2 bench demo fuzz clean
all: $(BUILD)/agentd $(BUILD)/deploy $(BUILD)/controld

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
$(BUILD)/libbuilder.a: $(call obj,$(BUILDER_SRC))
	ar rcs $@ $^
$(BUILD)/libproto.a: $(call obj,$(PROTO_SRC))
	ar rcs $@ $^

# Linked statically: `agentd run` is on the start path, and dynamic loading
# (page faults on this VM) cost it 3-4 ms of a 9 ms start. ISA-L, which
# Debian ships only as a shared library, is dlopen'ed by the unpacker; glibc
# warns that this needs the same glibc at run time, which `make` ensures.
$(BUILD)/agentd: $(call obj,$(AGENTD_SRC)) $(BUILD)/libbuilder.a $(BUILD)/libruntime.a $(BUILD)/libproto.a $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -static -o $@ $^ $(BUILDER_LIBS) $(LIBS) -lyaml > $@.log 2>&1 || { cat $@.log; rm -f $@ $@.log; exit 1; }
	@grep -v -e 'requires at runtime the shared libraries' -e ': in function' $@.log >&2 || true
	@rm -f $@.log

# deploy, the CLI and the MCP server: dynamically linked, because
# libmicrohttpd (the MCP HTTP transport) needs gnutls, whose dependencies
# Debian ships as shared libraries only.
$(BUILD)/deploy: $(call obj,$(DEPLOY_SRC)) $(BUILD)/libproto.a $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -o $@ $^ -lyaml -ljansson -lmicrohttpd -lpthread

# controld, the reference control plane: SQLite for the ledger.
$(BUILD)/controld: $(call obj,$(CONTROL_SRC)) $(BUILD)/libproto.a $(BUILD)/libcommon.a
	$(CC) $(CFLAGS) -o $@ $^ -lsqlite3 -lyaml -ljansson -lm

# Unit tests: every module's sources, built with ASan and UBSan.
UNIT_OBJS := $(call sobj,$(COMMON_SRC) $(RUNTIME_SRC) $(BUILDER_SRC) $(PROTO_SRC) $(AGENTD_LIB) $(DEPLOY_LIB) $(CONTROL_LIB))
$(BUILD)/tests/test_%: tests/unit/test_%.c $(UNIT_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $< $(UNIT_OBJS) $(BUILDER_LIBS) $(LIBS) -lyaml -lmicrohttpd -lsqlite3 -lm -lcmocka -larchive

# agentd built with ASan and UBSan (dynamically linked), which the image and
# pull suites run too: the builder's memory handling under a checker.
$(BUILD)/agentd-san: $(call sobj,$(AGENTD_SRC) $(COMMON_SRC) $(RUNTIME_SRC) $(BUILDER_SRC) $(PROTO_SRC))
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(BUILDER_LIBS) $(LIBS) -lyaml

# deploy built with ASan and UBSan: the MCP suite runs it too (JSON-RPC
# and HTTP input under a checker).
$(BUILD)/deploy-san: $(call sobj,$(DEPLOY_SRC) $(PROTO_SRC) $(COMMON_SRC))
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ -lyaml -ljansson -lmicrohttpd -lpthread

# controld with ASan and UBSan: the control suite runs it too (frames
# from the network and the ledger under a checker).
$(BUILD)/controld-san: $(call sobj,$(CONTROL_SRC) $(PROTO_SRC) $(COMMON_SRC))
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ -lsqlite3 -lyaml -ljansson -lm

# Integration tests run the real kernel paths; built without sanitizers so
# that the forked children behave as in production.
INTEG_LIBS := $(BUILD)/libbuilder.a $(BUILD)/libruntime.a $(BUILD)/libcommon.a
$(BUILD)/tests/test_%: tests/integration/test_%.c $(INTEG_LIBS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(INTEG_LIBS) $(BUILDER_LIBS) $(LIBS) -lyaml -lcmocka

# A static probe binary the integration tests run inside containers.
$(BUILD)/tests/probe: tests/fixtures/probe.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $<

$(BUILD)/tests/frame_send: tests/fixtures/frame_send.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/tests/fake_http: tests/fixtures/fake_http.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# libFuzzer on the protocol decoder: `make fuzz` (FUZZ_SECONDS, default 60);
# make test runs it for 20 s.
FUZZ_SECONDS ?= 60
$(BUILD)/fuzz_proto: tests/fuzz/fuzz_proto.c $(PROTO_SRC) common/error.c proto/proto.h proto/messages.h
	@mkdir -p $(dir $@)
	clang -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c,$^)

fuzz: $(BUILD)/fuzz_proto
	@mkdir -p $(BUILD)/fuzz-corpus
	$(BUILD)/fuzz_proto -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz-corpus tests/fuzz/corpus

deps:
	@tests/deps.sh

test: all $(UNIT_TESTS) $(INTEG_TESTS) $(BUILD)/tests/probe $(BUILD)/tests/fake_http $(BUILD)/tests/frame_send $(BUILD)/agentd-san $(BUILD)/deploy-san $(BUILD)/controld-san
	@BUILD=$(BUILD) tests/run.sh

test-unit: $(UNIT_TESTS)
	@BUILD=$(BUILD) tests/run.sh unit

test-integration: all $(INTEG_TESTS) $(BUILD)/tests/probe $(BUILD)/tests/fake_http $(BUILD)/tests/frame_send $(BUILD)/agentd-san $(BUILD)/deploy-san $(BUILD)/controld-san
	@BUILD=$(BUILD) tests/run.sh integration

test-v2: all $(INTEG_TESTS) $(BUILD)/tests/probe
	@BUILD=$(BUILD) tests/run.sh v2

$(BUILD)/spawn_time: bench/spawn_time.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

bench: all $(BUILD)/spawn_time
	BUILD=$(BUILD) bench/start
	BUILD=$(BUILD) bench/unpack
	BUILD=$(BUILD) bench/deploy
	BUILD=$(BUILD) bench/mcp
	BUILD=$(BUILD) bench/meter

demo: all
	examples/hello/run.sh

clean:
	rm -rf $(BUILD)
