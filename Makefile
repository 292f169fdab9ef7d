# sr2fhir build. `make` builds the library and the command; `make test` runs every test;
# `make SAN=1 test` does the same under AddressSanitizer + UndefinedBehaviorSanitizer
# (objects go to build-san/ so both builds can coexist). CC=clang works as well as gcc.
# `make install DESTDIR=D PREFIX=/usr` installs programs, libraries, headers, pkg-config
# files, man pages and docs (docs/packaging.md). WERROR=0 builds without -Werror (the
# Debian package does: a newer compiler's new warning must not break a user's build).

ifeq ($(origin CC),default)
CC      := gcc
endif
SAN     ?= 0
TSAN    ?= 0
BUILD   ?= $(if $(filter 1,$(SAN)),build-san,$(if $(filter 1,$(TSAN)),build-tsan,build))
OPT     ?= -O3
WERROR  ?= 1
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla $(if $(filter 1,$(WERROR)),-Werror)
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

# The library in two (issue 16): libsr2fhir (read, dump, convert: zlib, yajl) and
# libsr2fhir-send (delivery, src/deliver/: libcurl, json-c), each an archive and a shared
# library with a soname exporting only the public functions (src/libsr2fhir.map,
# src/libsr2fhir-send.map). The programs link the archives (docs/packaging.md says why).
CORE_SRC := $(sort $(wildcard src/util/*.c src/dicom/*.c src/sr/*.c src/report/*.c src/fhir/*.c src/json/*.c))
SENDLIB_SRC := $(sort $(wildcard src/deliver/*.c))
LIB_SRC  := $(CORE_SRC) $(SENDLIB_SRC)
# The gateway (issue 11): the service on top of the library, its own archive so that the
# library needs neither SQLite nor libmicrohttpd; `sr2fhir queue` takes only the queue from it.
GW_SRC   := $(sort $(wildcard src/gateway/*.c))
# sr2fhir: dump, convert, help. sr2fhir-send: `send`, a program of its own so that only it
# loads libcurl (src/cli/main.c says why); `sr2fhir send` runs it.
CLI_SHARED := src/cli/help.c src/cli/options.c src/cli/inputs.c src/cli/message.c
CLIENT_OPTS := src/cli/client_opts.c   # the FHIR client options of send and serve
CLI_SRC  := src/cli/main.c src/cli/dump.c src/cli/convert.c src/cli/jsonout.c src/cli/output.c src/cli/outnames.c $(wildcard src/cli/queue.c) $(CLI_SHARED)
SEND_SRC := src/cli/send_main.c src/cli/send.c $(CLIENT_OPTS) $(CLI_SHARED)
# sr2fhir-serve: `sr2fhir serve`, the gateway service (links libmicrohttpd and libcurl)
SERVE_SRC := $(wildcard src/cli/serve_main.c src/cli/serve.c) $(CLIENT_OPTS) $(CLI_SHARED)
# sr2fhir-pull: `sr2fhir pull` (issue 13: DICOMweb pull; libcurl, GnuTLS)
PULL_SRC := $(wildcard src/cli/pull_main.c src/cli/pull.c) $(CLIENT_OPTS) $(CLI_SHARED)
# sr2fhir-cast: `sr2fhir cast` (issue 15: FHIRcast; libcurl, OpenSSL)
CAST_SRC := $(wildcard src/cli/cast_main.c src/cli/cast.c) $(CLIENT_OPTS) $(CLI_SHARED)
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
# Tools script tests run (tests/tools/*.c, e.g. queue_fill: a queue database in any state)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
SENDLIB_OBJ := $(SENDLIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
SEND_OBJ := $(SEND_SRC:%.c=$(BUILD)/%.o)
GW_OBJ   := $(GW_SRC:%.c=$(BUILD)/%.o)
SERVE_OBJ := $(SERVE_SRC:%.c=$(BUILD)/%.o)
PULL_OBJ := $(PULL_SRC:%.c=$(BUILD)/%.o)
CAST_OBJ := $(CAST_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)

LIB := $(BUILD)/libsr2fhir.a
SENDLIB := $(BUILD)/libsr2fhir-send.a
# VERSION from the header; SOVERSION changes only with an incompatible ABI (docs/abi.md)
VERSION   := $(shell sed -n 's/^[#]define SR2FHIR_VERSION "\([0-9.]*\)".*/\1/p' include/sr2fhir.h)
$(if $(VERSION),,$(error cannot read SR2FHIR_VERSION "N.N.N" from include/sr2fhir.h))
SOVERSION := 0
SO      := $(BUILD)/libsr2fhir.so.$(VERSION)
SEND_SO := $(BUILD)/libsr2fhir-send.so.$(VERSION)
CORE_LIBS := -lz -lyajl -lm
SEND_LIBS := -lcurl -ljson-c -lssl -lcrypto -pthread # OpenSSL: the FHIRcast websocket (issue 15)
BIN := $(BUILD)/sr2fhir
SEND_BIN := $(BUILD)/sr2fhir-send
GW_LIB := $(BUILD)/libsr2fhir-gateway.a
SERVE_BIN := $(if $(wildcard src/cli/serve_main.c),$(BUILD)/sr2fhir-serve)
PULL_BIN := $(if $(wildcard src/cli/pull_main.c),$(BUILD)/sr2fhir-pull)
CAST_BIN := $(if $(wildcard src/cli/cast_main.c),$(BUILD)/sr2fhir-cast)

.PHONY: all test unit clean fuzz sample fixtures man install
all: $(BIN) $(SEND_BIN) $(SERVE_BIN) $(PULL_BIN) $(CAST_BIN) $(LIB) $(SENDLIB) $(GW_LIB) shared

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SENDLIB): $(SENDLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Library objects are position-independent (they go into the shared libraries too);
# -fno-semantic-interposition keeps calls inside the library direct.
# (The stamp makes objects built before the flag existed rebuild once.)
$(LIB_OBJ): CFLAGS += -fPIC -fno-semantic-interposition
$(LIB_OBJ): $(BUILD)/.pic
$(BUILD)/.pic:
	@mkdir -p $(BUILD) && touch $@

# Shared libraries: libsr2fhir.so.VERSION with soname libsr2fhir.so.0, and the links
# libsr2fhir.so.0 and libsr2fhir.so beside it. libsr2fhir-send.so carries its own hidden
# copy of the core's private parts it uses (the report model, the JSON writer), taken from
# the archive, so that libsr2fhir.so exports nothing private; the two come from one
# source and are installed at the same version (debian/control).
SO_LDFLAGS = -shared -Wl,--as-needed $(if $(filter 1,$(SAN) $(TSAN)),,-Wl,-z,defs)
.PHONY: shared
shared: $(BUILD)/libsr2fhir.so $(BUILD)/libsr2fhir-send.so

$(SO): $(CORE_OBJ) src/libsr2fhir.map
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,-soname,libsr2fhir.so.$(SOVERSION) \
	    -Wl,--version-script=src/libsr2fhir.map -o $@ $(CORE_OBJ) $(CORE_LIBS)

$(SEND_SO): $(SENDLIB_OBJ) $(LIB) src/libsr2fhir-send.map
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,-soname,libsr2fhir-send.so.$(SOVERSION) \
	    -Wl,--version-script=src/libsr2fhir-send.map -o $@ $(SENDLIB_OBJ) $(LIB) \
	    $(SEND_LIBS) $(CORE_LIBS)

$(BUILD)/%.so: $(BUILD)/%.so.$(VERSION)
	ln -sf $(notdir $<) $@.$(SOVERSION)
	ln -sf $(notdir $@).$(SOVERSION) $@

$(GW_LIB): $(GW_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB) $(GW_LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(GW_LIB) $(LIB) $(LDLIBS)

$(SEND_BIN): $(SEND_OBJ) $(SENDLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SEND_OBJ) $(SENDLIB) $(LIB) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/sr2fhir-serve: $(SERVE_OBJ) $(GW_LIB) $(SENDLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SERVE_OBJ) $(GW_LIB) $(SENDLIB) $(LIB) $(MHD_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/sr2fhir-pull: $(PULL_OBJ) $(GW_LIB) $(SENDLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(PULL_OBJ) $(GW_LIB) $(SENDLIB) $(LIB) $(MHD_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/sr2fhir-cast: $(CAST_OBJ) $(SENDLIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CAST_OBJ) $(SENDLIB) $(LIB) $(CURL_LIBS) -lssl -lcrypto $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h tests/unit/sr_json.h tests/unit/part10_build.h tests/unit/fhir_bundle.h $(LIB) $(SENDLIB) $(GW_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(GW_LIB) $(SENDLIB) $(LIB) $(MHD_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIB) $(SENDLIB) $(GW_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(GW_LIB) $(SENDLIB) $(LIB) $(CURL_LIBS) $(LDLIBS)

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

# Man pages (issue 16): $(BUILD)/man/sr2fhir.1 and sr2fhir-COMMAND.1, made from the
# program's own `help` texts by scripts/gen-man.sh, so they cannot drift from `help`.
man: $(BUILD)/man/sr2fhir.1
$(BUILD)/man/sr2fhir.1: $(BIN) scripts/gen-man.sh
	scripts/gen-man.sh $(BIN) $(BUILD)/man

# Install (issue 16): `make install DESTDIR=D PREFIX=/usr`. LIBDIR defaults to Debian's
# multiarch folder (PREFIX/lib/x86_64-linux-gnu), else PREFIX/lib. The programs are
# statically linked with the archives; the shared libraries are for other programs.
PREFIX     ?= /usr/local
MULTIARCH  := $(shell $(CC) -print-multiarch 2>/dev/null)
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/sr2fhir
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PROGRAMS   := $(BIN) $(SEND_BIN) $(SERVE_BIN) $(PULL_BIN) $(CAST_BIN)
PC_FILES   := $(BUILD)/pkgconfig/sr2fhir.pc $(BUILD)/pkgconfig/sr2fhir-send.pc

$(BUILD)/pkgconfig/%.pc: src/%.pc.in FORCE   # the paths come from the command line
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	    -e 's|@VERSION@|$(VERSION)|g' $< > $@
.PHONY: FORCE
FORCE:

install: all man $(PC_FILES)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR)
	install -m 755 $(PROGRAMS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(SO) $(SEND_SO) $(LIB) $(SENDLIB) $(DESTDIR)$(LIBDIR)/
	for l in libsr2fhir libsr2fhir-send; do \
	    ln -sf $$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$$l.so.$(SOVERSION) && \
	    ln -sf $$l.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/$$l.so || exit 1; done
	install -m 644 $(PC_FILES) $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 644 include/*.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

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

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SEND_OBJ:.o=.d) $(GW_OBJ:.o=.d) $(SERVE_OBJ:.o=.d) $(PULL_OBJ:.o=.d) $(CAST_OBJ:.o=.d)
