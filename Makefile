# The two commands (see README): `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
export CADENAS_LAB_DIR ?= /tmp/cadenas-lab

.PHONY: help demo test lab-up lab-down lint guide bench header install package public-api target/doc/cadenas.json

help:
	@echo "make demo   set up the lab (real OpenLDAP + Dovecot on loopback) and run a demo incident with the CLI"
	@echo "make test   set up the lab and run every test (Rust unit, lab integration, CLI, doc; Python in a venv it makes) + lints"
	@echo "make lab-up / lab-down   start / stop the lab servers"
	@echo "make install PREFIX=/usr/local   install libcadenas (.so, .a), cadenas.h and cadenas.pc"
	@echo "make header   regenerate ffi/include/cadenas.h with cbindgen"
	@echo "make package  build the Debian packages into target/deb/"
	@echo "make public-api   regenerate core/public-api.txt (the Rust surface make lint checks)"
	@echo "make guide   check the docs' links and build the user guide into target/guide/"

lab-up:
	bash lab/up.sh 300

lab-down:
	bash lab/up.sh down

demo: lab-up
	$(CARGO) build -q -p cadenas-cli
	bash lab/demo.sh target/debug/cadenas

lint: target/doc/cadenas.json
	$(CARGO) fmt --all -- --check
	$(CARGO) run -q -p cadenas-codegen -- --check
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -q -p cadenas --no-deps
	python3 tools/public_api.py target/doc/cadenas.json | diff -u core/public-api.txt - \
		|| { echo "the public API changed: if that is meant, run make public-api and commit core/public-api.txt (and say so in CHANGELOG.md)"; exit 1; }
	$(CARGO) clippy -q --workspace --all-targets -- -D warnings

# The user guide (docs/guide, mdBook): its links, chapters and configuration reference checked,
# then built. mdbook is built once into target/tools (about a minute), without its server.
MDBOOK_VERSION := 0.5.4
MDBOOK := target/tools/bin/mdbook

$(MDBOOK):
	$(CARGO) install -q mdbook --version $(MDBOOK_VERSION) --locked --no-default-features --root target/tools

guide: $(MDBOOK)
	python3 tools/check_docs.py
	$(MDBOOK) build docs/guide

test: lab-up
	$(MAKE) lint
	$(MAKE) guide
	$(CARGO) test --workspace --no-fail-fast
	rm -f $(CADENAS_LAB_DIR)/example-user0100.pw
	$(CARGO) run -q -p cadenas --example contain -- $(CADENAS_LAB_DIR)/openldap/cadenas.toml user0100 $(CADENAS_LAB_DIR)/example-user0100.pw
	bash python/run-tests.sh
	bash ffi/tests/run-c-tests.sh
	bash packaging/deb/test.sh

bench:
	bash benches/run.sh

# The crate's public surface as rustdoc sees it (rustdoc's JSON output is unstable: asked for
# with RUSTC_BOOTSTRAP=1 on the one stable toolchain), listed by tools/public_api.py.
target/doc/cadenas.json:
	RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" $(CARGO) doc -q -p cadenas --no-deps

public-api: target/doc/cadenas.json
	python3 tools/public_api.py target/doc/cadenas.json > core/public-api.txt

# The C library. FFI_PROFILE=debug installs the test build (what `make test` uses).
PREFIX ?= /usr/local
FFI_PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

# The Debian packages (cadenas, libcadenas0, libcadenas-dev, libpam-cadenas) in target/deb/.
package:
	PROFILE=release bash packaging/deb/build.sh

header:
	cbindgen -q --config ffi/cbindgen.toml --crate cadenas-ffi --output ffi/include/cadenas.h ffi

install:
	$(CARGO) build -q -p cadenas-ffi $(if $(filter release,$(FFI_PROFILE)),--release,)
	install -d $(PREFIX)/include $(PREFIX)/lib/pkgconfig
	install -m 644 ffi/include/cadenas.h $(PREFIX)/include/cadenas.h
	install -m 755 target/$(FFI_PROFILE)/libcadenas.so $(PREFIX)/lib/libcadenas.so.$(VERSION)
	ln -sf libcadenas.so.$(VERSION) $(PREFIX)/lib/libcadenas.so.0
	ln -sf libcadenas.so.0 $(PREFIX)/lib/libcadenas.so
	install -m 644 target/$(FFI_PROFILE)/libcadenas.a $(PREFIX)/lib/libcadenas.a
	sed -e 's|@PREFIX@|$(abspath $(PREFIX))|' -e 's|@VERSION@|$(VERSION)|' ffi/cadenas.pc.in > $(PREFIX)/lib/pkgconfig/cadenas.pc
