# sr2fhir build. `make` builds the library and the command; `make test` runs every test;
# `make SAN=1 test` does the same under AddressSanitizer + UndefinedBehaviorSanitizer
# (objects go to build-san/ so both builds can coexist). CC=clang works as well as gcc.

ifeq ($(origin CC),default)
CC      := gcc
endif
SAN     ?= 0
TSAN    ?= 0
BUILD   ?= $(if $(filter 1,$(SAN)),build-san,$(if $(filter 1,$(TSAN)),build-tsan,build))
OPT     ?= -O3
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CFLAGS  += -std=c11 $(OPT) -g $(WARN) -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc
LDLIBS  += -lz -lyajl -ljson-c -lsqlite3 -lm
CURL_LIBS := -lcurl -pthread     # delivery (src/deliver/): sr2fhir-send, tests, fuzz builds
MHD_LIBS  := -lmicrohttpd -lgnutls -lssl -lcrypto # the gateway's HTTP server and DICOM TLS (src/gateway/, OpenSSL: issue 12): sr2fhir-serve, tests
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
# ThreadSanitizer (issue 11): `make TSAN=1 test` (objects in build-tsan/)
ifeq ($(TSAN),1)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

LIB_SRC  := $(sort $(wildcard src/util/*.c src/dicom/*.c src/sr/*.c src/report/*.c src/fhir/*.c src/json/*.c src/deliver/*.c))
# The gateway (issue 11): the service on top of the library, its own archive so that the
# library needs neither SQLite nor libmicrohttpd; `sr2fhir queue` takes only the queue from it.
GW_SRC   := $(sort $(wildcard src/gateway/*.c))
# sr2fhir: dump, convert, help. sr2fhir-send: `send`, a program of its own so that only it
# loads libcurl (src/cli/main.c says why); `sr2fhir send` runs it.
CLI_SHARED := src/cli/help.c src/cli/options.c src/cli/inputs.c src/cli/message.c
CLIENT_OPTS := src/cli/client_opts.c   # the FHIR client options of send and serve
CLI_SRC  := src/cli/main.c src/cli/dump.c src/cli/convert.c src/cli/output.c src/cli/outnames.c $(wildcard src/cli/queue.c) $(CLI_SHARED)
SEND_SRC := src/cli/send_main.c src/cli/send.c $(CLIENT_OPTS) $(CLI_SHARED)
# sr2fhir-serve: `sr2fhir serve`, the gateway service (links libmicrohttpd and libcurl)
SERVE_SRC := $(wildcard src/cli/serve_main.c src/cli/serve.c) $(CLIENT_OPTS) $(CLI_SHARED)
# sr2fhir-pull: `sr2fhir pull` (issue 13: DICOMweb pull; libcurl, GnuTLS)
PULL_SRC := $(wildcard src/cli/pull_main.c src/cli/pull.c) $(CLIENT_OPTS) $(CLI_SHARED)
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
# Tools script tests run (tests/tools/*.c, e.g. queue_fill: a queue database in any state)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
SEND_OBJ := $(SEND_SRC:%.c=$(BUILD)/%.o)
GW_OBJ   := $(GW_SRC:%.c=$(BUILD)/%.o)
SERVE_OBJ := $(SERVE_SRC:%.c=$(BUILD)/%.o)
PULL_OBJ := $(PULL_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)

LIB := $(BUILD)/libsr2fhir.a
BIN := $(BUILD)/sr2fhir
SEND_BIN := $(BUILD)/sr2fhir-send
GW_LIB := $(BUILD)/libsr2fhir-gateway.a
SERVE_BIN := $(if $(wildcard src/cli/serve_main.c),$(BUILD)/sr2fhir-serve)
PULL_BIN := $(if $(wildcard src/cli/pull_main.c),$(BUILD)/sr2fhir-pull)

.PHONY: all test unit clean fuzz sample fixtures
all: $(BIN) $(SEND_BIN) $(SERVE_BIN) $(PULL_BIN) $(LIB) $(GW_LIB)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(GW_LIB): $(GW_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB) $(GW_LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(GW_LIB) $(LIB) $(LDLIBS)

$(SEND_BIN): $(SEND_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SEND_OBJ) $(LIB) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/sr2fhir-serve: $(SERVE_OBJ) $(GW_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SERVE_OBJ) $(GW_LIB) $(LIB) $(MHD_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/sr2fhir-pull: $(PULL_OBJ) $(GW_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(PULL_OBJ) $(GW_LIB) $(LIB) $(MHD_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h tests/unit/sr_json.h tests/unit/part10_build.h $(LIB) $(GW_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(GW_LIB) $(LIB) $(MHD_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIB) $(GW_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(GW_LIB) $(LIB) $(CURL_LIBS) $(LDLIBS)

unit: $(TEST_BIN) $(TOOL_BIN)

test: all unit
	BUILD=$(BUILD) tests/run.sh

# libFuzzer targets (clang only): build/fuzz/fuzz_part10, build/fuzz/fuzz_json, ...
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
fuzz: $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
build-fuzz/%: fuzz/%.c $(LIB_SRC) $(GW_SRC)
	@mkdir -p build-fuzz
	clang -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ $< $(LIB_SRC) $(GW_SRC) $(MHD_LIBS) $(CURL_LIBS) $(LDLIBS)

# The project's own sample reports (tests/fixtures/generate.py, Debian's python3-pydicom).
fixtures:
	/usr/bin/python3 tests/fixtures/generate.py $(BUILD)/fixtures

# The committed generated tables (issue 16, docs/generated.md): rewritten from Debian's
# python3-pydicom; scripts/check-generated.sh (CI) checks they equal what this makes.
.PHONY: regen
regen:
	/usr/bin/python3 -B tools/gen_dictionary.py src/dicom/dictionary_table.h
	/usr/bin/python3 -B tools/gen_srt_table.py src/fhir/srt_table.h

sample: all fixtures
	$(BIN) dump $(BUILD)/fixtures/explicit_le.dcm
	$(BIN) convert --pretty $(BUILD)/fixtures/explicit_le.dcm -o $(BUILD)/sample-bundle.json
	@echo "sample: FHIR Bundle written to $(BUILD)/sample-bundle.json"

clean:
	rm -rf build build-san build-tsan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SEND_OBJ:.o=.d) $(GW_OBJ:.o=.d) $(SERVE_OBJ:.o=.d) $(PULL_OBJ:.o=.d)
